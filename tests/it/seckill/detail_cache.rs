//! The detail cache's single flight across processes: several independent caches (each with its own service,
//! pool, Redis connection and in-process single flight, as separate processes have) on one Redis, under
//! concurrent misses, cost the database about one load per expiry in all; a lease holder that never stores
//! costs the others a short wait; a stopped Redis never delays or fails a detail.

use std::time::{Duration, Instant};

use mysql_async::Pool;
use mysql_async::prelude::Queryable;
use redis::AsyncCommands;
use seckill::database::ConnectOptions;
use seckill::local::redis::LocalRedis;
use seckill::seckill::Seckill;
use seckill::seckill::http::DetailCache;

use crate::common::{Resume, open_item, private_database, signer};

/// The server's count of SELECT statements, from every client.
async fn selects(pool: &Pool) -> u64 {
    let mut conn = pool.get_conn().await.unwrap();
    let row: Option<(String, String)> = conn.query_first("SHOW GLOBAL STATUS LIKE 'Com_select'").await.unwrap();
    row.unwrap().1.parse().unwrap()
}

const CACHES: usize = 4;
const CALLERS_PER_CACHE: usize = 20;

/// Every cache's callers at once; each must get the item within `within`.
async fn misses(caches: &[(DetailCache, Seckill)], seckill_id: i64, within: Duration) {
    let calls = caches.iter().flat_map(|(cache, service)| {
        (0..CALLERS_PER_CACHE).map(move |_| async move {
            let started = Instant::now();
            let item = tokio::time::timeout(Duration::from_secs(5), cache.get(service, seckill_id))
                .await
                .expect("answered within 5 s")
                .expect("the detail");
            assert_eq!(item.map(|item| item.seckill_id), Some(seckill_id));
            assert!(started.elapsed() < within, "a detail took {:?}", started.elapsed());
        })
    });
    futures_util::future::join_all(calls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn independent_caches_load_an_item_about_once_per_expiry_in_all() {
    // A server of this test's own, so that its SELECT count is this test's; a Redis of its own: it is stopped.
    let (server, url) = private_database("single_flight").await;
    let admin = ConnectOptions::new(url.as_str()).build_pool().unwrap();
    let redis = LocalRedis::start().unwrap();
    let ttl = Duration::from_millis(300);
    let mut caches = Vec::new();
    for _ in 0..CACHES {
        // One connection each, opened now: the SELECTs counted below are the loads alone.
        let service =
            Seckill::new(ConnectOptions::new(url.as_str()).max_connections(1).build_pool().unwrap(), signer());
        service.get(1).await.unwrap();
        caches.push((DetailCache::connect(&redis.url()).await.unwrap().ttl(ttl), service));
    }
    let id = open_item(&caches[0].1, 5).await.seckill_id;

    let rounds = 6;
    let before = selects(&admin).await;
    for _ in 0..rounds {
        misses(&caches, id, Duration::from_secs(1)).await;
        tokio::time::sleep(ttl + Duration::from_millis(50)).await; // expired: the next round misses
    }
    let loads = selects(&admin).await - before;
    // One per expiry in all; per process it would be CACHES per expiry.
    assert!((rounds..=rounds + rounds / 2).contains(&loads), "{loads} loads for {rounds} expiries");

    // A holder that took the lease and died: the others wait for it at most briefly, then load.
    let mut connection = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let _: () = connection.pset_ex(caches[0].0.lease_key(id), "a-dead-holder", 60_000).await.unwrap();
    let before = selects(&admin).await;
    misses(&caches, id, Duration::from_secs(1)).await;
    assert!((1..=CACHES as u64).contains(&(selects(&admin).await - before)), "loaded despite the dead holder");

    // A stopped Redis never delays or fails a detail.
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;
    redis.pause().unwrap();
    let _resume = Resume(&redis);
    for _ in 0..3 {
        misses(&caches, id, Duration::from_secs(1)).await;
    }
    drop(server); // the guardian removes it when the test process ends
}
