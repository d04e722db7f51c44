-- The points exchange (积分兑换): users' points, the gift catalogue, and the exchanges that turn points into a
-- shipment request for the warehouse.
--
-- Every change of a balance happens in a stored procedure (grant_credit, exchange_credit_batch) that writes the
-- balance, its ledger row and, for an exchange, the credit_exchange row and its message_outbox row in one
-- transaction: a shipment message exists exactly when its exchange committed.
--
--   credit            one row per user: the balance. A user without a row is unknown to the exchange.
--   credit_ledger     every change of a balance, with the balance after it: what users are shown, and what the
--                     books are checked against (granted = balance + exchanged).
--   exchange_gift     the catalogue. A popular gift is a hot row, like a seckill item: every exchange of it
--                     takes its lock, so exchanges of one gift are batched (one transaction for many users).
--   credit_exchange   one row per exchange that went through: the business fact the warehouse ships.
--   exchange_request  the first answer to every (user, request id) the exchange decided, refusals included, so
--                     a client retry with the same request id hears that answer again and pays nothing twice.
--
-- Request ids are ASCII with a binary collation: `r-1` and `R-1` are two requests, and a trailing space is not
-- ignored as utf8mb4's PAD SPACE collations would. No foreign keys, as in V1: InnoDB would take a shared lock on
-- the parent for every insert, and the parents here (a gift, a user's balance) are the hot rows.
--
-- Instants are TIMESTAMP(3) with explicit defaults (see V2), so no column silently gains ON UPDATE.

CREATE TABLE credit (
    id         BIGINT       NOT NULL AUTO_INCREMENT,
    user_id    BIGINT       NOT NULL,
    credit     BIGINT       NOT NULL DEFAULT 0 COMMENT 'points available',
    updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) COMMENT 'last change, set by the procedures',
    PRIMARY KEY (id),
    UNIQUE KEY uniq_user (user_id),
    CONSTRAINT credit_user_positive CHECK (user_id > 0),
    -- The last line of defence against an overdraft: a procedure that got it wrong fails and rolls back.
    CONSTRAINT credit_not_negative CHECK (credit >= 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COMMENT = 'users'' points';

CREATE TABLE credit_ledger (
    id            BIGINT       NOT NULL AUTO_INCREMENT,
    user_id       BIGINT       NOT NULL,
    delta         BIGINT       NOT NULL COMMENT 'positive for a grant, negative for an exchange',
    balance_after BIGINT       NOT NULL,
    reason        VARCHAR(16)  NOT NULL,
    reference     VARCHAR(255) NOT NULL DEFAULT '' COMMENT 'the exchange id, or the grant''s note',
    created_at    TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    -- A user's statement, newest first, without a sort.
    KEY idx_user_id (user_id, id),
    CONSTRAINT credit_ledger_reason CHECK (reason IN ('grant', 'exchange')),
    CONSTRAINT credit_ledger_delta CHECK ((reason = 'grant' AND delta > 0) OR (reason = 'exchange' AND delta < 0)),
    CONSTRAINT credit_ledger_balance CHECK (balance_after >= 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COMMENT = 'every change of a balance';

CREATE TABLE exchange_gift (
    gift_id    BIGINT       NOT NULL AUTO_INCREMENT,
    name       VARCHAR(120) NOT NULL,
    cost       BIGINT       NOT NULL COMMENT 'points per unit',
    stock      INT          NOT NULL COMMENT 'units left',
    -- What the books check stock against: stocked - stock units were taken, one per credit_exchange row.
    stocked    INT          NOT NULL COMMENT 'units ever put in stock',
    created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (gift_id),
    CONSTRAINT exchange_gift_cost_positive CHECK (cost > 0),
    CONSTRAINT exchange_gift_stock_not_negative CHECK (stock >= 0),
    CONSTRAINT exchange_gift_stock_within_stocked CHECK (stock <= stocked)
) ENGINE = InnoDB AUTO_INCREMENT = 1 DEFAULT CHARSET = utf8mb4 COMMENT = 'the gifts points can be exchanged for';

CREATE TABLE credit_exchange (
    id               BIGINT       NOT NULL AUTO_INCREMENT,
    user_id          BIGINT       NOT NULL,
    exchanged_credit BIGINT       NOT NULL COMMENT 'points paid',
    product_id       BIGINT       NOT NULL COMMENT 'the gift',
    request_id       VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at       TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    -- One exchange per client request, whatever happens to exchange_request.
    UNIQUE KEY uniq_user_request (user_id, request_id),
    KEY idx_product (product_id),
    CONSTRAINT credit_exchange_paid CHECK (exchanged_credit > 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COMMENT = 'exchanges that went through';

CREATE TABLE exchange_request (
    user_id       BIGINT       NOT NULL,
    request_id    VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    gift_id       BIGINT       NOT NULL COMMENT 'the gift first asked for',
    outcome       VARCHAR(20)  NOT NULL COMMENT 'the first answer',
    exchange_id   BIGINT       NULL DEFAULT NULL COMMENT 'the credit_exchange row, when exchanged',
    balance_after BIGINT       NULL DEFAULT NULL COMMENT 'the balance the first answer reported, when exchanged',
    created_at    TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (user_id, request_id),
    CONSTRAINT exchange_request_outcome
        CHECK (outcome IN ('exchanged', 'unknown_gift', 'unknown_user', 'out_of_stock', 'not_enough_points')),
    CONSTRAINT exchange_request_exchange_id CHECK ((outcome = 'exchanged') = (exchange_id IS NOT NULL))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COMMENT = 'the first answer to every exchange request';
