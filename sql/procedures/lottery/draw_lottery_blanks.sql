-- draw_lottery_blanks: decide a batch of first draws that all land on the wheel's blank share, under a shared
-- lock on the campaign, beside other such batches.
--
--   CALL draw_lottery_blanks(campaign_id, '[1,2,...]');
--
-- A draw that lands on the blank share is "no prize" whatever the stock (see draw_lottery_batch.sql): it takes
-- nothing and competes with no other draw. So batches of blanks take the campaign's row in share mode: they are
-- decided side by side, on as many connections and cores as there are, and wait only while a batch of draws that
-- may win holds the row exclusively (draw_lottery_batch reads the users' earlier draws exactly because no other
-- batch writes draws of the campaign meanwhile). The client sorts draws by where they land (the wheel never
-- changes once a campaign is created) from its own copy of the seed; this procedure derives every draw's number
-- again, as draw_lottery_batch does, and records the draws with no batch (opens_batch NULL): they met no stock.
--
-- The contract is draw_lottery_batch's, answer included: this procedure is a short way to the same decisions,
-- and hands the batch to draw_lottery_batch whole whenever it is not the common case: input not in the compact
-- form this toolkit writes, an unknown, closed or all-drawn campaign, one with more than one draw per user, the
-- "interleaved" auto-increment lock mode, a draw that does not land on the blank share, and (once its own attempt
-- is rolled back) a user who drew before or twice in the batch. Otherwise it answers draw_lottery_batch's
-- one-row answer of a batch of first draws: every tier 0 (no prize), the prizes left as read, no prize names.
--
-- Reads: the campaign and its seed in share mode, then its tiers by plain reads at READ COMMITTED: the window, the wheel, and
-- whether any stock is left (no batch can take stock while the shared lock is held). Writes: the draws (INSERT
-- IGNORE: a user who drew before collides with the UNIQUE key and is skipped, which sends the batch to
-- draw_lottery_batch), and the campaign's tally, in the row of this connection's shard. Locks: the campaign's row
-- shared, the new draws' index entries and the tally row. Two batches of blanks with the same users can wait for
-- each other on the UNIQUE key in opposite orders: InnoDB rolls one back as a deadlock (proven, nothing written),
-- and the client sends it again.
--
-- Errors: as draw_lottery_batch's (SQLSTATE '45RB0': rolled back whole, nothing written). The answer is sent
-- before the COMMIT; after it, the commit's GTID (answer_commit_gtid.sql).

DROP PROCEDURE IF EXISTS draw_lottery_blanks;

DELIMITER $$

CREATE PROCEDURE draw_lottery_blanks(
    IN v_campaign_id BIGINT,
    IN v_draws       MEDIUMTEXT
)
BEGIN
    DECLARE v_blanks BOOLEAN DEFAULT FALSE;

    decision: BEGIN
        DECLARE v_start          TIMESTAMP(3);
        DECLARE v_end            TIMESTAMP(3);
        DECLARE v_now            TIMESTAMP(3);
        DECLARE v_draws_per_user INT DEFAULT NULL;
        DECLARE v_blank_weight   INT;
        DECLARE v_seed           CHAR(64) DEFAULT NULL;
        DECLARE v_tier_weight    BIGINT;
        DECLARE v_total_weight   BIGINT;
        DECLARE v_stock          BIGINT;
        DECLARE v_batch_size     INT;
        DECLARE v_recorded       INT DEFAULT 0;
        DECLARE v_first_draw_id  BIGINT;
        DECLARE v_increment      BIGINT;
        DECLARE v_matched        INT;
        DECLARE v_compact        BOOLEAN DEFAULT FALSE;
        DECLARE v_errno          INT DEFAULT 0;
        DECLARE v_message        TEXT DEFAULT '';
        DECLARE EXIT HANDLER FOR SQLEXCEPTION
        BEGIN
            GET DIAGNOSTICS CONDITION 1 v_errno = MYSQL_ERRNO, v_message = MESSAGE_TEXT;
            ROLLBACK;
            CALL raise_rolled_back(v_errno, v_message);
        END;

        -- The compact form (lottery_draws_compact.sql); anything else is draw_lottery_batch's to judge.
        CALL lottery_draws_compact(v_draws, v_compact);
        IF NOT v_compact THEN
            LEAVE decision;
        END IF;

        SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
        START TRANSACTION;

        -- The campaign and its seed in share mode (MySQL 8 also reads LOCK IN SHARE MODE as FOR SHARE), then
        -- its wheel; the clock once, with the lock held.
        SELECT c.start_time, c.end_time, c.draws_per_user, c.blank_weight, s.seed
          INTO v_start, v_end, v_draws_per_user, v_blank_weight, v_seed
          FROM lottery_campaign c
          LEFT JOIN lottery_campaign_seed s ON s.campaign_id = c.campaign_id
         WHERE c.campaign_id = v_campaign_id
          LOCK IN SHARE MODE;
        SET v_now = NOW(3);
        SELECT COALESCE(SUM(weight), 0), COALESCE(SUM(stock), 0)
          INTO v_tier_weight, v_stock
          FROM lottery_tier
         WHERE campaign_id = v_campaign_id;
        SET v_total_weight = v_tier_weight + v_blank_weight;

        IF v_draws_per_user = 1 AND v_seed IS NOT NULL AND v_now >= v_start AND v_now < v_end AND v_stock > 0
           AND @@GLOBAL.innodb_autoinc_lock_mode < 2 THEN
            -- Every draw recorded as its user's first, "no prize", when it lands on the blank share (the slots
            -- from the tiers' total weight on); then all of them recorded, in one block of consecutive ids (as
            -- in draw_lottery_batch), or the batch is not this procedure's. Each draw's number is hashed once:
            -- the LIMIT keeps the derived table from being merged (see draw_lottery_batch.sql).
            SET v_batch_size = LENGTH(v_draws) - LENGTH(REPLACE(v_draws, ',', '')) + 1;
            SET v_increment = @@SESSION.auto_increment_increment;
            INSERT IGNORE INTO lottery_draw (campaign_id, user_id, draw_no, tier_id, r, created_at)
            SELECT v_campaign_id, j.user_id, 1, NULL, j.r, v_now
              FROM (SELECT i.seq, i.user_id,
                           CAST(CONV(LEFT(SHA2(CONCAT(v_seed, ':', v_campaign_id, ':', i.user_id, ':1'), 256), 8),
                                     16, 10) AS SIGNED) AS r
                      FROM JSON_TABLE(v_draws, '$[*]' COLUMNS (
                               seq     FOR ORDINALITY,
                               user_id BIGINT PATH '$')) AS i
                     LIMIT 10000) AS j
             WHERE j.r * v_total_weight DIV 4294967296 >= v_tier_weight
             ORDER BY j.seq;
            SET v_recorded = ROW_COUNT(), v_first_draw_id = LAST_INSERT_ID();
            IF v_recorded = v_batch_size THEN
                SELECT COUNT(*) INTO v_matched
                  FROM lottery_draw
                 WHERE campaign_id = v_campaign_id
                   AND draw_id BETWEEN v_first_draw_id AND v_first_draw_id + (v_recorded - 1) * v_increment;
                SET v_blanks = v_matched = v_recorded;
            END IF;
        END IF;
        IF NOT v_blanks THEN
            ROLLBACK;
            LEAVE decision;
        END IF;

        INSERT INTO lottery_draw_tally (campaign_id, shard, draws)
        VALUES (v_campaign_id, CONNECTION_ID() % 16, v_recorded)
            ON DUPLICATE KEY UPDATE draws = draws + v_recorded;

        -- draw_lottery_batch's one-row answer: every draw new, none won.
        SELECT CAST(v_first_draw_id AS SIGNED) AS first_draw_id,
               CAST(v_increment AS SIGNED) AS draw_increment,
               CAST(v_stock AS SIGNED) AS prizes_left,
               CONCAT(REPEAT('0,', v_recorded - 1), '0') AS tiers,
               '{}' AS prizes;

        -- As in draw_lottery_batch: the answer is flushed now, while the COMMIT is made durable.
        SELECT 'committing' AS phase;
    END decision;

    IF v_blanks THEN
        -- Last, and outside the handler: an error from here on is not a proven rollback.
        COMMIT;
        -- The commit's GTID, for reads that must see it on a replica.
        CALL answer_commit_gtid();
    ELSE
        -- Nothing was written: the batch is draw_lottery_batch's, answer, errors and all.
        CALL draw_lottery_batch(v_campaign_id, v_draws);
    END IF;
END $$

DELIMITER ;
