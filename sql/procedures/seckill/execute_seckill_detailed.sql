-- execute_seckill_detailed: execute_seckill, answered as one row that tells every outcome apart, and with
-- errors a client can trust.
--
--   CALL execute_seckill_detailed(seckill_id, user_phone, kill_time);
--
-- Returns one row (result, reason, kill_time, stock_left), the OUT parameters of decide_seckill (see its file
-- for the rules): result is the classic code (1, 0, -1), reason one of 'success', 'repeat', 'not_found',
-- 'not_started', 'ended', 'sold_out'; kill_time the instant of a success; stock_left the stock after it.
--
-- Errors say whether anything was written:
--   SQLSTATE '45RB0'  the decision failed and this procedure rolled its transaction back itself: nothing was
--                     written. MYSQL_ERRNO is the original error's code, MESSAGE_TEXT 'rolled back: <message>'.
--   anything else     no such proof: the call may or may not have committed (a connection lost, a KILL, an
--                     error from the COMMIT). Ask success_killed.
--
-- The answer row is sent before the transaction ends, and the COMMIT is the last statement that writes and lies
-- outside the handler: a client trusts the row only when the CALL as a whole succeeded.
--
-- After the COMMIT or ROLLBACK, a last result set, one row: gtid, the commit's GTID for a success
-- (@@last_gtid; empty without a binary log), empty when nothing was written, so a later read on a replica can
-- wait for the success. On MySQL, which has no @@last_gtid, the GTID is empty (see
-- answer_commit_gtid.sql). The classic execute_seckill is unchanged.
--
-- It ends in a SELECT rather than OUT parameters so that a client gets the answer from one text-protocol
-- statement: one round trip, no prepared statement, no session variables.

DROP PROCEDURE IF EXISTS execute_seckill_detailed;

DELIMITER $$

CREATE PROCEDURE execute_seckill_detailed(
    IN v_seckill_id BIGINT,
    IN v_phone      BIGINT,
    IN v_kill_time  TIMESTAMP(3)
)
BEGIN
    DECLARE v_result     INT;
    DECLARE v_reason     VARCHAR(16);
    DECLARE v_at         TIMESTAMP(3);
    DECLARE v_stock_left INT;

    decision: BEGIN
        DECLARE v_errno   INT DEFAULT 0;
        DECLARE v_message TEXT DEFAULT '';
        DECLARE EXIT HANDLER FOR SQLEXCEPTION
        BEGIN
            GET DIAGNOSTICS CONDITION 1 v_errno = MYSQL_ERRNO, v_message = MESSAGE_TEXT;
            ROLLBACK;
            CALL raise_rolled_back(v_errno, v_message);
        END;

        START TRANSACTION;
        CALL decide_seckill(v_seckill_id, v_phone, v_kill_time, v_result, v_reason, v_at, v_stock_left);
        SELECT v_result AS result, v_reason AS reason, v_at AS kill_time, v_stock_left AS stock_left;
    END decision;

    -- Last, and outside the handler: an error from here on is not a proven rollback.
    IF v_result = 1 THEN
        COMMIT;
        -- The commit's GTID, for reads that must see it on a replica.
        CALL answer_commit_gtid();
    ELSE
        ROLLBACK;
        -- Nothing written, nothing to wait for (@@last_gtid would be an earlier transaction's).
        SELECT '' AS gtid;
    END IF;
END $$

DELIMITER ;
