//! `seckill bench --workload cluster`: seckills through the real topology ([`seckill::local::cluster::Cluster`]: N
//! `seckill serve` instances behind the nginx balancer, a private Redis, the bench's database), every request a
//! real HTTP request of the classic API from many keep-alive connections ([`super::http_load`]), the books
//! checked after every phase. Per run (one per connection count):
//!
//! 0. **Generator ceiling**: the latecomers' requests against a trivial server in this process
//!    ([`super::canned_server`]): what the load generator itself can do on this machine.
//! 1. **Direct**: distinct buyers (exposer, then execution with its signed URL and the `killPhone` cookie) of an
//!    item with stock for the whole phase, sent to instance 1 directly: successful seckills per second.
//! 2. **Balanced**: the same load, same client, same binary, same database, sent to the balancer in front of
//!    the N instances. The figure is the ratio balanced / direct.
//! 3. **Closed**: an item sold out through the balancer; once the instance whose batch learnt it has published
//!    `sold_out` in Redis ([`seckill::local::cluster::Cluster::state_published`] waits for it) and the balancer's
//!    cache has expired, a burst of latecomers' executions at the balancer: requests per second answered, each
//!    answer the app's closed answer byte for byte, and the instances' own request counts from their
//!    `/metrics` ([`seckill::local::cluster::Cluster::app_requests`]) for the execution route over the burst, which must
//!    stay zero.
//!
//! The instances log warnings only: a log line per request would be part of what is measured.

mod latecomers;
mod sale;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::canned_server::CannedServer;
use super::error::BenchError;
use super::hot::new_item;
use super::http_load::{Connection, Job, drive, open_connections};
use super::measurement::process_cpu_seconds;
use super::progress::progress_bar;
use latecomers::{Latecomers, LatecomersTally};
use sale::{Buyers, BuyersTally, Until};
use seckill::http::JSON_UTF8;
use seckill::local::balancer::DEFAULT_CACHE_FOR;
use seckill::local::cluster::{Cluster, ClusterDatabase, ClusterOptions, ClusterRedis};
use seckill::seckill::Seckill;
use seckill::seckill::closed::KEY_KIND;
use seckill::seckill::http::EXECUTION_ROUTE;
use seckill::seckill::http::balancer_interception;
use seckill::seckill::signing::Signer;

/// The stock of the item sold out before the closed phase.
const CLOSED_STOCK: i32 = 100;

/// Buyers set aside for each phase of each run, so that no phone buys twice in one bench.
const BUYERS_PER_PHASE: u64 = 100_000_000;

/// How the cluster workload runs.
#[derive(Debug, Clone)]
pub struct ClusterBenchConfig {
    /// The `seckill` binary whose `serve` the instances run.
    pub serve_binary: PathBuf,
    /// App instances behind the balancer.
    pub instances: usize,
    /// Keep-alive connections of the load generator, one run each.
    pub connections: Vec<usize>,
    /// How long the generator's ceiling, each sale phase and the closed burst last.
    pub duration: Duration,
    /// The instances' HMAC key (the latecomers' tokens are signed with it, as the exposer would).
    pub secret: String,
    /// Show a spinner per phase.
    pub progress: bool,
}

/// One run of the cluster workload.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterReport {
    pub workload: &'static str,
    pub instances: usize,
    pub connections: usize,
    /// What ran where (balancer, instances, Redis, database).
    pub topology: String,
    /// Requests per second the load generator sustained against a trivial server in its own process.
    pub generator_ceiling_per_s: f64,
    /// What one request cost this process's CPU in that measurement (the generator and the trivial server
    /// together), in microseconds: on a quiet machine the generator's ceiling is about the cores over this.
    pub generator_cpu_us_per_request: f64,
    /// The buyers sent to instance 1 directly.
    pub direct: SalePhase,
    /// The same buyers sent to the balancer.
    pub balanced: SalePhase,
    /// balanced.seckills_per_s / direct.seckills_per_s.
    pub balanced_over_direct: f64,
    /// The burst for the item once closed.
    pub closed: ClosedPhase,
}

/// A sale phase: distinct buyers of one item with stock for the whole phase.
#[derive(Debug, Clone, Serialize)]
pub struct SalePhase {
    /// `instance 1` or `balancer`.
    pub target: String,
    pub seckill_id: i64,
    pub seconds: f64,
    /// Buyers told 秒杀成功.
    pub seckills: u64,
    pub seckills_per_s: f64,
    /// HTTP requests per second (two per buyer).
    pub requests_per_s: f64,
    pub rejections: u64,
    pub errors: u64,
    pub in_doubt: u64,
    pub first_error: Option<String>,
    /// Per buyer, exposer and execution together.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Execution requests each instance answered in the phase (instance 1 first).
    pub executions_by_instance: Vec<usize>,
    /// Cores the load generator kept busy (its process's CPU time over the phase's).
    pub generator_cores: f64,
    /// How the books balance.
    pub books: String,
}

/// The burst of latecomers for a closed item.
#[derive(Debug, Clone, Serialize)]
pub struct ClosedPhase {
    pub seckill_id: i64,
    /// Units sold through the balancer before it closed.
    pub sold: u64,
    pub seconds: f64,
    /// Requests answered with the closed answer.
    pub requests: u64,
    pub requests_per_s: f64,
    /// Requests answered otherwise, or not at all.
    pub unexpected: u64,
    pub first_unexpected: Option<String>,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Cores the load generator kept busy.
    pub generator_cores: f64,
    /// Execution requests the instances answered during the burst, all instances together.
    pub app_execution_requests: usize,
    /// Times the balancer found Redis failing or slow during the burst and passed requests through for a while
    /// (from its error log): what explains app requests in a burst, which then say it failed open.
    pub balancer_redis_failures: usize,
    /// How the item's books balance after the burst.
    pub books: String,
}

impl ClusterBenchConfig {
    /// Checks the configuration.
    ///
    /// # Errors
    /// [`BenchError::Invalid`], saying what to change.
    pub fn validate(&self) -> Result<(), BenchError> {
        if !(1..=seckill::local::cluster::MAX_INSTANCES).contains(&self.instances) {
            return Err(BenchError::Invalid(format!(
                "the cluster workload runs 1 to {} instances, not {}",
                seckill::local::cluster::MAX_INSTANCES,
                self.instances
            )));
        }
        if self.connections.is_empty() || self.connections.contains(&0) {
            return Err(BenchError::Invalid("the cluster workload needs at least one connection".into()));
        }
        Ok(())
    }
}

/// Starts the cluster over the database at `database_url` (and a private Redis), runs every connection count,
/// hands each run's report to `on_report`, and tears the cluster down.
///
/// # Errors
/// [`BenchError::BooksDoNotBalance`] as soon as a phase's books are off; the cluster's or the database's
/// errors.
pub async fn run(
    database_url: &str,
    config: &ClusterBenchConfig,
    mut on_report: impl FnMut(&ClusterReport),
) -> Result<(), BenchError> {
    config.validate()?;
    let signer = Signer::hmac(&config.secret).map_err(|e| BenchError::Invalid(e.to_string()))?;
    let mut options = ClusterOptions::new(seckill::app::served(&config.serve_binary))
        .instances(config.instances)
        .database(ClusterDatabase::given(database_url))
        .redis(ClusterRedis::Private)
        .hmac_secret(&config.secret);
    // Warnings only: a log line per request would be part of what is measured (counts come from /metrics).
    options.instance_log_filter = "warn".to_string();
    let cluster = Cluster::start(options).await?;
    let service = Seckill::new(cluster.database().pool().clone(), signer.clone());
    let mut result = Ok(());
    for (run, &connections) in config.connections.iter().enumerate() {
        let bench = RunBench { cluster: &cluster, service: &service, signer: &signer, config, connections, run };
        match bench.run().await {
            Ok(report) => on_report(&report),
            Err(error) => {
                result = Err(error);
                break;
            }
        }
    }
    cluster.stop().await?;
    result
}

/// One run: one connection count.
struct RunBench<'a> {
    cluster: &'a Cluster,
    service: &'a Seckill,
    signer: &'a Signer,
    config: &'a ClusterBenchConfig,
    connections: usize,
    run: usize,
}

impl RunBench<'_> {
    async fn run(&self) -> Result<ClusterReport, BenchError> {
        let (generator_ceiling_per_s, generator_cpu_us_per_request) = self.generator_ceiling().await?;
        let direct = self.sale_phase("instance 1", self.cluster.instances()[0].address(), 1).await?;
        let balanced = self.sale_phase("balancer", self.cluster.balancer().address(), 2).await?;
        let closed = self.closed_phase(3).await?;
        Ok(ClusterReport {
            workload: "cluster",
            instances: self.cluster.instances().len(),
            connections: self.connections,
            topology: self.cluster.describe(),
            generator_ceiling_per_s,
            generator_cpu_us_per_request,
            balanced_over_direct: balanced.seckills_per_s / direct.seckills_per_s.max(f64::MIN_POSITIVE),
            direct,
            balanced,
            closed,
        })
    }

    /// The first phone of a phase of this run.
    fn first_buyer(&self, phase: u64) -> u64 {
        (self.run as u64 * 4 + phase) * BUYERS_PER_PHASE
    }

    async fn connect(&self, address: std::net::SocketAddr) -> Result<Vec<Connection>, BenchError> {
        open_connections(address, self.connections).await.map_err(BenchError::Load)
    }

    /// Runs `job` on `connections` with a spinner, from `started`: every tally, the seconds it took, and the
    /// CPU seconds this process used meanwhile.
    async fn drive<J: Job>(
        &self,
        label: &str,
        connections: Vec<Connection>,
        job: Arc<J>,
        started: Instant,
    ) -> (Vec<J::Tally>, f64, f64) {
        let progress = progress_bar(self.config.progress, None, format!("{label} x{}", self.connections));
        let cpu_before = process_cpu_seconds();
        let tallies = drive(connections, job).await;
        let cpu = process_cpu_seconds().zip(cpu_before).map_or(0.0, |(after, before)| after - before);
        progress.finish_and_clear();
        (tallies, started.elapsed().as_secs_f64(), cpu)
    }

    /// Requests per second against a trivial server, and CPU microseconds per request.
    async fn generator_ceiling(&self) -> Result<(f64, f64), BenchError> {
        let body = balancer_interception().answer.for_id(1);
        let server = CannedServer::start(JSON_UTF8, &body).map_err(|e| BenchError::Load(e.to_string()))?;
        let connections = self.connect(server.address()).await?;
        let started = Instant::now();
        let job = Latecomers::new(self.signer, 1, self.first_buyer(0), body, started + self.config.duration)?;
        let (tallies, seconds, cpu) = self.drive("generator ceiling", connections, Arc::new(job), started).await;
        let tally = merged(tallies, LatecomersTally::merge);
        if tally.unexpected > 0 {
            return Err(BenchError::Load(format!(
                "against a trivial server: {} unexpected answers, first: {}",
                tally.unexpected,
                tally.first_unexpected.unwrap_or_default()
            )));
        }
        Ok((tally.closed as f64 / seconds, cpu * 1e6 / tally.closed.max(1) as f64))
    }

    async fn sale_phase(
        &self,
        target: &str,
        address: std::net::SocketAddr,
        phase: u64,
    ) -> Result<SalePhase, BenchError> {
        let stock = i32::MAX;
        let item = new_item(self.service, stock).await?;
        let connections = self.connect(address).await?;
        let before = self.cluster.app_requests_by_instance(EXECUTION_ROUTE).await?;
        let started = Instant::now();
        let buyers =
            Buyers::new(item.seckill_id, self.first_buyer(phase), Until::Deadline(started + self.config.duration))?;
        let (tallies, seconds, cpu) = self.drive(target, connections, Arc::new(buyers), started).await;
        let after = self.cluster.app_requests_by_instance(EXECUTION_ROUTE).await?;
        let executions_by_instance = after.iter().zip(&before).map(|(after, before)| after - before).collect();
        let tally = merged(tallies, BuyersTally::merge);
        let books = sale::check_books(self.service.pool(), item.seckill_id, i64::from(stock), &tally).await?;
        let (p50_ms, p99_ms, max_ms) = tally.latencies.summary();
        Ok(SalePhase {
            target: target.to_string(),
            seckill_id: item.seckill_id,
            seconds,
            seckills: tally.told_success.len() as u64,
            seckills_per_s: tally.told_success.len() as f64 / seconds,
            requests_per_s: tally.requests as f64 / seconds,
            rejections: tally.rejections,
            errors: tally.errors,
            in_doubt: tally.in_doubt.len() as u64,
            first_error: tally.first_error,
            p50_ms,
            p99_ms,
            max_ms,
            executions_by_instance,
            generator_cores: cpu / seconds,
            books,
        })
    }

    async fn closed_phase(&self, phase: u64) -> Result<ClosedPhase, BenchError> {
        // Sold out through the balancer: twice as many buyers as units, so instances turn buyers away.
        let item = new_item(self.service, CLOSED_STOCK).await?;
        let balancer = self.cluster.balancer().address();
        let buyers = Buyers::new(item.seckill_id, self.first_buyer(phase), Until::Buyers(2 * CLOSED_STOCK as u64))?;
        let connections = self.connect(balancer).await?;
        let (tallies, _, _) = self.drive("sell-out", connections, Arc::new(buyers), Instant::now()).await;
        let sale = merged(tallies, BuyersTally::merge);
        sale::check_books(self.service.pool(), item.seckill_id, i64::from(CLOSED_STOCK), &sale).await?;
        if sale.told_success.len() as u64 != CLOSED_STOCK as u64 || sale.rejections == 0 {
            return Err(BenchError::Load(format!(
                "the sell-out before the closed burst sold {} of {CLOSED_STOCK} and turned {} away; first error: {}",
                sale.told_success.len(),
                sale.rejections,
                sale.first_error.unwrap_or_default()
            )));
        }
        self.cluster.state_published(&self.cluster.state_key(KEY_KIND, item.seckill_id), "sold_out").await?;
        // Whatever the balancer cached for the item before is gone.
        tokio::time::sleep(DEFAULT_CACHE_FOR * 3).await;

        let connections = self.connect(balancer).await?;
        let expected = balancer_interception().answer.for_id(item.seckill_id);
        let first_latecomer = self.first_buyer(phase) + BUYERS_PER_PHASE / 2;
        let before = self.cluster.app_requests(EXECUTION_ROUTE).await?;
        let redis_failures_before = self.cluster.balancer().redis_failures();
        let started = Instant::now();
        let latecomers =
            Latecomers::new(self.signer, item.seckill_id, first_latecomer, expected, started + self.config.duration)?;
        let (tallies, seconds, cpu) = self.drive("closed burst", connections, Arc::new(latecomers), started).await;
        let app_execution_requests = self.cluster.app_requests(EXECUTION_ROUTE).await?.saturating_sub(before);
        let balancer_redis_failures = self.cluster.balancer().redis_failures().saturating_sub(redis_failures_before);
        let tally = merged(tallies, LatecomersTally::merge);
        let books = sale::check_books(self.service.pool(), item.seckill_id, i64::from(CLOSED_STOCK), &sale).await?;
        let (p50_ms, p99_ms, max_ms) = tally.latencies.summary();
        Ok(ClosedPhase {
            seckill_id: item.seckill_id,
            sold: sale.told_success.len() as u64,
            seconds,
            requests: tally.closed,
            requests_per_s: tally.closed as f64 / seconds,
            unexpected: tally.unexpected,
            first_unexpected: tally.first_unexpected,
            p50_ms,
            p99_ms,
            max_ms,
            generator_cores: cpu / seconds,
            app_execution_requests,
            balancer_redis_failures,
            books,
        })
    }
}

/// Every connection's tally as one.
fn merged<T: Default>(tallies: Vec<T>, merge: impl Fn(&mut T, T)) -> T {
    let mut total = T::default();
    for tally in tallies {
        merge(&mut total, tally);
    }
    total
}
