-- The lottery's draws counted in a tally, and one index less on every draw.
--
-- A campaign of a million users writes a million lottery_draw rows, each paying for every index it is in. The
-- (campaign_id, tier_id) index served two reads only, a campaign's status (draws and wins) and the books (wins
-- per tier): wins come from the tiers' stock (stocked - stock), and draws from this tally, which the draw
-- procedures add to once per batch, never once per draw. The books still count the rows themselves, in one
-- pass, and check the tally against them.
--
--   lottery_draw_tally  draws recorded per campaign, in a few rows (shard) so that batches decided at the same
--                       time on different connections add to different rows: batches of draws that land on the
--                       blank share are decided side by side under a shared lock (see draw_lottery_blanks.sql),
--                       and one counter row would serialise them again. A campaign's draws are the sum of its
--                       rows.

CREATE TABLE lottery_draw_tally (
    campaign_id BIGINT  NOT NULL,
    shard       TINYINT NOT NULL COMMENT 'the connection that added, modulo 16',
    draws       BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, shard),
    CONSTRAINT lottery_draw_tally_draws CHECK (draws >= 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COMMENT = 'draws recorded per lottery campaign, summed over shards';

INSERT INTO lottery_draw_tally (campaign_id, shard, draws)
SELECT d.campaign_id, 0, COUNT(*) FROM lottery_draw d GROUP BY d.campaign_id;

ALTER TABLE lottery_draw DROP INDEX idx_campaign_tier;
