-- lottery_draws_compact: whether a batch of draws is in the compact form this toolkit's client writes.
--
--   CALL lottery_draws_compact('[1,2,30]', @compact);   -- TRUE
--
-- The compact form is [U,U,...] with no spaces, each U a user id: a positive integer of 1 to 18 digits without a
-- leading zero. One case-sensitive regular expression checks it whole, in a fraction of the time a parse takes,
-- once the length and the count of commas say the batch holds at most 10,000 draws of at most 18 digits.
-- The draw procedures (draw_lottery_batch.sql, draw_lottery_blanks.sql) take their short ways only for such
-- input, and parse anything else draw by draw.
-- A procedure rather than a function: with a binary log, creating a function needs SUPER (or
-- log_bin_trust_function_creators), which the account that migrates should not have.

DROP PROCEDURE IF EXISTS lottery_draws_compact;

DELIMITER $$

CREATE PROCEDURE lottery_draws_compact(
    IN  v_draws   MEDIUMTEXT,
    OUT v_compact BOOLEAN
)
BEGIN
    SET v_compact = LENGTH(v_draws) <= 190000
        AND LENGTH(v_draws) - LENGTH(REPLACE(v_draws, ',', '')) < 10000
        AND COALESCE(v_draws REGEXP '(?-i)^\\[[1-9][0-9]{0,17}(,[1-9][0-9]{0,17})*\\]$', FALSE);
END $$

DELIMITER ;
