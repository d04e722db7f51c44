//! `draw_lottery_batch` takes a short way for the common batch (every draw its user's first, no tier running
//! out) and the general way for every other; both must decide exactly alike. Many random batches (users who
//! drew before, users twice in a batch, two draws per user, a blank share, tiers running out mid-batch and the
//! campaign drawn out) are decided twice, on two databases: once sent in the compact form this toolkit writes,
//! which may take the short way, and once with spaces, which never does. Every answer, every draw and every
//! message must be the same (draw ids aside: an undone short way leaves gaps), and the short way must really
//! have been taken for many batches and undone for others. The short way answers in one row, the general way
//! one row per draw: both say the same.

use std::collections::HashMap;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use seckill::lottery::LotteryBooks;
use seckill::lottery::randomness::draw_number;
use seckill::migrate::Migrator;
use seckill::testing::TestDatabase;

use crate::common::{interleaved_ids_db, migrated_db};

/// A small deterministic generator: the same batches on every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

/// An answer row as the procedure sends it: seq, outcome, repeat, draw_id, tier_id, prize, prizes_left.
type AnswerRow = (i64, String, i64, Option<i64>, Option<i64>, Option<String>, Option<i64>);

/// An answer row without its draw id: seq, outcome, repeat, tier_id, prize, prizes_left.
type Answer = (i64, String, i64, Option<i64>, Option<String>, Option<i64>);

/// The draws as the compact form (`[1,2]`) or with spaces (`[1, 2]`): the users, in arrival order.
fn draws_json(draws: &[(i64, u32)], spaced: bool) -> String {
    let users: Vec<String> = draws.iter().map(|(user, _)| user.to_string()).collect();
    if spaced { format!("[ {} ]", users.join(", ")) } else { format!("[{}]", users.join(",")) }
}

/// The seed of every campaign here, the same on both databases, so that each user's draws are the same.
const SEED: &str = "5eed000000000000000000000000000000000000000000000000000000002026";

/// The number of a user's first draw in a campaign, as the procedures derive it from the seed.
fn first_r(campaign_id: i64, user: i64) -> u32 {
    draw_number(SEED, campaign_id, user, 1)
}

/// The answer of a batch of `draw_lottery_batch`, one tuple per draw, whichever form it came in: one row per
/// draw, or the short way's one row (the first draw id, the tiers won in order, the tiers' names).
async fn call(conn: &mut Conn, campaign_id: i64, draws: &str) -> Vec<Answer> {
    call_procedure(conn, "draw_lottery_batch", campaign_id, draws).await.0
}

/// The answer of a batch of `procedure`, one tuple per draw, and whether it came as one row naming no prize (the
/// answer of draw_lottery_blanks when it decided the batch itself).
async fn call_procedure(conn: &mut Conn, procedure: &str, campaign_id: i64, draws: &str) -> (Vec<Answer>, bool) {
    let call = format!("CALL {procedure}(?, ?)");
    let rows: Vec<Row> = conn.exec(call, (campaign_id, draws)).await.expect("a batch");
    if let [row] = rows.as_slice()
        && row.columns_ref()[0].name_str() == "first_draw_id"
    {
        let (_first, _increment, left, tiers, prizes): (i64, i64, i64, String, String) =
            mysql_async::from_row(row.clone());
        let no_names = prizes == "{}";
        let prizes: HashMap<String, String> = serde_json::from_str(&prizes).expect("the tiers' names");
        let answers = tiers
            .split(',')
            .zip(1..)
            .map(|(tier, seq)| match tier {
                "0" => (seq, "no_prize".to_string(), 0, None, None, Some(left)),
                _ => (seq, "won".to_string(), 0, tier.parse().ok(), prizes.get(tier).cloned(), Some(left)),
            })
            .collect();
        return (answers, no_names);
    }
    let answers = rows
        .into_iter()
        .map(|row| {
            let (seq, outcome, repeat, _draw_id, tier_id, prize, left): AnswerRow = mysql_async::from_row(row);
            (seq, outcome, repeat, tier_id, prize, left)
        })
        .collect();
    (answers, false)
}

/// The campaign's tiers: name, weight, stock.
const TIERS: [(&str, u64, i64); 3] = [("gold", 2, 20), ("silver", 10, 100), ("sticker", 30, 400)];

/// The tier a draw's r lands on: the wheel's slot `r * total DIV 2^32`, the tiers first, the blank share last.
fn landed(r: u32, blank_weight: u64) -> Option<&'static str> {
    let total = TIERS.iter().map(|(_, weight, _)| weight).sum::<u64>() + blank_weight;
    let slot = (u64::from(r) * total) >> 32;
    let mut upper = 0;
    TIERS
        .iter()
        .find(|(_, weight, _)| {
            upper += weight;
            slot < upper
        })
        .map(|(name, _, _)| *name)
}

/// A campaign of three small tiers, `draws_per_user` draws each and a blank share, with the seed [`SEED`] (and no
/// commitment: written by hand, as before commitments).
async fn campaign(conn: &mut Conn, draws_per_user: i32, blank_weight: i32) -> i64 {
    conn.exec_drop(
        "INSERT INTO lottery_campaign (name, start_time, end_time, draws_per_user, blank_weight) \
         VALUES ('random', NOW(3) - INTERVAL 1 HOUR, NOW(3) + INTERVAL 1 HOUR, ?, ?)",
        (draws_per_user, blank_weight),
    )
    .await
    .expect("a campaign");
    let campaign_id = i64::try_from(conn.last_insert_id().expect("its id")).expect("an id");
    for (position, (name, weight, stock)) in TIERS.iter().enumerate() {
        conn.exec_drop(
            "INSERT INTO lottery_tier (campaign_id, name, position, weight, stock, stocked) VALUES (?, ?, ?, ?, ?, ?)",
            (campaign_id, name, position + 1, weight, stock, stock),
        )
        .await
        .expect("a tier");
    }
    conn.exec_drop("INSERT INTO lottery_campaign_seed (campaign_id, seed) VALUES (?, ?)", (campaign_id, SEED))
        .await
        .expect("a seed");
    campaign_id
}

/// Every draw of the campaign by (user, draw_no): tier and r; and every prize message's payload without its
/// draw id, sorted.
async fn recorded(conn: &mut Conn, campaign_id: i64) -> (Vec<(i64, i64, Option<i64>, i64)>, Vec<String>) {
    let draws = conn
        .exec(
            "SELECT user_id, draw_no, tier_id, r FROM lottery_draw WHERE campaign_id = ? ORDER BY user_id, draw_no",
            (campaign_id,),
        )
        .await
        .expect("the draws");
    let messages = conn
        .exec(
            "SELECT CONCAT(JSON_VALUE(m.payload, '$.user_id'), '/', JSON_VALUE(m.payload, '$.tier_id'), '/', \
                    JSON_VALUE(m.payload, '$.prize'), '/', d.draw_no) \
             FROM message_outbox m JOIN lottery_draw d ON CAST(d.draw_id AS CHAR) = m.business_key \
             WHERE m.topic = 'lottery.prize' AND d.campaign_id = ? ORDER BY 1",
            (campaign_id,),
        )
        .await
        .expect("the messages");
    (draws, messages)
}

/// `size` first draws of users who never drew, numbered on from `next_user`, whose first draw's `r` is `wanted`,
/// each with that `r`.
fn fresh_draws(next_user: &mut i64, size: usize, campaign_id: i64, wanted: impl Fn(u32) -> bool) -> Vec<(i64, u32)> {
    let mut draws = Vec::with_capacity(size);
    while draws.len() < size {
        let user = *next_user;
        *next_user += 1;
        let r = first_r(campaign_id, user);
        if wanted(r) {
            draws.push((user, r));
        }
    }
    draws
}

/// One of the users before `next_user`, who drew already.
fn drew_before(random: &mut Lcg, next_user: i64) -> i64 {
    1 + random.below(next_user as u64 - 1) as i64
}

/// The session's savepoints set and rolled back: the short way tried, and undone.
async fn short_ways(conn: &mut Conn) -> (i64, i64) {
    let status: Vec<(String, i64)> = conn
        .query("SHOW SESSION STATUS WHERE Variable_name IN ('Handler_savepoint', 'Handler_savepoint_rollback')")
        .await
        .expect("the session's status");
    let value = |name: &str| status.iter().find(|(n, _)| n == name).map_or(0, |(_, v)| *v);
    (value("Handler_savepoint"), value("Handler_savepoint_rollback"))
}

#[tokio::test]
async fn the_short_way_decides_every_batch_exactly_as_the_general_way() {
    let short = migrated_db().await;
    let general = TestDatabase::companion("general", &Migrator::embedded().expect("the migrations"))
        .await
        .expect("a second database");
    let mut random = Lcg(0x10_77E2_2026);
    // Batches decided the short way, those undone to the general way, and draws of short-way batches that fell
    // through to another tier than the one they landed on (round 2 on the rows).
    let (mut short_batches, mut undone, mut fell_through) = (0, 0, 0);
    for (draws_per_user, blank_weight) in [(1, 0), (1, 20), (2, 10)] {
        let mut short_conn = short.pool().get_conn().await.expect("a connection");
        let mut general_conn = general.pool().get_conn().await.expect("a connection");
        let campaign_id = campaign(&mut short_conn, draws_per_user, blank_weight).await;
        assert_eq!(campaign(&mut general_conn, draws_per_user, blank_weight).await, campaign_id);
        // Fresh users, so that the short way applies; in one batch of four, one who drew before or just now.
        let mut next_user = 1;
        for _ in 0..60 {
            let size = 1 + random.below(40) as usize;
            let mut draws = fresh_draws(&mut next_user, size, campaign_id, |_| true);
            if random.below(4) == 0 {
                let again = drew_before(&mut random, next_user);
                draws.insert(random.below(size as u64 + 1) as usize, (again, first_r(campaign_id, again)));
            }
            let before = short_ways(&mut short_conn).await;
            let answers = call(&mut short_conn, campaign_id, &draws_json(&draws, false)).await;
            let after = short_ways(&mut short_conn).await;
            let expected = call(&mut general_conn, campaign_id, &draws_json(&draws, true)).await;
            assert_eq!(answers, expected, "batch {draws:?}");
            match (after.0 - before.0, after.1 - before.1) {
                (1, 0) => {
                    short_batches += 1;
                    fell_through += draws
                        .iter()
                        .zip(&answers)
                        .filter(|((_, r), answer)| {
                            answer.1 == "won" && answer.4.as_deref() != landed(*r, blank_weight as u64)
                        })
                        .count();
                }
                (1, 1) => undone += 1,
                _ => {}
            }
        }
        assert_eq!(short_ways(&mut general_conn).await, (0, 0), "the spaced form never takes the short way");
        assert_eq!(
            recorded(&mut short_conn, campaign_id).await,
            recorded(&mut general_conn, campaign_id).await,
            "the same draws and messages"
        );
        for db in [&short, &general] {
            let books = LotteryBooks::check(db.pool(), campaign_id).await.expect("the books balance");
            if blank_weight == 0 {
                assert_eq!(
                    books.units_won(),
                    TIERS.iter().map(|t| t.2).sum::<i64>(),
                    "every prize was drawn: {books:?}"
                );
            }
        }
    }
    // The short way was taken for many batches, round 2 included, and undone for the batches with a repeat.
    assert!(
        short_batches >= 40 && fell_through >= 20 && undone >= 10,
        "{short_batches} batches the short way ({fell_through} draws fell through), {undone} undone"
    );
}

/// `draw_lottery_blanks` against `draw_lottery_batch`, on two databases: random batches of first draws that land
/// on the blank share, and now and then one that lands on a prize or a user who drew before, which the blanks'
/// procedure hands to draw_lottery_batch. Every answer, draw and message is the same; most batches were decided
/// the blanks' way, and a campaign of two draws per user never is.
#[tokio::test]
async fn blanks_are_decided_as_draw_lottery_batch_decides_them() {
    let blanks = migrated_db().await;
    let general = TestDatabase::companion("general", &Migrator::embedded().expect("the migrations"))
        .await
        .expect("a second database");
    let mut random = Lcg(0xB1A4_2026);
    let (mut decided_as_blanks, mut handed_over) = (0, 0);
    for draws_per_user in [1, 2] {
        let mut blanks_conn = blanks.pool().get_conn().await.expect("a connection");
        let mut general_conn = general.pool().get_conn().await.expect("a connection");
        let blank_weight = 300;
        let campaign_id = campaign(&mut blanks_conn, draws_per_user, blank_weight).await;
        assert_eq!(campaign(&mut general_conn, draws_per_user, blank_weight).await, campaign_id);
        let tier_weight: u64 = TIERS.iter().map(|(_, weight, _)| weight).sum();
        let total = tier_weight + blank_weight as u64;
        // The first r on the blank share: slot r * total >> 32 at tier_weight.
        let first_blank = (tier_weight << 32).div_ceil(total);
        let mut next_user = 1;
        for _ in 0..60 {
            let size = 1 + random.below(40) as usize;
            let mut draws = fresh_draws(&mut next_user, size, campaign_id, |r| u64::from(r) >= first_blank);
            match random.below(6) {
                0 => draws[0] = fresh_draws(&mut next_user, 1, campaign_id, |r| u64::from(r) < first_blank)[0],
                1 => {
                    let again = drew_before(&mut random, next_user);
                    draws.push((again, first_r(campaign_id, again)));
                }
                _ => {}
            }
            let (answers, as_blanks) =
                call_procedure(&mut blanks_conn, "draw_lottery_blanks", campaign_id, &draws_json(&draws, false)).await;
            let expected = call(&mut general_conn, campaign_id, &draws_json(&draws, true)).await;
            assert_eq!(answers, expected, "batch {draws:?}");
            if as_blanks {
                decided_as_blanks += 1;
                assert_eq!(draws_per_user, 1, "two draws per user are draw_lottery_batch's");
            } else {
                handed_over += 1;
            }
        }
        assert_eq!(
            recorded(&mut blanks_conn, campaign_id).await,
            recorded(&mut general_conn, campaign_id).await,
            "the same draws and messages"
        );
        for db in [&blanks, &general] {
            LotteryBooks::check(db.pool(), campaign_id).await.expect("the books balance, the tally included");
        }
    }
    assert!(
        decided_as_blanks >= 30 && handed_over >= 70,
        "{decided_as_blanks} the blanks' way, {handed_over} handed over"
    );
}

/// Where one statement's auto-increment ids need not be consecutive (the "interleaved" lock mode), both short ways
/// step aside and the draws' ids are looked up: the same random batches of draws, through `draw_lottery_blanks`
/// and `draw_lottery_batch` in the compact form, get the same answers and rows as on a server whose ids are
/// consecutive (draw ids aside).
#[tokio::test]
async fn interleaved_auto_increment_ids_decide_as_consecutive_ones_do() {
    let consecutive = migrated_db().await;
    let interleaved = interleaved_ids_db().await;
    let mut random = Lcg(0x1D5_2026);
    for draws_per_user in [1, 2] {
        let mut one = consecutive.pool().get_conn().await.expect("a connection");
        let mut other = interleaved.pool().get_conn().await.expect("a connection");
        let campaign_id = campaign(&mut one, draws_per_user, 100).await;
        assert_eq!(campaign(&mut other, draws_per_user, 100).await, campaign_id, "fresh databases, the same ids");
        let mut next_user = 1;
        for round in 0..40 {
            let size = 1 + random.below(30) as usize;
            let mut draws = fresh_draws(&mut next_user, size, campaign_id, |_| true);
            if random.below(3) == 0 {
                let again = drew_before(&mut random, next_user);
                draws.push((again, first_r(campaign_id, again)));
            }
            let procedure = if round % 2 == 0 { "draw_lottery_batch" } else { "draw_lottery_blanks" };
            let json = draws_json(&draws, false);
            let (answers, _) = call_procedure(&mut one, procedure, campaign_id, &json).await;
            let (expected, _) = call_procedure(&mut other, procedure, campaign_id, &json).await;
            assert_eq!(answers, expected, "{procedure} {draws:?}");
        }
        assert_eq!(recorded(&mut one, campaign_id).await, recorded(&mut other, campaign_id).await);
        LotteryBooks::check(consecutive.pool(), campaign_id).await.expect("the books balance");
        LotteryBooks::check(interleaved.pool(), campaign_id).await.expect("the books balance, ids interleaved");
    }
}
