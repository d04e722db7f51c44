-- The reliable message service's outbox: messages written by business procedures in their own transaction,
-- relayed to RabbitMQ, and marked consumed when the consumer calls back after its own commit.
--
-- A business procedure inserts one row (topic, business_key, payload) in the same transaction as the business
-- rows it describes, so a message exists exactly when its business fact committed. Everything after that is
-- the relay's job (see src/messaging/): it claims due rows (SELECT ... FOR UPDATE SKIP LOCKED, safe with
-- several relays), publishes them with publisher confirms, and marks them sent only on the broker's ack. A
-- message sent but not confirmed consumed by its due time is sent again, later each time; after the last
-- attempt it is dead, visible and re-triable by an operator.
--
--   state        pending   to be sent (new, or retried by an operator)
--                sent      acked by the broker; waiting for the consumer's callback until due_at
--                consumed  the consumer called back after its own commit: done
--                dead      attempts ran out (or the consumer refused it as poison every time)
--   attempts     how many times the broker acked a send of it (a send lost on the way costs none)
--   due_at       when the relay next looks at it: the first send, the end of a claim's lease, or the end of
--                the wait for the consumer's callback
--
-- UNIQUE (topic, business_key): one message per business fact, so a business procedure can never enqueue a
-- fact twice.

CREATE TABLE message_outbox (
    message_id   BIGINT       NOT NULL AUTO_INCREMENT,
    topic        VARCHAR(64)  NOT NULL COMMENT 'routing key, e.g. warehouse.shipment',
    business_key VARCHAR(64)  NOT NULL COMMENT 'the business fact, e.g. the credit_exchange id',
    payload      TEXT         NOT NULL COMMENT 'JSON',
    state        VARCHAR(16)  NOT NULL DEFAULT 'pending',
    attempts     INT          NOT NULL DEFAULT 0,
    due_at       TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    created_at   TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    sent_at      TIMESTAMP(3) NULL DEFAULT NULL COMMENT 'last broker ack',
    consumed_at  TIMESTAMP(3) NULL DEFAULT NULL COMMENT 'the consumer''s callback',
    last_error   VARCHAR(255) NULL DEFAULT NULL,
    PRIMARY KEY (message_id),
    UNIQUE KEY uniq_topic_business_key (topic, business_key),
    KEY idx_state_due (state, due_at),
    CONSTRAINT message_outbox_state CHECK (state IN ('pending', 'sent', 'consumed', 'dead')),
    CONSTRAINT message_outbox_attempts CHECK (attempts >= 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COMMENT = 'the reliable message service''s outbox';
