-- execute_seckill: decide one seckill inside the server, in one round trip.
--
-- The classic signature, so existing callers (MyBatis mappers, CALL from SQL) work unchanged:
--
--   CALL execute_seckill(seckill_id, user_phone, kill_time, @result);
--
--   kill_time  when the seckill happens, in the session's time zone like any TIMESTAMP a client sends;
--              NULL means the database's clock when the decision is taken (recommended: one clock for every
--              app server, and no judging a sale by when a call started waiting)
--   @result     1 success
--               0 end: sold out, not started, ended, or no such item
--              -1 repeat: this user already has this item
--              -2 inner error: an SQL error during the decision; everything was rolled back
--
-- The decision is decide_seckill's (see its file for the rules and the order of precedence). The sale window is
-- half-open: start_time <= kill_time < end_time.
--
-- What it fixes over the classic procedure:
--   * Any SQL error during the decision (lock wait timeout 1205, deadlock 1213, anything) rolls back and answers
--     -2. The classic one had no handler: it aborted with its transaction open, and the next START TRANSACTION
--     on that pooled connection committed a success row for stock that was never taken.
--   * The handler covers the decision and never the COMMIT: an error from the COMMIT on is raised to the caller
--     as it is, because the transaction may have committed and -2 would then be a lie.
--   * A loser writes nothing, so a sold-out loser who retries hears "end" again, not "repeat".
--
-- It starts its own transaction: called inside an open transaction, it commits that one first (as the classic
-- procedure did).

DROP PROCEDURE IF EXISTS execute_seckill;

DELIMITER $$

CREATE PROCEDURE execute_seckill(
    IN  v_seckill_id BIGINT,
    IN  v_phone      BIGINT,
    IN  v_kill_time  TIMESTAMP(3),
    OUT r_result     INT
)
BEGIN
    DECLARE v_reason     VARCHAR(16);
    DECLARE v_at         TIMESTAMP(3);
    DECLARE v_stock_left INT;

    decision: BEGIN
        DECLARE EXIT HANDLER FOR SQLEXCEPTION
        BEGIN
            ROLLBACK;
            SET r_result = -2;
        END;

        START TRANSACTION;
        CALL decide_seckill(v_seckill_id, v_phone, v_kill_time, r_result, v_reason, v_at, v_stock_left);
    END decision;

    -- Last, and outside the handler: see above.
    IF r_result = 1 THEN
        COMMIT;
    ELSE
        ROLLBACK;
    END IF;
END $$

DELIMITER ;
