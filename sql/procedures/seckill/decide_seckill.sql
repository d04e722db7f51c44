-- decide_seckill: the decision every single-buyer seckill path shares (execute_seckill for classic callers,
-- execute_seckill_detailed for the toolkit), so that they can never disagree.
--
--   CALL decide_seckill(seckill_id, user_phone, kill_time, @result, @reason, @kill_time, @stock_left);
--
-- It runs inside the caller's open transaction and leaves it open: the caller reports the answer first and ends
-- the transaction last (COMMIT on success, ROLLBACK otherwise), so that nothing that can fail runs after a
-- COMMIT. It has no handler of its own: an SQL error goes to the caller's.
--
--   kill_time   NULL: the database's clock, read once the item's row lock is held (recommended). A classic
--               caller's explicit time is kept, read in its session's time zone like any TIMESTAMP.
--   result      the classic code: 1 success, 0 end, -1 repeat
--   reason      the outcome, in this order of precedence (execute_seckill_batch applies the same order to every
--               request of a batch):
--                 not_found    no item has this id                     result 0
--                 repeat       the buyer already has this item         result -1
--                 not_started  now < start_time                        result 0
--                 ended        now >= end_time                         result 0
--                 sold_out     no stock left                           result 0
--                 success      one unit taken, the buyer's row written result 1
--   kill_time   for success: the instant of the decision, also the row's create_time; otherwise NULL
--   stock_left  the item's stock after the decision (NULL when not found)
--
-- Why the item row is locked first: the window and the stock are judged at the moment the decision is taken,
-- with one clock reading after the lock is granted. Judged when the CALL started (the classic procedure's
-- UPDATE ... WHERE start_time <= now), a call that waited for the lock across end_time still sold. Holding the
-- item row also serialises every writer of this item's success rows that goes through these procedures, so
-- the plain (non-locking) read of the buyer's row is exact; a locking read would take next-key locks whose
-- gaps reach into the next item's keys and stall other items' inserts. The hot lock is still held only for a
-- few statements inside the server, never across a client round trip.

DROP PROCEDURE IF EXISTS decide_seckill;

DELIMITER $$

CREATE PROCEDURE decide_seckill(
    IN  v_seckill_id BIGINT,
    IN  v_phone      BIGINT,
    IN  v_kill_time  TIMESTAMP(3),
    OUT r_result     INT,
    OUT r_reason     VARCHAR(16),
    OUT r_kill_time  TIMESTAMP(3),
    OUT r_stock_left INT
)
BEGIN
    DECLARE v_stock     INT DEFAULT NULL;
    DECLARE v_start     TIMESTAMP(3);
    DECLARE v_end       TIMESTAMP(3);
    DECLARE v_now       TIMESTAMP(3);
    DECLARE v_rows      INT DEFAULT 0;
    DECLARE v_duplicate BOOLEAN DEFAULT FALSE;
    -- A row committed by a client that inserts before it locks the item (the classic Java path) can still
    -- appear between the read below and the insert: that is a repeat too.
    DECLARE CONTINUE HANDLER FOR 1062 SET v_duplicate = TRUE;

    SET r_result = 0, r_reason = NULL, r_kill_time = NULL, r_stock_left = NULL;

    SELECT number, start_time, end_time
      INTO v_stock, v_start, v_end
      FROM seckill
     WHERE seckill_id = v_seckill_id
       FOR UPDATE;

    SET v_now = COALESCE(v_kill_time, NOW(3));
    SET r_stock_left = v_stock;

    IF v_stock IS NULL THEN
        SET r_reason = 'not_found';
    ELSE
        SELECT COUNT(*)
          INTO v_rows
          FROM success_killed
         WHERE seckill_id = v_seckill_id AND user_phone = v_phone;

        IF v_rows > 0 THEN
            SET r_result = -1, r_reason = 'repeat';
        ELSEIF v_now < v_start THEN
            SET r_reason = 'not_started';
        ELSEIF v_now >= v_end THEN
            SET r_reason = 'ended';
        ELSEIF v_stock <= 0 THEN
            SET r_reason = 'sold_out';
        ELSE
            INSERT INTO success_killed (seckill_id, user_phone, state, create_time)
            VALUES (v_seckill_id, v_phone, 0, v_now);
            IF v_duplicate THEN
                SET r_result = -1, r_reason = 'repeat';
            ELSE
                UPDATE seckill SET number = number - 1 WHERE seckill_id = v_seckill_id;
                SET r_result = 1, r_reason = 'success', r_kill_time = v_now, r_stock_left = v_stock - 1;
            END IF;
        END IF;
    END IF;
END $$

DELIMITER ;
