-- The outbox counts sends apart from refusals, so that only poison makes a message dead.
--
-- Until now `attempts` counted the sends the broker acked, and a message sent `max_attempts` times without a
-- callback was dead, whatever the reason nobody called back. A consumer whose own database was down (an outage,
-- not poison) made every message of the outage dead once the relay had sent it that many times. From now on:
--
--   sends     how many times the broker acked a send of it (a send lost on the way costs none): what the wait for
--             the consumer's callback doubles with, and which send a consumer is told it is reading
--   attempts  how many times a consumer refused it as poison (a message that can never be handled): the count
--             that makes it dead when it reaches the relay's --max-attempts. A consumer answering "later" (its
--             downstream is down) and a send nobody answered never count.
--
-- Rows in flight keep their sends and start with no refusal (none was ever recorded); dead rows keep their count
-- as it was when they died. The UPDATE touches every row: on an outbox of millions of rows, run it when the relay
-- is quiet (consumed messages can be archived first).

ALTER TABLE message_outbox
    ADD COLUMN sends INT NOT NULL DEFAULT 0 COMMENT 'sends the broker acked' AFTER attempts;

ALTER TABLE message_outbox
    ADD CONSTRAINT message_outbox_sends CHECK (sends >= 0);

-- `sends` is assigned first, so it reads the old `attempts` under MySQL's left-to-right and MariaDB's
-- simultaneous assignment alike.
UPDATE message_outbox SET sends = attempts, attempts = IF(state = 'dead', attempts, 0);

ALTER TABLE message_outbox
    MODIFY attempts INT NOT NULL DEFAULT 0 COMMENT 'times a consumer refused it as poison: dead at the relay''s limit';
