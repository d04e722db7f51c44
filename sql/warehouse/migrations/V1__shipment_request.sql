-- The warehouse's own database: shipment requests, written by the warehouse consumer from the message service.
--
-- Nothing here reads the points database and nothing there reads this one: the only link is the message the
-- points side committed with its exchange, relayed through RabbitMQ.
--
-- UNIQUE (credit_exchange_id) is what makes the effect happen once: a message delivered twice (a redelivery,
-- a re-send after a lost callback) inserts nothing the second time, and the consumer calls back again.

CREATE TABLE shipment_request (
    id                 BIGINT       NOT NULL AUTO_INCREMENT,
    type               TINYINT      NOT NULL COMMENT '1 purchase, 2 exchange',
    credit_exchange_id BIGINT       NOT NULL COMMENT 'the business fact on the points side',
    product_id         BIGINT       NOT NULL,
    user_id            BIGINT       NOT NULL,
    express_no         VARCHAR(32)  NULL DEFAULT NULL COMMENT 'set when shipped',
    message_id         BIGINT       NOT NULL COMMENT 'the outbox message that asked for it first',
    created_at         TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    UNIQUE KEY uniq_credit_exchange (credit_exchange_id),
    CONSTRAINT shipment_request_type CHECK (type IN (1, 2))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COMMENT = 'shipments the warehouse was asked for';
