-- exchange_credit_batch: decide many exchanges of points for one gift in one transaction, in one round trip.
--
--   CALL exchange_credit_batch(gift_id, '[{"user": 1, "request": "r-1"}, {"user": 2, "request": "r-7"}, ...]');
--
-- The requests are a JSON array in arrival order: a user id (positive) and the client's request id (1 to 64
-- characters of A-Z a-z 0-9 . _ : -) each; anything else fails the whole batch (45RB0, nothing written).
-- Returns one result set, one row per request in input order:
--   seq            the request's position in the array, from 1
--   outcome        'exchanged', 'unknown_gift', 'unknown_user', 'out_of_stock' or 'not_enough_points'
--   repeat         1 when this (user, request id) was decided before (in an earlier call or earlier in this
--                  one): outcome, exchange_id and balance_after are then the first answer's, and nothing was
--                  done again
--   exchange_id    the credit_exchange row, when exchanged
--   balance_after  the user's balance after the exchange, when exchanged
--   stock_left     the gift's stock once this request was decided (NULL for an unknown gift)
--
-- Each request is decided as if it ran alone, in arrival order (a user appearing twice is decided twice, the
-- second time with the balance the first left), with this order of precedence:
--   repeat             (user, request id) is in exchange_request: its first answer, flagged repeat
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
--   2. the batch's distinct users' credit rows, one by one in user_id order: two batches of different gifts that
--      share users take them in the same order. A user's balance and requests are decided only under its lock.
-- The transaction runs at READ COMMITTED: every plain read (the repeat check) sees what was committed before it,
-- whenever the snapshot would have been taken, and locking reads of missing rows (an unknown gift or user) lock
-- no gaps that others' inserts would wait for. The requests of a user without a credit row are not serialised by
-- any lock; the one race that leaves, the same (user, request id) decided by two batches at once, ends in a
-- duplicate key on exchange_request, which is answered as the repeat it is.
--
-- The answer is gathered into a JSON array with JSON_ARRAY_APPEND and returned through JSON_TABLE (never with
-- GROUP_CONCAT or JSON_ARRAYAGG, which group_concat_max_len would cut short). A field that is NULL is left out
-- (JSON_TABLE reads a missing field as NULL on every server), and numbers are CAST before they go into JSON,
-- because MariaDB writes a routine's variables into JSON as strings.
--
-- Errors: SQLSTATE '45RB0' means the batch was rolled back whole by this procedure (MYSQL_ERRNO is the original
-- code, MESSAGE_TEXT 'rolled back: <message>'); any other error may have come after the commit. The answer is
-- sent before the transaction ends, and the COMMIT is the last statement, outside the handler. Needs JSON_TABLE:
-- MariaDB 10.6+ or MySQL 8.0+. SET TRANSACTION needs no transaction open when it is called (error 1568
-- otherwise, rolled back) and READ COMMITTED a binlog_format other than STATEMENT.

DROP PROCEDURE IF EXISTS exchange_credit_batch;

DELIMITER $$

CREATE PROCEDURE exchange_credit_batch(
    IN v_gift_id  BIGINT,
    IN v_requests MEDIUMTEXT
)
BEGIN
    decision: BEGIN
        DECLARE v_cost          BIGINT DEFAULT NULL;
        DECLARE v_stock         INT DEFAULT NULL;
        DECLARE v_taken         INT DEFAULT 0;
        DECLARE v_seq           INT;
        DECLARE v_user          BIGINT;
        DECLARE v_request_text  VARCHAR(255);
        DECLARE v_request       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin;
        DECLARE v_locked        INT;
        DECLARE v_recorded      INT;
        DECLARE v_outcome       VARCHAR(20);
        DECLARE v_repeat        BOOLEAN;
        DECLARE v_exchange_id   BIGINT;
        DECLARE v_balance       BIGINT;
        DECLARE v_balance_after BIGINT;
        DECLARE v_duplicate     BOOLEAN;
        DECLARE v_answer        TEXT;
        DECLARE v_answers       LONGTEXT DEFAULT '[]';
        DECLARE v_done          BOOLEAN DEFAULT FALSE;
        DECLARE v_errno         INT DEFAULT 0;
        DECLARE v_message       TEXT DEFAULT '';
        DECLARE batch_users CURSOR FOR
            SELECT DISTINCT j.user_id
              FROM JSON_TABLE(v_requests, '$[*]' COLUMNS (user_id BIGINT PATH '$.user')) AS j
             WHERE j.user_id IS NOT NULL
             ORDER BY j.user_id;
        DECLARE batch_requests CURSOR FOR
            SELECT j.seq, j.user_id, j.request_id
              FROM JSON_TABLE(v_requests, '$[*]' COLUMNS (
                       seq        FOR ORDINALITY,
                       user_id    BIGINT       PATH '$.user',
                       request_id VARCHAR(255) PATH '$.request')) AS j
             ORDER BY j.seq;
        DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_done = TRUE;
        DECLARE EXIT HANDLER FOR SQLEXCEPTION
        BEGIN
            GET DIAGNOSTICS CONDITION 1 v_errno = MYSQL_ERRNO, v_message = MESSAGE_TEXT;
            ROLLBACK;
            CALL raise_rolled_back(v_errno, v_message);
        END;

        IF JSON_VALID(v_requests) IS NOT TRUE OR JSON_TYPE(v_requests) <> 'ARRAY' THEN
            SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'exchange_credit_batch: the requests must be a JSON array';
        END IF;

        SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
        START TRANSACTION;

        -- 1. The hot row first: from here on no other batch decides this gift's stock.
        SELECT cost, stock INTO v_cost, v_stock FROM exchange_gift WHERE gift_id = v_gift_id FOR UPDATE;

        -- 2. The users' balances in user_id order (an unknown gift needs none: it only refuses). The reads below
        --    are aggregates, which always return one row, so the NOT FOUND handler only ever sees the cursors.
        IF v_cost IS NOT NULL THEN
            OPEN batch_users;
            lock_users: LOOP
                SET v_done = FALSE;
                FETCH batch_users INTO v_user;
                IF v_done THEN
                    LEAVE lock_users;
                END IF;
                SELECT COUNT(*) INTO v_locked FROM credit WHERE user_id = v_user FOR UPDATE;
            END LOOP lock_users;
            CLOSE batch_users;
        END IF;

        -- 3. Each request in arrival order.
        OPEN batch_requests;
        decide: LOOP
            SET v_done = FALSE;
            FETCH batch_requests INTO v_seq, v_user, v_request_text;
            IF v_done THEN
                LEAVE decide;
            END IF;
            IF v_user IS NULL OR v_user <= 0
               OR v_request_text IS NULL OR NOT v_request_text REGEXP '^[A-Za-z0-9._:-]{1,64}$' THEN
                SET v_message = CONCAT('exchange_credit_batch: request ', v_seq,
                                       ' needs a positive "user" and a "request" id of 1 to 64 A-Z a-z 0-9 . _ : -');
                SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = v_message;
            END IF;
            SET v_request = v_request_text;
            SET v_repeat = FALSE, v_exchange_id = NULL, v_balance_after = NULL;

            SELECT COUNT(*), MAX(outcome), MAX(exchange_id), MAX(balance_after)
              INTO v_recorded, v_outcome, v_exchange_id, v_balance_after
              FROM exchange_request
             WHERE user_id = v_user AND request_id = v_request;

            IF v_recorded > 0 THEN
                SET v_repeat = TRUE;
            ELSE
                SELECT MAX(credit) INTO v_balance FROM credit WHERE user_id = v_user;
                SET v_outcome = CASE
                    WHEN v_cost IS NULL THEN 'unknown_gift'
                    WHEN v_balance IS NULL THEN 'unknown_user'
                    WHEN v_stock <= 0 THEN 'out_of_stock'
                    WHEN v_balance < v_cost THEN 'not_enough_points'
                    ELSE 'exchanged'
                END;

                IF v_outcome = 'exchanged' THEN
                    -- The user's row is locked (step 2), so its balance and its earlier requests were read
                    -- exactly, and this request cannot be a duplicate.
                    SET v_balance_after = v_balance - v_cost;
                    UPDATE credit SET credit = v_balance_after, updated_at = NOW(3) WHERE user_id = v_user;
                    INSERT INTO credit_exchange (user_id, exchanged_credit, product_id, request_id, created_at)
                    VALUES (v_user, v_cost, v_gift_id, v_request, NOW(3));
                    SET v_exchange_id = LAST_INSERT_ID();
                    INSERT INTO credit_ledger (user_id, delta, balance_after, reason, reference, created_at)
                    VALUES (v_user, -v_cost, v_balance_after, 'exchange', CAST(v_exchange_id AS CHAR), NOW(3));
                    -- CAST: MariaDB writes a routine's variables into JSON as strings, and the warehouse
                    -- reads numbers.
                    INSERT INTO message_outbox (topic, business_key, payload)
                    VALUES ('warehouse.shipment', CAST(v_exchange_id AS CHAR),
                            JSON_OBJECT('type', 2,
                                        'credit_exchange_id', CAST(v_exchange_id AS SIGNED),
                                        'product_id', CAST(v_gift_id AS SIGNED),
                                        'user_id', CAST(v_user AS SIGNED),
                                        'exchanged_credit', CAST(v_cost AS SIGNED)));
                    INSERT INTO exchange_request (user_id, request_id, gift_id, outcome, exchange_id, balance_after,
                                                  created_at)
                    VALUES (v_user, v_request, v_gift_id, v_outcome, v_exchange_id, v_balance_after, NOW(3));
                    SET v_stock = v_stock - 1, v_taken = v_taken + 1;
                ELSE
                    -- A refusal of a user with no credit row (or of an unknown gift) holds no lock on the user:
                    -- another batch may be recording the same request right now. Its row wins; this one answers
                    -- as a repeat of it.
                    record_refusal: BEGIN
                        DECLARE CONTINUE HANDLER FOR 1062 SET v_duplicate = TRUE;
                        SET v_duplicate = FALSE;
                        INSERT INTO exchange_request (user_id, request_id, gift_id, outcome, created_at)
                        VALUES (v_user, v_request, v_gift_id, v_outcome, NOW(3));
                    END record_refusal;
                    IF v_duplicate THEN
                        SELECT COUNT(*), MAX(outcome), MAX(exchange_id), MAX(balance_after)
                          INTO v_recorded, v_outcome, v_exchange_id, v_balance_after
                          FROM exchange_request
                         WHERE user_id = v_user AND request_id = v_request;
                        SET v_repeat = TRUE;
                    END IF;
                END IF;
            END IF;

            SET v_answer = JSON_OBJECT('seq', CAST(v_seq AS SIGNED), 'outcome', v_outcome,
                                       'repeat', IF(v_repeat, 1, 0));
            IF v_exchange_id IS NOT NULL THEN
                SET v_answer = JSON_SET(v_answer, '$.exchange_id', CAST(v_exchange_id AS SIGNED));
            END IF;
            IF v_balance_after IS NOT NULL THEN
                SET v_answer = JSON_SET(v_answer, '$.balance_after', CAST(v_balance_after AS SIGNED));
            END IF;
            IF v_stock IS NOT NULL THEN
                SET v_answer = JSON_SET(v_answer, '$.stock_left', CAST(v_stock AS SIGNED));
            END IF;
            SET v_answers = JSON_ARRAY_APPEND(v_answers, '$', JSON_EXTRACT(v_answer, '$'));
        END LOOP decide;
        CLOSE batch_requests;

        -- 4. One decrement of the hot row for the whole batch.
        IF v_taken > 0 THEN
            UPDATE exchange_gift SET stock = stock - v_taken WHERE gift_id = v_gift_id;
        END IF;

        SELECT a.seq, a.outcome, a.`repeat`, a.exchange_id, a.balance_after, a.stock_left
          FROM JSON_TABLE(v_answers, '$[*]' COLUMNS (
                   seq           INT         PATH '$.seq',
                   outcome       VARCHAR(20) PATH '$.outcome',
                   `repeat`      BOOLEAN     PATH '$.repeat',
                   exchange_id   BIGINT      PATH '$.exchange_id',
                   balance_after BIGINT      PATH '$.balance_after',
                   stock_left    INT         PATH '$.stock_left')) AS a
         ORDER BY a.seq;
    END decision;

    -- Last, and outside the handler: an error from here on is not a proven rollback.
    COMMIT;
END $$

DELIMITER ;
