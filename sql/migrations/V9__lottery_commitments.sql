-- A lottery anyone can verify: a secret seed per campaign with a public commitment, prize values, the batch each
-- draw was decided in, and rules the database itself refuses to change once committed.
--
-- How a draw is derived and checked is written down in docs/lottery-verification.md; in short, the commitment is
-- SHA-256 over the seed and the campaign's canonical rules, shown from creation on, and every draw's number is
-- the first 32 bits of SHA-256 over the seed, the campaign, the user and the draw number, computed by the draw
-- procedures themselves (no caller chooses it).
--
--   lottery_campaign_seed  the campaign's secret seed: 32 bytes from the operating system's CSPRNG, as 64 lowercase
--                          hex digits. A table of its own so that a deployment can grant reports and dashboards
--                          SELECT on the lottery's other tables and not on this one; the app's account reads it
--                          to draw and to reveal it once the campaign is over (ended, or every prize drawn).
--   lottery_campaign       commitment: the public commitment (64 hex digits), set once, at the end of the
--                          transaction that creates the campaign; NULL for a campaign created before this
--                          migration, which cannot be verified.
--   lottery_tier           value_fen: the prize's value in fen (1/100 yuan), declared at creation, checked
--                          against the legal cap on the top prize.
--   lottery_draw           opens_batch: 1 on the first draw of each batch of draw_lottery_batch, 0 on its others,
--                          NULL for a draw decided by draw_lottery_blanks (it landed on the blank share and met
--                          no stock). Batches of a campaign run one at a time, so draw id order is commit order,
--                          and the flags cut it into the batches that a replay decides as sets.
--
-- Rules frozen: once a campaign's commitment is set, triggers refuse any change of its window, draws per user,
-- blank share, name or commitment, any change of a tier's name, position, weight, value or units stocked, any
-- increase of a tier's stock (draws only take units), any tier added or removed, any change of its seed, and
-- deleting either. They refuse hand-written SQL as well as the toolkit's; a campaign without a commitment
-- (created before this migration) keeps its old freedom. The triggers' bodies hold statements of their own,
-- hence DELIMITER, as in the procedures' files. Creating a trigger with a binary log on takes SUPER or
-- log_bin_trust_function_creators = 1 (docs/operations.md).
--
-- Existing campaigns get a seed from RANDOM_BYTES (MariaDB 10.10+, MySQL 8.0+), so that their remaining draws
-- are derived as every new campaign's are.

CREATE TABLE lottery_campaign_seed (
    campaign_id BIGINT   NOT NULL,
    seed        CHAR(64) CHARACTER SET ascii NOT NULL COMMENT '32 random bytes as lowercase hex: secret until revealed',
    PRIMARY KEY (campaign_id),
    CONSTRAINT lottery_campaign_seed_hex CHECK (seed REGEXP '^[0-9a-f]{64}$')
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COMMENT = 'the secret seeds of lottery campaigns';

INSERT INTO lottery_campaign_seed (campaign_id, seed)
SELECT c.campaign_id, LOWER(HEX(RANDOM_BYTES(32))) FROM lottery_campaign c;

ALTER TABLE lottery_campaign
    ADD COLUMN commitment CHAR(64) CHARACTER SET ascii NULL DEFAULT NULL
        COMMENT 'SHA-256 over the seed and the canonical rules; NULL: created before commitments';

ALTER TABLE lottery_tier
    ADD COLUMN value_fen BIGINT NOT NULL DEFAULT 0 COMMENT 'the prize''s value in fen (1/100 yuan)' AFTER weight,
    ADD CONSTRAINT lottery_tier_value CHECK (value_fen >= 0);

ALTER TABLE lottery_draw
    ADD COLUMN opens_batch TINYINT NULL DEFAULT NULL
        COMMENT '1: first draw of a batch, 0: a later one, NULL: decided apart on the blank share';

DELIMITER $$

CREATE TRIGGER lottery_campaign_frozen BEFORE UPDATE ON lottery_campaign FOR EACH ROW
BEGIN
    IF OLD.commitment IS NOT NULL
       AND NOT (CAST(NEW.name AS BINARY) <=> CAST(OLD.name AS BINARY) AND NEW.start_time <=> OLD.start_time AND NEW.end_time <=> OLD.end_time
                AND NEW.draws_per_user <=> OLD.draws_per_user AND NEW.blank_weight <=> OLD.blank_weight
                AND NEW.commitment <=> OLD.commitment AND NEW.campaign_id <=> OLD.campaign_id) THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'lottery rules are frozen: the campaign is committed';
    END IF;
END $$

CREATE TRIGGER lottery_campaign_kept BEFORE DELETE ON lottery_campaign FOR EACH ROW
BEGIN
    IF OLD.commitment IS NOT NULL THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'lottery rules are frozen: a committed campaign is kept';
    END IF;
END $$

CREATE TRIGGER lottery_tier_added BEFORE INSERT ON lottery_tier FOR EACH ROW
BEGIN
    IF EXISTS (SELECT 1 FROM lottery_campaign c WHERE c.campaign_id = NEW.campaign_id AND c.commitment IS NOT NULL)
    THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'lottery rules are frozen: no tier is added to a committed campaign';
    END IF;
END $$

-- Fired by every batch that takes units (one row per tier touched), so written for that case: plain
-- comparisons first (a nested IF: MariaDB would otherwise evaluate the EXISTS too), the campaign read only when
-- a frozen column changes. About 4 µs a row on this project's test machine. Names compare as bytes: the
-- column's collation would take "Mug" and "mug " for the same name.
CREATE TRIGGER lottery_tier_frozen BEFORE UPDATE ON lottery_tier FOR EACH ROW
BEGIN
    IF NEW.stock > OLD.stock OR NEW.stocked <> OLD.stocked OR NEW.weight <> OLD.weight
       OR NEW.value_fen <> OLD.value_fen OR NEW.position <> OLD.position OR NEW.campaign_id <> OLD.campaign_id
       OR NEW.tier_id <> OLD.tier_id OR CAST(NEW.name AS BINARY) <> CAST(OLD.name AS BINARY) THEN
        IF EXISTS (SELECT 1 FROM lottery_campaign c
                    WHERE c.campaign_id = OLD.campaign_id AND c.commitment IS NOT NULL) THEN
            SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'lottery rules are frozen: the campaign is committed';
        END IF;
    END IF;
END $$

CREATE TRIGGER lottery_tier_kept BEFORE DELETE ON lottery_tier FOR EACH ROW
BEGIN
    IF EXISTS (SELECT 1 FROM lottery_campaign c WHERE c.campaign_id = OLD.campaign_id AND c.commitment IS NOT NULL)
    THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'lottery rules are frozen: a committed campaign''s tiers are kept';
    END IF;
END $$

CREATE TRIGGER lottery_seed_frozen BEFORE UPDATE ON lottery_campaign_seed FOR EACH ROW
BEGIN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'lottery rules are frozen: a campaign''s seed never changes';
END $$

CREATE TRIGGER lottery_seed_kept BEFORE DELETE ON lottery_campaign_seed FOR EACH ROW
BEGIN
    IF EXISTS (SELECT 1 FROM lottery_campaign c WHERE c.campaign_id = OLD.campaign_id) THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'lottery rules are frozen: a campaign''s seed is kept';
    END IF;
END $$

DELIMITER ;
