//! The per-buyer rate limit held across instances through Redis: several routers (each with its own service,
//! pool and limiter) sharing one Redis admit one buyer's rate in total, and each its own when Redis stops.

use std::time::{Duration, Instant};

use hyper::StatusCode;
use seckill::database::ConnectOptions;
use seckill::local::redis::LocalRedis;
use seckill::seckill::http::{AdmissionConfig, Rate, SeckillHttp};
use seckill::seckill::{Phone, Seckill};
use seckill::shared_state::bounded_redis::BoundedRedis;

use crate::common::http::{Served, serve};
use crate::common::{Resume, migrated_db, open_item, phone, signer};

const RATE: f64 = 5.0;
const BURST: f64 = 10.0;

/// `per_router` executions by `buyer` through each router at once; how many each router admitted (not 429),
/// and how long it all took.
async fn flood(routers: &[Served], seckill_id: i64, buyer: Phone, per_router: usize) -> (Vec<usize>, Duration) {
    let token = signer().sign(seckill_id, buyer, chrono::Utc::now());
    let path = format!("/seckill/{seckill_id}/{token}/execution");
    let started = Instant::now();
    let calls = routers.iter().enumerate().flat_map(|(n, router)| {
        let path = path.clone();
        (0..per_router).map(move |_| {
            let (address, path) = (router.address, path.clone());
            async move {
                let cookie = format!("killPhone={buyer}");
                let headers = [("cookie", cookie.as_str())];
                let call = crate::common::http::call(address, hyper::Method::POST, &path, &headers, vec![]);
                (n, tokio::time::timeout(Duration::from_secs(5), call).await.expect("answered within 5 s"))
            }
        })
    });
    let answers = futures_util::future::join_all(calls).await;
    let elapsed = started.elapsed();
    let mut admitted = vec![0; routers.len()];
    for (n, answer) in answers {
        match answer.status {
            StatusCode::TOO_MANY_REQUESTS => {}
            StatusCode::OK => {
                let state = answer.json["data"]["state"].as_i64();
                assert!(matches!(state, Some(1 | -1)), "a success, then repeats: {}", answer.text);
                admitted[n] += 1;
            }
            other => panic!("{other}: {}", answer.text),
        }
    }
    (admitted, elapsed)
}

/// The most a limit of RATE with BURST admits within `elapsed`.
fn most_admitted(elapsed: Duration) -> f64 {
    BURST + RATE * elapsed.as_secs_f64() + 1.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn routers_sharing_redis_admit_one_buyers_rate_in_total_and_their_own_when_redis_stops() {
    let db = migrated_db().await;
    // A Redis of this test's own: it is stopped.
    let redis = LocalRedis::start().unwrap();
    let limits = AdmissionConfig { per_user: Some(Rate::new(RATE, BURST)), per_item: None };
    let mut routers = Vec::new();
    for _ in 0..3 {
        let service = Seckill::new(ConnectOptions::new(db.url()).build_pool().unwrap(), signer());
        let shared = BoundedRedis::connect(&redis.url()).await.unwrap();
        let http = SeckillHttp::new(service).admission(limits).shared_buyer_limit(shared, Some("test:"));
        routers.push(serve(http.router()).await);
    }
    let id = open_item(&Seckill::new(db.pool().clone(), signer()), 10).await.seckill_id;

    let (admitted, elapsed) = flood(&routers, id, phone(1), 30).await;
    let total: usize = admitted.iter().sum();
    assert!(total >= BURST as usize, "at least the burst: {admitted:?}");
    // Per process, each router would have admitted its own burst: 30 at least.
    assert!((total as f64) <= most_admitted(elapsed), "{admitted:?} in {elapsed:?}: one buyer's rate in total");

    redis.pause().unwrap();
    let _resume = Resume(&redis);
    let (admitted, elapsed) = flood(&routers, id, phone(2), 30).await;
    for (n, admitted) in admitted.iter().enumerate() {
        // Each router holds the limit itself: its own burst, and no more than its own rate.
        assert!(*admitted >= BURST as usize, "router {n} admitted {admitted} with Redis stopped");
        assert!((*admitted as f64) <= most_admitted(elapsed), "router {n}: {admitted} in {elapsed:?}");
    }
}
