-- lottery_draws_compact: whether a batch of draws is in the compact form this toolkit's client writes.
--
--   CALL lottery_draws_compact('[{"user":1,"r":123},{"user":2,"r":4000000000}]', @compact);   -- TRUE
--
-- The compact form is [{"user":U,"r":R},...] with no spaces, U a positive integer of 1 to 18 digits without a
-- leading zero and R an integer in [0, 4294967295]. One case-sensitive regular expression that spells out the
-- ranges checks it whole, in a fraction of the time a parse takes; a batch of at most 170,000 characters holds
-- fewer than 10,000 draws (a draw takes 17 at least). The draw procedures (draw_lottery_batch.sql,
-- draw_lottery_blanks.sql) take their short ways only for such input, and parse anything else draw by draw.
-- A procedure rather than a function: with a binary log, creating a function needs SUPER (or
-- log_bin_trust_function_creators), which the account that migrates should not have.

DROP PROCEDURE IF EXISTS lottery_draws_compact;

DELIMITER $$

CREATE PROCEDURE lottery_draws_compact(
    IN  v_draws   MEDIUMTEXT,
    OUT v_compact BOOLEAN
)
BEGIN
    SET v_compact = LENGTH(v_draws) <= 170000
        AND COALESCE(v_draws REGEXP '(?-i)^\\[\\{"user":[1-9][0-9]{0,17},"r":(0|[1-9][0-9]{0,8}|[1-3][0-9]{9}|4[01][0-9]{8}|42[0-8][0-9]{7}|429[0-3][0-9]{6}|4294[0-8][0-9]{5}|42949[0-5][0-9]{4}|429496[0-6][0-9]{3}|4294967[01][0-9]{2}|42949672[0-8][0-9]|429496729[0-5])\\}(,\\{"user":[1-9][0-9]{0,17},"r":(0|[1-9][0-9]{0,8}|[1-3][0-9]{9}|4[01][0-9]{8}|42[0-8][0-9]{7}|429[0-3][0-9]{6}|4294[0-8][0-9]{5}|42949[0-5][0-9]{4}|429496[0-6][0-9]{3}|4294967[01][0-9]{2}|42949672[0-8][0-9]|429496729[0-5])\\})*\\]$', FALSE);
END $$

DELIMITER ;
