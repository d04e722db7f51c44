-- The outbox's keys as ASCII compared byte for byte.
--
-- Every business fact writes one message_outbox row, and with it an entry in two indexes whose keys are text:
-- UNIQUE (topic, business_key) and (state, due_at). Compared under utf8mb4_general_ci, each comparison of those
-- keys folds case character by character; as ascii_bin it compares bytes. Topics (e.g. warehouse.shipment),
-- business keys (ids) and states are ASCII identifiers, and a message's identity is exact, so a fifth of the
-- cost of writing a message goes and nothing else changes: a topic or business key that is not ASCII is refused
-- (error 1366), as it should be.
--
-- The ALTER rebuilds the table: on an outbox of millions of rows, run it when the relay is quiet (consumed
-- messages can be archived first).

ALTER TABLE message_outbox
    MODIFY topic        VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'routing key, e.g. warehouse.shipment',
    MODIFY business_key VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'the business fact, e.g. the credit_exchange id',
    MODIFY state        VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT 'pending';
