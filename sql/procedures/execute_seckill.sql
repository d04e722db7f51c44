-- execute_seckill: decide one seckill inside the server, in one round trip.
--
-- The classic signature, so existing callers (MyBatis mappers, CALL from SQL) work unchanged:
--
--   CALL execute_seckill(seckill_id, user_phone, kill_time, @result);
--
--   kill_time  when the seckill happens, in the session's time zone like any DATETIME a client sends;
--              NULL means the database clock (recommended: one clock for every app server).
--   @result     1 success
--               0 end: sold out, not started, ended, or no such item
--              -1 repeat: this user already has this item
--              -2 inner error: any SQL error; everything was rolled back
--
-- The sale window is half-open: start_time <= kill_time < end_time, compared in UTC.
--
-- Why this order: the success row is a row nobody else wants, so it is written first; the hot stock row is
-- locked last, by the UPDATE, and released by the COMMIT right after it. All of it runs inside the server, so
-- the hot lock is held for one statement and a commit, never across a client round trip.
--
-- What it fixes over the classic procedure:
--   * Any SQL error (lock wait timeout 1205, deadlock 1213, anything) rolls back and answers -2. The classic
--     one had no handler: it aborted with its transaction open, and the next START TRANSACTION on that pooled
--     connection committed a success row for stock that was never taken.
--   * A plain INSERT with a handler for the duplicate key (1062), not INSERT IGNORE, which would also turn
--     real errors into warnings.
--   * A loser's success row is rolled back, so a sold-out loser who retries hears "end" again, not "repeat".
--
-- It starts its own transaction: called inside an open transaction, it commits that one first (as the
-- classic procedure did).

DROP PROCEDURE IF EXISTS execute_seckill;

DELIMITER $$

CREATE PROCEDURE execute_seckill(
    IN  v_seckill_id BIGINT,
    IN  v_phone      BIGINT,
    IN  v_kill_time  DATETIME(3),
    OUT r_result     INT
)
BEGIN
    DECLARE v_now       DATETIME(3) DEFAULT COALESCE(
        CONVERT_TZ(v_kill_time, @@session.time_zone, '+00:00'),
        UTC_TIMESTAMP(3)
    );
    DECLARE v_duplicate BOOLEAN DEFAULT FALSE;

    DECLARE EXIT HANDLER FOR SQLEXCEPTION
    BEGIN
        ROLLBACK;
        SET r_result = -2;
    END;
    -- More specific than SQLEXCEPTION, so it wins for a duplicate key and execution continues.
    DECLARE CONTINUE HANDLER FOR 1062 SET v_duplicate = TRUE;

    START TRANSACTION;

    INSERT INTO success_killed (seckill_id, user_phone, state, create_time)
    VALUES (v_seckill_id, v_phone, 0, v_now);

    IF v_duplicate THEN
        ROLLBACK;
        SET r_result = -1;
    ELSE
        UPDATE seckill
           SET number = number - 1
         WHERE seckill_id = v_seckill_id
           AND number > 0
           AND start_time <= v_now
           AND end_time > v_now;

        IF ROW_COUNT() = 1 THEN
            COMMIT;
            SET r_result = 1;
        ELSE
            ROLLBACK;
            SET r_result = 0;
        END IF;
    END IF;
END $$

DELIMITER ;
