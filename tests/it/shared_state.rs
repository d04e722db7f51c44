//! The closed state shared through Redis, on real servers: two seckill instances (separate services and pools
//! over one database, one Redis), what one learns the other answers without its database, a reopening no stale
//! fact can undo, and Redis killed mid-sale. Every sale ends with its books reconciled.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use mysql_async::Pool;
use mysql_async::prelude::Queryable;
use redis::AsyncCommands;
use seckill::database::ConnectOptions;
use seckill::local::redis::{LocalRedis, redis_url};
use seckill::seckill::{Books, ItemState, Outcome, Phone, Seckill};
use seckill::shared_state::bounded_redis::BoundedRedis;
use seckill::shared_state::closed::{ClosedState, Reopening};

use crate::common::{migrated_db, open_item, phone, private_database, signer};

/// The server's count of CALL statements, from every client.
async fn procedure_calls(pool: &Pool) -> u64 {
    let mut conn = pool.get_conn().await.unwrap();
    let row: Option<(String, String)> = conn.query_first("SHOW GLOBAL STATUS LIKE 'Com_call_procedure'").await.unwrap();
    row.unwrap().1.parse().unwrap()
}

/// An instance: a service with a pool of its own, sharing items' closed state through `redis_url`.
async fn instance(database_url: &str, redis_url: &str, prefix: &str) -> Seckill {
    let pool = ConnectOptions::new(database_url).build_pool().unwrap();
    let redis = BoundedRedis::connect(redis_url).await.unwrap();
    Seckill::new(pool, signer()).with_redis(redis, Some(prefix))
}

async fn redis_value(url: &str, key: &str) -> Option<String> {
    let mut connection = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    connection.get(key).await.unwrap()
}

/// Waits up to `within` for `key` to hold `value`.
async fn wait_for_value(url: &str, key: &str, value: Option<&str>, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let now = redis_value(url, key).await;
        if now.as_deref() == value {
            return;
        }
        assert!(Instant::now() < deadline, "{key} is {now:?}, not {value:?}, after {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every buyer at once through `instances` (buyer n through instance n mod len), with what each was told.
async fn crowd(instances: &[Seckill], seckill_id: i64, buyers: std::ops::Range<i64>) -> Vec<(Phone, Outcome)> {
    let calls: Vec<_> = buyers
        .map(|n| {
            let service = instances[usize::try_from(n).unwrap() % instances.len()].clone();
            let buyer = phone(n);
            tokio::spawn(async move { (buyer, service.execute_verified(seckill_id, buyer).await) })
        })
        .collect();
    let mut told = Vec::new();
    for call in calls {
        told.push(call.await.unwrap());
    }
    told
}

/// What the crowd was told is what the database holds: a success exactly for the buyers with a row, no buyer
/// twice, success rows = stock taken; no answer other than success or sold out.
async fn reconcile(pool: &Pool, seckill_id: i64, stock_ever: i64, told: &[(Phone, Outcome)]) {
    let mut conn = pool.get_conn().await.unwrap();
    let rows: Vec<i64> =
        conn.exec("SELECT user_phone FROM success_killed WHERE seckill_id = ?", (seckill_id,)).await.unwrap();
    let with_row: HashSet<i64> = rows.iter().copied().collect();
    let mut successes = HashMap::new();
    for (buyer, outcome) in told {
        match outcome {
            Outcome::Success(_) => {
                assert!(with_row.contains(&buyer.get()), "{buyer} was told success without a row");
                *successes.entry(buyer.get()).or_insert(0) += 1;
            }
            Outcome::SoldOut | Outcome::RepeatKill => {}
            other => panic!("{buyer} was told {other:?}"),
        }
    }
    assert!(successes.values().all(|&n| n == 1), "no buyer told success twice");
    for buyer in &with_row {
        assert!(successes.contains_key(buyer), "buyer {buyer} has a row and was never told success");
    }
    let books = Books::read(pool, seckill_id).await.unwrap();
    let reported = u64::try_from(successes.len()).unwrap();
    books.check(stock_ever, reported).unwrap_or_else(|imbalance| panic!("the books: {imbalance}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn once_one_instance_learns_sold_out_the_other_answers_closed_without_its_database() {
    // A server of this test's own, so that its server-wide counters count only this test's calls.
    let (_server, url) = private_database("shared_state").await;
    let redis = redis_url().unwrap();
    let prefix = format!("test:{}:item:", std::process::id());
    let (a, b) = (instance(&url, &redis, &prefix).await, instance(&url, &redis, &prefix).await);
    let id = open_item(&a, 10).await.seckill_id;
    let key = a.state_key(id).unwrap();
    assert_eq!(key, format!("{prefix}{id}:state"));

    let mut told = crowd(std::slice::from_ref(&a), id, 0..30).await;
    assert_eq!(told.iter().filter(|(_, o)| o.is_success()).count(), 10);
    wait_for_value(&redis, &key, Some("sold_out"), Duration::from_secs(5)).await;

    // Instance b never sold: it learns from Redis alone, and neither its lanes nor the server see a call.
    let calls_before = procedure_calls(a.pool()).await;
    assert_eq!(b.execute_verified(id, phone(100)).await, Outcome::SoldOut, "the first request looks it up");
    for round in 0..3 {
        let answers = crowd(std::slice::from_ref(&b), id, 101 + round * 100..201 + round * 100).await;
        assert!(answers.iter().all(|(_, o)| *o == Outcome::SoldOut), "round {round}: {answers:?}");
        told.extend(answers);
        // Past the 100 ms for which memory is trusted: looked up again, still closed.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let stats = b.lane_stats();
    assert_eq!((stats.database_calls, stats.closed_answers), (0, 301), "{stats:?}");
    assert_eq!(procedure_calls(a.pool()).await, calls_before, "no CALL reached the server");

    // Stock added through instance b reopens the item everywhere: the key goes, and instance a, whose lanes
    // remembered the sell-out, sells again well within their one-second recheck.
    assert_eq!(b.add_stock(id, 5).await.unwrap(), 5);
    assert_eq!(redis_value(&redis, &key).await, None, "deleted at once");
    let reopened = Instant::now();
    let mut buyer = 1000;
    let first_sale = loop {
        buyer += 1;
        let outcome = a.execute_verified(id, phone(buyer)).await;
        let sold = outcome.is_success();
        told.push((phone(buyer), outcome));
        if sold {
            break reopened.elapsed();
        }
        assert!(reopened.elapsed() < Duration::from_secs(5), "instance a never sold again");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(first_sale < Duration::from_millis(800), "instance a sold again only after {first_sale:?}");
    told.extend(crowd(&[a.clone(), b.clone()], id, 2000..2040).await);
    wait_for_value(&redis, &key, Some("sold_out"), Duration::from_secs(5)).await;
    reconcile(a.pool(), id, 15, &told).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fact_observed_before_a_reopening_is_never_published_after_it() {
    let redis = redis_url().unwrap();
    let prefix = format!("test:{}:guard:", std::process::id());
    let connect = || BoundedRedis::connect(&redis);
    let admin = ClosedState::<ItemState>::new(Some(connect().await.unwrap()), &*prefix, Reopening::ByGeneration, "t");
    let late = ClosedState::<ItemState>::new(Some(connect().await.unwrap()), &*prefix, Reopening::ByGeneration, "t");
    let key = admin.state_key(1);

    // The late instance looked before the reopening (generation 0), its batch saw the item sold out, and its
    // publication arrives after stock was added and the item reopened.
    assert_eq!(late.closed(1).await, None);
    let seen_before = late.generation(1);
    admin.reopen(1).await;
    late.learnt(1, ItemState::SoldOut, seen_before);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(redis_value(&redis, &key).await, None, "the stale fact was refused");
    assert_eq!(late.known(1), None, "and is not trusted from memory either");

    // A fact observed after the reopening is published.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(late.closed(1).await, None);
    late.learnt(1, ItemState::SoldOut, late.generation(1));
    wait_for_value(&redis, &key, Some("sold_out"), Duration::from_secs(2)).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(admin.closed(1).await, Some(ItemState::SoldOut), "the other instance reads it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_mid_sale_never_changes_an_answer_and_the_facts_are_republished_on_its_return() {
    let db = migrated_db().await;
    // A Redis of this test's own: it is killed.
    let redis = LocalRedis::start().unwrap();
    let prefix = "test:item:";
    let instances = [instance(db.url(), &redis.url(), prefix).await, instance(db.url(), &redis.url(), prefix).await];
    let id = open_item(&instances[0], 250).await.seckill_id;
    let key = instances[0].state_key(id).unwrap();

    let mut told = crowd(&instances, id, 0..100).await;
    assert_eq!(told.iter().filter(|(_, o)| o.is_success()).count(), 100, "Redis up, stock left");
    // Killed as a crash would (SIGKILL to the pid this test started); the item sells out while it is down.
    let pid = redis.pid().unwrap();
    std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    let during = crowd(&instances, id, 100..400).await;
    assert_eq!(during.iter().filter(|(_, o)| o.is_success()).count(), 150, "sales went on: {during:?}");
    told.extend(during);
    told.extend(crowd(&instances, id, 400..450).await);

    // Started again, empty, on the same port: the instances publish what they learnt while it was down, with
    // no request to prompt them.
    tokio::task::block_in_place(|| redis.restart()).unwrap();
    wait_for_value(&redis.url(), &key, Some("sold_out"), Duration::from_secs(10)).await;

    // A third instance that never sold answers from it without its database.
    let fresh = instance(db.url(), &redis.url(), prefix).await;
    told.push((phone(449), fresh.execute_verified(id, phone(449)).await));
    told.extend(crowd(std::slice::from_ref(&fresh), id, 450..550).await);
    assert_eq!(fresh.lane_stats().database_calls, 0, "{:?}", fresh.lane_stats());
    reconcile(db.pool(), id, 250, &told).await;
}
