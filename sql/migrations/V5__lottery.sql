-- The lottery (抽奖): campaigns, their prize tiers, and one record per draw.
--
-- Every draw is decided by the draw_lottery_batch procedure, which locks the campaign row, records the draws,
-- takes units of the tiers' stock and writes one message_outbox row per win (topic 'lottery.prize') in one
-- transaction: a prize message exists exactly when its winning draw committed, and the gift service delivers it.
--
--   lottery_campaign  the campaign: its window, how many draws each user has and the share of the wheel that
--                     is "no prize". It is the hot row: every batch of draws of a campaign takes its lock first,
--                     so a campaign's draws are decided one batch at a time across every app instance.
--   lottery_tier      the prizes of a campaign, in wheel order (position): weight on the wheel, units left
--                     (stock) and units ever stocked. The books: stocked - stock = the tier's winning draws.
--   lottery_draw      one row per recorded draw, losers included (tier_id NULL: no prize). draw_no counts a
--                     user's draws in the campaign from 1; UNIQUE (campaign_id, user_id, draw_no) makes a draw
--                     beyond draws_per_user, or the same draw recorded twice, impossible whatever a caller does.
--                     r is the random number in [0, 2^32) the draw was decided with, for audits and replays.
--
-- Weights are bounded (a tier's at most 1,000,000, the blank share at most 1,000,000,000) so that r times the
-- wheel's total always fits a BIGINT. No foreign keys, as in V1 and V4: InnoDB would take a shared lock on the
-- parent for every insert, and the parent here (the campaign) is the hot row.
--
-- Instants are TIMESTAMP(3) with explicit defaults (see V2), so no column silently gains ON UPDATE.

CREATE TABLE lottery_campaign (
    campaign_id    BIGINT       NOT NULL AUTO_INCREMENT,
    name           VARCHAR(120) NOT NULL,
    start_time     TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) COMMENT 'first instant draws are taken',
    end_time       TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) COMMENT 'first instant draws are refused',
    draws_per_user INT          NOT NULL DEFAULT 1,
    blank_weight   INT          NOT NULL DEFAULT 0 COMMENT 'the wheel''s "no prize" share, even while stock remains',
    created_at     TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (campaign_id),
    CONSTRAINT lottery_campaign_window CHECK (start_time < end_time),
    CONSTRAINT lottery_campaign_draws_per_user CHECK (draws_per_user >= 1),
    CONSTRAINT lottery_campaign_blank_weight CHECK (blank_weight >= 0 AND blank_weight <= 1000000000)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COMMENT = 'lottery campaigns';

CREATE TABLE lottery_tier (
    tier_id     BIGINT       NOT NULL AUTO_INCREMENT,
    campaign_id BIGINT       NOT NULL,
    name        VARCHAR(120) NOT NULL COMMENT 'the prize, as the winner and the gift service see it',
    position    INT          NOT NULL COMMENT 'wheel order within the campaign, from 1',
    weight      INT          NOT NULL COMMENT 'share of the wheel',
    stock       INT          NOT NULL COMMENT 'units left',
    stocked     INT          NOT NULL COMMENT 'units ever put in stock',
    created_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (tier_id),
    -- The wheel in order, read by every batch.
    UNIQUE KEY uniq_campaign_position (campaign_id, position),
    CONSTRAINT lottery_tier_weight CHECK (weight > 0 AND weight <= 1000000),
    CONSTRAINT lottery_tier_stock_not_negative CHECK (stock >= 0),
    CONSTRAINT lottery_tier_stock_within_stocked CHECK (stock <= stocked)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COMMENT = 'the prizes of lottery campaigns';

CREATE TABLE lottery_draw (
    draw_id     BIGINT       NOT NULL AUTO_INCREMENT,
    campaign_id BIGINT       NOT NULL,
    user_id     BIGINT       NOT NULL,
    draw_no     INT          NOT NULL COMMENT 'the user''s draws in the campaign, from 1',
    tier_id     BIGINT       NULL DEFAULT NULL COMMENT 'the prize won, NULL for no prize',
    r           BIGINT       NOT NULL COMMENT 'the random number the draw was decided with, in [0, 2^32)',
    created_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (draw_id),
    -- A user's draws (the repeat check, "my draws"), and at most one row per draw number.
    UNIQUE KEY uniq_campaign_user_draw (campaign_id, user_id, draw_no),
    -- The books: wins per tier.
    KEY idx_campaign_tier (campaign_id, tier_id),
    CONSTRAINT lottery_draw_user_positive CHECK (user_id > 0),
    CONSTRAINT lottery_draw_no_positive CHECK (draw_no >= 1),
    CONSTRAINT lottery_draw_r CHECK (r >= 0 AND r <= 4294967295)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COMMENT = 'every recorded lottery draw, losers included';
