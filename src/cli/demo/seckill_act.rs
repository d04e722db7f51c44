//! The demo's seckill act: a whole flash sale through the real HTTP API, with the books checked.
//!
//! Migrates the database (a private throwaway one by default), creates an item that opens a few seconds later,
//! serves the API, and releases a crowd: every buyer counts down by the server's clock, asks the exposer for
//! the signed URL when the sale opens and buys; some retry, some tamper with the URL. Then it prints what the
//! crowd was told and checks it against the database.
//!
//! With `--cluster N` the crowd goes through the real topology instead of this process's server: the nginx
//! balancer in front of N `seckill serve` instances of this binary ([`seckill::local::cluster::Cluster`], over the same
//! database, with a private Redis and this run's HMAC key), printed as it runs, with how many executions each
//! instance answered and how many the balancer answered itself once an instance published the sell-out;
//! everything is stopped and removed once the crowd is done. The other acts are served by this process as ever.

use crate::cli::latencies::Latencies;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::Args;
use hyper::{Method, StatusCode};
use indicatif::{ProgressBar, ProgressStyle};
use seckill::local::cluster::{Cluster, ClusterDatabase, ClusterOptions, ClusterRedis, MAX_INSTANCES};
use seckill::migrate::Migrator;
use seckill::seckill::http::{AdmissionConfig, EXECUTION_ROUTE};
use seckill::seckill::signing::Signer;
use seckill::seckill::{Books, NewItem, Seckill};
use tokio::sync::{Mutex, Semaphore};

use super::super::Failure;
use super::super::bench::parse_duration;
use super::super::http_client::ApiClient;
use super::super::serve::seckill_routes;
use super::{Context, Finished};

#[derive(Debug, Args)]
#[command(next_help_heading = "Seckill act")]
pub(crate) struct SeckillActArgs {
    /// Buyers in the crowd.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=200_000))]
    buyers: u32,
    /// Units for sale.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i32).range(0..))]
    stock: i32,
    /// How long until the sale opens.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    opens_in: Duration,
    /// Send this act's crowd through the nginx load balancer in front of N `seckill serve` instances (started
    /// here with a private Redis, stopped after the act) instead of this process's server. The exchange and
    /// lottery acts are served by this process either way.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=MAX_INSTANCES as i64))]
    cluster: Option<u16>,
}

/// What the crowd was told.
#[derive(Debug, Default)]
struct Tally {
    sold: u64,
    repeats: u64,
    sold_out: u64,
    tampered_rejected: u64,
    inner_errors: u64,
    unexpected: Vec<String>,
    requests: u64,
    executions: Latencies,
}

impl Tally {
    fn record(&mut self, status: StatusCode, body: &serde_json::Value, elapsed: Duration) {
        self.requests += 1;
        self.executions.record(elapsed);
        let state = body["data"]["state"].as_i64();
        match (status, state) {
            (StatusCode::OK, Some(1)) => self.sold += 1,
            (StatusCode::OK, Some(-1)) => self.repeats += 1,
            (StatusCode::OK, Some(0)) => self.sold_out += 1,
            (StatusCode::OK, Some(-2)) | (StatusCode::SERVICE_UNAVAILABLE, _) => self.inner_errors += 1,
            (StatusCode::OK, Some(-3)) => self.tampered_rejected += 1,
            _ => self.unexpected.push(format!("{status} {body}")),
        }
    }
}

pub(super) async fn run(context: &Context<'_>, args: &SeckillActArgs) -> Result<Finished, Failure> {
    // The front first: the sale opens `--opens-in` after the crowd can reach it, however long a cluster takes. A
    // cluster without a database of yours runs on a private primary + replica pair of its own.
    let (front, pool) = match args.cluster {
        Some(instances) if context.target.is_throwaway() => {
            let (front, pool) =
                Front::cluster(ClusterDatabase::PrivatePair, usize::from(instances), context.secret).await?;
            (Some(front), pool)
        }
        cluster => {
            let (url, pool) = context.target.url_or_throwaway("seckill_demo").await?;
            let report = Migrator::embedded()?.run(&pool).await?;
            let (migrations, procedures) = (report.migrations.len(), report.procedures.len());
            outln!("migrated: {migrations} migrations, {procedures} procedures applied");
            let front = match cluster {
                Some(instances) => {
                    let database = ClusterDatabase::given(url);
                    Some(Front::cluster(database, usize::from(instances), context.secret).await?.0)
                }
                None => None,
            };
            (front, pool)
        }
    };
    let service = Seckill::new(pool.clone(), Signer::hmac(context.secret)?);
    // What the stage serves, and what `--serve` keeps serving afterwards (over the cluster's database too).
    let routes = seckill_routes(service.clone(), None, AdmissionConfig::default());
    let front = match front {
        Some(front) => front,
        None => Front::Stage(context.stage.open(routes.clone())?),
    };
    let now = Utc::now();
    let opens_in = chrono::Duration::from_std(args.opens_in).map_err(|e| Failure::new(format!("--opens-in: {e}")))?;
    let item = service
        .create(&NewItem {
            name: "秒杀 demo phone".into(),
            stock: args.stock,
            start_time: now + opens_in,
            end_time: now + opens_in + chrono::Duration::minutes(30),
        })
        .await?;
    outln!("item {} with stock {} opens at {}", item.seckill_id, item.number, item.start_time.to_rfc3339());
    let client = ApiClient::new(front.base_url(context));

    let progress =
        if std::io::stderr().is_terminal() { ProgressBar::new(u64::from(args.buyers)) } else { ProgressBar::hidden() };
    progress.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} buyers {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress.set_prefix("crowd");
    let tally = Arc::new(Mutex::new(Tally::default()));
    let in_flight = Arc::new(Semaphore::new(context.concurrency as usize));
    let crowd_started = Instant::now();
    let buyers: Vec<_> = (0..args.buyers)
        .map(|n| {
            let (client, tally, in_flight, progress) =
                (client.clone(), tally.clone(), in_flight.clone(), progress.clone());
            tokio::spawn(async move {
                let result = buyer(&client, item.seckill_id, n, &tally, &in_flight).await;
                progress.inc(1);
                result
            })
        })
        .collect();
    let mut failures = Vec::new();
    for buyer in buyers {
        match buyer.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => failures.push(error),
            Err(error) => failures.push(error.to_string()),
        }
    }
    progress.finish_and_clear();
    let crowd_seconds = crowd_started.elapsed().as_secs_f64() - args.opens_in.as_secs_f64();
    drop(client);
    let tally = std::mem::take(&mut *tally.lock().await);
    // The books before the front stops: a cluster's own database goes with it.
    let books = Books::read(&pool, item.seckill_id).await?;
    front.stop(item.seckill_id, tally.requests).await?;

    print_table(&tally, crowd_seconds.max(0.001), args.buyers);
    if let Some(first) = failures.first() {
        return Err(Failure::new(format!("{} buyers could not finish; first: {first}", failures.len())));
    }
    if let Some(first) = tally.unexpected.first() {
        return Err(Failure::new(format!("{} unexpected answers; first: {first}", tally.unexpected.len())));
    }
    books
        .check(i64::from(args.stock), tally.sold)
        .map_err(|why| Failure::new(format!("the books do NOT balance: {why}")))?;
    outln!(
        "books balance: {} sold = {} success rows = {} stock taken, no buyer twice, stock left {}",
        tally.sold,
        books.rows,
        i64::from(args.stock) - books.stock,
        books.stock
    );
    Ok(Finished { routes, pages: vec!["the sale page: {base}/seckill/list".into()], keep_running: Vec::new() })
}

/// Who serves the crowd.
enum Front {
    /// This process, on the demo's stage.
    Stage(seckill::messaging::Running),
    /// The balancer in front of app instances.
    Cluster(Box<Cluster>),
}

impl Front {
    /// Starts `instances` instances over `database` behind the balancer, and says what runs where; with a pool
    /// on the cluster's primary, migrated.
    async fn cluster(
        database: ClusterDatabase,
        instances: usize,
        secret: &str,
    ) -> Result<(Front, mysql_async::Pool), Failure> {
        let binary =
            std::env::current_exe().map_err(|e| Failure::new(format!("cannot find the seckill binary: {e}")))?;
        let options = ClusterOptions::new(seckill::app::served(binary))
            .instances(instances)
            .database(database)
            .redis(ClusterRedis::Private)
            .hmac_secret(secret);
        outln!("starting {instances} seckill serve instances behind nginx for the crowd ...");
        let cluster = Cluster::start(options).await?;
        outln!("{}", cluster.describe());
        let pool = cluster.database().pool().clone();
        Ok((Front::Cluster(Box::new(cluster)), pool))
    }

    fn base_url(&self, context: &Context<'_>) -> String {
        match self {
            Front::Stage(_) => context.stage.base_url(),
            Front::Cluster(cluster) => cluster.balancer_url(),
        }
    }

    /// Stops serving; for a cluster, first says who answered the crowd's `executions`: each instance, and the
    /// balancer itself once an instance published that the item sold out.
    async fn stop(self, seckill_id: i64, executions: u64) -> Result<(), Failure> {
        match self {
            Front::Stage(server) => server.stop().await,
            Front::Cluster(cluster) => {
                let by_instance = cluster.app_requests_by_instance(EXECUTION_ROUTE).await?;
                let answered: Vec<String> = by_instance
                    .iter()
                    .zip(cluster.instances())
                    .map(|(answered, instance)| format!("instance {}: {answered}", instance.number()))
                    .collect();
                let by_instances = by_instance.iter().sum::<usize>() as u64;
                let key = cluster.state_key(seckill::seckill::closed::KEY_KIND, seckill_id);
                let state = cluster.shared_state(&key).await?;
                outln!(
                    "execution requests answered: {}; the balancer itself: {} (of the crowd's {executions}; {} = \
                     {})",
                    answered.join(", "),
                    executions.saturating_sub(by_instances),
                    key,
                    state.as_deref().unwrap_or("none")
                );
                cluster.stop().await?;
                outln!("the cluster is stopped and removed");
            }
        }
        Ok(())
    }
}

/// One buyer: count down by the server's clock, expose, buy; every fifth tries once more, every twentieth
/// tampers with the URL.
async fn buyer(
    client: &ApiClient,
    seckill_id: i64,
    n: u32,
    tally: &Mutex<Tally>,
    in_flight: &Semaphore,
) -> Result<(), String> {
    let phone = 13_900_000_000 + i64::from(n);
    let call = |method: Method, path: String| async move {
        let _permit = in_flight.acquire().await.map_err(|e| e.to_string())?;
        client.call(method, &path, Some(phone)).await
    };
    let (_, detail) = call(Method::GET, format!("/seckill/{seckill_id}/detail.json")).await?;
    let (_, now) = call(Method::GET, "/seckill/time/now".into()).await?;
    let wait = detail["data"]["startTime"].as_i64().unwrap_or(0) - now["data"].as_i64().unwrap_or(0);
    // A little jitter, as real clicks have; the exposer re-syncs anyone who is early.
    tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0) + u64::from(n % 50))).await;
    let mut token = None;
    for _ in 0..100 {
        let (_, exposer) = call(Method::POST, format!("/seckill/{seckill_id}/exposer")).await?;
        if exposer["data"]["exposed"].as_bool() == Some(true) {
            token = exposer["data"]["md5"].as_str().map(str::to_string);
            break;
        }
        let left = exposer["data"]["start"].as_i64().unwrap_or(0) - exposer["data"]["now"].as_i64().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(u64::try_from(left).unwrap_or(0).clamp(10, 1000))).await;
    }
    let mut token = token.ok_or_else(|| format!("buyer {phone} never saw the sale open"))?;
    if n % 20 == 7 {
        let last = if token.ends_with('0') { '1' } else { '0' };
        token = format!("{}{last}", &token[..token.len() - 1]);
    }
    let attempts = if n % 5 == 1 { 2 } else { 1 };
    for _ in 0..attempts {
        let started = Instant::now();
        let (status, body) = call(Method::POST, format!("/seckill/{seckill_id}/{token}/execution")).await?;
        tally.lock().await.record(status, &body, started.elapsed());
    }
    Ok(())
}

fn print_table(tally: &Tally, seconds: f64, buyers: u32) {
    let p = |q: f64| tally.executions.quantile_ms(q);
    outln!("\n  {buyers} buyers, {} execution requests", tally.requests);
    outln!("  {:<32} {:>10}", "sold (秒杀成功)", tally.sold);
    outln!("  {:<32} {:>10}", "repeats (重复秒杀)", tally.repeats);
    outln!("  {:<32} {:>10}", "sold-out answers (秒杀结束)", tally.sold_out);
    outln!("  {:<32} {:>10}", "tampered URLs rejected (数据篡改)", tally.tampered_rejected);
    outln!("  {:<32} {:>10}", "inner errors", tally.inner_errors);
    outln!("  {:<32} {:>10.0}", "execution requests/s", tally.requests as f64 / seconds);
    outln!("  {:<32} {:>10.2}", "execution p50 ms", p(0.5));
    outln!("  {:<32} {:>10.2}\n", "execution p99 ms", p(0.99));
}
