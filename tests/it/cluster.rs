//! Several `seckill serve` instances behind the real nginx balancer (`seckill::local::cluster`), all real processes:
//! the balancer's answers for closed states are the app's bytes; once an item is sold out, a burst for it
//! reaches no instance and Redis sees a handful of lookups; with Redis killed or hung it passes everything
//! through and the app answers right; and an instance killed by its pid mid-sale is routed around with the books
//! balanced.
//!
//! Each test starts a cluster of its own (its own private Redis, which the fault test kills) on its own test
//! database. App requests are counted by [`app_requests`], from the instances' `/metrics`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mysql_async::prelude::Queryable;
use redis::AsyncCommands;
use seckill::local::balancer::ClosedStateConfig;
use seckill::local::cluster::{Cluster, ClusterDatabase, ClusterOptions, ClusterRedis};
use seckill::lottery::Lottery;
use seckill::seckill::closed::KEY_KIND;
use seckill::seckill::http::balancer_interception;
use seckill::seckill::{Phone, Seckill};
use seckill::testing::TestDatabase;

use crate::common::http::{JSON_UTF8, call_chunked, signed_in};
use crate::common::{SECRET, item_with_window, migrated_db, open_item, phone, service, signer, stock, success_rows};

/// The execution route, as axum names it (and as `seckill_http_requests_total{route}` will).
const EXECUTION_ROUTE: &str = "/seckill/{id}/{md5}/execution";
const DRAW_ROUTE: &str = "/lottery/{campaign}/draw";
const DETAIL_ROUTE: &str = "/seckill/{id}/detail.json";

/// A cluster of `instances` over the test's database, with a private Redis of its own.
async fn start_cluster(db: &TestDatabase, instances: usize) -> Cluster {
    let options = ClusterOptions::new(seckill::app::served(env!("CARGO_BIN_EXE_seckill")))
        .instances(instances)
        .database(ClusterDatabase::given(db.url()))
        .redis(ClusterRedis::Private)
        .hmac_secret(SECRET);
    Cluster::start(options).await.expect("the cluster starts")
}

/// How many requests for `route` the cluster's app instances have answered (`Cluster::app_requests`, from
/// their `/metrics`).
async fn app_requests(cluster: &Cluster, route: &str) -> usize {
    cluster.app_requests(route).await.unwrap()
}

/// Long enough for any answer the balancer cached before a key changed to have expired.
fn cache_expiry() -> Duration {
    ClosedStateConfig::new("", Vec::new()).cache_for * 3
}

/// An HTTP answer as the client got it.
#[derive(Debug, Clone)]
struct Reply {
    status: StatusCode,
    content_type: String,
    /// The `name=value` part of every `Set-Cookie` header.
    set_cookies: Vec<String>,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The seckill state of a 200 execution answer.
    fn state(&self) -> Option<i64> {
        (self.status == StatusCode::OK).then(|| self.json()["data"]["state"].as_i64()).flatten()
    }
}

/// A keepalive HTTP client, as a browser or a load generator would be.
#[derive(Clone)]
struct Http(Client<HttpConnector, Full<Bytes>>);

impl Http {
    fn new() -> Self {
        Http(Client::builder(TokioExecutor::new()).build_http())
    }

    /// One request with a `Cookie` header; an error when no answer came (a cut connection, or none in 30 s).
    async fn send(&self, address: SocketAddr, method: Method, path: &str, cookie: &str) -> Result<Reply, String> {
        let request = Request::builder()
            .method(method)
            .uri(format!("http://{address}{path}"))
            .header(COOKIE, cookie)
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self.0.request(request).await.map_err(|e| format!("{e:?}"))?;
            let status = response.status();
            let content_type =
                response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
            let set_cookies = response
                .headers()
                .get_all(SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_string))
                .collect();
            let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok(Reply { status, content_type, set_cookies, body })
        };
        tokio::time::timeout(Duration::from_secs(30), exchange).await.map_err(|_| "no answer in 30 s".to_string())?
    }

    /// `POST /seckill/{id}/{token}/execution` as `buyer`, with a genuine token.
    async fn execute(&self, address: SocketAddr, seckill_id: i64, buyer: Phone) -> Result<Reply, String> {
        let token = signer().sign(seckill_id, buyer, Utc::now());
        let path = format!("/seckill/{seckill_id}/{token}/execution");
        self.send(address, Method::POST, &path, &format!("killPhone={buyer}")).await
    }

    /// `POST /lottery/{campaign}/draw` as `user`.
    async fn draw(&self, address: SocketAddr, campaign_id: i64, user: i64) -> Result<Reply, String> {
        self.send(address, Method::POST, &format!("/lottery/{campaign_id}/draw"), &signed_in(user)).await
    }
}

fn balancer(cluster: &Cluster) -> SocketAddr {
    cluster.balancer().address()
}

async fn redis_connection(cluster: &Cluster) -> redis::aio::MultiplexedConnection {
    redis::Client::open(cluster.redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap()
}

/// Writes an item's shared state, as the test's own doing.
async fn set_item_state(cluster: &Cluster, seckill_id: i64, state: &str) {
    let () = redis_connection(cluster).await.set(cluster.state_key(KEY_KIND, seckill_id), state).await.unwrap();
}

/// Returns once the item's shared state is published, after an instance's batch learnt it
/// (`Cluster::state_published`, which waits for it): every caller proves that the instances publish it.
async fn item_state_published(cluster: &Cluster, seckill_id: i64, state: &str) {
    cluster.state_published(&cluster.state_key(KEY_KIND, seckill_id), state).await.unwrap();
}

/// Waits (up to 10 s) until `key` holds `value` in the cluster's Redis.
async fn key_holds(cluster: &Cluster, key: &str, value: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis_connection(cluster).await.get::<_, Option<String>>(key).await.unwrap().as_deref() != Some(value) {
        assert!(Instant::now() < deadline, "{key} never held {value}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many GETs Redis has served, all keys together.
async fn redis_gets(cluster: &Cluster) -> u64 {
    let info: String =
        redis::cmd("INFO").arg("commandstats").query_async(&mut redis_connection(cluster).await).await.unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("cmdstat_get:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

/// Asserts that two answers are the same bytes under the same status and content type.
fn assert_same_answer(balancer: &Reply, app: &Reply, what: &str) {
    assert_eq!(balancer.status, app.status, "{what}: status");
    assert_eq!(balancer.content_type, app.content_type, "{what}: content type");
    assert_eq!(balancer.body, app.body, "{what}: body\n balancer: {}\n app:      {}", balancer.text(), app.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_balancers_answers_for_closed_states_are_the_apps_byte_for_byte() {
    let db = migrated_db().await;
    let service = service(&db);
    let cluster = start_cluster(&db, 2).await;
    let http = Http::new();
    let app = cluster.instances()[0].address();

    // Sold out: a real sale through the balancer takes the only unit.
    let sold_out = open_item(&service, 1).await.seckill_id;
    let won = http.execute(balancer(&cluster), sold_out, phone(1)).await.unwrap();
    assert_eq!(won.state(), Some(1), "{}", won.text());
    // Ended: its window closed an hour ago.
    let ended =
        item_with_window(&service, 5, chrono::Duration::hours(-2), chrono::Duration::hours(-1)).await.seckill_id;
    for (seckill_id, state) in [(sold_out, "sold_out"), (ended, "ended")] {
        let from_app = http.execute(app, seckill_id, phone(2)).await.unwrap();
        assert_eq!((from_app.state(), from_app.content_type.as_str()), (Some(0), JSON_UTF8), "{}", from_app.text());
        // The instance that answered learnt the state from its batch.
        item_state_published(&cluster, seckill_id, state).await;
        tokio::time::sleep(cache_expiry()).await;
        let before = app_requests(&cluster, EXECUTION_ROUTE).await;
        let from_balancer = http.execute(balancer(&cluster), seckill_id, phone(2)).await.unwrap();
        assert_eq!(app_requests(&cluster, EXECUTION_ROUTE).await, before, "{state}: answered by the balancer itself");
        assert_same_answer(&from_balancer, &from_app, state);
    }

    // All drawn: one prize, won through the balancer; the winning instance publishes the flag itself. The
    // balancer never answers a draw: "all drawn" would tell the winner, drawing again, that nothing was recorded
    // for them. Every draw reaches an instance, which answers each user from their own record.
    let lottery = Lottery::new(db.pool().clone());
    let campaign = crate::common::open_campaign(&lottery, "金 Gold mug", 1).await;
    let drew = http.draw(balancer(&cluster), campaign, 1).await.unwrap();
    assert_eq!(drew.json()["data"]["outcome"], "won", "{}", drew.text());
    key_holds(&cluster, &format!("{}lottery:{campaign}:state", cluster.key_prefix()), "all_drawn").await;
    tokio::time::sleep(cache_expiry()).await;
    let before = app_requests(&cluster, DRAW_ROUTE).await;
    let again = http.draw(balancer(&cluster), campaign, 1).await.unwrap();
    let (won, again) = (drew.json()["data"].clone(), again.json()["data"].clone());
    assert_eq!((again["outcome"].as_str(), again["repeat"].as_bool()), (Some("won"), Some(true)), "{again}");
    assert_eq!((&again["drawId"], &again["prize"]), (&won["drawId"], &won["prize"]), "the winner hears their win");
    let other = http.draw(balancer(&cluster), campaign, 3).await.unwrap();
    assert_eq!(other.json()["data"]["outcome"], "all_drawn", "{}", other.text());
    assert_eq!(app_requests(&cluster, DRAW_ROUTE).await, before + 2, "both draws reached an instance");
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_the_app_would_refuse_pass_through_the_balancer_even_for_closed_items() {
    let db = migrated_db().await;
    let service = service(&db);
    let cluster = start_cluster(&db, 1).await;
    let http = Http::new();
    let seckill_id = open_item(&service, 0).await.seckill_id;
    set_item_state(&cluster, seckill_id, "sold_out").await;
    let campaign = 424_242;
    let key = format!("{}lottery:{campaign}:state", cluster.key_prefix());
    let () = redis_connection(&cluster).await.set(&key, "all_drawn").await.unwrap();
    let token = signer().sign(seckill_id, phone(1), Utc::now());
    let execution = format!("/seckill/{seckill_id}/{token}/execution");
    let draw = format!("/lottery/{campaign}/draw");
    // (method, path, cookie, status the app answers)
    let cases: Vec<(Method, String, String, StatusCode)> = vec![
        (Method::POST, execution.clone(), String::new(), StatusCode::UNAUTHORIZED),
        (Method::POST, execution.clone(), "killPhone=12345".into(), StatusCode::BAD_REQUEST),
        (Method::POST, execution.clone(), format!("killPhone={};killPhone=x", phone(1)), StatusCode::BAD_REQUEST),
        (
            Method::POST,
            format!("/seckill/0{seckill_id}/{token}/execution"),
            format!("killPhone={}", phone(1)),
            StatusCode::OK,
        ),
        (Method::GET, execution.clone(), format!("killPhone={}", phone(1)), StatusCode::METHOD_NOT_ALLOWED),
        (Method::POST, draw.clone(), String::new(), StatusCode::UNAUTHORIZED),
        (Method::POST, draw.clone(), "seckillUser=7.not-a-tag".into(), StatusCode::UNAUTHORIZED),
    ];
    let (execution_before, draw_before) =
        (app_requests(&cluster, EXECUTION_ROUTE).await, app_requests(&cluster, DRAW_ROUTE).await);
    for (method, path, cookie, status) in &cases {
        let reply = http.send(balancer(&cluster), method.clone(), path, cookie).await.unwrap();
        assert_eq!(reply.status, *status, "{method} {path} [{cookie}]: {}", reply.text());
    }
    // A draw another site's page makes is the app's to refuse.
    let cross_site = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{}{draw}", balancer(&cluster)))
        .header(COOKIE, signed_in(7))
        .header("sec-fetch-site", "cross-site")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let refused = http.0.request(cross_site).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // A declared body over the app's limit too.
    let large = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{}{execution}", balancer(&cluster)))
        .header(COOKIE, format!("killPhone={}", phone(1)))
        .body(Full::new(Bytes::from(vec![b'x'; 5000])))
        .unwrap();
    assert_eq!(http.0.request(large).await.unwrap().status(), StatusCode::PAYLOAD_TOO_LARGE);
    // And one sent in chunks, which declares no length: only the app, reading it, can tell it is too large.
    let phone_cookie = format!("killPhone={}", phone(1));
    let chunked = call_chunked(balancer(&cluster), Method::POST, &execution, &[("Cookie", &phone_cookie)], 5000).await;
    assert_eq!(chunked.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", chunked.text);
    // Every execution reached the app, the GET too (answered by its method-not-allowed fallback).
    let executions = execution_before + 7;
    assert_eq!(app_requests(&cluster, EXECUTION_ROUTE).await, executions, "every execution reached the app");
    assert_eq!(app_requests(&cluster, DRAW_ROUTE).await, draw_before + 3, "every draw reached the app");
    // And the well-formed ones do not.
    let answered = http.execute(balancer(&cluster), seckill_id, phone(1)).await.unwrap();
    assert_eq!(answered.state(), Some(0));
    assert_eq!(app_requests(&cluster, EXECUTION_ROUTE).await, executions, "answered by the balancer");
}

#[tokio::test(flavor = "multi_thread")]
async fn once_an_item_is_sold_out_a_burst_for_it_reaches_no_app_instance() {
    const STOCK: i64 = 20;
    const BUYERS: i64 = 60;
    const BURST: i64 = 2000;
    const CONCURRENCY: usize = 16;
    let db = migrated_db().await;
    let service = service(&db);
    let cluster = start_cluster(&db, 2).await;
    let http = Http::new();
    let seckill_id = open_item(&service, STOCK as i32).await.seckill_id;

    // The sale, through the balancer, until sold out.
    let answers = crowd(&http, balancer(&cluster), seckill_id, 1..=BUYERS, CONCURRENCY).await;
    let won = answers.values().filter(|reply| reply.as_ref().ok().and_then(Reply::state) == Some(1)).count();
    let refused = answers.values().filter(|reply| reply.as_ref().ok().and_then(Reply::state) == Some(0)).count();
    assert_eq!((won as i64, refused as i64), (STOCK, BUYERS - STOCK), "{answers:?}");
    assert_eq!((success_rows(db.pool(), seckill_id).await, stock(db.pool(), seckill_id).await), (STOCK, 0));

    item_state_published(&cluster, seckill_id, "sold_out").await;
    tokio::time::sleep(cache_expiry()).await;
    let (executions, gets, started) =
        (app_requests(&cluster, EXECUTION_ROUTE).await, redis_gets(&cluster).await, Instant::now());
    let burst = crowd(&http, balancer(&cluster), seckill_id, 1000..=999 + BURST, CONCURRENCY).await;
    let took = started.elapsed();
    let lookups = redis_gets(&cluster).await - gets;
    assert_eq!(
        app_requests(&cluster, EXECUTION_ROUTE).await,
        executions,
        "no request of the burst reached an app instance"
    );
    let expected = balancer_interception().answer;
    for (buyer, reply) in &burst {
        let reply = reply.as_ref().unwrap_or_else(|e| panic!("buyer {buyer}: {e}"));
        assert_eq!((reply.status, reply.content_type.as_str()), (StatusCode::OK, JSON_UTF8), "buyer {buyer}");
        assert_eq!(reply.text(), expected.for_id(seckill_id), "buyer {buyer}");
    }
    // One lookup per cache period at most, plus the INFO calls' own neighbourhood: never one per request.
    let periods = (took.as_secs_f64() / ClosedStateConfig::new("", Vec::new()).cache_for.as_secs_f64()).ceil() as u64;
    eprintln!("{BURST} requests over {took:?}: {lookups} Redis lookups");
    assert!(lookups <= periods + 1, "{lookups} Redis lookups for {BURST} requests over {took:?}");
    assert!(lookups < BURST as u64 / 4, "{lookups} Redis lookups for {BURST} requests");
    assert_eq!(success_rows(db.pool(), seckill_id).await, STOCK, "nothing more sold");

    // The counter does count: what the balancer does not answer reaches an instance.
    let details = app_requests(&cluster, DETAIL_ROUTE).await;
    let detail =
        http.send(balancer(&cluster), Method::GET, &format!("/seckill/{seckill_id}/detail.json"), "").await.unwrap();
    assert_eq!((detail.status, app_requests(&cluster, DETAIL_ROUTE).await), (StatusCode::OK, details + 1));
}

/// Each buyer in `buyers` executes once through `address`, `concurrency` at a time; every buyer's reply.
async fn crowd(
    http: &Http,
    address: SocketAddr,
    seckill_id: i64,
    buyers: std::ops::RangeInclusive<i64>,
    concurrency: usize,
) -> HashMap<i64, Result<Reply, String>> {
    let replies = counted_crowd(http, address, seckill_id, buyers, concurrency, &Arc::default()).await;
    replies.into_iter().map(|(_, buyer, reply)| (buyer, reply)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_redis_killed_or_hung_the_balancer_passes_requests_through_and_the_app_answers_right() {
    const REQUESTS: usize = 20;
    let db = migrated_db().await;
    let service = service(&db);
    let cluster = start_cluster(&db, 2).await;
    let http = Http::new();
    let closed = open_item(&service, 1).await.seckill_id;
    assert_eq!(http.execute(balancer(&cluster), closed, phone(1)).await.unwrap().state(), Some(1));
    // An instance learns "sold out" (the last unit went, and a buyer is turned away).
    let app = cluster.instances()[0].address();
    assert_eq!(http.execute(app, closed, phone(2)).await.unwrap().state(), Some(0));
    item_state_published(&cluster, closed, "sold_out").await;
    tokio::time::sleep(cache_expiry()).await;
    let before = app_requests(&cluster, EXECUTION_ROUTE).await;
    assert_eq!(http.execute(balancer(&cluster), closed, phone(4)).await.unwrap().state(), Some(0));
    assert_eq!(app_requests(&cluster, EXECUTION_ROUTE).await, before, "answered by the balancer while Redis runs");

    let redis = cluster.local_redis().expect("the cluster's own Redis");
    redis.kill().unwrap();
    tokio::time::sleep(cache_expiry()).await;
    assert_passes_through(&cluster, &http, &service, closed, 100, REQUESTS, "Redis killed").await;

    // Back, empty: the state is written again (here by the test); then Redis hangs (SIGSTOP: connections open,
    // nothing answered).
    redis.restart().unwrap();
    set_item_state(&cluster, closed, "sold_out").await;
    tokio::time::sleep(cluster_backoff() + cache_expiry()).await;
    let before = app_requests(&cluster, EXECUTION_ROUTE).await;
    assert_eq!(http.execute(balancer(&cluster), closed, phone(5)).await.unwrap().state(), Some(0));
    assert_eq!(app_requests(&cluster, EXECUTION_ROUTE).await, before, "answered by the balancer once Redis is back");
    redis.pause().unwrap();
    let _resume = Resume(redis);
    tokio::time::sleep(cache_expiry()).await;
    assert_passes_through(&cluster, &http, &service, closed, 200, REQUESTS, "Redis hung").await;
}

/// Resumes a paused Redis when dropped, passing or failing, so that its clean-up is not held up.
struct Resume<'a>(&'a seckill::local::redis::LocalRedis);

impl Drop for Resume<'_> {
    fn drop(&mut self) {
        let _ = self.0.resume();
    }
}

fn cluster_backoff() -> Duration {
    ClosedStateConfig::new("", Vec::new()).redis_backoff
}

/// With Redis unusable: `requests` executions of the closed item all reach the app and are answered state 0,
/// and a sale of a fresh item (as many units as buyers) sells every unit: nothing refused wrongly.
async fn assert_passes_through(
    cluster: &Cluster,
    http: &Http,
    service: &Seckill,
    closed: i64,
    first_buyer: i64,
    requests: usize,
    what: &str,
) {
    let before = app_requests(cluster, EXECUTION_ROUTE).await;
    for n in 0..requests as i64 {
        let reply = http.execute(balancer(cluster), closed, phone(first_buyer + n)).await.unwrap();
        assert_eq!((reply.state(), reply.content_type.as_str()), (Some(0), JSON_UTF8), "{what}: {}", reply.text());
    }
    assert_eq!(
        app_requests(cluster, EXECUTION_ROUTE).await,
        before + requests,
        "{what}: every request reached the app"
    );
    let open = open_item(service, requests as i32).await.seckill_id;
    let sale = crowd(http, balancer(cluster), open, first_buyer..=first_buyer + requests as i64 - 1, 8).await;
    for (buyer, reply) in &sale {
        let reply = reply.as_ref().unwrap_or_else(|e| panic!("{what}: buyer {buyer}: {e}"));
        assert_eq!(reply.state(), Some(1), "{what}: buyer {buyer}: {}", reply.text());
    }
    assert_eq!(success_rows(service.pool(), open).await, requests as i64, "{what}");
    assert_eq!(stock(service.pool(), open).await, 0, "{what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_killed_mid_sale_is_routed_around_and_the_books_balance() {
    const STOCK: i64 = 100;
    const BUYERS: i64 = 400;
    const CONCURRENCY: usize = 16;
    let db = migrated_db().await;
    let service = service(&db);
    let cluster = start_cluster(&db, 3).await;
    let http = Http::new();
    let seckill_id = open_item(&service, STOCK as i32).await.seckill_id;

    let answered = Arc::new(AtomicUsize::new(0));
    let sale = {
        let (http, address, answered) = (http.clone(), balancer(&cluster), answered.clone());
        tokio::spawn(async move { counted_crowd(&http, address, seckill_id, 1..=BUYERS, CONCURRENCY, &answered).await })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.load(Ordering::Relaxed) < STOCK as usize / 4 {
        assert!(Instant::now() < deadline, "the sale did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let victim = &cluster.instances()[1];
    victim.kill().unwrap();
    let answered_at_kill = answered.load(Ordering::Relaxed);
    let left_at_kill = stock(db.pool(), seckill_id).await;
    assert!(left_at_kill > 0, "killed in the middle of the sale: {left_at_kill} left");
    assert!(!process_runs(victim.pid()), "instance {} (pid {}) is gone", victim.number(), victim.pid());
    let replies = sale.await.unwrap();

    let mut told_success = Vec::new();
    let mut in_doubt = Vec::new();
    let mut refused = 0;
    let mut answered_after_kill = 0;
    for (order, buyer, reply) in &replies {
        match reply {
            Ok(reply) if reply.state() == Some(1) => {
                assert!(reply.json()["data"]["successKilled"].is_object(), "buyer {buyer}: {}", reply.text());
                told_success.push(*buyer);
            }
            Ok(reply) if reply.state() == Some(0) => refused += 1,
            // The balancer lost the answer (the instance died with the request) or the app could not tell.
            Ok(reply)
                if [StatusCode::BAD_GATEWAY, StatusCode::SERVICE_UNAVAILABLE, StatusCode::GATEWAY_TIMEOUT]
                    .contains(&reply.status) =>
            {
                // Whoever said it, in the app's JSON envelope: a classic page can read it.
                assert_eq!((reply.content_type.as_str(), reply.json()["success"].as_bool()), (JSON_UTF8, Some(false)));
                in_doubt.push(*buyer)
            }
            Ok(reply) => panic!("buyer {buyer}: unexpected answer {}: {}", reply.status, reply.text()),
            Err(error) => panic!("buyer {buyer}: no answer: {error}"),
        }
        if *order > answered_at_kill && reply.as_ref().is_ok_and(|reply| reply.status == StatusCode::OK) {
            answered_after_kill += 1;
        }
    }
    eprintln!(
        "killed instance {} after {answered_at_kill} answers with {left_at_kill} units left; then {answered_after_kill} \
         answered, {} in doubt, {} told success, {refused} refused",
        victim.number(),
        in_doubt.len(),
        told_success.len()
    );
    assert!(answered_after_kill > 0, "buyers were answered after the kill");
    assert!(
        in_doubt.len() <= CONCURRENCY,
        "only requests in flight at the kill may be in doubt: {} of {} ({in_doubt:?})",
        in_doubt.len(),
        replies.len()
    );

    // The books: no success without a row, no row without a buyer told success or in doubt, sold = rows = taken.
    let rows = success_phones(db.pool(), seckill_id).await;
    for buyer in &told_success {
        assert!(rows.contains(&phone(*buyer).get()), "buyer {buyer} was told success without a row");
    }
    for row in &rows {
        let buyer = row - phone(0).get();
        assert!(told_success.contains(&buyer) || in_doubt.contains(&buyer), "a row for buyer {buyer}, told neither");
    }
    let left = stock(db.pool(), seckill_id).await;
    assert_eq!(rows.len() as i64, STOCK - left, "rows = stock taken");
    assert!(refused > 0 && left == 0, "sold out: {left} left, {refused} refused");

    // A buyer in doubt learns the truth through the balancer.
    for buyer in &in_doubt {
        let result = http
            .send(
                balancer(&cluster),
                Method::GET,
                &format!("/seckill/{seckill_id}/result"),
                &format!("killPhone={}", phone(*buyer)),
            )
            .await
            .unwrap();
        assert_eq!(result.status, StatusCode::OK, "{}", result.text());
        assert_eq!(result.json()["data"].is_object(), rows.contains(&phone(*buyer).get()), "buyer {buyer}");
    }
}

/// Each buyer in `buyers` executes once through `address`, `concurrency` at a time, counting answers in
/// `answered` as they come; every reply with the order it came in (from 1).
async fn counted_crowd(
    http: &Http,
    address: SocketAddr,
    seckill_id: i64,
    buyers: std::ops::RangeInclusive<i64>,
    concurrency: usize,
    answered: &Arc<AtomicUsize>,
) -> Vec<(usize, i64, Result<Reply, String>)> {
    let buyers: Arc<Vec<i64>> = Arc::new(buyers.collect());
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (http, buyers, next, answered) = (http.clone(), buyers.clone(), next.clone(), answered.clone());
        workers.spawn(async move {
            let mut replies = Vec::new();
            while let Some(&buyer) = buyers.get(next.fetch_add(1, Ordering::Relaxed)) {
                let reply = http.execute(address, seckill_id, phone(buyer)).await;
                replies.push((answered.fetch_add(1, Ordering::Relaxed) + 1, buyer, reply));
            }
            replies
        });
    }
    let mut replies = Vec::new();
    while let Some(done) = workers.join_next().await {
        replies.extend(done.unwrap());
    }
    replies
}

/// Whether a process with this pid exists (`kill -0`).
fn process_runs(pid: u32) -> bool {
    let mut probe = std::process::Command::new("kill");
    probe.args(["-0", &pid.to_string()]).stderr(std::process::Stdio::null());
    probe.status().unwrap().success()
}

/// The phones with a success row for the item.
async fn success_phones(pool: &mysql_async::Pool, seckill_id: i64) -> Vec<i64> {
    let mut conn = pool.get_conn().await.unwrap();
    conn.exec("SELECT user_phone FROM success_killed WHERE seckill_id = ?", (seckill_id,)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn seckill_cluster_prints_what_runs_where_serves_through_the_balancer_and_removes_everything_on_sigterm() {
    use std::io::BufRead;

    let db = migrated_db().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut command = crate::common::seckill_command(db.url());
    command
        .args(["cluster", "--instances", "2", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("REDIS_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut cluster = command.spawn().unwrap();
    let mut running = StopOnDrop(Some(cluster.id()));
    let stdout = cluster.stdout.take().unwrap();
    // What runs where, up to its last line (the folder); bounded by the command's own start timeouts.
    let described = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let last = line.starts_with("folder");
            lines.push(line);
            if last {
                break;
            }
        }
        lines
    })
    .await
    .unwrap();
    let text = described.join("\n");
    assert!(described.last().is_some_and(|line| line.starts_with("folder")), "{text}");
    assert!(text.contains(&format!("balancer    http://127.0.0.1:{port}/seckill/list   nginx pid")), "{text}");
    assert_eq!(described.iter().filter(|line| line.starts_with("instance ")).count(), 2, "{text}");
    assert!(text.contains("redis       redis://:***@127.0.0.1:") && text.contains("private, pid"), "{text}");
    let shown = seckill::database::url_without_password(db.url());
    assert!(text.contains(&format!("database    {shown}   primary, given")), "{text}");
    let pids: Vec<u32> = described
        .iter()
        .filter(|line| !line.starts_with("database") && !line.starts_with("folder"))
        .filter_map(|line| line.split(" pid ").nth(1)?.split([',', ' ', ';']).next()?.parse().ok())
        .collect();
    assert_eq!(pids.len(), 4, "nginx, two instances, redis: {text}");
    let folder = described.last().unwrap().trim_start_matches("folder").trim().split(' ').next().unwrap().to_string();
    assert!(std::path::Path::new(&folder).is_dir(), "{folder}");

    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let now = Http::new().send(address, Method::GET, "/seckill/time/now", "").await.unwrap();
    assert_eq!(now.status, StatusCode::OK, "{}", now.text());

    let terminated = std::process::Command::new("kill").args(["-TERM", &cluster.id().to_string()]).status().unwrap();
    assert!(terminated.success());
    let (status, stderr) = tokio::task::spawn_blocking(move || {
        let status = cluster.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(cluster.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        (status, stderr)
    })
    .await
    .unwrap();
    // Waited for: the pid is the system's again.
    running.0 = None;
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("seckill: stopped"), "{stderr}");
    for pid in pids {
        let deadline = Instant::now() + Duration::from_secs(15);
        while process_runs(pid) {
            assert!(Instant::now() < deadline, "pid {pid} still runs after the cluster stopped");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::path::Path::new(&folder).exists() {
        assert!(Instant::now() < deadline, "{folder} is still there");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stops a `seckill cluster` process (SIGTERM: it tears its topology down) when the test ends before it has
/// waited for it, on a failed assertion, so that it does not run on with its servers. Its pid stays its own until
/// it is waited for, so the signal cannot reach another process.
struct StopOnDrop(Option<u32>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
    }
}

#[test]
fn seckill_cluster_refuses_bad_options_in_one_line() {
    let cases: &[(&[&str], bool, u8, &str)] = &[
        (&["cluster", "--instances", "0"], true, 2, "--instances"),
        (&["cluster", "--listen", "nowhere"], true, 2, "--listen"),
        (&["cluster"], false, 1, "hmac signing needs a secret"),
    ];
    for (args, with_secret, code, expected) in cases {
        let mut command = crate::common::seckill_command("mysql://root@127.0.0.1:1/none");
        if !with_secret {
            command.env_remove("SECKILL_SECRET");
        }
        let output = command.args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(i32::from(*code)), "{args:?}: {stderr}");
        assert!(stderr.lines().next().unwrap_or("").contains(expected), "{args:?}: {stderr}");
    }
}

/// A cluster on its own private primary + replica pair (`seckill cluster`'s default): the instances connect as
/// an app account without READ ONLY ADMIN and read details from the replica; every buyer told success through
/// the balancer is told so again at once by `/seckill/{id}/result` with the GTID cookie of the answer; with the
/// replica killed by its pid mid-sale, reads fall back to the primary and the sale goes on; started again, the
/// replica catches up and is read again. The books balance on both servers, and the app account cannot write on
/// the replica.
#[tokio::test]
async fn a_cluster_on_a_primary_and_replica_reads_its_writes_and_outlives_the_replica() {
    let options = ClusterOptions::new(seckill::app::served(env!("CARGO_BIN_EXE_seckill")))
        .instances(2)
        .database(ClusterDatabase::PrivatePair)
        .redis(ClusterRedis::Private)
        .hmac_secret(SECRET);
    let cluster = Cluster::start(options).await.expect("the cluster starts on a pair");
    let database = cluster.database();
    assert_eq!(database.replica_urls().len(), 1, "{}", cluster.describe());
    let pair = database.local_pair().expect("the cluster's own pair");
    let shop = Seckill::new(database.pool().clone(), signer());
    let item = open_item(&shop, 40).await;
    pair.wait_until_caught_up(Duration::from_secs(10)).await.expect("the replica has the item");
    let (http, balancer) = (Http::new(), cluster.balancer().address());
    let replica_reads = || async {
        let mut reads = 0;
        for instance in cluster.instances() {
            reads += instance.counter("seckill_replica_reads_total", &[]).await.unwrap();
        }
        reads
    };
    let (mut told_success, mut detail_reads) = (0, 0);
    for n in 0..120 {
        // Half the stock sold with the replica up, the other half with it down.
        if n == 20 {
            pair.stop_replica().expect("the replica is killed by its pid");
        }
        let buyer = phone(90_000 + n);
        let answer = http.execute(balancer, item.seckill_id, buyer).await.expect("an answer");
        if answer.state() == Some(1) {
            told_success += 1;
            // The answer's GTID cookie, sent back as a browser would: the result reads after it.
            let cookies = answer.set_cookies.iter().cloned().chain([format!("killPhone={buyer}")]).collect::<Vec<_>>();
            let path = format!("/seckill/{}/result", item.seckill_id);
            let result = http.send(balancer, Method::GET, &path, &cookies.join("; ")).await.expect("a result");
            assert_eq!(result.status, StatusCode::OK, "buyer {n}: {}", result.text());
            assert!(!result.json()["data"].is_null(), "buyer {n} won and is told nothing: {}", result.text());
        } else {
            assert_eq!(answer.state(), Some(0), "buyer {n}: {}", answer.text());
        }
        let path = format!("/seckill/{}/detail.json", item.seckill_id);
        let detail = http.send(balancer, Method::GET, &path, "").await.expect("a detail");
        assert_eq!(
            detail.status,
            StatusCode::OK,
            "details while the replica is {}",
            if n < 20 { "up" } else { "down" }
        );
        detail_reads += 1;
    }
    assert_eq!(told_success, 40, "every unit sold, replica or not");
    let mut fallbacks = 0;
    for instance in cluster.instances() {
        fallbacks += instance.counter("seckill_replica_fallbacks_total", &[]).await.unwrap();
    }
    assert!(fallbacks > 0, "the results after the replica stopped were read from the primary");
    let before = replica_reads().await;
    assert!(before > 0, "the replica served reads before it stopped ({detail_reads} detail reads)");
    pair.start_replica().expect("the replica starts again");
    pair.wait_until_caught_up(Duration::from_secs(20)).await.expect("the replica catches up");
    let again = async {
        for _ in 0..100 {
            let path = format!("/seckill/{}/detail.json", item.seckill_id);
            http.send(balancer, Method::GET, &path, "").await.expect("a detail");
            if replica_reads().await > before {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert!(again.await, "the replica is read again once it is back");
    // The books, on the primary and on the replica the app reads from.
    assert_eq!(success_rows(database.pool(), item.seckill_id).await, 40);
    assert_eq!(stock(database.pool(), item.seckill_id).await, 0);
    let replica = mysql_async::Pool::new(database.replica_urls()[0].as_str());
    assert_eq!(success_rows(&replica, item.seckill_id).await, 40, "the replica holds every sale");
    let mut conn = replica.get_conn().await.unwrap();
    let refused = conn.query_drop("UPDATE seckill SET number = number + 1").await.unwrap_err();
    assert!(matches!(&refused, mysql_async::Error::Server(e) if e.code == 1290), "{refused}");
    drop(conn);
    replica.disconnect().await.unwrap();
}

/// Operational endpoints are not public. An anonymous `GET /metrics` through the balancer, or on an instance's
/// API listener, is answered as any unknown route is (the app's JSON 404, the same bytes from the balancer as
/// from an instance) and shows no metric; spellings that nginx or axum might read as `/metrics` too. The
/// instances' counters are still there for who may read them: `Cluster::app_requests` counts a request.
#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_not_public_through_the_balancer_nor_on_an_instances_api_listener() {
    let db = migrated_db().await;
    let service = service(&db);
    let cluster = start_cluster(&db, 2).await;
    let http = Http::new();
    let mut listeners = vec![("the balancer", balancer(&cluster))];
    listeners.extend(cluster.instances().iter().map(|instance| ("an instance", instance.address())));
    let unknown = http.send(cluster.instances()[0].address(), Method::GET, "/no/such/route", "").await.unwrap();
    for (who, address) in listeners {
        for path in ["/metrics", "/metrics?format=text", "//metrics", "/%6Detrics", "/metrics/"] {
            let reply = http.send(address, Method::GET, path, "").await.unwrap();
            assert!(!reply.text().contains("seckill_"), "{who} GET {path}: {}", reply.text());
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{who} GET {path}: {}", reply.text());
            assert_same_answer(&reply, &unknown, &format!("{who} GET {path}"));
        }
    }
    let item = open_item(&service, 1).await.seckill_id;
    let before = app_requests(&cluster, DETAIL_ROUTE).await;
    let detail = http.send(balancer(&cluster), Method::GET, &format!("/seckill/{item}/detail.json"), "").await.unwrap();
    assert_eq!((detail.status, app_requests(&cluster, DETAIL_ROUTE).await), (StatusCode::OK, before + 1));
}

/// A `seckillGtid` cookie is a hint a client can forge. Eighty anonymous clients reading with a far-future
/// position (one the primary has not committed) must not slow the reads of an honest reader down, which stay on
/// the replica at a latency within a small factor of the one measured in the same test before the flood; and
/// read-your-writes still holds for honest buyers: one told success reads it again through every instance.
#[tokio::test(flavor = "multi_thread")]
async fn forged_far_future_gtid_cookies_never_stall_other_users_replica_reads() {
    const FORGERS: i64 = 80;
    const SAMPLES: usize = 30;
    /// How slower the honest reader's median may be during the flood: the flood costs CPU on this machine's
    /// few cores, never a wait on the replica.
    const SLOWDOWN: f64 = 10.0;
    let options = ClusterOptions::new(seckill::app::served(env!("CARGO_BIN_EXE_seckill")))
        .instances(2)
        .database(ClusterDatabase::PrivatePair)
        .redis(ClusterRedis::Private)
        .hmac_secret(SECRET);
    let cluster = Cluster::start(options).await.expect("the cluster starts on a pair");
    let database = cluster.database();
    let pair = database.local_pair().expect("the cluster's own pair");
    let shop = Seckill::new(database.pool().clone(), signer());
    let item = open_item(&shop, 40).await.seckill_id;
    pair.wait_until_caught_up(Duration::from_secs(10)).await.expect("the replica has the item");
    let (http, balancer) = (Http::new(), cluster.balancer().address());
    let result = format!("/seckill/{item}/result");

    // A buyer told success through the balancer reads it through every instance, with the answer's cookie.
    let buy_and_read_back = |n: i64| {
        let (http, result) = (http.clone(), result.clone());
        let cluster = &cluster;
        async move {
            let buyer = phone(70_000 + n);
            let answer = http.execute(balancer, item, buyer).await.expect("an answer");
            assert_eq!(answer.state(), Some(1), "buyer {n}: {}", answer.text());
            let cookie = answer.set_cookies.iter().cloned().chain([format!("killPhone={buyer}")]).collect::<Vec<_>>();
            let cookie = cookie.join("; ");
            for instance in cluster.instances() {
                let read = http.send(instance.address(), Method::GET, &result, &cookie).await.expect("a result");
                assert_eq!(read.status, StatusCode::OK, "buyer {n}: {}", read.text());
                assert!(read.json()["data"].is_object(), "buyer {n} won and is told nothing: {}", read.text());
            }
            cookie
        }
    };
    // The honest reader: a winner asking again, with its own cookie (a read after its GTID, on the replica).
    let honest = buy_and_read_back(0).await;
    let replica_reads = || async {
        let mut reads = 0;
        for instance in cluster.instances() {
            reads += instance.counter("seckill_replica_reads_total", &[]).await.unwrap();
        }
        reads
    };
    let sample = || async {
        let mut took = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let started = Instant::now();
            let read = http.send(balancer, Method::GET, &result, &honest).await.expect("a result");
            took.push(started.elapsed());
            assert!(read.json()["data"].is_object(), "the honest reader's own success: {}", read.text());
        }
        took.sort();
        took[SAMPLES / 2]
    };
    let baseline = sample().await;

    // The flood: each forger asks for its own result (it bought nothing) with a position far beyond the
    // primary's, at most once per GTID wait, so that it asks as often before the fix as after.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut forgers = tokio::task::JoinSet::new();
    for n in 0..FORGERS {
        let (http, result, stop) = (http.clone(), result.clone(), stop.clone());
        forgers.spawn(async move {
            let cookie = format!("killPhone={}; seckillGtid=0-1-4000000000", phone(80_000 + n));
            let mut wrong = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                match http.send(balancer, Method::GET, &result, &cookie).await {
                    Ok(read) if read.status == StatusCode::OK && read.json()["data"].is_null() => {}
                    Ok(read) => wrong.push(format!("{}: {}", read.status, read.text())),
                    Err(error) => wrong.push(error),
                }
                tokio::time::sleep_until((started + Duration::from_millis(500)).into()).await;
            }
            wrong
        });
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let reads_before = replica_reads().await;
    let flooded = sample().await;
    let replica_reads_during = replica_reads().await - reads_before;
    // Honest buyers meanwhile: each told success reads it back through every instance.
    for n in 1..=10 {
        buy_and_read_back(n).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut wrong = Vec::new();
    while let Some(done) = forgers.join_next().await {
        wrong.extend(done.unwrap());
    }
    eprintln!("honest reader's median: {baseline:?} alone, {flooded:?} among {FORGERS} forgers");
    assert!(
        flooded.as_secs_f64() <= baseline.as_secs_f64() * SLOWDOWN,
        "the honest reader's median went from {baseline:?} to {flooded:?} among {FORGERS} forgers"
    );
    assert!(replica_reads_during >= SAMPLES, "the honest reads were the replica's: {replica_reads_during}");
    assert!(wrong.is_empty(), "every forger was told the truth (nothing bought): {wrong:?}");
    let mut ahead = 0;
    for instance in cluster.instances() {
        ahead += instance.counter("seckill_replica_fallbacks_total", &[("reason", "ahead_of_primary")]).await.unwrap();
    }
    assert!(ahead > 0, "the forged positions were known for what they are");
    assert_eq!(success_rows(database.pool(), item).await, 11);
}

/// The private pair `seckill cluster` starts has credentials of its own: root with an empty password is refused
/// on both servers, over TCP and over their sockets (and so on a lone private server), and its private Redis
/// takes no command without its password; and no process of the cluster holds a password on its command line,
/// where every user of the machine can read it.
#[tokio::test(flavor = "multi_thread")]
async fn a_clusters_private_servers_refuse_root_without_a_password_and_no_command_line_holds_a_password() {
    let options = ClusterOptions::new(seckill::app::served(env!("CARGO_BIN_EXE_seckill")))
        .instances(2)
        .database(ClusterDatabase::PrivatePair)
        .redis(ClusterRedis::Private)
        .hmac_secret(SECRET);
    let cluster = Cluster::start(options).await.expect("the cluster starts on a pair");
    let pair = cluster.database().local_pair().expect("the cluster's own pair");
    let lone = tokio::task::spawn_blocking(|| seckill::local::LocalMariaDb::shared().map(|server| server.port()))
        .await
        .unwrap()
        .expect("the shared private server");
    let servers = [
        ("the primary", pair.primary().port(), pair.primary().pid()),
        ("the replica", pair.replica().port(), pair.replica().pid()),
    ];
    for (which, port, _) in servers.iter().copied().chain([("a lone private server", lone, None)]) {
        let over_tcp = format!("mysql://root@127.0.0.1:{port}/");
        let pool = seckill::database::ConnectOptions::new(over_tcp).prefer_socket(false).build_pool().unwrap();
        let refused = pool.get_conn().await.map(drop);
        assert!(matches!(&refused, Err(mysql_async::Error::Server(e)) if e.code == 1045), "{which}: {refused:?}");
        pool.disconnect().await.unwrap();
    }
    for (which, _, pid) in servers {
        let socket = command_line(pid.expect("it runs"))
            .into_iter()
            .find_map(|arg| arg.strip_prefix("--socket=").map(str::to_string))
            .expect("a socket on its command line");
        let opts = mysql_async::OptsBuilder::default().socket(Some(socket)).user(Some("root"));
        let refused = mysql_async::Conn::new(opts).await.map(drop);
        assert!(matches!(&refused, Err(mysql_async::Error::Server(e)) if e.code == 1045), "{which}: {refused:?}");
    }

    // Nor is its Redis, whose closed states the balancer answers from.
    let redis = cluster.local_redis().expect("the cluster's own Redis");
    let anyone = redis::Client::open(format!("redis://127.0.0.1:{}/", redis.port())).unwrap();
    let mut anyone = anyone.get_multiplexed_async_connection().await.unwrap();
    let refused: redis::RedisResult<()> = anyone.set("seckill:item:1:state", "sold_out").await;
    assert!(refused.as_ref().is_err_and(|e| e.code() == Some("NOAUTH")), "{refused:?}");

    // Every process of the cluster, and their children (nginx's workers).
    let mut pids: Vec<u32> = cluster.instances().iter().map(|instance| instance.pid()).collect();
    pids.extend(cluster.balancer().pid());
    pids.extend(cluster.local_redis().and_then(|redis| redis.pid()));
    pids.extend(pair.primary().pid());
    pids.extend(pair.replica().pid());
    pids.extend(children_of(&pids));
    assert!(pids.len() >= 7, "{pids:?}");
    let database = cluster.database();
    let mut urls = vec![database.primary_url().to_string(), pair.primary_url(), pair.replica_url(), redis.url()];
    urls.extend(database.replica_urls().iter().cloned());
    // `scheme://user:password@host...`
    let password_of = |url: &str| {
        let user_info = url.split("://").nth(1)?.split('/').next()?.rsplit_once('@')?.0;
        user_info.split_once(':').map(|(_, password)| password.to_string()).filter(|password| !password.is_empty())
    };
    let passwords: Vec<String> = urls.iter().filter_map(|url| password_of(url)).collect();
    assert_eq!(passwords.len(), urls.len(), "every account has a password: {urls:?}");
    for pid in pids {
        for arg in command_line(pid) {
            for password in &passwords {
                assert!(!arg.contains(password.as_str()), "pid {pid} has a password on its command line: {arg}");
            }
            let user_info = arg.split("://").nth(1).and_then(|rest| rest.split('/').next()?.split_once('@'));
            assert!(!user_info.is_some_and(|(user, _)| user.contains(':')), "pid {pid}: a URL with a password: {arg}");
        }
    }
}

/// The arguments of process `pid`, as every user of the machine may read them.
fn command_line(pid: u32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    raw.split(|byte| *byte == 0).filter(|arg| !arg.is_empty()).map(|arg| String::from_utf8_lossy(arg).into()).collect()
}

/// The processes whose parent is one of `parents`.
fn children_of(parents: &[u32]) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // `pid (name) state ppid ...`: the name may hold spaces, so read after its closing parenthesis.
        let parent = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if parent.is_some_and(|parent| parents.contains(&parent)) {
            children.push(pid);
        }
    }
    children
}

#[tokio::test(flavor = "multi_thread")]
async fn during_a_sale_pages_and_assets_come_from_the_balancers_cache_and_no_instance_serves_them() {
    const LOADS: usize = 300;
    let db = migrated_db().await;
    let service = service(&db);
    let cluster = start_cluster(&db, 2).await;
    let http = Arc::new(Http::new());
    let id = open_item(&service, 5).await.seckill_id;
    let (page_route, asset_route) = ("/seckill/{id}/detail", "/seckill/assets/{name}");

    // A first load fills the balancer's cache: the page, then each asset by the versioned URL the page links.
    let page_path = format!("/seckill/{id}/detail");
    let page = http.send(balancer(&cluster), Method::GET, &page_path, "").await.unwrap();
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    let assets: Vec<String> = html
        .split('"')
        .filter_map(|link| link.strip_prefix("../assets/"))
        .map(|asset| format!("/seckill/assets/{asset}"))
        .collect();
    assert_eq!(assets.len(), 4, "two styles and two scripts, each with its version: {html}");
    assert!(assets.iter().all(|asset| asset.contains("?v=")), "{assets:?}");
    let mut bodies = HashMap::new();
    for asset in &assets {
        let answer = http.send(balancer(&cluster), Method::GET, asset, "").await.unwrap();
        assert_eq!(answer.status, StatusCode::OK, "{asset}");
        bodies.insert(asset.clone(), answer.body);
    }
    let (pages, files) = (app_requests(&cluster, page_route).await, app_requests(&cluster, asset_route).await);
    assert!(pages >= 1 && files >= 4, "the first load reached an instance: {pages} pages, {files} assets");

    // A crowd loads the page as a sale opens: every byte from the balancer, none from an instance.
    let (page_body, bodies) = (Arc::new(page.body), Arc::new(bodies));
    let mut loads = tokio::task::JoinSet::new();
    let next = Arc::new(AtomicUsize::new(0));
    let address = balancer(&cluster);
    for _ in 0..16 {
        let (http, page_path, page_body, bodies, next) =
            (http.clone(), page_path.clone(), page_body.clone(), bodies.clone(), next.clone());
        loads.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < LOADS {
                let page = http.send(address, Method::GET, &page_path, "").await.unwrap();
                assert_eq!((page.status, &page.body), (StatusCode::OK, &*page_body));
                for (asset, body) in bodies.iter() {
                    let answer = http.send(address, Method::GET, asset, "").await.unwrap();
                    assert_eq!((answer.status, &answer.body), (StatusCode::OK, body), "{asset}");
                }
            }
        });
    }
    while let Some(load) = loads.join_next().await {
        load.unwrap();
    }
    assert_eq!(app_requests(&cluster, page_route).await, pages, "no page load reached an instance");
    assert_eq!(app_requests(&cluster, asset_route).await, files, "no asset load reached an instance");

    // The API's JSON is never kept: each read reaches an instance.
    let details = app_requests(&cluster, DETAIL_ROUTE).await;
    for _ in 0..2 {
        let detail = http.send(address, Method::GET, &format!("/seckill/{id}/detail.json"), "").await.unwrap();
        assert_eq!(detail.status, StatusCode::OK);
    }
    assert_eq!(app_requests(&cluster, DETAIL_ROUTE).await, details + 2);
}
