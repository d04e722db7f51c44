-- Instants as TIMESTAMP(3), so that they read and compare correctly in any session time zone.
--
-- V1 stored UTC in DATETIME(3) columns. The toolkit reads them in a UTC session, but the classic course runs its
-- JVM and its MySQL session in +08:00, and its unchanged MyBatis mappers (queryById, queryByIdWithSeckill,
-- reduceNumber(killTime)) then saw every time 8 hours off: an open sale looked ended. A TIMESTAMP is an instant:
-- the server stores UTC and converts to and from the session's zone, so a +08:00 session reads +08:00 times and
-- a UTC session reads UTC, both right.
--
-- The classic TIMESTAMP trap does not apply: on servers with explicit_defaults_for_timestamp=OFF (MySQL 5.7,
-- MariaDB before 10.10) only a TIMESTAMP column declared without an explicit DEFAULT silently becomes
-- `DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP`. Every column below has an explicit DEFAULT and no
-- ON UPDATE, so a stock decrement never moves a sale's start.
--
-- The limit that follows: TIMESTAMP ends at 2038-01-19 03:14:07 UTC (MariaDB 11.5+ on 64-bit: 2106). The toolkit
-- refuses items that end later.
--
-- The session zone is UTC here, so the existing DATETIME values (UTC) convert to the same instants.

SET time_zone = '+00:00';

ALTER TABLE seckill
    MODIFY start_time  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) COMMENT 'sale opens, inclusive',
    MODIFY end_time    TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) COMMENT 'sale closes, exclusive',
    MODIFY create_time TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) COMMENT 'when the item was created';

ALTER TABLE success_killed
    MODIFY create_time TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) COMMENT 'when the seckill was decided';
