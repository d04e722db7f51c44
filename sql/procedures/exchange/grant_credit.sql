-- grant_credit: add points to a user's balance, creating the balance on the user's first grant.
--
--   CALL grant_credit(user_id, amount, note);
--
-- Returns one row (balance): the balance after the grant. Writes the credit row (created or updated) and one
-- credit_ledger row (reason 'grant', delta = amount, reference = the note) in one transaction.
--
-- Refuses, writing nothing, a user id that is not positive, an amount that is not positive, and a balance that
-- would pass BIGINT's range.
--
-- Errors say whether anything was written:
--   SQLSTATE '45RB0'  this procedure rolled its transaction back itself: nothing was written. MYSQL_ERRNO is the
--                     original error's code (1644 for the refusals above), MESSAGE_TEXT 'rolled back: <message>'.
--   anything else     no such proof: the grant may or may not have committed. Read the ledger before granting
--                     again: a grant is not idempotent.
--
-- The answer row is sent before the transaction ends, and the COMMIT is the last statement that writes and lies
-- outside the handler: a client trusts the row only when the CALL as a whole succeeded.
--
-- After the COMMIT, a last result set, one row: gtid, the commit's GTID (@@last_gtid; empty without a binary
-- log), so a later read on a replica can wait for it. On MySQL, which has no @@last_gtid, the GTID is empty (see
-- answer_commit_gtid.sql).

DROP PROCEDURE IF EXISTS grant_credit;

DELIMITER $$

CREATE PROCEDURE grant_credit(
    IN v_user_id BIGINT,
    IN v_amount  BIGINT,
    IN v_note    VARCHAR(255)
)
BEGIN
    decision: BEGIN
        DECLARE v_balance BIGINT;
        DECLARE v_errno   INT DEFAULT 0;
        DECLARE v_message TEXT DEFAULT '';
        DECLARE EXIT HANDLER FOR SQLEXCEPTION
        BEGIN
            GET DIAGNOSTICS CONDITION 1 v_errno = MYSQL_ERRNO, v_message = MESSAGE_TEXT;
            ROLLBACK;
            CALL raise_rolled_back(v_errno, v_message);
        END;

        IF v_user_id IS NULL OR v_user_id <= 0 THEN
            SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'grant_credit: the user id must be positive';
        END IF;
        IF v_amount IS NULL OR v_amount <= 0 THEN
            SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'grant_credit: the amount must be positive';
        END IF;

        START TRANSACTION;

        -- One statement creates or tops up the balance and leaves its row locked until the COMMIT, so the
        -- balance read next is the one this grant produced. An overflow fails here (error 1690) and rolls back.
        INSERT INTO credit (user_id, credit, updated_at)
        VALUES (v_user_id, v_amount, NOW(3))
            ON DUPLICATE KEY UPDATE credit = credit + v_amount, updated_at = NOW(3);

        SELECT credit INTO v_balance FROM credit WHERE user_id = v_user_id FOR UPDATE;

        INSERT INTO credit_ledger (user_id, delta, balance_after, reason, reference, created_at)
        VALUES (v_user_id, v_amount, v_balance, 'grant', COALESCE(v_note, ''), NOW(3));

        SELECT v_balance AS balance;
    END decision;

    -- Last, and outside the handler: an error from here on is not a proven rollback.
    COMMIT;
    -- The commit's GTID, for reads that must see it on a replica.
    CALL answer_commit_gtid();
END $$

DELIMITER ;
