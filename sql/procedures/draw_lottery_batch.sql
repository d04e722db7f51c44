-- draw_lottery_batch: decide many draws of one lottery campaign in one transaction, in one round trip.
--
--   CALL draw_lottery_batch(campaign_id, '[{"user": 1, "r": 123}, {"user": 2, "r": 4000000000}, ...]');
--
-- The draws are a JSON array in arrival order: a user id (a positive integer) and the random number r (an
-- integer in [0, 2^32), drawn by the caller so that a campaign can be replayed) each; anything else, or more than
-- 10,000 draws, fails the whole batch (45RB0, nothing written). r decides the user's first draw; a user's later
-- draws (draws_per_user > 1) use r_n = the first 32 bits of SHA2('<r>:<n>', 256) for their draw number n, so
-- each draw has its own number and a replay with the same r values decides the same.
-- Returns one result set, one row per draw in input order:
--   seq          the draw's position in the array, from 1
--   outcome      'won', 'no_prize', 'all_drawn', 'not_started', 'ended' or 'unknown_campaign'
--   repeat       1 when the user had used all their draws (before this call or earlier in it): outcome,
--                draw_id, tier_id and prize are then those of the user's last allowed draw (draw_no =
--                draws_per_user; with one draw per user, their first), and nothing was recorded
--   draw_id      the lottery_draw row, for 'won' and 'no_prize'
--   tier_id      the tier won, for 'won'
--   prize        the tier's name, for 'won'
--   prizes_left  the campaign's units left in every tier after the whole batch (NULL for an unknown campaign)
--
-- Order of precedence, for each draw:
--   unknown_campaign  no such campaign
--   not_started       NOW(3) < start_time
--   ended             NOW(3) >= end_time
--   repeat            the user has used all their draws_per_user draws
--   all_drawn         no tier had any stock when the batch began: NOT recorded (the user keeps the draw)
--   won / no_prize    the draw is recorded (draw_no = the user's next), decided by the wheel:
--
-- The wheel: total = blank_weight + the weights of all the campaign's tiers, empty or not. A draw lands on
-- slot = r * total DIV 2^32, in [0, total). The tiers occupy the slots in position order from 0, each as many
-- as its weight; the blank share comes LAST. Landing on the blank share is "no prize" even while stock remains.
-- Landing on a tier is decided for the batch as a set, in two rounds:
--   1. every tier gives its units to the draws that landed on it, in arrival order;
--   2. the draws that landed on a tier and got nothing (it ran empty) fall through: in arrival order they take
--      the units still left after round 1, in tier position order (the first overflowing draw the first tier's
--      first leftover unit, and so on); an overflowing draw for which no unit is left gets "no prize".
-- So with blank_weight 0 every draw wins while any unit is left: winners = min(prizes, eligible draws). Within
-- a batch that empties the campaign, the draws that find nothing left are recorded as "no prize"; from the next
-- batch on every draw is 'all_drawn' and not recorded. Each won unit takes one unit of its tier's stock (one
-- UPDATE of every tier touched) and writes one message_outbox row: topic 'lottery.prize', business_key the
-- draw id, payload {"draw_id", "campaign_id", "user_id", "tier_id", "prize"} (numbers as JSON numbers).
--
-- Locks and the clock: the campaign row first (FOR UPDATE): it serialises every batch of the campaign across app
-- instances, so the tiers' stock and the users' earlier draws are read exactly by plain reads. Then the clock is
-- read once (a batch that waited for the lock across end_time is ended). The transaction runs at READ
-- COMMITTED: plain reads see what was committed before them, and no gap locks are taken on lottery_draw. A user
-- drawing twice in one batch is decided twice, in order, as if alone (their second draw is a repeat when they
-- had one draw left). The UNIQUE key on (campaign_id, user_id, draw_no) is the last line of defence: a
-- duplicate fails the batch whole.
--
-- The batch is decided as a set, never a loop per draw: a MEMORY temporary table holds the batch
-- (lottery_draw_batch, private to the connection), filled from JSON_TABLE with a window function (the user's
-- occurrence number in the batch), completed by two set-based UPDATEs (what each draw is; where the wheel
-- lands), then one UPDATE ... ORDER BY seq LIMIT <units> per tier with stock for round 1 and, only when a tier
-- ran empty, per tier again for round 2, one multi-row INSERT of the draws, one of the messages, one UPDATE of
-- the tiers' stock. Loops run over the tiers (a handful), never over the draws. The new draws' ids follow from
-- LAST_INSERT_ID() when the auto-increment lock mode makes one statement's ids consecutive (checked), and are
-- looked up otherwise.
--
-- Errors: SQLSTATE '45RB0' means the batch was rolled back whole by this procedure (MYSQL_ERRNO is the original
-- code, MESSAGE_TEXT 'rolled back: <message>'); any other error may have come after the commit. The answer is
-- sent before the transaction ends, and the COMMIT is the last statement, outside the handler. Needs JSON_TABLE
-- and window functions: MariaDB 10.6+ or MySQL 8.0+. MySQL 8 differences: it refuses to open a TEMPORARY table
-- twice in one statement (this procedure never does); with enforce_gtid_consistency=ON, MySQL before 8.0.13
-- refuses CREATE and DROP TEMPORARY TABLE inside a transaction (the table is created before START TRANSACTION
-- but dropped inside it, so such servers need 8.0.13 or later); and it warns (1287) that the user variable set inside an UPDATE to number the new draws is deprecated. SET
-- TRANSACTION needs no transaction open when it is called (error 1568 otherwise, rolled back) and READ COMMITTED
-- a binlog_format other than STATEMENT.

DROP PROCEDURE IF EXISTS draw_lottery_batch;

DELIMITER $$

CREATE PROCEDURE draw_lottery_batch(
    IN v_campaign_id BIGINT,
    IN v_draws       MEDIUMTEXT
)
BEGIN
    decision: BEGIN
        DECLARE v_start          TIMESTAMP(3);
        DECLARE v_end            TIMESTAMP(3);
        DECLARE v_now            TIMESTAMP(3);
        DECLARE v_draws_per_user INT DEFAULT NULL;
        DECLARE v_blank_weight   INT;
        DECLARE v_status         VARCHAR(20);
        DECLARE v_total_weight   BIGINT;
        DECLARE v_stock_before   BIGINT;
        DECLARE v_prizes_left    BIGINT DEFAULT NULL;
        DECLARE v_invalid        INT;
        DECLARE v_tier_id        BIGINT;
        DECLARE v_tier_stock     INT;
        DECLARE v_units          INT;
        DECLARE v_overflowing    INT;
        DECLARE v_recorded       INT DEFAULT 0;
        DECLARE v_first_draw_id  BIGINT;
        DECLARE v_fast_ids       BOOLEAN DEFAULT FALSE;
        DECLARE v_matched        INT;
        DECLARE v_done           BOOLEAN DEFAULT FALSE;
        DECLARE v_errno          INT DEFAULT 0;
        DECLARE v_message        TEXT DEFAULT '';
        DECLARE tiers CURSOR FOR
            SELECT t.tier_id, t.stock
              FROM lottery_tier t
             WHERE t.campaign_id = v_campaign_id AND t.stock > 0
             ORDER BY t.position;
        DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_done = TRUE;
        DECLARE EXIT HANDLER FOR SQLEXCEPTION
        BEGIN
            GET DIAGNOSTICS CONDITION 1 v_errno = MYSQL_ERRNO, v_message = MESSAGE_TEXT;
            ROLLBACK;
            CALL raise_rolled_back(v_errno, v_message);
        END;

        -- 0. The input, whole, before anything is locked. Numbers are checked as text: JSON_TABLE converts
        --    "abc" or 1.5 to an integer silently.
        IF JSON_VALID(v_draws) IS NOT TRUE OR JSON_TYPE(v_draws) <> 'ARRAY' THEN
            SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'draw_lottery_batch: the draws must be a JSON array';
        END IF;
        IF JSON_LENGTH(v_draws) > 10000 THEN
            SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'draw_lottery_batch: at most 10000 draws per batch';
        END IF;
        SELECT COUNT(*) INTO v_invalid
          FROM JSON_TABLE(v_draws, '$[*]' COLUMNS (
                   user_text VARCHAR(40) PATH '$.user',
                   r_text    VARCHAR(40) PATH '$.r')) AS j
         WHERE j.user_text IS NULL OR NOT j.user_text REGEXP '^[1-9][0-9]{0,17}$'
            OR j.r_text IS NULL OR NOT j.r_text REGEXP '^(0|[1-9][0-9]{0,9})$'
            OR CAST(j.r_text AS UNSIGNED) > 4294967295;
        IF v_invalid > 0 THEN
            SET v_message = CONCAT('draw_lottery_batch: ', v_invalid, ' draw(s) without a positive integer "user"',
                                   ' or an integer "r" in [0, 4294967295]');
            SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = v_message;
        END IF;

        -- The batch, one row per draw. Created before the transaction (see the header about MySQL 8).
        DROP TEMPORARY TABLE IF EXISTS lottery_draw_batch;
        CREATE TEMPORARY TABLE lottery_draw_batch (
            seq         INT          NOT NULL,
            user_id     BIGINT       NOT NULL,
            r           BIGINT       NOT NULL,
            occurrence  INT          NOT NULL COMMENT 'the user''s requests in the batch so far, this one included',
            before_batch INT         NOT NULL COMMENT 'the user''s draws recorded before the batch',
            kind        VARCHAR(10)  NULL COMMENT 'draw, repeat or all_drawn',
            draw_no     INT          NULL COMMENT 'the draw recorded, or the one a repeat answers',
            landed_tier BIGINT       NULL COMMENT 'the tier the wheel landed on, NULL for blank',
            won_tier    BIGINT       NULL,
            draw_id     BIGINT       NULL,
            PRIMARY KEY (seq)
        ) ENGINE = MEMORY;

        SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
        START TRANSACTION;

        -- 1. The hot row first: from here on no other batch decides this campaign.
        SELECT start_time, end_time, draws_per_user, blank_weight
          INTO v_start, v_end, v_draws_per_user, v_blank_weight
          FROM lottery_campaign
         WHERE campaign_id = v_campaign_id
           FOR UPDATE;

        -- 2. One clock reading, now that the lock is held.
        SET v_now = NOW(3);

        SET v_status = CASE
            WHEN v_draws_per_user IS NULL THEN 'unknown_campaign'
            WHEN v_now < v_start THEN 'not_started'
            WHEN v_now >= v_end THEN 'ended'
            ELSE 'open'
        END;

        IF v_status = 'open' THEN
            SELECT COALESCE(SUM(weight), 0) + v_blank_weight, COALESCE(SUM(stock), 0)
              INTO v_total_weight, v_stock_before
              FROM lottery_tier
             WHERE campaign_id = v_campaign_id;

            -- 3. Each draw: how many draws its user had before, and its occurrence in the batch; then what it is
            --    (a draw to decide, a repeat, or all drawn), its draw number and its own r (a user's later draws
            --    get one derived from the r given); then where the wheel lands (the tier whose slots [lo, hi) hold
            --    r * total DIV 2^32; none for the blank share). Simple statements over the small batch table
            --    rather than one deeply nested SELECT: each level of a nested one is materialized, which costs
            --    more.
            INSERT INTO lottery_draw_batch (seq, user_id, r, occurrence, before_batch)
            SELECT j.seq, j.user_id, j.r,
                   ROW_NUMBER() OVER (PARTITION BY j.user_id ORDER BY j.seq),
                   (SELECT COALESCE(MAX(p.draw_no), 0)
                      FROM lottery_draw p
                     WHERE p.campaign_id = v_campaign_id AND p.user_id = j.user_id)
              FROM JSON_TABLE(v_draws, '$[*]' COLUMNS (
                       seq     FOR ORDINALITY,
                       user_id BIGINT PATH '$.user',
                       r       BIGINT PATH '$.r')) AS j;

            UPDATE lottery_draw_batch
               SET kind = CASE
                       WHEN before_batch >= v_draws_per_user THEN 'repeat'
                       WHEN v_stock_before = 0 THEN 'all_drawn'
                       WHEN before_batch + occurrence > v_draws_per_user THEN 'repeat'
                       ELSE 'draw'
                   END,
                   draw_no = LEAST(before_batch + occurrence, v_draws_per_user),
                   r = IF(before_batch + occurrence = 1, r,
                          CONV(LEFT(SHA2(CONCAT(r, ':', before_batch + occurrence), 256), 8), 16, 10));

            IF v_stock_before > 0 THEN
                UPDATE lottery_draw_batch b
                  JOIN (SELECT t.tier_id,
                               SUM(t.weight) OVER (ORDER BY t.position) - t.weight AS lo,
                               SUM(t.weight) OVER (ORDER BY t.position) AS hi
                          FROM lottery_tier t
                         WHERE t.campaign_id = v_campaign_id) AS w
                    ON b.r * v_total_weight DIV 4294967296 >= w.lo AND b.r * v_total_weight DIV 4294967296 < w.hi
                   SET b.landed_tier = w.tier_id
                 WHERE b.kind = 'draw';

                -- 4. Round 1: each tier's units to the draws that landed on it, in arrival order.
                SET v_done = FALSE;
                OPEN tiers;
                landed: LOOP
                    FETCH tiers INTO v_tier_id, v_tier_stock;
                    IF v_done THEN
                        LEAVE landed;
                    END IF;
                    UPDATE lottery_draw_batch
                       SET won_tier = v_tier_id
                     WHERE kind = 'draw' AND landed_tier = v_tier_id
                     ORDER BY seq
                     LIMIT v_tier_stock;
                END LOOP landed;
                CLOSE tiers;
            END IF;

            IF v_stock_before > 0 THEN
                -- 5. Round 2, only when a draw landed on a tier that ran empty: those draws take the units left,
                --    in arrival order, tier by tier in position order (a loop over the tiers, not the draws).
                SELECT COUNT(*) INTO v_overflowing
                  FROM lottery_draw_batch
                 WHERE kind = 'draw' AND landed_tier IS NOT NULL AND won_tier IS NULL;
                IF v_overflowing > 0 THEN
                    SET v_done = FALSE;
                    OPEN tiers;
                    fall_through: LOOP
                        FETCH tiers INTO v_tier_id, v_tier_stock;
                        IF v_done THEN
                            LEAVE fall_through;
                        END IF;
                        SELECT v_tier_stock - COUNT(*) INTO v_units
                          FROM lottery_draw_batch
                         WHERE won_tier = v_tier_id;
                        IF v_units > 0 THEN
                            UPDATE lottery_draw_batch
                               SET won_tier = v_tier_id
                             WHERE kind = 'draw' AND landed_tier IS NOT NULL AND won_tier IS NULL
                             ORDER BY seq
                             LIMIT v_units;
                        END IF;
                    END LOOP fall_through;
                    CLOSE tiers;
                END IF;

                -- 6. The draws, winners and losers, in arrival order.
                INSERT INTO lottery_draw (campaign_id, user_id, draw_no, tier_id, r, created_at)
                SELECT v_campaign_id, b.user_id, b.draw_no, b.won_tier, b.r, v_now
                  FROM lottery_draw_batch b
                 WHERE b.kind = 'draw'
                 ORDER BY b.seq;
                SET v_recorded = ROW_COUNT(), v_first_draw_id = LAST_INSERT_ID();
            END IF;

            -- 7. Every recorded draw's id, and what a repeat answers: the user's last allowed draw, recorded
            --    before or just now. With InnoDB's "consecutive" or "traditional" auto-increment lock modes, the
            --    ids of one INSERT ... SELECT are consecutive, in insertion order: they follow from the first,
            --    which saves a lookup per draw. The first and last are checked against the table (ids only grow
            --    within a statement, so matching ends prove the block); with the "interleaved" mode (MySQL 8's
            --    default, Galera's requirement) every id is looked up.
            SET v_fast_ids = v_recorded > 0 AND @@GLOBAL.innodb_autoinc_lock_mode < 2;
            IF v_fast_ids THEN
                -- A counter in a user variable numbers the rows in seq order (MySQL 8 warns that setting
                -- variables in expressions is deprecated, warning 1287, and still does it).
                SET @draw_lottery_batch_rank = -1;
                UPDATE lottery_draw_batch
                   SET draw_id = v_first_draw_id
                           + (@draw_lottery_batch_rank := @draw_lottery_batch_rank + 1)
                           * @@SESSION.auto_increment_increment
                 WHERE kind = 'draw'
                 ORDER BY seq;
                SELECT COUNT(*) INTO v_matched
                  FROM lottery_draw_batch b
                  JOIN lottery_draw d
                    ON d.draw_id = b.draw_id AND d.campaign_id = v_campaign_id AND d.user_id = b.user_id
                   AND d.draw_no = b.draw_no
                 WHERE b.kind = 'draw'
                   AND b.draw_id IN (v_first_draw_id,
                                     v_first_draw_id + (v_recorded - 1) * @@SESSION.auto_increment_increment);
                IF v_matched <> IF(v_recorded = 1, 1, 2) THEN
                    SIGNAL SQLSTATE '45000'
                        SET MESSAGE_TEXT = 'draw_lottery_batch: the new draws'' ids are not consecutive';
                END IF;
            END IF;
            UPDATE lottery_draw_batch b
              JOIN lottery_draw d
                ON d.campaign_id = v_campaign_id AND d.user_id = b.user_id AND d.draw_no = b.draw_no
               SET b.draw_id = d.draw_id, b.won_tier = d.tier_id
             WHERE b.kind = 'repeat' OR (b.kind = 'draw' AND NOT v_fast_ids);

            IF v_stock_before > 0 THEN
                -- 8. One prize message per win, in the same transaction as the draw. CAST: MariaDB writes a
                --    routine's variables into JSON as strings, and the gift service reads numbers.
                INSERT INTO message_outbox (topic, business_key, payload)
                SELECT 'lottery.prize', CAST(b.draw_id AS CHAR),
                       JSON_OBJECT('draw_id', CAST(b.draw_id AS SIGNED),
                                   'campaign_id', CAST(v_campaign_id AS SIGNED),
                                   'user_id', CAST(b.user_id AS SIGNED),
                                   'tier_id', CAST(b.won_tier AS SIGNED),
                                   'prize', t.name)
                  FROM lottery_draw_batch b
                  JOIN lottery_tier t ON t.tier_id = b.won_tier
                 WHERE b.kind = 'draw'
                 ORDER BY b.seq;

                -- 9. The units taken: one UPDATE for every tier touched.
                UPDATE lottery_tier t
                  JOIN (SELECT b.won_tier, COUNT(*) AS units
                          FROM lottery_draw_batch b
                         WHERE b.kind = 'draw' AND b.won_tier IS NOT NULL
                         GROUP BY b.won_tier) AS taken
                    ON t.tier_id = taken.won_tier
                   SET t.stock = t.stock - taken.units
                 WHERE t.campaign_id = v_campaign_id;
            END IF;

            SELECT COALESCE(SUM(stock), 0) INTO v_prizes_left FROM lottery_tier WHERE campaign_id = v_campaign_id;

            SELECT b.seq,
                   CASE
                       WHEN b.kind = 'all_drawn' THEN 'all_drawn'
                       WHEN b.won_tier IS NULL THEN 'no_prize'
                       ELSE 'won'
                   END AS outcome,
                   IF(b.kind = 'repeat', 1, 0) AS `repeat`,
                   b.draw_id,
                   b.won_tier AS tier_id,
                   t.name AS prize,
                   CAST(v_prizes_left AS SIGNED) AS prizes_left
              FROM lottery_draw_batch b
              LEFT JOIN lottery_tier t ON t.tier_id = b.won_tier
             ORDER BY b.seq;
        ELSE
            IF v_status <> 'unknown_campaign' THEN
                SELECT COALESCE(SUM(stock), 0) INTO v_prizes_left FROM lottery_tier WHERE campaign_id = v_campaign_id;
            END IF;
            SELECT j.seq, v_status AS outcome, 0 AS `repeat`, CAST(NULL AS SIGNED) AS draw_id,
                   CAST(NULL AS SIGNED) AS tier_id, CAST(NULL AS CHAR(120)) AS prize,
                   CAST(v_prizes_left AS SIGNED) AS prizes_left
              FROM JSON_TABLE(v_draws, '$[*]' COLUMNS (seq FOR ORDINALITY)) AS j
             ORDER BY j.seq;
        END IF;

        DROP TEMPORARY TABLE IF EXISTS lottery_draw_batch;
    END decision;

    -- Last, and outside the handler: an error from here on is not a proven rollback.
    COMMIT;
END $$

DELIMITER ;
