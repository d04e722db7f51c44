//! The lottery act's reconciliation: what the crowd was told against the campaign's draws, tiers and prize
//! messages in the database, and the gift service's effects against the wins, every check a line of the table.
//!
//! Everything is of this run's campaign, so a database used before still reconciles.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use mysql_async::Pool;
use seckill::database::acquire;
use seckill::database::rows::exec_all;
use seckill::local::gift_service::CallLog;
use seckill::lottery::PRIZE_TOPIC;
use seckill::lottery::delivery::{GiftStats, GiftWorkerConfig};
use seckill::lottery::{Campaign, DrawOutcome, LotteryBooks};

use super::super::Failure;
use super::checks::Check;
use super::lottery_crowd::CrowdReport;
use super::message_service::MessageStates;

/// A recorded draw: (user, draw, tier won).
type DrawRow = (i64, i64, Option<i64>);

/// The states of the prize messages of the campaign's wins (a win without one counts as missing).
pub(super) async fn message_states(shop: &Pool, campaign_id: i64) -> Result<MessageStates, Failure> {
    let mut conn = acquire(shop).await?;
    // A win's message is found by its unique (topic, business_key), as in the lottery's books.
    let rows: Vec<(Option<String>, i64)> = exec_all(
        &mut conn,
        "SELECT m.state, COUNT(*) FROM lottery_draw d \
           LEFT JOIN message_outbox m ON m.topic = ? AND m.business_key = CONCAT(d.draw_id) \
          WHERE d.campaign_id = ? AND d.tier_id IS NOT NULL GROUP BY m.state",
        (PRIZE_TOPIC, campaign_id),
        "the campaign's prize messages",
    )
    .await?;
    MessageStates::count(rows)
}

/// What the gift side did, for the reconciliation.
pub(super) struct GiftSide {
    /// Gifts the service delivered per draw id (one effect per key).
    pub(super) effects: HashMap<i64, u64>,
    pub(super) calls: CallLog,
    pub(super) stats: GiftStats,
    pub(super) config: GiftWorkerConfig,
}

/// Every check, in the table's order.
pub(super) async fn reconcile(
    shop: &Pool,
    campaign: &Campaign,
    books: &LotteryBooks,
    crowd: &CrowdReport,
    gifts: &GiftSide,
) -> Result<Vec<Check>, Failure> {
    let mut conn = acquire(shop).await?;
    let recorded: Vec<DrawRow> = exec_all(
        &mut conn,
        "SELECT user_id, draw_id, tier_id FROM lottery_draw WHERE campaign_id = ?",
        (campaign.campaign_id,),
        "the campaign's draws",
    )
    .await?;
    drop(conn);
    let mut by_user: HashMap<i64, Vec<(i64, Option<i64>)>> = HashMap::new();
    for (user_id, draw_id, tier_id) in &recorded {
        by_user.entry(*user_id).or_default().push((*draw_id, *tier_id));
    }

    // What each user was told, in order.
    let mut answers: HashMap<i64, Vec<&DrawOutcome>> = HashMap::new();
    for told in &crowd.told {
        answers.entry(told.user_id).or_default().push(&told.outcome);
    }
    let result = |outcome: &DrawOutcome| match outcome {
        DrawOutcome::Won { draw_id, tier_id, .. } => Some((*draw_id, Some(*tier_id))),
        DrawOutcome::NoPrize { draw_id, .. } => Some((*draw_id, None)),
        _ => None,
    };
    let told: HashMap<i64, (i64, Option<i64>)> = answers
        .iter()
        .filter_map(|(user_id, outcomes)| outcomes.iter().find_map(|outcome| result(outcome)).map(|r| (*user_id, r)))
        .collect();
    let unsure: HashSet<i64> = answers
        .iter()
        .filter(|(user_id, outcomes)| {
            !told.contains_key(user_id) && outcomes.iter().any(|o| matches!(o, DrawOutcome::InnerError(_)))
        })
        .map(|(user_id, _)| *user_id)
        .collect();
    let mut checks = Vec::new();

    // Every recorded draw is a result a user was told, and every result told is recorded as told.
    let differ = told.iter().filter(|(user_id, result)| by_user.get(user_id) != Some(&vec![**result])).count();
    let untold: Vec<i64> = by_user.keys().filter(|user_id| !told.contains_key(user_id)).copied().collect();
    let untold_unsure = untold.iter().filter(|user_id| unsure.contains(user_id)).count();
    checks.push(Check::new(
        differ == 0 && untold_unsure == untold.len() && books.draws == recorded.len() as i64,
        format!(
            "draws recorded = users told a result: {} draws = {} users told won or no prize ({differ} told \
             otherwise, {} recorded untold, {} in doubt)",
            books.draws,
            told.len(),
            untold.len(),
            unsure.len()
        ),
    ));

    // Per tier: units taken = wins recorded = wins told.
    for tier in &campaign.tiers {
        let held = books.tiers.iter().find(|held| held.tier_id == tier.tier_id);
        let told_won = told.values().filter(|(_, tier_id)| *tier_id == Some(tier.tier_id)).count() as i64;
        let (passed, what) = match held {
            Some(held) => (
                held.balances() && told_won <= held.wins && held.wins <= told_won + unsure.len() as i64,
                format!(
                    "tier {} {:?}: stock {} -> {}, {} taken = {} wins recorded = {told_won} told won",
                    tier.tier_id,
                    tier.name,
                    held.stocked,
                    held.stock,
                    held.stocked - held.stock,
                    held.wins
                ),
            ),
            None => (false, format!("tier {} {:?} is not in the database", tier.tier_id, tier.name)),
        };
        checks.push(Check::new(passed, what));
    }
    checks.push(Check::new(
        books.users_over_limit == 0,
        format!("one draw per user: {} users drew, {} more than once", books.users, books.users_over_limit),
    ));

    // A user's draws beyond the first (a double click) are answered with its result, flagged repeat: one
    // result per user, told once as decided (or never, when the draw that decided it was in doubt).
    let repeats = crowd.count(DrawOutcome::is_repeat);
    let changed = answers
        .iter()
        .filter(|(user_id, outcomes)| {
            let Some(first) = told.get(user_id) else { return false };
            let results: Vec<_> = outcomes.iter().filter_map(|o| result(o).map(|r| (r, o.is_repeat()))).collect();
            let decided = results.iter().filter(|(_, repeat)| !repeat).count();
            let in_doubt = outcomes.iter().any(|o| matches!(o, DrawOutcome::InnerError(_)));
            results.iter().any(|(r, _)| r != first) || !(decided == 1 || (decided == 0 && in_doubt))
        })
        .count();
    checks.push(Check::new(
        changed == 0,
        format!("draws again answered with the first result: {repeats} flagged repeat, {changed} users told otherwise"),
    ));

    // "All drawn" is told only once every prize is won, and nothing is recorded for it.
    let all_drawn = crowd.count(|outcome| *outcome == DrawOutcome::AllDrawn);
    let prizes_left: i64 = books.tiers.iter().map(|tier| tier.stock).sum();
    let turned_away: Vec<i64> = answers
        .iter()
        .filter(|(user_id, outcomes)| {
            !told.contains_key(user_id) && outcomes.iter().all(|outcome| **outcome == DrawOutcome::AllDrawn)
        })
        .map(|(user_id, _)| *user_id)
        .collect();
    let recorded_anyway = turned_away.iter().filter(|user_id| by_user.contains_key(user_id)).count();
    checks.push(Check::new(
        (all_drawn == 0 || prizes_left == 0) && recorded_anyway == 0,
        format!(
            "\"all drawn\" only once no prize is left: {all_drawn} answers, {prizes_left} prizes left; {} users \
             turned away, {recorded_anyway} of them with a draw recorded",
            turned_away.len()
        ),
    ));

    checks.push(Check::new(
        books.wins_with_one_message == books.wins && books.messages == books.wins,
        format!(
            "every win: one prize message with its own payload, no message without a win: {} of {} wins, {} \
             messages",
            books.wins_with_one_message, books.wins, books.messages
        ),
    ));
    let states = message_states(shop, campaign.campaign_id).await?;
    checks.push(Check::new(
        states.consumed == books.wins && states.total() == books.wins,
        format!("prize messages: {}", states.describe()),
    ));

    // The gift service: one effect per win, none for a draw that did not win.
    let wins: Vec<i64> = recorded.iter().filter(|(_, _, tier)| tier.is_some()).map(|(_, draw, _)| *draw).collect();
    let effects_of = |draw_id: &i64| gifts.effects.get(draw_id).copied().unwrap_or(0);
    let once = wins.iter().filter(|draw_id| effects_of(draw_id) == 1).count();
    let none = wins.iter().filter(|draw_id| effects_of(draw_id) == 0).count();
    let stray = recorded.iter().filter(|(_, draw_id, tier)| tier.is_none() && effects_of(draw_id) > 0).count();
    checks.push(Check::new(
        once == wins.len() && stray == 0,
        format!(
            "every win delivered once in effect: {once} of {} wins one gift, {none} none, {} more, {stray} gifts \
             for draws that did not win; {} calls again for a gift already delivered, absorbed by its key",
            wins.len(),
            wins.len() - once - none,
            gifts.stats.duplicates
        ),
    ));

    // The gift service is never called faster than the worker's limiter allows: in any second, at most burst +
    // rate + 1 calls granted, and up to `concurrency` more arriving late (see the gift delivery's README).
    let config = &gifts.config;
    let bound = config.burst as usize + config.rate.floor() as usize + 1 + config.concurrency;
    let busiest = gifts.calls.max_calls_within(Duration::from_secs(1));
    let achieved = gifts.calls.achieved_rate().map_or("no".to_string(), |rate| format!("{rate:.0}"));
    checks.push(Check::new(
        busiest <= bound,
        format!(
            "gift worker: {achieved} calls/s achieved of {} configured over {} calls; at most {busiest} calls \
             within any second (the limiter allows {bound})",
            config.rate,
            gifts.calls.calls.len()
        ),
    ));
    Ok(checks)
}
