//! The exchange act's reconciliation: what the crowd was told against what the shop's database and the
//! warehouse's hold, every check a line of the table, each passed or failed.
//!
//! The exchange's own books ([`seckill::exchange::Books`]) cover the whole shop database; the checks against
//! the crowd, the messages and the warehouse cover this run's gifts and users, so a database used before still
//! reconciles.

use std::collections::{HashMap, HashSet};

use mysql_async::Pool;
use seckill::database::acquire;
use seckill::database::rows::exec_all;
use seckill::exchange::SHIPMENT_TOPIC;
use seckill::exchange::warehouse::WarehouseStats;
use seckill::exchange::{Books, Gift};

use super::super::Failure;
use super::checks::Check;
use super::exchange_crowd::{CrowdReport, CrowdUser};
use super::message_service::MessageStates;

/// This run's gifts, as an SQL list of integers (nothing in it can carry SQL).
fn id_list(gifts: &[Gift]) -> String {
    gifts.iter().map(|gift| gift.gift_id.to_string()).collect::<Vec<_>>().join(",")
}

/// The states of the shipment messages of the exchanges of `gifts`.
pub(super) async fn message_states(shop: &Pool, gifts: &[Gift]) -> Result<MessageStates, Failure> {
    let mut conn = acquire(shop).await?;
    // The message of an exchange is found by its unique (topic, business_key), as in the exchange's books.
    let rows: Vec<(Option<String>, i64)> = exec_all(
        &mut conn,
        &format!(
            "SELECT mo.state, COUNT(*) FROM credit_exchange ce \
               LEFT JOIN message_outbox mo ON mo.topic = ? AND mo.business_key = CONCAT(ce.id) \
              WHERE ce.product_id IN ({}) GROUP BY mo.state",
            id_list(gifts)
        ),
        (SHIPMENT_TOPIC,),
        "this run's messages",
    )
    .await?;
    MessageStates::count(rows)
}

/// Every check, in the table's order.
pub(super) async fn reconcile(
    shop: &Pool,
    warehouse: &Pool,
    gifts: &[Gift],
    users: &[CrowdUser],
    crowd: &CrowdReport,
    warehouse_stats: WarehouseStats,
) -> Result<Vec<Check>, Failure> {
    let books = Books::read(shop).await?;
    let undecided: u32 = crowd.attempts.iter().map(|attempt| attempt.undecided).sum();
    let mut checks = Vec::new();

    // Per gift: the stock taken is the exchanges, which are the exchanges the crowd was told of (up to the
    // exchanges it never heard the end of).
    for gift in gifts {
        let told = crowd.attempts.iter().filter(|a| a.gift_id == gift.gift_id && a.exchanged()).count() as i64;
        let (passed, what) = match books.gift(gift.gift_id) {
            Some(held) => (
                held.balances() && told <= held.exchanges && held.exchanges <= told + i64::from(undecided),
                format!(
                    "gift {} {:?}: stock {} -> {}, {} taken = {} exchanges = {told} told \"exchanged\"",
                    gift.gift_id,
                    gift.name,
                    held.stocked,
                    held.stock,
                    held.stocked - held.stock,
                    held.exchanges
                ),
            ),
            None => (false, format!("gift {} {:?} is not in the database", gift.gift_id, gift.name)),
        };
        checks.push(Check { what, passed });
    }

    // Per user, all of the shop: granted = balance + exchanged, and the ledger agrees.
    let totals_balance = books.total_granted == books.total_balance + books.total_exchanged;
    checks.push(Check {
        what: format!(
            "every user: granted = balance + exchanged, by ledger and exchanges ({} users checked, {} not)",
            books.users,
            books.unbalanced_users.len()
        ),
        passed: books.unbalanced_users.is_empty() && totals_balance,
    });

    // Per crowd user: the balance is what was granted less what the crowd was told it paid.
    let costs: HashMap<i64, i64> = gifts.iter().map(|gift| (gift.gift_id, gift.cost)).collect();
    let mut paid: HashMap<i64, i64> = HashMap::new();
    for attempt in crowd.attempts.iter().filter(|attempt| attempt.exchanged()) {
        *paid.entry(attempt.user_id).or_default() += costs.get(&attempt.gift_id).copied().unwrap_or(0);
    }
    let unsure: HashSet<i64> =
        crowd.attempts.iter().filter(|attempt| attempt.undecided > 0).map(|attempt| attempt.user_id).collect();
    let balances = crowd_balances(shop, users).await?;
    let wrong = users
        .iter()
        .filter(|user| !unsure.contains(&user.user_id))
        .filter(|user| {
            let expected = user.granted - paid.get(&user.user_id).copied().unwrap_or(0);
            balances.get(&user.user_id) != Some(&expected)
        })
        .count();
    checks.push(Check {
        what: format!(
            "every crowd user: balance = granted - points it was told it paid ({} checked, {wrong} wrong)",
            users.len() - unsure.len()
        ),
        passed: wrong == 0,
    });

    // Every exchange of the run has exactly one shipment request in the warehouse, for its gift and user.
    let (exchanges, shipped) = shipments(shop, warehouse, gifts).await?;
    checks.push(Check {
        what: format!("every credit_exchange has exactly one shipment_request: {shipped} of {exchanges}"),
        passed: shipped == exchanges,
    });
    let unmatched = books.exchanges_without_message + books.messages_with_wrong_payload + books.exchanges_not_recorded;
    checks.push(Check {
        what: format!(
            "every exchange: one outbox message with its own payload, recorded as its request's answer ({unmatched} not)"
        ),
        passed: unmatched == 0 && books.messages_without_exchange == 0,
    });

    let states = message_states(shop, gifts).await?;
    checks.push(Check {
        what: format!("messages: {}", states.describe()),
        passed: states.consumed == exchanges && states.total() == exchanges,
    });

    let inconsistent = crowd.attempts.iter().filter(|attempt| !attempt.consistent()).count();
    let flagged = crowd.attempts.iter().flat_map(|a| a.answers.iter().skip(1)).filter(|a| a.repeat).count();
    checks.push(Check {
        what: format!(
            "duplicates absorbed: {} resends answered with their first outcome ({flagged} flagged repeat, \
             {inconsistent} not), {} redeliveries by the warehouse",
            crowd.resends_answered(),
            warehouse_stats.duplicates
        ),
        passed: inconsistent == 0,
    });
    Ok(checks)
}

/// The balances of the crowd's users.
async fn crowd_balances(shop: &Pool, users: &[CrowdUser]) -> Result<HashMap<i64, i64>, Failure> {
    let (Some(low), Some(high)) = (users.iter().map(|u| u.user_id).min(), users.iter().map(|u| u.user_id).max()) else {
        return Ok(HashMap::new());
    };
    let mut conn = acquire(shop).await?;
    let rows: Vec<(i64, i64)> = exec_all(
        &mut conn,
        "SELECT user_id, credit FROM credit WHERE user_id BETWEEN ? AND ?",
        (low, high),
        "the crowd's balances",
    )
    .await?;
    Ok(rows.into_iter().collect())
}

/// This run's exchanges, and how many of them have exactly one shipment request for the same gift and user.
async fn shipments(shop: &Pool, warehouse: &Pool, gifts: &[Gift]) -> Result<(i64, i64), Failure> {
    let mut conn = acquire(shop).await?;
    let exchanges: Vec<(i64, i64, i64)> = exec_all(
        &mut conn,
        &format!("SELECT id, product_id, user_id FROM credit_exchange WHERE product_id IN ({})", id_list(gifts)),
        (),
        "this run's exchanges",
    )
    .await?;
    let (Some(low), Some(high)) = (exchanges.iter().map(|e| e.0).min(), exchanges.iter().map(|e| e.0).max()) else {
        return Ok((0, 0));
    };
    let mut conn = acquire(warehouse).await?;
    let requests: Vec<(i64, i64, i64)> = exec_all(
        &mut conn,
        "SELECT credit_exchange_id, product_id, user_id FROM shipment_request \
          WHERE credit_exchange_id BETWEEN ? AND ?",
        (low, high),
        "this run's shipment requests",
    )
    .await?;
    let mut shipped: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
    for (exchange_id, product_id, user_id) in requests {
        shipped.entry(exchange_id).or_default().push((product_id, user_id));
    }
    let matched = exchanges
        .iter()
        .filter(|(id, product_id, user_id)| {
            shipped.get(id).is_some_and(|rows| rows.as_slice() == [(*product_id, *user_id)])
        })
        .count();
    Ok((exchanges.len() as i64, matched as i64))
}
