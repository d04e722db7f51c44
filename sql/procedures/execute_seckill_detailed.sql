-- execute_seckill_detailed: execute_seckill, answered as one row that tells every outcome apart.
--
--   CALL execute_seckill_detailed(seckill_id, user_phone, kill_time);
--
-- Returns one row (result, reason, kill_time):
--   result     the classic code of execute_seckill (1, 0, -1, -2)
--   reason     'success', 'repeat', 'inner_error', or for result 0: 'sold_out', 'not_started', 'ended',
--              'not_found'
--   kill_time  for 'success' and 'repeat': when the user's seckill was recorded (UTC); otherwise NULL
--
-- The decision is execute_seckill's own, so classic SQL callers and the toolkit can never disagree. The reason
-- for a 0 is read afterwards without locks: it explains the answer, it does not change it. It ends in a SELECT
-- rather than OUT parameters so that a client gets the answer from one text-protocol statement: one round trip,
-- no prepared statement, no session variables.

DROP PROCEDURE IF EXISTS execute_seckill_detailed;

DELIMITER $$

CREATE PROCEDURE execute_seckill_detailed(
    IN v_seckill_id BIGINT,
    IN v_phone      BIGINT,
    IN v_kill_time  DATETIME(3)
)
BEGIN
    DECLARE v_result INT;
    DECLARE v_reason VARCHAR(16);
    DECLARE v_at     DATETIME(3);

    CALL execute_seckill(v_seckill_id, v_phone, v_kill_time, v_result);

    IF v_result IN (1, -1) THEN
        SET v_reason = IF(v_result = 1, 'success', 'repeat');
        SELECT create_time INTO v_at
          FROM success_killed
         WHERE seckill_id = v_seckill_id AND user_phone = v_phone;
    ELSEIF v_result = 0 THEN
        SET v_at = COALESCE(CONVERT_TZ(v_kill_time, @@session.time_zone, '+00:00'), UTC_TIMESTAMP(3));
        SET v_reason = 'not_found';
        SELECT CASE
                   WHEN v_at < start_time THEN 'not_started'
                   WHEN v_at >= end_time THEN 'ended'
                   ELSE 'sold_out'
               END
          INTO v_reason
          FROM seckill
         WHERE seckill_id = v_seckill_id;
        SET v_at = NULL;
    ELSE
        SET v_reason = 'inner_error';
    END IF;

    SELECT v_result AS result, v_reason AS reason, v_at AS kill_time;
END $$

DELIMITER ;
