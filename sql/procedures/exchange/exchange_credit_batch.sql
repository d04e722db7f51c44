-- exchange_credit_batch: decide many exchanges of points for one gift in one transaction, in one round trip.
--
--   CALL exchange_credit_batch(gift_id, '[{"user": 1, "request": "r-1"}, {"user": 2, "request": "r-7"}, ...]');
--
-- The requests are a JSON array in arrival order: a user id (positive) and the client's request id (1 to 64
-- characters of A-Z a-z 0-9 . _ : -) each; anything else fails the whole batch (45RB0, nothing written).
-- Returns its answer, one row per request in input order (then a one-row marker, phase 'committing', sent
-- before the COMMIT so the answer arrives while the commit is made durable):
--   seq            the request's position in the array, from 1
--   outcome        'exchanged', 'unknown_gift', 'unknown_user', 'out_of_stock', 'not_enough_points' or
--                  'key_reused'
--   repeat         1 when this (user, request id) was decided before (in an earlier call or earlier in this
--                  one): outcome, exchange_id and balance_after are then the first answer's, and nothing was
--                  done again
--   exchange_id    the credit_exchange row, when exchanged
--   balance_after  the user's balance after the exchange, when exchanged
--   stock_left     the gift's stock once this request was decided (NULL for an unknown gift)
--   first_gift_id  for 'key_reused': the gift the request id was first used for
--
-- Each request is decided as if it ran alone, in arrival order (a user appearing twice is decided twice, the
-- second time with the balance the first left), with this order of precedence:
--   key_reused         (user, request id) is in exchange_request for another gift: a request id names one
--                      request, so this one is refused, flagged repeat, and nothing is done or recorded
--   repeat             (user, request id) is in exchange_request for this gift: its first answer, flagged repeat
--   unknown_gift       no such gift
--   unknown_user       the user has no credit row (never granted points)
--   out_of_stock       the gift's stock is 0
--   not_enough_points  the balance is below the gift's cost
--   exchanged          the cost is deducted (a credit_ledger row with the balance after it), one unit of stock is
--                      taken, a credit_exchange row is written, and one message_outbox row asks the warehouse to
--                      ship it: topic 'warehouse.shipment', business_key the credit_exchange id, payload
--                      {"type": 2, "credit_exchange_id", "product_id", "user_id", "exchanged_credit"}
-- Every decided request that is not a repeat is recorded in exchange_request, refusals included, so a client
-- retrying with the same request id hears its first answer and pays once.
--
-- Locks, always in this order, so batches never deadlock with each other or with grant_credit:
--   1. the gift row (FOR UPDATE): it serialises every batch of the gift, so stock is decided exactly;
--   2. the batch's distinct users' credit rows in user_id order: two batches of different gifts that share users
--      take them in the same order. A user's balance and requests are decided only under its lock.
--      One statement per 999 users takes them: a constant IN list on the unique key uniq_user, forced, so the
--      plan is a range scan, and a range scan reads (and locks) its sorted ranges in ascending key order. The
--      list is written into the statement (PREPARE) because a list read from JSON_TABLE would be a join, locking
--      in whatever order the plan drives it. 999 stays below MariaDB's in_predicate_conversion_threshold (1000),
--      above which the list would become a subquery, and the range scan a join again.
-- The transaction runs at READ COMMITTED: every plain read (the repeat check) sees what was committed before it,
-- whenever the snapshot would have been taken, and locking reads of missing rows (an unknown gift or user) lock
-- no gaps that others' inserts would wait for. The refusals of an unknown gift or user are not serialised by
-- the users' locks (a batch of an unknown gift takes none; an unknown user has no row to lock); the one race
-- that leaves, the same (user, request id) decided by two batches at once, ends in a duplicate key on
-- exchange_request. The refusal that meets it is answered as the repeat it is (step 5). A batch whose own first
-- answers meet it (step 4) undoes its writes to a savepoint and decides again, now seeing the other's record:
-- one user's request never rolls back the rest of a batch.
--
-- Set-based, whatever the batch: one INSERT ... SELECT decides every request into the session's temporary table
-- exchange_credit_batch_decision_v3 (MEMORY, emptied at each decision; the name carries the version of its columns,
-- because a session keeps its temporary tables across an upgrade of this procedure), with window functions over
-- the requests in arrival order; then one multi-row statement per table writes the batch. The new exchanges'
-- ids follow from LAST_INSERT_ID() and their rank when the auto-increment lock mode makes one statement's ids
-- consecutive (InnoDB's "consecutive" and "traditional" modes: checked by counting the gift's rows in the
-- block), and are read back by (user, request id) otherwise ("interleaved", MySQL 8's default). Arrival order can be computed at once
-- because within a batch the cost is one gift's and stock only goes down:
--   - a user's k-th new request of the batch can pay iff balance >= k * cost (its earlier new requests paid while
--     stock lasted, and once stock is out every later request is out_of_stock anyway);
--   - the requests that can pay are exchanged, in arrival order, while their running count is <= stock; a new
--     request with stock (or more) such requests before it is out_of_stock;
--   - a repeat within the batch answers what the first request of its (user, request id) was answered.
-- Only the refusals no lock protects (unknown_gift, unknown_user) are recorded one by one, to answer the race
-- above as a repeat. No statement names the temporary table twice (MySQL cannot reopen a temporary table).
--
-- Numbers are CAST before they go into JSON, because MariaDB writes a routine's variables into JSON as strings.
-- The id lists of the users to lock are built with GROUP_CONCAT under a raised group_concat_max_len (restored
-- afterwards) and counted, so a list cut short fails the batch instead of leaving a user unlocked.
--
-- Errors: SQLSTATE '45RB0' means the batch was rolled back whole by this procedure (MYSQL_ERRNO is the original
-- code, MESSAGE_TEXT 'rolled back: <message>'); any other error may have come after the commit. The answer is
-- sent before the transaction ends, and the COMMIT is the last statement that writes, outside the handler. Needs
-- JSON_TABLE: MariaDB 10.6+ or MySQL 8.0+. SET TRANSACTION needs no transaction open when it is called (error 1568
-- otherwise, rolled back) and READ COMMITTED a binlog_format other than STATEMENT.
-- After the COMMIT, a last result set, one row: gtid, the commit's GTID (@@last_gtid; empty without a binary
-- log), so a later read on a replica can wait for it. A batch that wrote nothing answers the session's previous
-- GTID: older, so waiting for it is harmless. On MySQL, which has no @@last_gtid, the GTID is empty
-- (see answer_commit_gtid.sql).

DROP PROCEDURE IF EXISTS exchange_credit_batch;

DELIMITER $$

CREATE PROCEDURE exchange_credit_batch(
    IN v_gift_id  BIGINT,
    IN v_requests MEDIUMTEXT
)
BEGIN
    decision: BEGIN
        DECLARE v_cost         BIGINT DEFAULT NULL;
        DECLARE v_stock        INT DEFAULT NULL;
        DECLARE v_taken        INT DEFAULT 0;
        DECLARE v_invalid_seq  INT;
        DECLARE v_users_left   INT DEFAULT 0;
        DECLARE v_user_list    MEDIUMTEXT;
        DECLARE v_chunk        MEDIUMTEXT;
        DECLARE v_concat_limit BIGINT;
        DECLARE v_seq          INT;
        DECLARE v_user         BIGINT;
        DECLARE v_request      VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin;
        DECLARE v_outcome      VARCHAR(20);
        DECLARE v_exchange_id  BIGINT;
        DECLARE v_balance      BIGINT;
        DECLARE v_duplicate    BOOLEAN;
        DECLARE v_done         BOOLEAN DEFAULT FALSE;
        DECLARE v_first_id     BIGINT;
        DECLARE v_increment    BIGINT;
        DECLARE v_matched      INT;
        DECLARE v_fast_ids     BOOLEAN DEFAULT FALSE;
        DECLARE v_decisions    INT DEFAULT 0;
        DECLARE v_collided     BOOLEAN DEFAULT FALSE;
        DECLARE v_first_gift   BIGINT;
        DECLARE v_errno        INT DEFAULT 0;
        DECLARE v_message      TEXT DEFAULT '';
        -- The refusals no lock protects, in arrival order (read at OPEN, after the decision is written).
        DECLARE unlocked_refusals CURSOR FOR
            SELECT d.seq, d.user_id, d.request_id, d.outcome
              FROM exchange_credit_batch_decision_v3 AS d
             WHERE d.is_repeat = 0 AND d.outcome IN ('unknown_gift', 'unknown_user')
             ORDER BY d.seq;
        DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_done = TRUE;
        DECLARE EXIT HANDLER FOR SQLEXCEPTION
        BEGIN
            GET DIAGNOSTICS CONDITION 1 v_errno = MYSQL_ERRNO, v_message = MESSAGE_TEXT;
            ROLLBACK;
            CALL raise_rolled_back(v_errno, v_message);
        END;

        -- 0. Every request well formed, or nothing is done. The compact form this toolkit's client writes
        --    ([{"user":1,"request":"r-1"},...], no spaces) is checked whole by one case-sensitive regular
        --    expression, in a fraction of the time a parse takes; anything else is parsed and checked request by
        --    request, and the first bad one is named.
        IF NOT COALESCE(v_requests REGEXP '(?-i)^\\[\\{"user":[1-9][0-9]{0,17},"request":"[A-Za-z0-9._:-]{1,64}"\\}(,\\{"user":[1-9][0-9]{0,17},"request":"[A-Za-z0-9._:-]{1,64}"\\})*\\]$', FALSE) THEN
            IF JSON_VALID(v_requests) IS NOT TRUE OR JSON_TYPE(v_requests) <> 'ARRAY' THEN
                SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'exchange_credit_batch: the requests must be a JSON array';
            END IF;
            SELECT MIN(IF(j.user_id IS NULL OR j.user_id <= 0 OR j.request_id IS NULL
                              OR NOT j.request_id REGEXP '^[A-Za-z0-9._:-]{1,64}$',
                          j.seq, NULL))
              INTO v_invalid_seq
              FROM JSON_TABLE(v_requests, '$[*]' COLUMNS (
                       seq        FOR ORDINALITY,
                       user_id    BIGINT       PATH '$.user',
                       request_id VARCHAR(255) PATH '$.request')) AS j;
            IF v_invalid_seq IS NOT NULL THEN
                SET v_message = CONCAT('exchange_credit_batch: request ', v_invalid_seq,
                                       ' needs a positive "user" and a "request" id of 1 to 64 A-Z a-z 0-9 . _ : -');
                SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = v_message;
            END IF;
        END IF;

        -- The session's working table: created on the first call of a session, emptied at every call (a call
        -- that failed may have left rows). Not transactional (MEMORY): only this call reads it.
        CREATE TEMPORARY TABLE IF NOT EXISTS exchange_credit_batch_decision_v3 (
            seq           INT          NOT NULL,
            user_id       BIGINT       NOT NULL,
            request_id    VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
            outcome       VARCHAR(20)  NOT NULL,
            is_repeat     TINYINT      NOT NULL,
            exchange_id   BIGINT       NULL,
            balance_after BIGINT       NULL,
            stock_left    INT          NULL,
            exchange_rank INT          NULL COMMENT 'its exchange''s place among the batch''s new exchanges, from 1',
            first_gift_id BIGINT       NULL COMMENT 'for key_reused: the gift the request id was first used for',
            PRIMARY KEY (seq) USING BTREE,
            KEY by_request (user_id, request_id)
        ) ENGINE = MEMORY;
        -- The ids of the batch's new exchanges, read back (see step 4).
        CREATE TEMPORARY TABLE IF NOT EXISTS exchange_credit_batch_exchange (
            user_id     BIGINT      NOT NULL,
            request_id  VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
            exchange_id BIGINT      NOT NULL,
            PRIMARY KEY (user_id, request_id)
        ) ENGINE = MEMORY;

        SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
        START TRANSACTION;

        -- 1. The hot row first: from here on no other batch decides this gift's stock.
        SELECT cost, stock INTO v_cost, v_stock FROM exchange_gift WHERE gift_id = v_gift_id FOR UPDATE;

        -- 2. The users' balances in user_id order, 999 users a statement (an unknown gift needs none: it only
        --    refuses). Their sorted list is read from the requests once, checked whole (a list cut short would
        --    leave users unlocked), then cut into statements.
        IF v_cost IS NOT NULL THEN
            SET v_concat_limit = @@SESSION.group_concat_max_len;
            -- The list is never longer than the requests it is read from.
            SET SESSION group_concat_max_len = GREATEST(v_concat_limit, LENGTH(v_requests));
            SELECT COUNT(*), GROUP_CONCAT(u.user_id ORDER BY u.user_id SEPARATOR ',')
              INTO v_users_left, v_user_list
              FROM (SELECT DISTINCT j.user_id
                      FROM JSON_TABLE(v_requests, '$[*]' COLUMNS (user_id BIGINT PATH '$.user')) AS j) AS u;
            SET SESSION group_concat_max_len = v_concat_limit;
            IF v_users_left > 0
               AND LENGTH(v_user_list) - LENGTH(REPLACE(v_user_list, ',', '')) + 1 <> v_users_left THEN
                SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'exchange_credit_batch: the list of users to lock was cut short';
            END IF;
            WHILE v_users_left > 0 DO
                SET v_chunk = SUBSTRING_INDEX(v_user_list, ',', 999);
                SET v_user_list = SUBSTRING(v_user_list, LENGTH(v_chunk) + 2);
                SET v_users_left = GREATEST(v_users_left - 999, 0);
                -- Integers only (read back from BIGINT): nothing in the list can carry SQL.
                SET @exchange_credit_batch_lock = CONCAT(
                    'SELECT COUNT(*) INTO @exchange_credit_batch_locked FROM credit FORCE INDEX (uniq_user) ',
                    'WHERE user_id IN (', v_chunk, ') FOR UPDATE');
                PREPARE lock_statement FROM @exchange_credit_batch_lock;
                EXECUTE lock_statement;
                DEALLOCATE PREPARE lock_statement;
            END WHILE;
            SET @exchange_credit_batch_lock = NULL, @exchange_credit_batch_locked = NULL;
        END IF;

        -- Steps 3 and 4 run again when the batch's first answers meet a record another batch wrote meanwhile
        -- without a lock (see the header): at most three times, then the batch fails, rolled back.
        decide: LOOP
            SET v_decisions = v_decisions + 1;
            DELETE FROM exchange_credit_batch_decision_v3;
            DELETE FROM exchange_credit_batch_exchange;

            -- 3. Every request decided at once, in arrival order (see the header). Innermost first:
            --    a: each request, its earlier answer (a repeat across calls), whether it is the first of its (user,
            --       request id) in the batch, and its user's balance, read under the user's lock;
            --    b: its rank among its user's new requests; c: whether it can pay, and how many requests that can pay
            --       came up to it; last: the answer of the first request of its (user, request id), which is its own
            --       answer when it is new, and the place of its exchange among the batch's exchanges in arrival order
            --       (which gives its id).
            INSERT INTO exchange_credit_batch_decision_v3
                   (seq, user_id, request_id, outcome, is_repeat, exchange_id, balance_after, stock_left, exchange_rank,
                    first_gift_id)
            SELECT c.seq, c.user_id, c.request_id,
                   FIRST_VALUE(CASE
                                   WHEN c.prior_outcome IS NOT NULL THEN c.prior_outcome
                                   WHEN v_cost IS NULL THEN 'unknown_gift'
                                   WHEN c.balance IS NULL THEN 'unknown_user'
                                   WHEN c.payers_up_to - c.can_pay >= v_stock THEN 'out_of_stock'
                                   WHEN c.can_pay = 0 THEN 'not_enough_points'
                                   ELSE 'exchanged'
                               END) OVER w_request,
                   c.prior_outcome IS NOT NULL OR c.is_first = 0,
                   c.prior_exchange_id,
                   FIRST_VALUE(CASE
                                   WHEN c.prior_outcome IS NOT NULL THEN c.prior_balance_after
                                   WHEN c.can_pay = 1 AND c.payers_up_to <= v_stock THEN c.balance - c.user_rank * v_cost
                               END) OVER w_request,
                   IF(v_cost IS NULL, NULL, v_stock - LEAST(c.payers_up_to, v_stock)),
                   -- An exchanged request is the payers_up_to-th of the batch's exchanges: every request that could
                   -- pay before it was exchanged too (stock only runs out later). Its repeats in the batch share it.
                   FIRST_VALUE(IF(c.can_pay = 1 AND c.payers_up_to <= v_stock, c.payers_up_to, NULL)) OVER w_request,
                   c.prior_gift_id
              FROM (
                SELECT b.*,
                       IF(b.is_new = 1 AND v_cost IS NOT NULL AND b.balance IS NOT NULL
                              AND b.balance >= b.user_rank * v_cost, 1, 0) AS can_pay,
                       SUM(IF(b.is_new = 1 AND v_cost IS NOT NULL AND b.balance IS NOT NULL
                                  AND b.balance >= b.user_rank * v_cost, 1, 0))
                           OVER (ORDER BY b.seq ROWS UNBOUNDED PRECEDING) AS payers_up_to
                  FROM (
                    SELECT a.*,
                           SUM(a.is_new) OVER (PARTITION BY a.user_id ORDER BY a.seq ROWS UNBOUNDED PRECEDING) AS user_rank
                      FROM (
                        SELECT j.seq, j.user_id, j.request_id,
                               IF(j.seq = MIN(j.seq) OVER (PARTITION BY j.user_id, j.request_id), 1, 0) AS is_first,
                               IF(r.user_id IS NULL AND j.seq = MIN(j.seq) OVER (PARTITION BY j.user_id, j.request_id),
                                  1, 0) AS is_new,
                               IF(r.gift_id <> v_gift_id, 'key_reused', r.outcome) AS prior_outcome,
                               IF(r.gift_id <> v_gift_id, NULL, r.exchange_id) AS prior_exchange_id,
                               IF(r.gift_id <> v_gift_id, NULL, r.balance_after) AS prior_balance_after,
                               IF(r.gift_id <> v_gift_id, r.gift_id, NULL) AS prior_gift_id,
                               cr.credit AS balance
                          FROM (SELECT t.seq, t.user_id,
                                       CONVERT(t.request_id USING ascii) COLLATE ascii_bin AS request_id
                                  FROM JSON_TABLE(v_requests, '$[*]' COLUMNS (
                                           seq        FOR ORDINALITY,
                                           user_id    BIGINT       PATH '$.user',
                                           request_id VARCHAR(255) PATH '$.request')) AS t) AS j
                          LEFT JOIN exchange_request AS r
                                 ON r.user_id = j.user_id AND r.request_id = j.request_id
                          LEFT JOIN credit AS cr
                                 ON cr.user_id = j.user_id AND v_cost IS NOT NULL
                      ) AS a
                  ) AS b
              ) AS c
            WINDOW w_request AS (PARTITION BY c.user_id, c.request_id ORDER BY c.seq
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING);

            -- 4. The exchanges, in arrival order; their ids are the first one's plus their rank when the block is
            --    consecutive (see the header), and are read back by (user, request id) otherwise; then their ledger
            --    rows, shipment messages and first answers, in arrival order.
            SAVEPOINT exchange_credit_batch_writes;
            INSERT INTO credit_exchange (user_id, exchanged_credit, product_id, request_id, created_at)
            SELECT d.user_id, v_cost, v_gift_id, d.request_id, NOW(3)
              FROM exchange_credit_batch_decision_v3 AS d
             WHERE d.outcome = 'exchanged' AND d.is_repeat = 0
             ORDER BY d.seq;
            SET v_taken = ROW_COUNT(), v_first_id = LAST_INSERT_ID();
            SET v_increment = @@SESSION.auto_increment_increment;
            IF v_taken > 0 AND @@GLOBAL.innodb_autoinc_lock_mode < 2 THEN
                -- The gift's batches are serialised by its lock, so only this batch wrote the gift's rows in the block.
                SELECT COUNT(*) INTO v_matched
                  FROM credit_exchange
                 WHERE id BETWEEN v_first_id AND v_first_id + (v_taken - 1) * v_increment AND product_id = v_gift_id;
                SET v_fast_ids = v_matched = v_taken;
            END IF;

            IF v_fast_ids THEN
                UPDATE exchange_credit_batch_decision_v3
                   SET exchange_id = v_first_id + (exchange_rank - 1) * v_increment
                 WHERE exchange_rank IS NOT NULL;
            ELSEIF v_taken > 0 THEN
                -- Read back by INSERT ... SELECT, a consistent read at READ COMMITTED: an UPDATE joining credit_exchange
                -- would read it with shared locks, wait for other batches' uncommitted exchanges, and deadlock.
                INSERT INTO exchange_credit_batch_exchange (user_id, request_id, exchange_id)
                SELECT x.user_id, x.request_id, x.id
                  FROM exchange_credit_batch_decision_v3 AS d
                  JOIN credit_exchange AS x ON x.user_id = d.user_id AND x.request_id = d.request_id
                 WHERE d.outcome = 'exchanged' AND d.is_repeat = 0;
                -- Repeats within the batch of a new exchange take its id too (their exchange_id is still NULL).
                UPDATE exchange_credit_batch_decision_v3 AS d
                  JOIN exchange_credit_batch_exchange AS x ON x.user_id = d.user_id AND x.request_id = d.request_id
                   SET d.exchange_id = x.exchange_id
                 WHERE d.outcome = 'exchanged' AND d.exchange_id IS NULL;
            END IF;

            IF v_taken > 0 THEN
                INSERT INTO credit_ledger (user_id, delta, balance_after, reason, reference, created_at)
                SELECT d.user_id, -v_cost, d.balance_after, 'exchange', CAST(d.exchange_id AS CHAR), NOW(3)
                  FROM exchange_credit_batch_decision_v3 AS d
                 WHERE d.outcome = 'exchanged' AND d.is_repeat = 0
                 ORDER BY d.seq;

                -- CAST: the warehouse reads numbers.
                INSERT INTO message_outbox (topic, business_key, payload)
                SELECT 'warehouse.shipment', CAST(d.exchange_id AS CHAR),
                       JSON_OBJECT('type', 2,
                                   'credit_exchange_id', CAST(d.exchange_id AS SIGNED),
                                   'product_id', CAST(v_gift_id AS SIGNED),
                                   'user_id', CAST(d.user_id AS SIGNED),
                                   'exchanged_credit', CAST(v_cost AS SIGNED))
                  FROM exchange_credit_batch_decision_v3 AS d
                 WHERE d.outcome = 'exchanged' AND d.is_repeat = 0
                 ORDER BY d.seq;

                -- One update per user, by what the user's exchanges took: driven by the batch's users (STRAIGHT_JOIN),
                -- so that only their rows, locked in step 2, are touched.
                UPDATE (SELECT d.user_id, COUNT(*) AS exchanges
                          FROM exchange_credit_batch_decision_v3 AS d
                         WHERE d.outcome = 'exchanged' AND d.is_repeat = 0
                         GROUP BY d.user_id) AS t
                  STRAIGHT_JOIN credit AS c FORCE INDEX (uniq_user) ON c.user_id = t.user_id
                   SET c.credit = c.credit - t.exchanges * v_cost, c.updated_at = NOW(3);
            END IF;

            -- The first answers of the users' new requests. Their users are locked, but a refusal of an unknown gift
            -- takes no lock: one recorded meanwhile for the same request makes this statement fail whole (1062), and
            -- the batch is decided again, seeing it.
            SET v_collided = FALSE;
            record_answers: BEGIN
                DECLARE CONTINUE HANDLER FOR 1062 SET v_collided = TRUE;
                INSERT INTO exchange_request (user_id, request_id, gift_id, outcome, exchange_id, balance_after, created_at)
                SELECT d.user_id, d.request_id, v_gift_id, d.outcome, d.exchange_id, d.balance_after, NOW(3)
                  FROM exchange_credit_batch_decision_v3 AS d
                 WHERE d.is_repeat = 0 AND d.outcome IN ('exchanged', 'out_of_stock', 'not_enough_points')
                 ORDER BY d.seq;
            END record_answers;
            IF NOT v_collided THEN
                LEAVE decide;
            END IF;
            ROLLBACK TO SAVEPOINT exchange_credit_batch_writes;
            IF v_decisions >= 3 THEN
                SIGNAL SQLSTATE '45000'
                    SET MESSAGE_TEXT = 'exchange_credit_batch: its requests kept being recorded by other batches meanwhile';
            END IF;
        END LOOP decide;

        -- 5. Refusals no lock protects, one by one: another batch may be recording the same request right now.
        --    Its row wins; this request, and its repeats within the batch, answer as a repeat of it.
        OPEN unlocked_refusals;
        record_refusals: LOOP
            SET v_done = FALSE;
            FETCH unlocked_refusals INTO v_seq, v_user, v_request, v_outcome;
            IF v_done THEN
                LEAVE record_refusals;
            END IF;
            record_refusal: BEGIN
                DECLARE CONTINUE HANDLER FOR 1062 SET v_duplicate = TRUE;
                SET v_duplicate = FALSE;
                INSERT INTO exchange_request (user_id, request_id, gift_id, outcome, created_at)
                VALUES (v_user, v_request, v_gift_id, v_outcome, NOW(3));
            END record_refusal;
            IF v_duplicate THEN
                SELECT MAX(outcome), MAX(exchange_id), MAX(balance_after), MAX(gift_id)
                  INTO v_outcome, v_exchange_id, v_balance, v_first_gift
                  FROM exchange_request
                 WHERE user_id = v_user AND request_id = v_request;
                IF v_first_gift <> v_gift_id THEN
                    SET v_outcome = 'key_reused', v_exchange_id = NULL, v_balance = NULL;
                ELSE
                    SET v_first_gift = NULL;
                END IF;
                UPDATE exchange_credit_batch_decision_v3
                   SET outcome = v_outcome, exchange_id = v_exchange_id, balance_after = v_balance, is_repeat = 1,
                       first_gift_id = v_first_gift
                 WHERE user_id = v_user AND request_id = v_request;
            END IF;
        END LOOP record_refusals;
        CLOSE unlocked_refusals;

        -- 6. One decrement of the hot row for the whole batch.
        IF v_taken > 0 THEN
            UPDATE exchange_gift SET stock = stock - v_taken WHERE gift_id = v_gift_id;
        END IF;

        SELECT d.seq, d.outcome, d.is_repeat AS `repeat`, d.exchange_id, d.balance_after, d.stock_left,
               d.first_gift_id
          FROM exchange_credit_batch_decision_v3 AS d
         ORDER BY d.seq;

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
