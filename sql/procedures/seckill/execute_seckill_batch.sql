-- execute_seckill_batch: decide many seckills for one item in one transaction, in one round trip.
--
--   CALL execute_seckill_batch(seckill_id, '[13800000001, 13800000002, ...]');
--
-- The phones are a JSON array in arrival order. Returns one row (then a one-row marker, phase 'committing', sent
-- before the COMMIT so the answer arrives while the commit is made durable):
--   status      'not_found', 'not_started', 'ended' or 'open': the item's window for the whole batch
--   won         how many of the batch got a unit
--   existing    JSON array of the batch's phones that already had this item before the batch
--   stock_left  the stock after the batch (NULL when not found)
--   kill_time   when the batch was decided, the create_time of every row it wrote
--
-- Who won is not listed, because it follows from the input. Every request gets the outcome it would have had
-- running alone through execute_seckill, in arrival order, with decide_seckill's order of precedence:
-- not_found for all; else a phone in `existing`, or already served earlier in the batch with a win, is a
-- repeat; else the window's status when not open; else units go first-come-first-served to the distinct fresh
-- phones, in order of first appearance, until `won` are taken, and everyone else is sold out.
--
-- Why batches: InnoDB holds the item's row lock until the commit is durable, so one item can take only as many
-- transactions per second as the disk can flush commits. One transaction for k seckills pays that price once:
-- a multi-row insert and one UPDATE of the stock by k.
--
-- Locks and the clock: the item row first, then the clock is read once (a batch that waited for the lock across
-- end_time is ended, not sold). Holding the item row serialises every batch and every single seckill of the
-- item, so a plain consistent read of the existing rows is exact; a locking read there would take next-key
-- locks on success_killed whose gaps reach into the next item's keys. The existing phones are gathered row by
-- row into a JSON array (not with JSON_ARRAYAGG or GROUP_CONCAT, which group_concat_max_len would cut short).
--
-- Errors: SQLSTATE '45RB0' means the batch was rolled back whole by this procedure (MYSQL_ERRNO is the original
-- code); any other error may have come after the commit. The answer row is sent before the transaction ends,
-- and the COMMIT is the last statement that writes, outside the handler. Needs JSON_TABLE and window functions:
-- MariaDB 10.6+ or MySQL 8.0+.
--
-- After the COMMIT or ROLLBACK, a last result set, one row: gtid, the commit's GTID when the batch sold
-- (@@last_gtid; empty without a binary log), empty when it wrote nothing, so a later read on a replica can wait
-- for the wins. On MySQL, which has no @@last_gtid, the GTID is empty (see answer_commit_gtid.sql).

DROP PROCEDURE IF EXISTS execute_seckill_batch;

DELIMITER $$

CREATE PROCEDURE execute_seckill_batch(
    IN v_seckill_id BIGINT,
    IN v_phones     MEDIUMTEXT
)
BEGIN
    DECLARE v_won INT DEFAULT 0;

    decision: BEGIN
        DECLARE v_stock    INT DEFAULT NULL;
        DECLARE v_start    TIMESTAMP(3);
        DECLARE v_end      TIMESTAMP(3);
        DECLARE v_now      TIMESTAMP(3);
        DECLARE v_status   VARCHAR(16);
        DECLARE v_existing LONGTEXT DEFAULT '[]';
        DECLARE v_phone    BIGINT;
        DECLARE v_done     BOOLEAN DEFAULT FALSE;
        DECLARE v_errno    INT DEFAULT 0;
        DECLARE v_message  TEXT DEFAULT '';
        DECLARE existing_rows CURSOR FOR
            SELECT DISTINCT s.user_phone
              FROM JSON_TABLE(v_phones, '$[*]' COLUMNS (phone BIGINT PATH '$')) AS j
              JOIN success_killed s ON s.seckill_id = v_seckill_id AND s.user_phone = j.phone;
        DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_done = TRUE;
        DECLARE EXIT HANDLER FOR SQLEXCEPTION
        BEGIN
            GET DIAGNOSTICS CONDITION 1 v_errno = MYSQL_ERRNO, v_message = MESSAGE_TEXT;
            ROLLBACK;
            CALL raise_rolled_back(v_errno, v_message);
        END;

        START TRANSACTION;

        -- 1. The hot row first: from here on nobody else can commit a success row for this item.
        SELECT number, start_time, end_time
          INTO v_stock, v_start, v_end
          FROM seckill
         WHERE seckill_id = v_seckill_id
           FOR UPDATE;

        -- 2. One clock reading, now that the lock is held.
        SET v_now = NOW(3);

        IF v_stock IS NULL THEN
            SET v_status = 'not_found';
        ELSE
            SET v_status = CASE
                WHEN v_now < v_start THEN 'not_started'
                WHEN v_now >= v_end THEN 'ended'
                ELSE 'open'
            END;

            -- 3. The batch's users who already have the item (a consistent read, no locks), in any window:
            --    a buyer who has the item hears "repeat" whatever the window says.
            SET v_done = FALSE;
            OPEN existing_rows;
            gather: LOOP
                FETCH existing_rows INTO v_phone;
                IF v_done THEN
                    LEAVE gather;
                END IF;
                SET v_existing = JSON_ARRAY_APPEND(v_existing, '$', v_phone);
            END LOOP gather;
            CLOSE existing_rows;
        END IF;

        IF v_status = 'open' AND v_stock > 0 THEN
            -- 4. New distinct users ranked by first appearance; the first `v_stock` of them win.
            INSERT INTO success_killed (seckill_id, user_phone, state, create_time)
            SELECT v_seckill_id, ranked.phone, 0, v_now
              FROM (SELECT fresh.phone, ROW_NUMBER() OVER (ORDER BY fresh.first_seen) AS arrival
                      FROM (SELECT j.phone, MIN(j.seq) AS first_seen
                              FROM JSON_TABLE(v_phones, '$[*]'
                                       COLUMNS (seq FOR ORDINALITY, phone BIGINT PATH '$')) AS j
                             GROUP BY j.phone) AS fresh
                      LEFT JOIN JSON_TABLE(v_existing, '$[*]' COLUMNS (phone BIGINT PATH '$')) AS e
                        ON e.phone = fresh.phone
                     WHERE e.phone IS NULL) AS ranked
             WHERE ranked.arrival <= v_stock;
            SET v_won = ROW_COUNT();

            -- 5. One decrement for the whole batch.
            UPDATE seckill SET number = number - v_won WHERE seckill_id = v_seckill_id;
        END IF;

        SELECT v_status AS status,
               v_won AS won,
               v_existing AS existing,
               v_stock - v_won AS stock_left,
               v_now AS kill_time;

        -- The answer is out; a result set that begins makes the server flush it now, so the client learns the
        -- batch is decided and can send the next one while this COMMIT is made durable (the row locks are
        -- released before the log is flushed). Its one row follows the COMMIT.
        SELECT 'committing' AS phase;
    END decision;

    -- Last, and outside the handler: an error from here on is not a proven rollback.
    IF v_won > 0 THEN
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
