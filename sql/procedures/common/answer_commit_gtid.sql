-- answer_commit_gtid: the last result set of the toolkit's write procedures, right after their COMMIT.
--
--   CALL answer_commit_gtid();   -- one row: gtid, the commit's GTID ('' for none)
--
-- On MariaDB the GTID is @@last_gtid, the session's last commit (empty without a binary log): a read on a
-- replica can wait for it with MASTER_GTID_WAIT and then see the write. MySQL has no @@last_gtid (it tells a
-- session's GTIDs only through session tracking, in OK packets), so there the answer is '' and reads after a
-- write go to the primary. The statement is prepared at run time so that both servers accept this procedure;
-- a variable a server does not know would otherwise fail the CREATE (or the call, after the commit: in doubt).

DROP PROCEDURE IF EXISTS answer_commit_gtid;

DELIMITER $$

CREATE PROCEDURE answer_commit_gtid()
BEGIN
    IF VERSION() LIKE '%MariaDB%' THEN
        PREPARE commit_gtid FROM 'SELECT @@last_gtid AS gtid';
    ELSE
        PREPARE commit_gtid FROM 'SELECT '''' AS gtid';
    END IF;
    EXECUTE commit_gtid;
    DEALLOCATE PREPARE commit_gtid;
END $$

DELIMITER ;
