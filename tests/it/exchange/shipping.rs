//! Points exchanged end to end: a crowd exchanging a hot gift and a spread of others through the `Exchange`
//! service, the relay and the warehouse consumer running meanwhile, then the reconciliation across the two
//! databases: every `credit_exchange` has exactly one `shipment_request`; for every user, granted = balance +
//! exchanged; gift stock taken = exchanges; no message left pending, none lost.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use seckill::exchange::warehouse::ShipmentHandler;
use seckill::exchange::{Books, Exchange, ExchangeOutcome, NewGift};

use crate::common::messaging::{broker, sides, start_consumer, start_relay, wait_for};

/// Shipment requests per exchange id, in the warehouse's own database.
async fn shipments(pool: &mysql_async::Pool) -> HashMap<i64, u64> {
    let mut conn = pool.get_conn().await.unwrap();
    let rows: Vec<(i64, u64)> = conn
        .query("SELECT credit_exchange_id, COUNT(*) FROM shipment_request GROUP BY credit_exchange_id")
        .await
        .unwrap();
    rows.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crowd_exchanging_gifts_gets_each_exchange_shipped_exactly_once() {
    let sides = sides().await;
    let url = broker();
    let exchange = Exchange::new(sides.shop.pool().clone());
    let handler = ShipmentHandler::new(sides.warehouse.pool().clone());
    let relay = start_relay(&sides, &url);
    let consumer = start_consumer(&sides, &url, &handler);

    let hot = exchange.create_gift(&NewGift { name: "热门 gift".into(), cost: 100, stock: 40 }).await.unwrap();
    let mut spread = Vec::new();
    for n in 0..5 {
        let gift = NewGift { name: format!("gift {n}"), cost: 30 + n * 10, stock: 20 };
        spread.push(exchange.create_gift(&gift).await.unwrap().gift_id);
    }
    for user in 1..=200 {
        exchange.grant(user, 50 + (user * 37) % 300, "welcome").await.unwrap();
    }

    // Every user tries the hot gift, then one of the others, and retries each request once (same id).
    let exchange = Arc::new(exchange);
    let crowd: Vec<_> = (1..=200i64)
        .map(|user| {
            let (exchange, other) = (exchange.clone(), spread[(user % 5) as usize]);
            tokio::spawn(async move {
                let mut told = Vec::new();
                for (gift, request) in [(hot.gift_id, format!("hot-{user}")), (other, format!("other-{user}"))] {
                    for _ in 0..2 {
                        told.push(exchange.exchange(user, gift, &request).await.unwrap());
                    }
                }
                told
            })
        })
        .collect();
    let mut exchanged = 0;
    for caller in crowd {
        for outcome in caller.await.unwrap() {
            assert!(!matches!(outcome, ExchangeOutcome::InnerError(_)), "{outcome:?}");
            exchanged += u64::from(outcome.is_exchanged() && !outcome.is_repeat());
        }
    }
    assert!(exchanged >= 40, "the hot gift sold out and others were taken: {exchanged}");

    let status = wait_for(&sides, Duration::from_secs(30), |status| status.consumed == exchanged).await;
    relay.stop().await;
    consumer.stop().await;

    // The points side balances on its own.
    let books = Books::read(sides.shop.pool()).await.unwrap();
    books.check().unwrap();
    assert_eq!(books.gift(hot.gift_id).unwrap().stock, 0, "the hot gift sold out");
    // Across the two databases: one message per exchange, all consumed, one shipment request each.
    assert_eq!((status.consumed, status.in_flight(), status.dead), (exchanged, 0, 0), "{status:?}");
    let mut shop = sides.shop.pool().get_conn().await.unwrap();
    let exchange_ids: Vec<i64> = shop.query("SELECT id FROM credit_exchange").await.unwrap();
    assert_eq!(exchange_ids.len() as u64, exchanged);
    let shipped = shipments(sides.warehouse.pool()).await;
    assert_eq!(shipped.len(), exchange_ids.len(), "no shipment without an exchange, and none missing");
    for id in exchange_ids {
        assert_eq!(shipped.get(&id), Some(&1), "exchange {id} shipped exactly once");
    }
}

/// The relay never makes a business transaction fail: exchange batches commit while the relay claims, marks sent
/// and marks consumed the messages of the batches before them (short leases and callback waits, so re-sends
/// and their updates happen meanwhile too). Every one of thousands of exchanges is answered exchanged: none
/// rolled back (a deadlock's victim would be), none in doubt; then every one is shipped exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exchanges_committing_while_the_relay_claims_and_marks_are_never_rolled_back() {
    let sides = sides().await;
    let url = broker();
    let exchange = Exchange::new(sides.shop.pool().clone());
    let handler = ShipmentHandler::new(sides.warehouse.pool().clone());
    let mut gifts = Vec::new();
    for n in 0..4 {
        let gift = NewGift { name: format!("gift {n}"), cost: 1, stock: 1_000_000 };
        gifts.push(exchange.create_gift(&gift).await.unwrap().gift_id);
    }
    for user in 1..=300 {
        exchange.grant(user, 1_000_000, "welcome").await.unwrap();
    }
    let relay = start_relay(&sides, &url);
    let consumer = start_consumer(&sides, &url, &handler);

    let (callers, per_caller) = (48i64, 60i64);
    let exchange = Arc::new(exchange);
    let crowd: Vec<_> = (0..callers)
        .map(|caller| {
            let (exchange, gifts) = (exchange.clone(), gifts.clone());
            tokio::spawn(async move {
                let mut failures = Vec::new();
                for n in 0..per_caller {
                    let (user, gift) = (1 + (caller * 7 + n * 13) % 300, gifts[(n % 4) as usize]);
                    match exchange.exchange(user, gift, &format!("c{caller}-{n}")).await.unwrap() {
                        ExchangeOutcome::Exchanged { repeat: false, .. } => {}
                        other => failures.push(other),
                    }
                }
                failures
            })
        })
        .collect();
    let mut failures = Vec::new();
    for caller in crowd {
        failures.extend(caller.await.unwrap());
    }
    assert!(failures.is_empty(), "{} exchanges failed, e.g. {:?}", failures.len(), failures.first());

    let exchanged = (callers * per_caller) as u64;
    let status = wait_for(&sides, Duration::from_secs(60), |status| status.consumed == exchanged).await;
    relay.stop().await;
    consumer.stop().await;
    assert_eq!((status.consumed, status.in_flight(), status.dead), (exchanged, 0, 0), "{status:?}");
    Books::read(sides.shop.pool()).await.unwrap().check().unwrap();
    let shipped = shipments(sides.warehouse.pool()).await;
    assert_eq!(shipped.len() as u64, exchanged);
    assert!(shipped.values().all(|count| *count == 1), "each exchange shipped exactly once");
}
