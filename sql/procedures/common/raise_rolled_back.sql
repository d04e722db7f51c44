-- raise_rolled_back: the one way the toolkit's procedures say "rolled back, nothing written".
--
--   CALL raise_rolled_back(errno, message);   -- from an EXIT handler, right after its ROLLBACK
--
-- Raises SQLSTATE '45RB0' with MYSQL_ERRNO the original error's code and MESSAGE_TEXT 'rolled back: <message>'
-- (cut to the 128 characters a condition holds). Clients trust this state, and only this one, to mean that the
-- call wrote nothing (src/database/call.rs): every other error once a CALL was sent leaves the outcome in doubt.
-- Callers call it only after their ROLLBACK succeeded (an error inside a handler is not handled again, so a
-- failed ROLLBACK never gets here) and never from a handler that covers their COMMIT.

DROP PROCEDURE IF EXISTS raise_rolled_back;

DELIMITER $$

CREATE PROCEDURE raise_rolled_back(
    IN v_errno   INT,
    IN v_message TEXT
)
BEGIN
    -- SIGNAL takes variables, not expressions.
    DECLARE v_code INT DEFAULT IF(v_errno BETWEEN 1 AND 65535, v_errno, 1644);
    DECLARE v_text VARCHAR(128) DEFAULT LEFT(CONCAT('rolled back: ', COALESCE(v_message, '')), 128);
    SIGNAL SQLSTATE '45RB0' SET MYSQL_ERRNO = v_code, MESSAGE_TEXT = v_text;
END $$

DELIMITER ;
