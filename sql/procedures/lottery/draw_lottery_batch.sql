-- draw_lottery_batch: decide many draws of one lottery campaign in one transaction, in one round trip.
--
--   CALL draw_lottery_batch(campaign_id, '[1, 2, 3, ...]');
--
-- The draws are a JSON array of user ids (positive integers) in arrival order; anything else, or more than
-- 10,000 draws, fails the whole batch (45RB0, nothing written). Each draw's random number is derived here, from
-- the campaign's secret seed (lottery_campaign_seed), never chosen by a caller:
--   r = the first 32 bits of SHA2('<seed>:<campaign_id>:<user_id>:<draw_no>', 256), an integer in [0, 2^32)
-- so that anyone holding the seed once it is revealed recomputes every draw (docs/lottery-verification.md).
-- Returns its answer (then a one-row marker, phase 'committing', sent before the COMMIT so the answer arrives
-- while the commit is made durable). A batch decided the short way (below: every draw its user's first) answers
-- in one row, its draws being new and their ids consecutive:
--   first_draw_id   the first draw's id; draw n (from 1) has first_draw_id + (n - 1) * draw_increment
--   draw_increment  the session's auto_increment_increment
--   prizes_left     as below
--   tiers           every draw's tier won, in input order, comma-separated: 0 for no prize
--   prizes          the campaign's tiers' names, as a JSON object {"<tier_id>": "<name>", ...}
-- Any other batch answers one row per draw in input order:
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
-- The batch is decided as a set, never a loop per draw, in as few statements as possible (each statement in a
-- procedure costs tens of microseconds, each row written a few, and the campaign's lock is held through them).
-- The common batch takes the short way: every draw is its user's first. Such a batch is decided straight into
-- lottery_draw by one INSERT IGNORE ... SELECT over the draws (users who drew before, or twice in the batch, collide with the
-- UNIQUE key and are skipped), then read back by id (one block of consecutive ids, checked) to confirm that
-- every draw was recorded; draws that landed on a tier run out get round 2 by an UPDATE of their rows; the
-- messages, the stock and the answer are written from those rows. A batch with a user who drew before (or
-- twice) is undone to a savepoint and decided the general way, with the same results: a MEMORY temporary table
-- (lottery_draw_batch, private to the connection) is filled by one INSERT ... SELECT that parses the draws once
-- and decides each one, round 1 of the wheel included (window functions: the user's occurrence in the batch,
-- each draw's place among those that landed on its tier, its place among the recorded draws); round 2 runs
-- only when a tier ran empty (one UPDATE ... ORDER BY seq LIMIT <units> per tier with units left: loops run
-- over the tiers, a handful, never over the draws); then one multi-row INSERT of the draws, one of the
-- messages, one UPDATE of the tiers' stock, and the answer. The new draws' ids follow from LAST_INSERT_ID() and
-- their place when the auto-increment lock mode makes one statement's ids consecutive (checked), and are looked
-- up otherwise. Either way, the draws recorded are added to the campaign's tally (lottery_draw_tally, one row
-- per batch), which is what a campaign's status shows instead of counting a million rows. Every recorded draw
-- says whether it opens its batch (opens_batch 1 on the first, 0 on the others): batches run one at a time, so
-- draw id order is commit order and a replay cuts it into batches there (docs/lottery-verification.md).
--
-- Errors: SQLSTATE '45RB0' means the batch was rolled back whole by this procedure (MYSQL_ERRNO is the original
-- code, MESSAGE_TEXT 'rolled back: <message>'); any other error may have come after the commit. The answer is
-- sent before the transaction ends, and the COMMIT is the last statement, outside the handler. Needs JSON_TABLE
-- and window functions: MariaDB 10.6+ or MySQL 8.0+. MySQL 8 differences: it refuses to open a TEMPORARY table
-- twice in one statement (this procedure never does); with enforce_gtid_consistency=ON, MySQL before 8.0.13
-- refuses CREATE TEMPORARY TABLE inside a transaction (the table is created before START TRANSACTION, and never
-- dropped); its regular expressions (ICU) take the input
-- check's pattern as MariaDB's (PCRE) do, which is untested there. SET TRANSACTION needs no transaction open when
-- it is called (error 1568 otherwise, rolled back) and READ COMMITTED a binlog_format other than STATEMENT.
--
-- After the COMMIT, a last result set, one row: gtid, the commit's GTID (@@last_gtid; empty without a binary
-- log), so a later read on a replica can wait for it. A batch that wrote nothing answers the session's previous
-- GTID: older, so waiting for it is harmless. On MySQL, which has no @@last_gtid, the GTID is empty
-- (see answer_commit_gtid.sql).

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
        DECLARE v_seed           CHAR(64) DEFAULT NULL;
        DECLARE v_status         VARCHAR(20);
        DECLARE v_total_weight   BIGINT;
        DECLARE v_stock_before   BIGINT;
        DECLARE v_prizes_left    BIGINT DEFAULT NULL;
        DECLARE v_invalid        INT;
        DECLARE v_tier_id        BIGINT;
        DECLARE v_tier_stock     INT;
        DECLARE v_units          INT;
        DECLARE v_overflowing    INT;
        DECLARE v_least_stock    BIGINT;
        DECLARE v_batch_size     INT;
        DECLARE v_recorded       INT DEFAULT 0;
        DECLARE v_won            INT DEFAULT 0;
        DECLARE v_increment      BIGINT;
        DECLARE v_first_draw_id  BIGINT;
        DECLARE v_fast_ids       BOOLEAN DEFAULT FALSE;
        DECLARE v_compact        BOOLEAN DEFAULT FALSE;
        DECLARE v_first_draws    BOOLEAN DEFAULT FALSE;
        DECLARE v_last_draw_id   BIGINT;
        DECLARE v_concat_limit   BIGINT;
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

        -- 0. The input, whole, before anything is locked: the compact form this toolkit's client writes is
        --    checked whole by one regular expression (lottery_draws_compact.sql); anything else is parsed and
        --    checked draw by draw, numbers as text: JSON_TABLE converts "abc" or 1.5 to an integer silently.
        CALL lottery_draws_compact(v_draws, v_compact);
        IF v_compact THEN
            SET v_invalid = 0;
        ELSE
            IF JSON_VALID(v_draws) IS NOT TRUE OR JSON_TYPE(v_draws) <> 'ARRAY' THEN
                SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'draw_lottery_batch: the draws must be a JSON array of user ids';
            END IF;
            IF JSON_LENGTH(v_draws) > 10000 THEN
                SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'draw_lottery_batch: at most 10000 draws per batch';
            END IF;
            SELECT COUNT(*) INTO v_invalid
              FROM JSON_TABLE(v_draws, '$[*]' COLUMNS (user_text VARCHAR(40) PATH '$')) AS j
             WHERE j.user_text IS NULL OR NOT j.user_text REGEXP '^[1-9][0-9]{0,17}$';
        END IF;
        IF v_invalid > 0 THEN
            SET v_message = CONCAT('draw_lottery_batch: ', v_invalid, ' draw(s) not a positive integer user id');
            SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = v_message;
        END IF;

        -- The batch, one row per draw: the session's working table, created on its first call and emptied at
        --    every call (a call that failed may have left rows), never dropped: MariaDB empties a session's cache
        --    of parsed procedures whenever one drops a temporary table it created, and this procedure would be
        --    parsed again at every call (about a millisecond). Created before the transaction (see the header
        --    about MySQL 8). Not transactional (MEMORY): only this call reads it. A change of its columns needs
        --    a new name, since a session keeps the table across an upgrade of this procedure.
        CREATE TEMPORARY TABLE IF NOT EXISTS lottery_draw_batch (
            seq         INT          NOT NULL,
            user_id     BIGINT       NOT NULL,
            r           BIGINT       NOT NULL COMMENT 'the draw''s own random number',
            kind        VARCHAR(10)  NOT NULL COMMENT 'draw, repeat or all_drawn',
            draw_no     INT          NOT NULL COMMENT 'the draw recorded, or the one a repeat answers',
            landed_tier BIGINT       NULL COMMENT 'the tier the wheel landed on, NULL for blank',
            won_tier    BIGINT       NULL,
            draw_rank   INT          NULL COMMENT 'the draw''s place among the batch''s recorded draws, from 1',
            draw_id     BIGINT       NULL COMMENT 'looked up: a repeat''s, or every draw''s without fast ids',
            PRIMARY KEY (seq)
        ) ENGINE = MEMORY;
        DELETE FROM lottery_draw_batch;

        SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
        START TRANSACTION;

        -- 1. The hot row first: from here on no other batch decides this campaign. With it, in the same
        --    statement, the seed every draw's number is derived from (its row is locked too, after the campaign's,
        --    as draw_lottery_blanks locks them: a statement less per batch).
        SELECT c.start_time, c.end_time, c.draws_per_user, c.blank_weight, s.seed
          INTO v_start, v_end, v_draws_per_user, v_blank_weight, v_seed
          FROM lottery_campaign c
          LEFT JOIN lottery_campaign_seed s ON s.campaign_id = c.campaign_id
         WHERE c.campaign_id = v_campaign_id
           FOR UPDATE;

        -- 2. One clock reading, now that the lock is held.
        SET v_now = NOW(3);
        IF v_draws_per_user IS NOT NULL AND v_seed IS NULL THEN
            SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'draw_lottery_batch: the campaign has no seed';
        END IF;

        SET v_status = CASE
            WHEN v_draws_per_user IS NULL THEN 'unknown_campaign'
            WHEN v_now < v_start THEN 'not_started'
            WHEN v_now >= v_end THEN 'ended'
            ELSE 'open'
        END;

        IF v_status = 'open' THEN
            SELECT COALESCE(SUM(weight), 0) + v_blank_weight, COALESCE(SUM(stock), 0), COALESCE(MIN(stock), 0)
              INTO v_total_weight, v_stock_before, v_least_stock
              FROM lottery_tier
             WHERE campaign_id = v_campaign_id;

            -- 3a. The common batch, decided straight into lottery_draw: each draw as its user's first (draw_no 1,
            --     its own r), landing on the wheel, winning its tier when it is among the first <stock> draws
            --     that landed there, in arrival order. A user who drew before, or twice in this batch, collides
            --     with the UNIQUE key and is skipped (IGNORE: the compact input checked above can cause no other
            --     warning). Then the rows are read back: all recorded (as many as the input has draws: one more
            --     than its commas in the compact form), in one block of consecutive ids (the "consecutive" or "traditional"
            --     auto-increment lock modes give one statement's rows consecutive ids in insertion order; the
            --     count of the campaign's rows in the block proves it). Otherwise the batch is undone to the
            --     savepoint and decided the general way below. Draws that landed on a tier run out get round 2
            --     on their rows.
            --     The wheel's bounds are integers (SUM would be DECIMAL): the join compares every draw with every
            --     tier, and decimal arithmetic took a quarter of the time of a batch. The draws' numbers are
            --     computed once per draw: the LIMIT (a batch holds at most 10,000 draws) keeps the derived table
            --     from being merged into the join, which would hash every draw again for every tier it is
            --     compared with (three times the cost of the statement, measured).
            SET v_increment = @@SESSION.auto_increment_increment;
            IF v_compact AND v_stock_before > 0 AND @@GLOBAL.innodb_autoinc_lock_mode < 2 THEN
                SET v_batch_size = LENGTH(v_draws) - LENGTH(REPLACE(v_draws, ',', '')) + 1;
                SAVEPOINT first_draws;
                INSERT IGNORE INTO lottery_draw (campaign_id, user_id, draw_no, tier_id, r, opens_batch, created_at)
                SELECT v_campaign_id, d.user_id, 1,
                       IF(d.landed_tier IS NOT NULL
                              AND ROW_NUMBER() OVER (PARTITION BY d.landed_tier ORDER BY d.seq) <= d.stock,
                          d.landed_tier, NULL),
                       d.r, d.seq = 1, v_now
                  FROM (SELECT j.seq, j.user_id, j.r, w.tier_id AS landed_tier, w.stock
                          FROM (SELECT i.seq, i.user_id,
                                       CAST(CONV(LEFT(SHA2(CONCAT(v_seed, ':', v_campaign_id, ':', i.user_id, ':1'),
                                                           256), 8), 16, 10) AS SIGNED) AS r
                                  FROM JSON_TABLE(v_draws, '$[*]' COLUMNS (
                                           seq     FOR ORDINALITY,
                                           user_id BIGINT PATH '$')) AS i
                                 LIMIT 10000) AS j
                          LEFT JOIN (SELECT t.tier_id, t.stock,
                                            CAST(SUM(t.weight) OVER (ORDER BY t.position) - t.weight AS SIGNED) AS lo,
                                            CAST(SUM(t.weight) OVER (ORDER BY t.position) AS SIGNED) AS hi
                                       FROM lottery_tier t
                                      WHERE t.campaign_id = v_campaign_id) AS w
                            ON j.r * v_total_weight DIV 4294967296 >= w.lo
                           AND j.r * v_total_weight DIV 4294967296 < w.hi) AS d
                 ORDER BY d.seq;
                SET v_recorded = ROW_COUNT(), v_first_draw_id = LAST_INSERT_ID();
                SET v_last_draw_id = v_first_draw_id + (v_recorded - 1) * v_increment;
                IF v_recorded = v_batch_size THEN
                    -- A draw landed on a tier when its slot lies below the blank share, which comes last.
                    SELECT COUNT(*),
                           COALESCE(SUM(d.tier_id IS NULL
                                        AND d.r * v_total_weight DIV 4294967296 < v_total_weight - v_blank_weight), 0)
                      INTO v_matched, v_overflowing
                      FROM lottery_draw d
                     WHERE d.campaign_id = v_campaign_id
                       AND d.draw_id BETWEEN v_first_draw_id AND v_last_draw_id;
                    SET v_first_draws = v_matched = v_recorded;
                END IF;
                IF NOT v_first_draws THEN
                    ROLLBACK TO SAVEPOINT first_draws;
                    SET v_recorded = 0, v_first_draw_id = NULL, v_last_draw_id = NULL;
                ELSEIF v_overflowing > 0 THEN
                    -- Round 2 on the rows themselves, as below: the draws that landed on a tier and got nothing
                    -- take the units left, in arrival order (draw id order), tier by tier in position order.
                    SET v_done = FALSE;
                    OPEN tiers;
                    first_draws_fall_through: LOOP
                        FETCH tiers INTO v_tier_id, v_tier_stock;
                        IF v_done THEN
                            LEAVE first_draws_fall_through;
                        END IF;
                        SELECT v_tier_stock - COUNT(*) INTO v_units
                          FROM lottery_draw d
                         WHERE d.campaign_id = v_campaign_id
                           AND d.draw_id BETWEEN v_first_draw_id AND v_last_draw_id
                           AND d.tier_id = v_tier_id;
                        IF v_units > 0 THEN
                            UPDATE lottery_draw
                               SET tier_id = v_tier_id
                             WHERE campaign_id = v_campaign_id
                               AND draw_id BETWEEN v_first_draw_id AND v_last_draw_id
                               AND tier_id IS NULL
                               AND r * v_total_weight DIV 4294967296 < v_total_weight - v_blank_weight
                             ORDER BY draw_id
                             LIMIT v_units;
                        END IF;
                    END LOOP first_draws_fall_through;
                    CLOSE tiers;
                END IF;
            END IF;
        END IF;

        IF v_first_draws THEN
            -- 3b. The common batch's messages, units and answer, from its rows (one range of the primary key).
            --     The messages come in the order the draws are read, their ids need not follow the draws': an
            --     ORDER BY would sort the long payload text in an on-disk temporary table at every call.
            INSERT INTO message_outbox (topic, business_key, payload)
            SELECT 'lottery.prize', CAST(d.draw_id AS CHAR),
                   CONCAT('{"draw_id": ', d.draw_id, ', "campaign_id": ', v_campaign_id,
                          ', "user_id": ', d.user_id, ', "tier_id": ', d.tier_id,
                          ', "prize": ', JSON_QUOTE(t.name), '}')
              FROM lottery_draw d
              STRAIGHT_JOIN lottery_tier t ON t.tier_id = d.tier_id
             WHERE d.campaign_id = v_campaign_id AND d.draw_id BETWEEN v_first_draw_id AND v_last_draw_id;
            SET v_won = ROW_COUNT();
            IF v_won > 0 THEN
                UPDATE lottery_tier t
                  JOIN (SELECT d.tier_id, COUNT(*) AS units
                          FROM lottery_draw d
                         WHERE d.campaign_id = v_campaign_id
                           AND d.draw_id BETWEEN v_first_draw_id AND v_last_draw_id
                           AND d.tier_id IS NOT NULL
                         GROUP BY d.tier_id) AS taken
                    ON t.tier_id = taken.tier_id
                   SET t.stock = t.stock - taken.units
                 WHERE t.campaign_id = v_campaign_id;
            END IF;
            INSERT INTO lottery_draw_tally (campaign_id, shard, draws)
            VALUES (v_campaign_id, CONNECTION_ID() % 16, v_recorded)
                ON DUPLICATE KEY UPDATE draws = draws + v_recorded;
            SET v_prizes_left = v_stock_before - v_won;
            -- The answer in one row (see the header): every draw is new, so the ids and the tiers say it all. The
            -- list's length is bounded by the batch (at most 10,000 ids of 20 characters), and the session's
            -- limit on it is raised for this statement alone.
            SET v_concat_limit = @@SESSION.group_concat_max_len;
            SET SESSION group_concat_max_len = GREATEST(v_concat_limit, 21 * v_recorded + 65536);
            SELECT CAST(v_first_draw_id AS SIGNED) AS first_draw_id,
                   CAST(v_increment AS SIGNED) AS draw_increment,
                   CAST(v_prizes_left AS SIGNED) AS prizes_left,
                   (SELECT GROUP_CONCAT(COALESCE(d.tier_id, 0) ORDER BY d.draw_id SEPARATOR ',')
                      FROM lottery_draw d
                     WHERE d.campaign_id = v_campaign_id
                       AND d.draw_id BETWEEN v_first_draw_id AND v_last_draw_id) AS tiers,
                   (SELECT JSON_OBJECTAGG(t.tier_id, t.name)
                      FROM lottery_tier t
                     WHERE t.campaign_id = v_campaign_id) AS prizes;
            SET SESSION group_concat_max_len = v_concat_limit;
        ELSEIF v_status = 'open' THEN
            -- 3. The whole batch decided in one statement, round 1 of the wheel included, from the inside out:
            --    - each draw: how many draws its user had before (a join on the user's draws, grouped per draw:
            --      cheaper than a correlated subquery per draw), and its occurrence in the batch;
            --    - then what it is (a draw to decide, a repeat, or all drawn), its draw number and its r
            --      (derived from the seed for that draw number; a repeat's is its answer's draw's);
            --    - then where the wheel lands: the tier whose slots [lo, hi) hold r * total DIV 2^32 (none for
            --      the blank share, and none for what is not a draw to decide);
            --    - round 1: a draw wins its tier when it is among the first <stock> draws that landed on it, in
            --      arrival order; and the recorded draws are ranked in arrival order, which gives their ids.
            INSERT INTO lottery_draw_batch (seq, user_id, r, kind, draw_no, landed_tier, won_tier, draw_rank)
            SELECT d.seq, d.user_id, d.r, d.kind, d.draw_no, w.tier_id,
                   IF(w.tier_id IS NOT NULL
                          AND ROW_NUMBER() OVER (PARTITION BY w.tier_id ORDER BY d.seq) <= w.stock,
                      w.tier_id, NULL),
                   IF(d.kind = 'draw', ROW_NUMBER() OVER (PARTITION BY d.kind ORDER BY d.seq), NULL)
              FROM (SELECT o.seq, o.user_id,
                           CASE
                               WHEN o.before_batch >= v_draws_per_user THEN 'repeat'
                               WHEN v_stock_before = 0 THEN 'all_drawn'
                               WHEN o.before_batch + o.occurrence > v_draws_per_user THEN 'repeat'
                               ELSE 'draw'
                           END AS kind,
                           LEAST(o.before_batch + o.occurrence, v_draws_per_user) AS draw_no,
                           CAST(CONV(LEFT(SHA2(CONCAT(v_seed, ':', v_campaign_id, ':', o.user_id, ':',
                                                      LEAST(o.before_batch + o.occurrence, v_draws_per_user)), 256),
                                          8), 16, 10) AS SIGNED) AS r
                      FROM (SELECT j.seq, j.user_id,
                                   ROW_NUMBER() OVER (PARTITION BY j.user_id ORDER BY j.seq) AS occurrence,
                                   COALESCE(MAX(p.draw_no), 0) AS before_batch
                              FROM JSON_TABLE(v_draws, '$[*]' COLUMNS (
                                       seq     FOR ORDINALITY,
                                       user_id BIGINT PATH '$')) AS j
                              LEFT JOIN lottery_draw p
                                ON p.campaign_id = v_campaign_id AND p.user_id = j.user_id
                             GROUP BY j.seq, j.user_id) AS o
                     LIMIT 10000) AS d
              LEFT JOIN (SELECT t.tier_id, t.stock,
                                CAST(SUM(t.weight) OVER (ORDER BY t.position) - t.weight AS SIGNED) AS lo,
                                CAST(SUM(t.weight) OVER (ORDER BY t.position) AS SIGNED) AS hi
                           FROM lottery_tier t
                          WHERE t.campaign_id = v_campaign_id) AS w
                ON d.kind = 'draw'
               AND d.r * v_total_weight DIV 4294967296 >= w.lo AND d.r * v_total_weight DIV 4294967296 < w.hi;
            SET v_batch_size = ROW_COUNT();

            -- 4. Round 2, only when a tier may have run empty (some tier holds fewer units than the batch has
            --    draws) and a draw that landed on a tier got nothing: those draws take the units left, in
            --    arrival order, tier by tier in position order (a loop over the tiers, not the draws).
            SET v_overflowing = 0;
            IF v_stock_before > 0 AND v_least_stock < v_batch_size THEN
                SELECT COUNT(*) INTO v_overflowing
                  FROM lottery_draw_batch
                 WHERE kind = 'draw' AND landed_tier IS NOT NULL AND won_tier IS NULL;
            END IF;
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

            IF v_stock_before > 0 THEN
                -- 5. The draws, winners and losers, in arrival order.
                INSERT INTO lottery_draw (campaign_id, user_id, draw_no, tier_id, r, opens_batch, created_at)
                SELECT v_campaign_id, b.user_id, b.draw_no, b.won_tier, b.r, b.draw_rank = 1, v_now
                  FROM lottery_draw_batch b
                 WHERE b.kind = 'draw'
                 ORDER BY b.seq;
                SET v_recorded = ROW_COUNT(), v_first_draw_id = LAST_INSERT_ID();
            END IF;

            -- 6. Every recorded draw's id, and what a repeat answers: the user's last allowed draw, recorded
            --    before or just now. With InnoDB's "consecutive" or "traditional" auto-increment lock modes, the
            --    ids of one INSERT ... SELECT are consecutive, in insertion order: a draw's id is the first plus
            --    its rank, which saves a lookup per draw. The first and last are checked against the table (ids
            --    only grow within a statement, so matching ends prove the block); with the "interleaved" mode
            --    (MySQL 8's default, Galera's requirement) every id is looked up.
            SET v_fast_ids = v_recorded > 0 AND @@GLOBAL.innodb_autoinc_lock_mode < 2;
            IF v_fast_ids THEN
                SELECT COUNT(*) INTO v_matched
                  FROM lottery_draw_batch b
                  JOIN lottery_draw d
                    ON d.draw_id = v_first_draw_id + (b.draw_rank - 1) * v_increment
                   AND d.campaign_id = v_campaign_id AND d.user_id = b.user_id AND d.draw_no = b.draw_no
                 WHERE b.draw_rank IN (1, v_recorded);
                IF v_matched <> IF(v_recorded = 1, 1, 2) THEN
                    SIGNAL SQLSTATE '45000'
                        SET MESSAGE_TEXT = 'draw_lottery_batch: the new draws'' ids are not consecutive';
                END IF;
            END IF;
            -- Nothing to look up when every draw of the batch was recorded with a known id (no repeat, and
            --    nothing all drawn: that needs stock left).
            IF NOT (v_fast_ids AND v_recorded = v_batch_size) THEN
                UPDATE lottery_draw_batch b
                  JOIN lottery_draw d
                    ON d.campaign_id = v_campaign_id AND d.user_id = b.user_id AND d.draw_no = b.draw_no
                   SET b.draw_id = d.draw_id, b.won_tier = d.tier_id
                 WHERE b.kind = 'repeat' OR (b.kind = 'draw' AND NOT v_fast_ids);
            END IF;

            IF v_stock_before > 0 THEN
                -- 7. One prize message per win, in the same transaction as the draw. The payload is written as
                --    text (what JSON_OBJECT would write, in half its time): the numbers are integers, written
                --    as JSON numbers, and the prize's name is quoted and escaped by JSON_QUOTE. No ORDER BY, as
                --    in 3b: sorting the payload text would take an on-disk temporary table.
                INSERT INTO message_outbox (topic, business_key, payload)
                SELECT 'lottery.prize', CAST(w.draw_id AS CHAR),
                       CONCAT('{"draw_id": ', w.draw_id, ', "campaign_id": ', v_campaign_id,
                              ', "user_id": ', w.user_id, ', "tier_id": ', w.won_tier,
                              ', "prize": ', JSON_QUOTE(t.name), '}')
                  FROM (SELECT b.seq, b.user_id, b.won_tier,
                               COALESCE(b.draw_id, v_first_draw_id + (b.draw_rank - 1) * v_increment) AS draw_id
                          FROM lottery_draw_batch b
                         WHERE b.kind = 'draw' AND b.won_tier IS NOT NULL) AS w
                  JOIN lottery_tier t ON t.tier_id = w.won_tier;
                SET v_won = ROW_COUNT();

                -- 8. The units taken: one UPDATE for every tier touched.
                UPDATE lottery_tier t
                  JOIN (SELECT b.won_tier, COUNT(*) AS units
                          FROM lottery_draw_batch b
                         WHERE b.kind = 'draw' AND b.won_tier IS NOT NULL
                         GROUP BY b.won_tier) AS taken
                    ON t.tier_id = taken.won_tier
                   SET t.stock = t.stock - taken.units
                 WHERE t.campaign_id = v_campaign_id;
            END IF;

            IF v_recorded > 0 THEN
                INSERT INTO lottery_draw_tally (campaign_id, shard, draws)
                VALUES (v_campaign_id, CONNECTION_ID() % 16, v_recorded)
                    ON DUPLICATE KEY UPDATE draws = draws + v_recorded;
            END IF;

            -- The tiers changed only here since they were summed: the campaign's lock is held.
            SET v_prizes_left = v_stock_before - v_won;

            -- 9. The answer.
            SELECT b.seq,
                   CASE
                       WHEN b.kind = 'all_drawn' THEN 'all_drawn'
                       WHEN b.won_tier IS NULL THEN 'no_prize'
                       ELSE 'won'
                   END AS outcome,
                   IF(b.kind = 'repeat', 1, 0) AS `repeat`,
                   CAST(COALESCE(b.draw_id, v_first_draw_id + (b.draw_rank - 1) * v_increment) AS SIGNED)
                       AS draw_id,
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

        -- The answer is out; a result set that begins makes the server flush it now, so the client learns the
        -- batch is decided and can send the next one while this COMMIT is made durable (the row locks are
        -- released before the log is flushed). Its one row follows the COMMIT.
        SELECT 'committing' AS phase;
    END decision;

    -- Last, and outside the handler: an error from here on is not a proven rollback.
    COMMIT;
    -- The commit's GTID, for reads that must see it on a replica.
    CALL answer_commit_gtid();
END $$

DELIMITER ;
