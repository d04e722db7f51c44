-- The lottery's draws counted on the campaign row, and one index less on every draw.
--
-- A campaign of a million users writes a million lottery_draw rows, each paying for every index it is in. The
-- (campaign_id, tier_id) index served two reads only, a campaign's status (draws and wins) and the books (wins
-- per tier): the status now reads a counter instead, kept by draw_lottery_batch under the campaign's row lock
-- that every batch holds anyway (one UPDATE per batch, never per draw), and wins come from the tiers' stock
-- (stocked - stock). The books still count the rows themselves, in one pass, and check the counter against them.

ALTER TABLE lottery_campaign
    ADD COLUMN draws_recorded BIGINT NOT NULL DEFAULT 0 COMMENT 'lottery_draw rows of the campaign, kept by draw_lottery_batch'
        AFTER blank_weight;

UPDATE lottery_campaign c
   SET c.draws_recorded = (SELECT COUNT(*) FROM lottery_draw d WHERE d.campaign_id = c.campaign_id);

ALTER TABLE lottery_draw DROP INDEX idx_campaign_tier;
