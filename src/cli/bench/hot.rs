//! `seckill bench`: the strategies side by side on one hot item, with the books checked after every run.
//!
//! Each run gets a fresh item and fresh users, so runs cannot disturb each other's books. Round trips per
//! seckill come from the server's own `Questions` counter; latency is measured per call by each caller.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;

use super::error::BenchError;
use super::measurement;
use super::progress::progress_bar;
use super::strategy::Strategy;
use super::workload::{self, Attempts, SALE_STOCK, SALE_USERS, Workload, run_callers, sale_attempts};

use seckill::database::ConnectOptions;
use seckill::database::error::DatabaseError;
use seckill::local::tcp_proxy::TcpProxy;
use seckill::seckill::signing::Signer;
use seckill::seckill::{Books, LaneConfig, NewItem, Seckill};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub workloads: Vec<Workload>,
    pub strategies: Vec<Strategy>,
    /// Callers in flight, one run per value.
    pub concurrency: Vec<usize>,
    /// How long the hot workload and the sale's post-sell-out burst last.
    pub duration: Duration,
    /// Extra round-trip time through a loopback proxy (zero: connect directly).
    pub rtt: Duration,
    /// Connections in the pool.
    pub pool_size: usize,
    /// The lanes' largest batch.
    pub max_batch: usize,
    /// Show progress bars (off for scripts).
    pub progress: bool,
}

/// One strategy's run of one workload at one concurrency.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub workload: Workload,
    pub strategy: Strategy,
    pub concurrency: usize,
    pub rtt_ms: f64,
    pub seconds: f64,
    pub seckills: u64,
    pub rejections: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub seckills_per_s: f64,
    pub rejections_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Statements the server received per attempt (each is a round trip).
    pub round_trips_per_attempt: f64,
    pub peak_rss_mib: f64,
    /// Sale only: from the first attempt to the last unit sold.
    pub sell_out_ms: Option<f64>,
    /// Sale only: rejections per second in the burst after sell-out.
    pub burst_rejections_per_s: Option<f64>,
    /// Sale only: statements the server received during that burst.
    pub burst_queries: Option<u64>,
}

impl RunReport {
    /// A run's report from what its callers observed over `seconds`, and the statements the server received.
    fn new(
        workload: Workload,
        strategy: Strategy,
        concurrency: usize,
        config: &BenchConfig,
        seconds: f64,
        questions: u64,
        tally: workload::Tally,
    ) -> Self {
        let (p50_ms, p99_ms, max_ms) = tally.latencies.summary();
        RunReport {
            workload,
            strategy,
            concurrency,
            rtt_ms: config.rtt.as_secs_f64() * 1000.0,
            seconds,
            seckills: tally.successes,
            rejections: tally.rejections,
            errors: tally.errors,
            seckills_per_s: tally.successes as f64 / seconds,
            rejections_per_s: tally.rejections as f64 / seconds,
            p50_ms,
            p99_ms,
            max_ms,
            round_trips_per_attempt: questions as f64 / tally.attempts().max(1) as f64,
            peak_rss_mib: measurement::peak_rss_mib(),
            first_error: tally.first_error,
            sell_out_ms: None,
            burst_rejections_per_s: None,
            burst_queries: None,
        }
    }
}

/// Runs every workload × concurrency × strategy on the database at `url` and checks the books after each.
/// Results are handed to `on_report` as they come.
///
/// # Errors
/// [`BenchError::BooksDoNotBalance`] as soon as one run's books are off; database errors.
pub async fn run(url: &str, config: &BenchConfig, mut on_report: impl FnMut(&RunReport)) -> Result<(), BenchError> {
    let mut options = ConnectOptions::new(url).max_connections(config.pool_size);
    let _proxy = if config.rtt.is_zero() {
        None
    } else {
        let upstream = upstream_address(url)?;
        let proxy = TcpProxy::start(upstream, config.rtt / 2).await.map_err(BenchError::Proxy)?;
        options = options.via(proxy.address());
        Some(proxy)
    };
    let monitor = ConnectOptions::new(url).max_connections(1).build_pool()?;
    // The exchange, lottery and cluster workloads measure other things and run on their own (`exchange::run`,
    // `lottery::run`, `cluster::run`).
    for &workload in config.workloads.iter().filter(|workload| workload.is_seckill()) {
        for &concurrency in &config.concurrency {
            for &strategy in &config.strategies {
                let pool = options.build_pool()?;
                let lanes = LaneConfig { max_batch: config.max_batch, ..LaneConfig::default() };
                // The bench calls the lanes directly; the signer is never asked.
                let signer = Signer::classic("bench").map_err(|e| DatabaseError::Client(e.to_string()))?;
                let service = Seckill::with_config(pool.clone(), signer, lanes);
                let report = match workload {
                    Workload::Hot => hot(&service, &monitor, strategy, concurrency, config).await?,
                    Workload::Sale => sale(&service, &monitor, strategy, concurrency, config).await?,
                    Workload::Exchange | Workload::Lottery | Workload::Cluster => continue,
                };
                on_report(&report);
                pool.disconnect().await.ok();
            }
        }
    }
    monitor.disconnect().await.ok();
    Ok(())
}

fn upstream_address(url: &str) -> Result<SocketAddr, BenchError> {
    let opts = mysql_async::Opts::from_url(url).map_err(DatabaseError::InvalidUrl)?;
    let host = format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port());
    std::net::ToSocketAddrs::to_socket_addrs(&host).ok().and_then(|mut a| a.next()).ok_or(BenchError::Address(host))
}

async fn check_books(service: &Seckill, seckill_id: i64, initial: i64, reported: u64) -> Result<(), BenchError> {
    Books::read(service.pool(), seckill_id)
        .await?
        .check(initial, reported)
        .map_err(|why| BenchError::BooksDoNotBalance(format!("item {seckill_id}: {why}")))
}

pub(super) async fn new_item(service: &Seckill, stock: i32) -> Result<seckill::seckill::Item, BenchError> {
    let now = Utc::now();
    let item = NewItem {
        name: "bench item".into(),
        stock,
        start_time: now - chrono::Duration::minutes(1),
        end_time: now + chrono::Duration::hours(1),
    };
    Ok(service.create(&item).await?)
}

async fn hot(
    service: &Seckill,
    monitor: &mysql_async::Pool,
    strategy: Strategy,
    concurrency: usize,
    config: &BenchConfig,
) -> Result<RunReport, BenchError> {
    let stock = i32::MAX;
    let item = new_item(service, stock).await?;
    let label = format!("hot {} x{concurrency}", strategy.name());
    let progress = progress_bar(config.progress, None, label);
    let questions_before = measurement::server_questions(monitor).await?;
    let started = Instant::now();
    let attempts = Attempts::FreshUntil { next: AtomicU64::new(0), deadline: started + config.duration };
    let tally = run_callers(strategy, service, item.seckill_id, concurrency, Arc::new(attempts), &progress).await;
    let seconds = started.elapsed().as_secs_f64();
    let questions = measurement::server_questions(monitor).await?.saturating_sub(questions_before + 1);
    progress.finish_and_clear();
    check_books(service, item.seckill_id, i64::from(stock), tally.successes).await?;
    Ok(RunReport::new(Workload::Hot, strategy, concurrency, config, seconds, questions, tally))
}

async fn sale(
    service: &Seckill,
    monitor: &mysql_async::Pool,
    strategy: Strategy,
    concurrency: usize,
    config: &BenchConfig,
) -> Result<RunReport, BenchError> {
    let item = new_item(service, SALE_STOCK).await?;
    let phones = sale_attempts();
    let label = format!("sale {} x{concurrency}", strategy.name());
    let progress = progress_bar(config.progress, Some(phones.len() as u64), label);
    let questions_before = measurement::server_questions(monitor).await?;
    let started = Instant::now();
    let attempts = Arc::new(Attempts::List { phones, next: AtomicUsize::new(0) });
    let sale = run_callers(strategy, service, item.seckill_id, concurrency, attempts, &progress).await;
    let sale_seconds = started.elapsed().as_secs_f64();
    let questions_after_sale = measurement::server_questions(monitor).await?;
    progress.finish_and_clear();

    let burst_progress = progress_bar(config.progress, None, format!("burst {} x{concurrency}", strategy.name()));
    let burst_started = Instant::now();
    let burst_attempts = Attempts::DrawnUntil {
        users: SALE_USERS * 2,
        next: AtomicU64::new(0),
        deadline: burst_started + config.duration,
    };
    let burst =
        run_callers(strategy, service, item.seckill_id, concurrency, Arc::new(burst_attempts), &burst_progress).await;
    let burst_seconds = burst_started.elapsed().as_secs_f64();
    let burst_queries = measurement::server_questions(monitor).await?.saturating_sub(questions_after_sale + 1);
    burst_progress.finish_and_clear();

    let successes = sale.successes + burst.successes;
    check_books(service, item.seckill_id, i64::from(SALE_STOCK), successes).await?;
    let questions = questions_after_sale.saturating_sub(questions_before + 1);
    let sell_out_seconds = sale.last_success.map_or(sale_seconds, |d| d.as_secs_f64());
    let (sale_attempts, sale_successes, sale_rejections) = (sale.attempts(), sale.successes, sale.rejections);
    let sell_out_ms = sale.last_success.map(|d| d.as_secs_f64() * 1000.0);
    let burst_rejections_per_s = burst.rejections as f64 / burst_seconds;
    let mut both = sale;
    both.merge(burst);
    Ok(RunReport {
        // The selling rate: units sold over the time it took to sell them.
        seckills_per_s: sale_successes as f64 / sell_out_seconds.max(1e-9),
        rejections_per_s: sale_rejections as f64 / sale_seconds,
        round_trips_per_attempt: questions as f64 / sale_attempts.max(1) as f64,
        sell_out_ms,
        burst_rejections_per_s: Some(burst_rejections_per_s),
        burst_queries: Some(burst_queries),
        ..RunReport::new(Workload::Sale, strategy, concurrency, config, sale_seconds, questions, both)
    })
}
