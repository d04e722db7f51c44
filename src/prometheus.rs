//! Prometheus metrics: the recorder (installed once per process), `GET /metrics` in the text exposition format
//! as a [`Router`] for a host app to serve, and the names every part of the crate emits under.
//!
//! Code everywhere emits through the [`metrics`] facade's macros, which cost next to nothing while no recorder is
//! installed: a library user who wants no metrics pays nothing, and one who has a recorder of their own gets
//! them there. [`install`] installs `metrics-exporter-prometheus`'s recorder (no listener of its own: the text is
//! rendered through its handle by [`router`]'s route).
//!
//! # Not on the public listener
//!
//! Metrics are operational, not public: they name internal servers (each replica's `host:port`) and show the
//! traffic of every route. Serve [`router`] on a listener of its own, on loopback or an interface only the
//! monitoring network reaches, never merged into the router the public reaches. `seckill serve` does so
//! (`--metrics-listen`, `127.0.0.1:9464` by default), and a balancer in front of it answers [`METRICS_PATH`] with
//! a 404 itself.
//!
//! ```no_run
//! # async fn app(routes: axum::Router) -> Result<(), Box<dyn std::error::Error>> {
//! let handle = seckill::prometheus::install()?;
//! let metrics = tokio::net::TcpListener::bind("127.0.0.1:9464").await?;
//! tokio::spawn(async move { axum::serve(metrics, seckill::prometheus::router(handle)).await });
//! let public = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! axum::serve(public, routes).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # The metrics
//!
//! Prefix `seckill_`, snake case, units in the name.
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `seckill_http_requests_total` | counter | `route`, `outcome` | requests answered by the crate's routers and by the fallbacks of `http::with_json_fallbacks`. `route` is axum's matched path (`/seckill/{id}/{md5}/execution`), `unmatched` for none (a 404); `outcome` is the domain's where the handler knows it (execution: `success`, `sold_out`, `ended`, `not_started`, `repeat`, `tampered`, `not_found`, `inner_error`; draw: `won`, `no_prize`, `all_drawn`, `not_started`, `ended`, `unknown_campaign`; exchange: `exchanged`, `not_enough_points`, `out_of_stock`, `unknown_user`, `unknown_gift`), `rate_limited` (429) and `in_doubt` (503 in doubt), else from the status: `ok`, `client_error`, `server_error` |
//! | `seckill_batch_requests` | histogram | `domain` | requests decided per batch by the group-commit lanes (`seckill`, `exchange`, `lottery`) |
//! | `seckill_database_call_duration_seconds` | histogram | `procedure` | one stored-procedure call, from asking the pool for a connection to its last result, failed calls included |
//! | `seckill_database_unanswered_total` | counter | `work` | database work given up on its client-side bound (`database::bounded`), its connection closed: `claiming messages`, `marking messages sent`, `marking messages consumed`, `recording answers`, `marking messages dead`, `sampling the outbox`, `inserting shipment requests` … |
//! | `seckill_short_circuits_total` | counter | `domain`, `source` | requests answered without the database: `source` `lanes` (the lanes' memory of a closed key) or `shared_state` (the closed state, from memory or Redis) |
//! | `seckill_rate_limited_total` | counter | `scope` | executions refused by a rate limit: `buyer` or `item` |
//! | `seckill_outbox_messages` | gauge | `state` | messages in the outbox by state (`pending`, `sent`, `consumed`, `dead`), sampled by each relay every [`BACKLOG_SAMPLE_INTERVAL`] |
//! | `seckill_relay_lag_seconds` | gauge | | age of the oldest message not yet consumed (0 when none), sampled with the backlog |
//! | `seckill_replica_reads_total` | counter | `replica` | reads served by a replica |
//! | `seckill_replica_fallbacks_total` | counter | `reason` | reads meant for a replica that went to the primary: `down`, `lagging`, `gtid_wait_timeout`, `ahead_of_primary` (a position the primary has not committed, never waited for) (none configured is not counted) |
//!
//! Histogram buckets: batch sizes 1, 2, 4 … 512; call durations 0.5 ms to 10 s. Labels never carry ids, users or
//! raw paths, so the number of series stays bounded.
//!
//! The recorder is global to the process: tests that read it measure deltas.

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use thiserror::Error;

/// The names of the crate's metrics (see the module's table).
pub mod names {
    /// Counter, labels `route`, `outcome`.
    pub const HTTP_REQUESTS: &str = "seckill_http_requests_total";
    /// Histogram, label `domain`.
    pub const BATCH_REQUESTS: &str = "seckill_batch_requests";
    /// Histogram, label `procedure`.
    pub const DATABASE_CALL_DURATION: &str = "seckill_database_call_duration_seconds";
    /// Counter, label `work`.
    pub const DATABASE_UNANSWERED: &str = "seckill_database_unanswered_total";
    /// Counter, labels `domain`, `source`.
    pub const SHORT_CIRCUITS: &str = "seckill_short_circuits_total";
    /// Counter, label `scope`.
    pub const RATE_LIMITED: &str = "seckill_rate_limited_total";
    /// Gauge, label `state`.
    pub const OUTBOX_MESSAGES: &str = "seckill_outbox_messages";
    /// Gauge, no label.
    pub const RELAY_LAG: &str = "seckill_relay_lag_seconds";
    /// Counter, label `replica`.
    pub const REPLICA_READS: &str = "seckill_replica_reads_total";
    /// Counter, label `reason`.
    pub const REPLICA_FALLBACKS: &str = "seckill_replica_fallbacks_total";
}

/// How often a relay samples the outbox's backlog and lag: one grouped count of the outbox (an index scan) and
/// one `MIN` per sample, cheap at this pace and never per message.
pub const BACKLOG_SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// How often histograms are drained into their buckets between scrapes, so memory stays bounded.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The path [`router`] serves the exposition at.
pub const METRICS_PATH: &str = "/metrics";

/// The content type of the text exposition format.
pub const EXPOSITION_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Why metrics could not be installed.
#[derive(Debug, Clone, Error)]
pub enum MetricsError {
    #[error("cannot install the Prometheus recorder: {0} (is another metrics recorder installed in this process?)")]
    Install(String),
}

static INSTALLED: OnceLock<Result<PrometheusHandle, MetricsError>> = OnceLock::new();

/// Installs the Prometheus recorder as the process's global recorder, once; later calls return the same
/// handle. Also describes every metric and starts a thread that drains histograms every few seconds.
///
/// # Errors
/// [`MetricsError::Install`] when another recorder was installed first (by the host app).
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    INSTALLED.get_or_init(install_once).clone()
}

fn install_once() -> Result<PrometheusHandle, MetricsError> {
    let failed = |error: BuildError| MetricsError::Install(error.to_string());
    let batch_sizes: Vec<f64> = (0..10).map(|power| f64::from(1u32 << power)).collect();
    let seconds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(names::BATCH_REQUESTS.into()), &batch_sizes)
        .map_err(failed)?
        .set_buckets_for_metric(Matcher::Full(names::DATABASE_CALL_DURATION.into()), &seconds)
        .map_err(failed)?
        .install_recorder()
        .map_err(failed)?;
    describe();
    let upkeep = handle.clone();
    // The thread lives as long as the process, as the recorder does; if it cannot start, scrapes still drain.
    let _ = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_INTERVAL);
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(names::HTTP_REQUESTS, "HTTP requests answered, by matched route and outcome.");
    describe_histogram!(names::BATCH_REQUESTS, "Requests decided per group-commit batch, by domain.");
    describe_histogram!(
        names::DATABASE_CALL_DURATION,
        metrics::Unit::Seconds,
        "Stored-procedure calls, connection wait included, by procedure."
    );
    describe_counter!(
        names::DATABASE_UNANSWERED,
        "Database work given up on its client-side bound, its connection closed, by work."
    );
    describe_counter!(names::SHORT_CIRCUITS, "Requests answered without the database, by domain and source.");
    describe_counter!(names::RATE_LIMITED, "Executions refused by a rate limit, by scope.");
    describe_gauge!(names::OUTBOX_MESSAGES, "Outbox messages by state, as last sampled by a relay.");
    describe_gauge!(names::RELAY_LAG, metrics::Unit::Seconds, "Age of the oldest outbox message not yet consumed.");
    describe_counter!(names::REPLICA_READS, "Reads served by a replica, by replica.");
    describe_counter!(names::REPLICA_FALLBACKS, "Reads meant for a replica served by the primary, by reason.");
}

/// `GET /metrics`: everything recorded so far, in the text exposition format. Serve it on a listener of its own,
/// not the public one (see the module's documentation).
pub fn router(handle: PrometheusHandle) -> Router {
    Router::new().route(
        METRICS_PATH,
        get(move || {
            let handle = handle.clone();
            async move {
                handle.run_upkeep();
                ([(CONTENT_TYPE, EXPOSITION_CONTENT_TYPE)], handle.render())
            }
        }),
    )
}
