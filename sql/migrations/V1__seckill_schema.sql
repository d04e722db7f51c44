-- The classic seckill schema (the imooc course), column for column, so existing MyBatis mappers work unchanged.
--
-- Where it departs from the classic DDL, it fixes one of its known defects:
--   * DATETIME(3) instead of TIMESTAMP. The classic `start_time TIMESTAMP NOT NULL` silently becomes
--     `DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP` on servers with explicit_defaults_for_timestamp=OFF,
--     so every stock decrement moved the start of the sale to "now". DATETIME has no such magic and is not
--     converted by the session's time zone.
--   * All times are UTC. Defaults use UTC_TIMESTAMP, never the server's or the session's local clock, so the
--     schema behaves the same whatever time zone the server runs in (the classic "8-hour offset" bug).
--   * Every NOT NULL time has an explicit default, so strict mode never sees a zero date.
--   * CHECK constraints keep the books honest even against hand-written SQL: stock is never negative and a sale
--     ends after it starts (enforced by MariaDB 10.2+ and MySQL 8.0.16+).
--
-- No foreign key from success_killed to seckill, on purpose: InnoDB would take a shared lock on the parent row
-- for every insert, and the parent is the hot row every seckill of the item is waiting for.

CREATE TABLE seckill (
    seckill_id  BIGINT       NOT NULL AUTO_INCREMENT COMMENT 'item id',
    name        VARCHAR(120) NOT NULL COMMENT 'item name',
    number      INT          NOT NULL COMMENT 'stock left',
    start_time  DATETIME(3)  NOT NULL COMMENT 'sale opens, UTC, inclusive',
    end_time    DATETIME(3)  NOT NULL COMMENT 'sale closes, UTC, exclusive',
    create_time DATETIME(3)  NOT NULL DEFAULT (UTC_TIMESTAMP(3)) COMMENT 'UTC',
    PRIMARY KEY (seckill_id),
    KEY idx_start_time (start_time),
    KEY idx_end_time (end_time),
    KEY idx_create_time (create_time),
    CONSTRAINT seckill_stock_not_negative CHECK (number >= 0),
    CONSTRAINT seckill_window_ordered CHECK (end_time > start_time)
) ENGINE = InnoDB AUTO_INCREMENT = 1000 DEFAULT CHARSET = utf8mb4 COMMENT = 'seckill items and their stock';

CREATE TABLE success_killed (
    seckill_id  BIGINT      NOT NULL COMMENT 'item id',
    user_phone  BIGINT      NOT NULL COMMENT 'the buyer',
    state       TINYINT     NOT NULL DEFAULT -1 COMMENT '-1 invalid, 0 success, 1 paid, 2 shipped',
    create_time DATETIME(3) NOT NULL DEFAULT (UTC_TIMESTAMP(3)) COMMENT 'when the seckill was decided, UTC',
    PRIMARY KEY (seckill_id, user_phone),
    KEY idx_create_time (create_time)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COMMENT = 'one row per successful seckill';
