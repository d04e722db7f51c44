//! The rules every answer must keep, checked against the final databases. The checker knows the product's
//! promise, not what this run was expected to do: a success has its row; a refusal or a proven rollback has none
//! of its own making; a repeat is the first answer again; "all drawn" or "sold out" is said only to whoever has no
//! outcome; an answer in doubt resolves, through the APIs' own ways of asking, to exactly what the database holds;
//! every message committed is consumed once in effect.

use std::collections::{BTreeMap, HashMap, HashSet};

use hyper::Method;
use hyper::header::COOKIE;
use mysql_async::Pool;
use mysql_async::prelude::Queryable;
use seckill::exchange::Books;
use seckill::lottery::LotteryBooks;

use super::crowd::{ApiClient, Asked, Event, Heard, Stage};
use crate::common::http::signed_in;

/// What the checker found.
#[derive(Debug, Default)]
pub struct Report {
    pub requests: usize,
    pub answers_checked: usize,
    /// Answers that decided nothing the client could tell (a 503 in doubt, a 502, no answer at all).
    pub in_doubt: usize,
    /// Of those, the ones whose request later heard a decided answer, or was settled by the result endpoints.
    pub resolved: usize,
    pub violations: Vec<String>,
}

impl Report {
    /// Counts `heard` as an answer checked, and as in doubt when it is: true then.
    fn checked_in_doubt(&mut self, heard: &Heard) -> bool {
        self.answers_checked += 1;
        let doubt = in_doubt(heard);
        self.in_doubt += usize::from(doubt);
        doubt
    }

    fn violation(&mut self, rule: &str, detail: String) {
        if self.violations.len() < 50 {
            self.violations.push(format!("{rule}: {detail}"));
        }
    }
}

/// An answer that decided nothing the client can tell: the request may or may not have taken effect.
fn in_doubt(heard: &Heard) -> bool {
    matches!(heard, Heard::Nothing(_)) || matches!(heard.status(), Some(500 | 502 | 503 | 504))
}

/// The shop's and the warehouse's databases, the gift service's effects, and a client to ask the APIs with.
pub struct Ground<'a> {
    pub shop: &'a Pool,
    pub warehouse: &'a Pool,
    pub gift_effects: HashMap<i64, u64>,
    pub client: ApiClient,
    pub stage: Stage,
    pub initial_stock: [i64; 2],
}

/// Checks every event of `events` against the ground.
pub async fn check(events: &[Event], ground: &Ground<'_>) -> Report {
    let mut report = Report { requests: events.len(), ..Report::default() };
    seckill(events, ground, &mut report).await;
    exchange(events, ground, &mut report).await;
    lottery(events, ground, &mut report).await;
    messages(ground, &mut report).await;
    report
}

async fn seckill(events: &[Event], ground: &Ground<'_>, report: &mut Report) {
    let mut conn = ground.shop.get_conn().await.unwrap();
    let rows: Vec<(i64, i64)> = conn.query("SELECT seckill_id, user_phone FROM success_killed").await.unwrap();
    let rows: HashSet<(i64, i64)> = rows.into_iter().collect();
    let mut answers: BTreeMap<(i64, i64), Vec<&Heard>> = BTreeMap::new();
    for event in events {
        if let Asked::Execution { seckill_id, buyer } = &event.asked {
            answers.entry((*seckill_id, buyer.get())).or_default().push(&event.heard);
        }
    }
    for (&(item, buyer), heard) in &answers {
        let has_row = rows.contains(&(item, buyer));
        let mut doubt = 0;
        let mut told_success = false;
        for heard in heard {
            if report.checked_in_doubt(heard) {
                doubt += 1;
                continue;
            }
            match (heard.status(), heard.data().and_then(|data| data["state"].as_i64())) {
                (Some(200), Some(1)) => {
                    told_success = true;
                    if !has_row {
                        report.violation("a success has its row", format!("item {item}, buyer {buyer}"));
                    }
                }
                (Some(200), Some(-1)) if !has_row => {
                    report.violation("a repeat has the first success's row", format!("item {item}, buyer {buyer}"));
                }
                (Some(200), Some(-2..=0)) | (Some(429), _) => {}
                _ => report.violation("an answer of the API", format!("item {item}, buyer {buyer}: {heard:?}")),
            }
        }
        if has_row && !told_success && doubt == 0 {
            report.violation("a row's buyer was told", format!("item {item}, buyer {buyer}: {heard:?}"));
        }
        if doubt > 0 {
            // Each settled by the result endpoint: it shows the row exactly when there is one.
            let path = format!("/seckill/{item}/result");
            let result =
                ground.client.send(Method::GET, &path, &[(COOKIE.as_str(), format!("killPhone={buyer}"))]).await;
            match result.data() {
                Some(data) if data.is_null() != has_row => report.resolved += doubt,
                _ => report
                    .violation("an execution in doubt resolves", format!("item {item}, buyer {buyer}: {result:?}")),
            }
        }
    }
    for (item, initial) in ground.stage.items.iter().zip(ground.initial_stock) {
        let stock: i64 =
            conn.exec_first("SELECT number FROM seckill WHERE seckill_id = ?", (item,)).await.unwrap().unwrap();
        let sold = rows.iter().filter(|(id, _)| id == item).count() as i64;
        if initial - stock != sold || stock < 0 {
            report.violation("sold = rows = stock taken", format!("item {item}: {initial} -> {stock}, {sold} rows"));
        }
    }
}

async fn exchange(events: &[Event], ground: &Ground<'_>, report: &mut Report) {
    let mut conn = ground.shop.get_conn().await.unwrap();
    let recorded: Vec<(i64, String, i64, String, Option<i64>)> =
        conn.query("SELECT user_id, request_id, gift_id, outcome, exchange_id FROM exchange_request").await.unwrap();
    let recorded: HashMap<(i64, String), (i64, String, Option<i64>)> =
        recorded.into_iter().map(|(user, key, gift, outcome, id)| ((user, key), (gift, outcome, id))).collect();
    let exchanges: Vec<(i64, String, i64, i64)> =
        conn.query("SELECT user_id, request_id, id, product_id FROM credit_exchange").await.unwrap();
    let exchanges: HashMap<(i64, String), (i64, i64)> =
        exchanges.into_iter().map(|(user, key, id, gift)| ((user, key), (id, gift))).collect();
    let mut answers: BTreeMap<(i64, String), (i64, Vec<&Heard>)> = BTreeMap::new();
    for event in events {
        if let Asked::Exchange { user, gift, key } = &event.asked {
            answers.entry((*user, key.clone())).or_insert((*gift, Vec::new())).1.push(&event.heard);
        }
    }
    for ((user, key), (gift, heard)) in &answers {
        let what = format!("user {user}, key {key}, gift {gift}");
        let exchanged = exchanges.get(&(*user, key.clone()));
        let record = recorded.get(&(*user, key.clone()));
        let mut decided: Vec<(String, Option<i64>)> = Vec::new();
        let mut doubt = 0;
        for heard in heard {
            if report.checked_in_doubt(heard) {
                doubt += 1;
                continue;
            }
            let Some(data) = heard.data() else {
                report.violation("an answer of the API", format!("{what}: {heard:?}"));
                continue;
            };
            let (outcome, id, repeat) =
                (data["outcome"].as_str().unwrap_or("?"), data["exchangeId"].as_i64(), data["repeat"].as_bool());
            if data["giftId"].as_i64() != Some(*gift) {
                report.violation("an exchange's answer names its gift", format!("{what}: {data}"));
            }
            match outcome {
                "exchanged" if exchanged.map(|(x, g)| (Some(*x), *g)) != Some((id, *gift)) => {
                    report.violation("an exchange has its row", format!("{what}: {data}, row {exchanged:?}"));
                }
                "exchanged" => {}
                "not_enough_points" | "out_of_stock" | "unknown_user" | "unknown_gift" => {
                    if exchanged.is_some() {
                        report.violation("a refusal has no exchange", format!("{what}: {data}, row {exchanged:?}"));
                    }
                    let recorded_as = record.map(|(_, outcome, _)| outcome.as_str());
                    // A refusal is recorded as the first answer, unless a closed gift's memory refused it.
                    if recorded_as.is_some_and(|first| first != outcome)
                        || (repeat == Some(true) && recorded_as.is_none())
                    {
                        report
                            .violation("a repeat is the first answer", format!("{what}: {data}, recorded {record:?}"));
                    }
                }
                _ => report.violation("an answer of the API", format!("{what}: {data}")),
            }
            decided.push((outcome.to_string(), id));
        }
        if decided.windows(2).any(|pair| pair[0] != pair[1]) {
            report.violation("every answer of one key agrees", format!("{what}: {decided:?}"));
        }
        if exchanged.is_some() && !decided.iter().any(|(outcome, _)| outcome == "exchanged") && doubt == 0 {
            report.violation("an exchange's user was told", format!("{what}: {heard:?}"));
        }
        if doubt > 0 {
            if decided.is_empty() {
                // Settled as the API says: the same request with the same key answers the first outcome.
                let again = ground.client.exchange(*user, *gift, key).await;
                let told = again.data().and_then(|data| data["outcome"].as_str().map(str::to_string));
                let expected = match exchanged {
                    Some(_) => Some("exchanged".to_string()),
                    None => record.map(|(_, outcome, _)| outcome.clone()),
                };
                if told.is_some() && (expected.is_none() || told == expected) {
                    report.resolved += doubt;
                } else {
                    report.violation(
                        "an exchange in doubt resolves",
                        format!("{what}: {again:?}, expected {expected:?}"),
                    );
                }
            } else {
                report.resolved += doubt;
            }
        }
    }
    for (user, key) in exchanges.keys() {
        if !answers.contains_key(&(*user, key.clone())) {
            report.violation("every exchange was asked for", format!("user {user}, key {key}"));
        }
    }
    if let Err(problem) = Books::read(ground.shop).await.unwrap().check() {
        report.violation("the exchange's books balance", problem);
    }
    let mut warehouse = ground.warehouse.get_conn().await.unwrap();
    let shipped: Vec<(i64, i64)> = warehouse
        .query("SELECT credit_exchange_id, COUNT(*) FROM shipment_request GROUP BY credit_exchange_id")
        .await
        .unwrap();
    let shipped: HashMap<i64, i64> = shipped.into_iter().collect();
    for (id, _) in exchanges.values() {
        if shipped.get(id) != Some(&1) {
            report.violation("every exchange is shipped once", format!("exchange {id}: {:?}", shipped.get(id)));
        }
    }
    if shipped.len() != exchanges.len() {
        report.violation(
            "nothing shipped that was not exchanged",
            format!("{} shipped, {}", shipped.len(), exchanges.len()),
        );
    }
}

async fn lottery(events: &[Event], ground: &Ground<'_>, report: &mut Report) {
    let campaign = ground.stage.campaign;
    let mut conn = ground.shop.get_conn().await.unwrap();
    let draws: Vec<(i64, i64, Option<i64>)> = conn
        .exec("SELECT user_id, draw_id, tier_id FROM lottery_draw WHERE campaign_id = ?", (campaign,))
        .await
        .unwrap();
    let draws: HashMap<i64, (i64, Option<i64>)> =
        draws.into_iter().map(|(user, id, tier)| (user, (id, tier))).collect();
    let mut answers: BTreeMap<i64, Vec<&Heard>> = BTreeMap::new();
    for event in events {
        if let Asked::Draw { user, .. } = &event.asked {
            answers.entry(*user).or_default().push(&event.heard);
        }
    }
    for (user, heard) in &answers {
        let draw = draws.get(user);
        let mut doubt = 0;
        let mut told = false;
        for heard in heard {
            if report.checked_in_doubt(heard) {
                doubt += 1;
                continue;
            }
            let Some(data) = heard.data() else {
                report.violation("an answer of the API", format!("user {user}: {heard:?}"));
                continue;
            };
            match data["outcome"].as_str().unwrap_or("?") {
                "won" | "no_prize" => {
                    told = true;
                    let answered = (data["drawId"].as_i64(), data["tierId"].as_i64());
                    if draw.map(|(id, tier)| (Some(*id), *tier)) != Some(answered) {
                        report.violation("a draw's answer is its row", format!("user {user}: {data}, row {draw:?}"));
                    }
                }
                "all_drawn" if draw.is_some() => {
                    report.violation("all drawn only to users who never drew", format!("user {user}: row {draw:?}"));
                }
                "all_drawn" => {}
                _ => report.violation("an answer of the API", format!("user {user}: {data}")),
            }
        }
        if draw.is_some() && !told && doubt == 0 {
            report.violation("a draw's user was told", format!("user {user}: {heard:?}"));
        }
        if doubt > 0 {
            // Each settled by the user's draws, which list the draw exactly when it went through.
            let path = format!("/lottery/{campaign}/mine.json");
            let mine = ground.client.send(Method::GET, &path, &[(COOKIE.as_str(), signed_in(*user))]).await;
            let listed = mine.data().and_then(|data| data["draws"].as_array().map(|draws| draws.len()));
            if listed == Some(usize::from(draw.is_some())) {
                report.resolved += doubt;
            } else {
                report.violation("a draw in doubt resolves", format!("user {user}: {mine:?}, row {draw:?}"));
            }
        }
    }
    for user in draws.keys() {
        if !answers.contains_key(user) {
            report.violation("every draw was asked for", format!("user {user}"));
        }
    }
    let books = LotteryBooks::read(ground.shop, campaign).await.unwrap();
    if !books.balances() {
        report.violation("the lottery's books balance", format!("{books:?}"));
    }
    for (user, (draw_id, tier)) in &draws {
        let effects = ground.gift_effects.get(draw_id).copied().unwrap_or(0);
        if effects != u64::from(tier.is_some()) {
            report.violation(
                "every win is delivered once, nothing else",
                format!("user {user}, draw {draw_id}: {effects}"),
            );
        }
    }
}

async fn messages(ground: &Ground<'_>, report: &mut Report) {
    let status = seckill::messaging::outbox::status(ground.shop).await.unwrap();
    if status.pending + status.sent + status.dead > 0 {
        report.violation("every message is consumed", format!("{status:?}"));
    }
}
