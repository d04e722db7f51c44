-- execute_seckill_batch: decide many seckills for one item in one transaction, in one round trip.
--
--   CALL execute_seckill_batch(seckill_id, '[13800000001, 13800000002, ...]');
--
-- The phones are a JSON array in arrival order. Returns one row:
--   status      'open', or for the whole batch 'not_found', 'not_started', 'ended'
--   won         how many of the batch got a unit (0 unless open)
--   existing    JSON array of the batch's phones that already had this item before the batch (or NULL)
--   stock_left  the stock after the batch (NULL when not found)
--   kill_time   when the batch was decided (UTC), the create_time of every row it wrote
--
-- Who won is not listed, because it follows from the input: units go first-come-first-served to the distinct
-- phones that do not already have the item, in order of first appearance, until `won` are taken. The caller
-- derives every request's outcome from that rule (a later duplicate of a winner is a repeat, of a loser sold
-- out), exactly as if the requests had run one by one through execute_seckill.
--
-- Why batches: InnoDB holds the item's row lock until the commit is durable, so one item can take only as many
-- transactions per second as the disk can flush commits. One transaction for k seckills pays that price once:
-- a multi-row insert and one UPDATE of the stock by k.
--
-- Locks: the item row first, then nothing else is read with a lock. Holding the item row serialises every
-- batch and every classic seckill of the item that could commit a success row, so a plain consistent read of
-- the existing rows is exact. A locking read there would take next-key locks on success_killed, whose gaps run
-- into the next item's keys and would stall other items' inserts behind a hot one. The one case left: the same
-- user in a batch and, at the same moment, in a classic CALL whose insert is not yet committed; InnoDB breaks
-- that deadlock by rolling one of the two back, which answers inner error and writes nothing.
--
-- Any SQL error rolls the whole batch back and is raised again to the caller (RESIGNAL): nothing half-applied.
-- Needs JSON_TABLE and window functions: MariaDB 10.6+ or MySQL 8.0+.

DROP PROCEDURE IF EXISTS execute_seckill_batch;

DELIMITER $$

CREATE PROCEDURE execute_seckill_batch(
    IN v_seckill_id BIGINT,
    IN v_phones     MEDIUMTEXT
)
BEGIN
    DECLARE v_now      DATETIME(3) DEFAULT UTC_TIMESTAMP(3);
    DECLARE v_stock    INT DEFAULT NULL;
    DECLARE v_start    DATETIME(3);
    DECLARE v_end      DATETIME(3);
    DECLARE v_existing MEDIUMTEXT DEFAULT NULL;
    DECLARE v_won      INT DEFAULT 0;
    DECLARE v_status   VARCHAR(16);

    DECLARE EXIT HANDLER FOR SQLEXCEPTION
    BEGIN
        ROLLBACK;
        RESIGNAL;
    END;

    START TRANSACTION;

    -- 1. The hot row first: from here on nobody else can commit a success row for this item.
    SELECT number, start_time, end_time
      INTO v_stock, v_start, v_end
      FROM seckill
     WHERE seckill_id = v_seckill_id
       FOR UPDATE;

    SET v_status = CASE
        WHEN v_stock IS NULL THEN 'not_found'
        WHEN v_now < v_start THEN 'not_started'
        WHEN v_now >= v_end THEN 'ended'
        ELSE 'open'
    END;

    -- 2. The batch's users who already have the item (a consistent read, no locks).
    IF v_status = 'open' THEN
        SELECT JSON_ARRAYAGG(s.user_phone)
          INTO v_existing
          FROM JSON_TABLE(v_phones, '$[*]' COLUMNS (phone BIGINT PATH '$')) AS j
          JOIN success_killed s ON s.seckill_id = v_seckill_id AND s.user_phone = j.phone;
    END IF;

    IF v_status = 'open' AND v_stock > 0 THEN
        -- 3. New distinct users ranked by first appearance; the first `v_stock` of them win.
        INSERT INTO success_killed (seckill_id, user_phone, state, create_time)
        SELECT v_seckill_id, ranked.phone, 0, v_now
          FROM (SELECT fresh.phone, ROW_NUMBER() OVER (ORDER BY fresh.first_seen) AS arrival
                  FROM (SELECT j.phone, MIN(j.seq) AS first_seen
                          FROM JSON_TABLE(v_phones, '$[*]' COLUMNS (seq FOR ORDINALITY, phone BIGINT PATH '$')) AS j
                         GROUP BY j.phone) AS fresh
                  LEFT JOIN JSON_TABLE(COALESCE(v_existing, '[]'), '$[*]' COLUMNS (phone BIGINT PATH '$')) AS e
                    ON e.phone = fresh.phone
                 WHERE e.phone IS NULL) AS ranked
         WHERE ranked.arrival <= v_stock;
        SET v_won = ROW_COUNT();

        -- 4. One decrement for the whole batch, then the commit releases the hot row.
        UPDATE seckill SET number = number - v_won WHERE seckill_id = v_seckill_id;
        COMMIT;
    ELSE
        ROLLBACK;
    END IF;

    SELECT v_status AS status, v_won AS won, v_existing AS existing, v_stock - v_won AS stock_left, v_now AS kill_time;
END $$

DELIMITER ;
