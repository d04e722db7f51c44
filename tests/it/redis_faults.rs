//! Redis faults against the HTTP side: a stopped or restarted Redis never holds up a sale or a page.
//!
//! Each test that stops or restarts Redis starts a private one of its own, so nothing else in the run sees it.

use std::time::{Duration, Instant};

use hyper::StatusCode;
use redis::AsyncCommands;
use seckill::database::ConnectOptions;
use seckill::local::redis::{LocalRedis, redis_url};
use seckill::seckill::Seckill;
use seckill::seckill::http::{DetailCache, SeckillHttp};

use crate::common::Resume;
use crate::common::http::serve;
use crate::common::{migrated_db, open_item, service, signer};

async fn key_exists(url: &str, key: &str) -> bool {
    let mut connection = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    connection.exists(key).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_redis_never_delays_item_details() {
    let db = migrated_db().await;
    let service = service(&db);
    let id = open_item(&service, 5).await.seckill_id;
    let redis = LocalRedis::start().unwrap();
    let cache = DetailCache::connect(&redis.url()).await.unwrap();
    let served = serve(SeckillHttp::new(service).detail_cache(cache).router()).await;
    let path = format!("/seckill/{id}/detail.json");
    assert_eq!(served.get(&path).await.json["data"]["number"], 5, "cached while Redis runs");

    redis.pause().unwrap();
    let _resume = Resume(&redis);
    for n in 0..20 {
        let started = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(5), served.get(&path))
            .await
            .unwrap_or_else(|_| panic!("read {n} still waiting on the stopped Redis after 5 s"));
        let took = started.elapsed();
        assert_eq!(answer.status, StatusCode::OK, "read {n}: {}", answer.text);
        assert_eq!(answer.json["data"]["seckillId"], id, "read {n}");
        assert!(took < Duration::from_secs(1), "read {n} took {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_detail_cache_reconnects_after_redis_restarts() {
    let db = migrated_db().await;
    let service = service(&db);
    let id = open_item(&service, 5).await.seckill_id;
    let redis = LocalRedis::start().unwrap();
    // Long enough that a filled key is still there when the test looks.
    let cache = DetailCache::connect(&redis.url()).await.unwrap().ttl(Duration::from_secs(60));
    let key = cache.key(id);
    let served = serve(SeckillHttp::new(service).detail_cache(cache).router()).await;
    let path = format!("/seckill/{id}/detail.json");
    assert_eq!(served.get(&path).await.status, StatusCode::OK);
    assert!(key_exists(&redis.url(), &key).await, "filled before the restart");

    let old_pid = redis.pid();
    redis.restart().unwrap();
    assert_ne!(redis.pid(), old_pid, "a new process");
    assert!(!key_exists(&redis.url(), &key).await, "the restarted Redis starts empty");

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = served.get(&path).await;
        assert_eq!(answer.status, StatusCode::OK, "the database answers meanwhile: {}", answer.text);
        if key_exists(&redis.url(), &key).await {
            break;
        }
        assert!(Instant::now() < deadline, "the cache did not fill the restarted Redis within 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelled_loads_leave_no_single_flight_entries() {
    let db = migrated_db().await;
    // One connection, held below: every load waits for it until released, so callers are cancelled mid-load.
    let pool = ConnectOptions::new(db.url()).max_connections(1).build_pool().unwrap();
    let service = Seckill::new(pool.clone(), signer());
    let cache = DetailCache::connect(&redis_url().unwrap()).await.unwrap().key_prefix(format!("{}:", db.name()));
    let held = pool.get_conn().await.unwrap();
    let bogus = |n: i64| 1_000_000_000 + n;

    // One caller, aborted while its load waits: its entry goes with it.
    let waiting = {
        let (cache, service) = (cache.clone(), service.clone());
        tokio::spawn(async move { cache.get(&service, bogus(0)).await })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while cache.pending_loads() == 0 {
        assert!(Instant::now() < deadline, "the load never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    waiting.abort();
    assert!(waiting.await.unwrap_err().is_cancelled());
    assert_eq!(cache.pending_loads(), 0, "an aborted caller");

    // Two callers of one load: the entry stays while one still waits, and the other finishes the load.
    let leader = tokio::time::timeout(Duration::from_millis(30), cache.get(&service, bogus(1)));
    let follower = {
        let (cache, service) = (cache.clone(), service.clone());
        tokio::spawn(async move { cache.get(&service, bogus(1)).await })
    };
    assert!(leader.await.is_err(), "cancelled while waiting for the held connection");
    let deadline = Instant::now() + Duration::from_secs(5);
    while cache.pending_loads() == 0 {
        assert!(Instant::now() < deadline, "the follower's load is gone with the leader");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(cache.pending_loads(), 1, "one entry for the item");

    // 200 distinct bogus ids, each given up on after 1 to 50 ms, all at once.
    let callers: Vec<_> = (0..200)
        .map(|n| {
            let (cache, service) = (cache.clone(), service.clone());
            let patience = Duration::from_millis(1 + n % 50);
            tokio::spawn(async move {
                tokio::time::timeout(patience, cache.get(&service, bogus(100 + i64::try_from(n).unwrap()))).await
            })
        })
        .collect();
    for caller in callers {
        assert!(caller.await.unwrap().is_err(), "every load waits for the held connection");
    }
    assert_eq!(cache.pending_loads(), 1, "200 cancelled callers left nothing; the follower's load remains");

    drop(held);
    let followed = tokio::time::timeout(Duration::from_secs(10), follower).await.unwrap().unwrap();
    assert_eq!(followed.unwrap(), None, "the follower took the cancelled leader's load over");
    assert_eq!(cache.pending_loads(), 0, "a finished load");
}

/// Regression: with Redis stopped, a winner's answer waited over 10 s for the cache read that decorates it,
/// although the sale was committed. A decoration never delays an answer.
#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_redis_never_delays_a_winners_answer() {
    let db = migrated_db().await;
    let service = service(&db);
    let id = open_item(&service, 5).await.seckill_id;
    let redis = LocalRedis::start().unwrap();
    let cache = DetailCache::connect(&redis.url()).await.unwrap();
    let served = serve(SeckillHttp::new(service.clone()).detail_cache(cache).router()).await;

    redis.pause().unwrap();
    let _resume = Resume(&redis);
    for n in 1..=3 {
        let buyer = crate::common::phone(n);
        let token = service.signer().sign(id, buyer, chrono::Utc::now());
        let started = Instant::now();
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            served.post(&format!("/seckill/{id}/{token}/execution"), Some(&buyer.to_string())),
        )
        .await
        .unwrap_or_else(|_| panic!("winner {n} still waiting on the stopped Redis after 5 s"));
        assert_eq!(answer.json["data"]["state"], 1, "{}", answer.text);
        assert!(started.elapsed() < Duration::from_secs(1), "winner {n} took {:?}", started.elapsed());
    }
}
