//! Prometheus metrics: `seckill serve` (a process of its own, so its counters count only this test's requests)
//! serves `/metrics` on its metrics listener and not on its API's, and after real requests the exposition's
//! series moved by exactly what was done; in this process, the recorder installs once and a router serves it,
//! with a relay's backlog gauges.

use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::time::Duration;

use hyper::{Method, StatusCode};
use seckill::database::ConnectOptions;
use seckill::local::redis::LocalRedis;
use seckill::messaging::{Relay, RelayConfig, outbox};
use seckill::prometheus::{self, EXPOSITION_CONTENT_TYPE};
use seckill::seckill::Phone;

use crate::common::http::{Answer, Served, serve};
use crate::common::{migrated_db, open_item, phone, seckill_command, service};

/// Every series of an exposition: (name, labels) → value.
type Series = HashMap<(String, Vec<(String, String)>), f64>;

fn parse(exposition: &str) -> Series {
    let mut series = Series::new();
    for line in exposition.lines().filter(|line| !line.starts_with('#') && !line.trim().is_empty()) {
        let (key, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("a sample line: {line:?}"));
        let (name, labels) = match key.split_once('{') {
            Some((name, labels)) => (name, labels.trim_end_matches('}')),
            None => (key, ""),
        };
        let mut labels: Vec<(String, String)> = labels
            .split("\",")
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (label, value) = pair.split_once('=').unwrap_or_else(|| panic!("a label in {line:?}"));
                (label.to_string(), value.trim_matches('"').to_string())
            })
            .collect();
        labels.sort();
        series.insert((name.to_string(), labels), value.parse().unwrap_or_else(|_| panic!("a value in {line:?}")));
    }
    series
}

/// A series' value, 0 when absent (nothing recorded yet).
fn value(series: &Series, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut labels: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    labels.sort();
    series.get(&(name.to_string(), labels)).copied().unwrap_or(0.0)
}

/// Stops the served process when the test ends, passing or failing.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn scrape(client: &Served, base: &str) -> Series {
    let answer = client.request_to(base, Method::GET, "/metrics", None, Vec::new()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.content_type, EXPOSITION_CONTENT_TYPE);
    parse(&answer.text)
}

#[tokio::test(flavor = "multi_thread")]
async fn seckill_serve_counts_what_was_done_in_its_exposition() {
    let db = migrated_db().await;
    let service = service(&db);
    let id = open_item(&service, 3).await.seckill_id;
    // A Redis of this test's own: the served process shares closed state through it.
    let redis = LocalRedis::start().unwrap();
    // Two free ports, held together so that they differ.
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (api_port, metrics_port) = (free(), free());
    let port = |listener: &std::net::TcpListener| listener.local_addr().unwrap().port();
    let (base, metrics) = (format!("127.0.0.1:{}", port(&api_port)), format!("127.0.0.1:{}", port(&metrics_port)));
    drop((api_port, metrics_port));
    // A buyer may make two executions, ever (the rate refills one every 100 s).
    let served = seckill_command(db.url())
        .args(["serve", "--listen", &base, "--metrics-listen", &metrics, "--redis-url", &redis.url()])
        .args(["--user-rate", "0.01", "--user-burst", "2"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _served = Process(served);
    let client = serve(axum::Router::new()).await; // only for its HTTP client
    for _ in 0..200 {
        if std::net::TcpStream::connect(&base).is_ok() && std::net::TcpStream::connect(&metrics).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = scrape(&client, &metrics).await;
    // Not on the API's listener: there it is an unknown route, and counted as one.
    let public = client.request_to(&base, Method::GET, "/metrics", None, Vec::new()).await;
    assert_eq!((public.status, public.json["error"].as_str()), (StatusCode::NOT_FOUND, Some("no such route")));

    let execute = |buyer: Phone, token: Option<&str>| {
        let token = token.map_or_else(|| service.signer().sign(id, buyer, chrono::Utc::now()), str::to_string);
        let (client, base) = (&client, &base);
        async move {
            let path = format!("/seckill/{id}/{token}/execution");
            client.request_to(base, Method::POST, &path, Some(&buyer.to_string()), Vec::new()).await
        }
    };
    let state = |answer: &Answer| answer.json["data"]["state"].as_i64();
    for n in 1..=3 {
        assert_eq!(state(&execute(phone(n), None).await), Some(1), "buyer {n} wins");
    }
    // Sold out: answered from the closed state, before the lanes.
    for n in [4, 5, 6, 6] {
        assert_eq!(state(&execute(phone(n), None).await), Some(0), "buyer {n}: sold out");
    }
    assert_eq!(execute(phone(6), None).await.status, StatusCode::TOO_MANY_REQUESTS, "buyer 6's third");
    assert_eq!(state(&execute(phone(7), Some("0123456789abcdef0123456789abcdef")).await), Some(-3), "tampered");
    assert_eq!(
        client.request_to(&base, Method::GET, "/seckill/list.json", None, Vec::new()).await.status,
        StatusCode::OK
    );
    let bad = client.request_to(&base, Method::GET, "/seckill/abc/detail.json", None, Vec::new()).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // Answered by the host's fallbacks, outside the routes' layers: counted all the same.
    let path = format!("/seckill/{id}/{}/execution", service.signer().sign(id, phone(8), chrono::Utc::now()));
    let get = client.request_to(&base, Method::GET, &path, Some(&phone(8).to_string()), Vec::new()).await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
    let unknown = client.request_to(&base, Method::GET, "/seckill/no/such/route/here", None, Vec::new()).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let after = scrape(&client, &metrics).await;
    let moved = |name: &str, labels: &[(&str, &str)]| value(&after, name, labels) - value(&before, name, labels);
    let execution = "/seckill/{id}/{md5}/execution";
    let requests = "seckill_http_requests_total";
    for (outcome, count) in [("success", 3.0), ("sold_out", 4.0), ("rate_limited", 1.0), ("tampered", 1.0)] {
        assert_eq!(moved(requests, &[("route", execution), ("outcome", outcome)]), count, "{outcome}");
    }
    assert_eq!(moved(requests, &[("route", "/seckill/list.json"), ("outcome", "ok")]), 1.0);
    assert_eq!(moved(requests, &[("route", "/seckill/{id}/detail.json"), ("outcome", "client_error")]), 1.0);
    assert_eq!(moved(requests, &[("route", execution), ("outcome", "client_error")]), 1.0, "the GET's 405");
    assert_eq!(moved(requests, &[("route", "unmatched"), ("outcome", "client_error")]), 2.0, "the 404s");
    assert_eq!(moved("seckill_rate_limited_total", &[("scope", "buyer")]), 1.0);
    let short_circuits = "seckill_short_circuits_total";
    assert_eq!(moved(short_circuits, &[("domain", "seckill"), ("source", "shared_state")]), 4.0);
    assert_eq!(moved(short_circuits, &[("domain", "seckill"), ("source", "lanes")]), 0.0);
    // Three lone buyers: three batches of one, three calls of the single procedure.
    assert_eq!(moved("seckill_batch_requests_count", &[("domain", "seckill")]), 3.0);
    assert_eq!(moved("seckill_batch_requests_sum", &[("domain", "seckill")]), 3.0);
    let calls = [("procedure", "execute_seckill_detailed")];
    assert_eq!(moved("seckill_database_call_duration_seconds_count", &calls), 3.0);
    assert!(moved("seckill_database_call_duration_seconds_sum", &calls) > 0.0);
    let le_10s = [("procedure", "execute_seckill_detailed"), ("le", "10")];
    assert_eq!(moved("seckill_database_call_duration_seconds_bucket", &le_10s), 3.0, "every call within 10 s");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_recorder_installs_once_and_its_router_serves_it_with_the_relays_gauges() {
    let db = migrated_db().await;
    let first = prometheus::install().unwrap();
    let again = prometheus::install().unwrap();
    // As a host app does: the API on one listener, the metrics on another.
    let api = serve(seckill::seckill::http::router(service(&db))).await;
    let served = serve(prometheus::router(again)).await;
    let path = "/seckill/list.json";
    let before = parse(&served.get("/metrics").await.text);
    assert_eq!(api.get(path).await.status, StatusCode::OK);
    assert_eq!(api.get(path).await.status, StatusCode::OK);
    let after = parse(&first.render());
    let labels = [("route", path), ("outcome", "ok")];
    // Other tests of this binary record into the same recorder meanwhile: at least ours moved it.
    let moved =
        value(&after, "seckill_http_requests_total", &labels) - value(&before, "seckill_http_requests_total", &labels);
    assert!(moved >= 2.0, "{moved}");

    // A relay samples the backlog on a timer, broker or not (this one has none to reach).
    outbox::enqueue(db.pool(), "metrics.test", "k-1", "{}").await.unwrap();
    let pool = ConnectOptions::new(db.url()).build_pool().unwrap();
    let config = RelayConfig { topics: vec!["metrics.test".into()], ..RelayConfig::default() };
    let relay = Relay::new(pool, "amqp://127.0.0.1:1/%2f", config).spawn();
    let mut sampled = false;
    for _ in 0..50 {
        let series = parse(&served.get("/metrics").await.text);
        let has = |name: &str, labels: &[(&str, &str)]| {
            let mut labels: Vec<(String, String)> =
                labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            labels.sort();
            series.contains_key(&(name.to_string(), labels))
        };
        if has("seckill_outbox_messages", &[("state", "pending")]) && has("seckill_relay_lag_seconds", &[]) {
            sampled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    relay.stop().await;
    assert!(sampled, "the relay's backlog and lag gauges are in the exposition");
}

#[tokio::test(flavor = "multi_thread")]
async fn seckill_relay_serves_the_outbox_gauges_the_alert_rules_watch_when_asked() {
    let db = migrated_db().await;
    // A message that waits (no consumer runs): the relay samples it as pending or sent, and its age as the lag.
    outbox::enqueue(db.pool(), seckill::exchange::SHIPMENT_TOPIC, "k-1", "{}").await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let metrics = format!("127.0.0.1:{port}");
    let relay = seckill_command(db.url())
        .env("RABBITMQ_URL", crate::common::messaging::broker())
        .args(["relay", "--namespace", &format!("metrics-{port}"), "--metrics-listen", &metrics])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _relay = Process(relay);
    let client = serve(axum::Router::new()).await; // only for its HTTP client
    let mut sampled = None;
    for _ in 0..600 {
        if std::net::TcpStream::connect(&metrics).is_ok() {
            let series = scrape(&client, &metrics).await;
            if series.keys().any(|(name, _)| name == "seckill_outbox_messages") {
                sampled = Some(series);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let series = sampled.expect("the relay's gauges within 30 s");
    let waiting = value(&series, "seckill_outbox_messages", &[("state", "pending")])
        + value(&series, "seckill_outbox_messages", &[("state", "sent")]);
    assert_eq!(waiting, 1.0, "{series:?}");
    assert_eq!(value(&series, "seckill_outbox_messages", &[("state", "dead")]), 0.0);
    assert!(series.keys().any(|(name, _)| name == "seckill_relay_lag_seconds"), "{series:?}");
}
