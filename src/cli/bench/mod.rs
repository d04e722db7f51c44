//! `seckill bench`: the strategies side by side, as a table or as JSON lines. Private to the binary: the
//! workloads are the command's, run on the library's public API like any user's code.

mod canned_server;
mod cluster;
mod error;
mod exchange;
mod hot;
mod hot_redis;
mod http_load;
mod lottery;
mod measurement;
mod progress;
mod redis_connections;
mod strategy;
mod workload;

use std::io::IsTerminal;
use std::time::Duration;

use clap::Args;
use mysql_async::prelude::Queryable;
use seckill::database::error::DatabaseError;
use seckill::database::{ConnectOptions, url_with_database};
use seckill::local::rabbitmq::LocalRabbitMq;
use seckill::local::redis::LocalRedis;
use seckill::migrate::Migrator;

use cluster::{ClusterBenchConfig, ClusterReport};
use exchange::{ExchangeBenchConfig, ExchangeReport};
use hot::{BenchConfig, RunReport};
use lottery::{LotteryBenchConfig, LotteryReport};
use strategy::Strategy;
use workload::Workload;

use super::signing_args::random_secret;
use super::{DatabaseTarget, Failure};

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Workloads to run (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "hot")]
    workload: Vec<Workload>,
    /// Strategies to compare (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "naive,procedure,batched")]
    strategy: Vec<Strategy>,
    /// Callers in flight, 1 to 4096 (comma-separated: one run each).
    #[arg(long, value_delimiter = ',', default_value = "256", value_parser = clap::value_parser!(u16).range(1..=4096))]
    concurrency: Vec<u16>,
    /// How long each hot run, and each sale's burst after sell-out, lasts (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// Extra round-trip time added by a loopback proxy between client and server (e.g. 1ms).
    #[arg(long, default_value = "0ms", value_parser = parse_duration)]
    rtt: Duration,
    /// Connections in the pool.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pool: u16,
    /// The lanes' largest batch.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=10000))]
    max_batch: u16,
    /// Users: for the exchange workload, users with points (default 20,000); for the lottery, the crowd that
    /// draws (default 1,000,000).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..=10_000_000))]
    users: Option<i64>,
    /// Lottery workload: prizes in all, shared by four tiers (1%, 9%, 30%, 60%).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    prizes: u32,
    /// Lottery workload: the chance a draw wins while prizes last, one run each (comma-separated): 1 is every
    /// draw wins (the prizes go to the first comers), 0.0125 one in eighty (10,000 prizes last for about
    /// 800,000 of a million users); the rest of the wheel is the blank share.
    #[arg(long, value_delimiter = ',', default_value = "1,0.0125", value_parser = win_share)]
    win_share: Vec<f64>,
    /// Lottery workload: how long the burst of draws after every prize is drawn lasts (e.g. 2s).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    after_burst: Duration,
    /// Hot and lottery workloads: multiplexed connections the Redis baseline's callers share (the hot workload
    /// also runs it with a connection per caller).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    redis_connections: u16,
    /// Lottery workload: the gift worker's calls per second when it delivers the durable draw's wins.
    #[arg(long, default_value_t = 2000.0, value_parser = positive_rate)]
    gift_rate: f64,
    /// Exchange workload: exchanges per second in the sustained phases (latency, broker restart).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    rate: u32,
    /// Cluster workload: app instances behind the balancer.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=seckill::local::cluster::MAX_INSTANCES as i64))]
    instances: u16,
    /// Print one JSON object per run instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(target: &DatabaseTarget, args: BenchArgs) -> Result<(), Failure> {
    let (url, _pool) = target.url_or_throwaway("seckill_bench").await?;
    seckill::migrate::Migrator::embedded()?.run(&_pool).await?;
    let config = BenchConfig {
        workloads: args.workload,
        strategies: args.strategy,
        concurrency: args.concurrency.into_iter().map(usize::from).collect(),
        duration: args.duration,
        rtt: args.rtt,
        pool_size: usize::from(args.pool),
        max_batch: usize::from(args.max_batch),
        progress: !args.json && std::io::stderr().is_terminal(),
    };
    let json = args.json;
    let seckill_workloads = config.workloads.iter().any(|workload| workload.is_seckill());
    if !json && seckill_workloads {
        outln!("{}", header());
    }
    // The batched rate of each hot run, to read the Redis baseline against.
    let mut batched: Vec<(usize, f64)> = Vec::new();
    hot::run(&url, &config, |report| {
        if report.workload == Workload::Hot && report.strategy == Strategy::Batched {
            batched.push((report.concurrency, report.seckills_per_s));
        }
        if json {
            outln!("{}", serde_json::to_string(report).unwrap_or_default());
        } else {
            outln!("{}", row(report));
        }
    })
    .await?;
    if config.workloads.contains(&Workload::Hot) {
        hot_redis_baseline(&config, usize::from(args.redis_connections), &batched, json).await?;
    }
    if config.workloads.contains(&Workload::Exchange) {
        let exchange = ExchangeBenchConfig {
            users: args.users.unwrap_or(20_000),
            concurrency: config.concurrency.first().copied().unwrap_or(256),
            duration: config.duration,
            sustained_rate: args.rate,
            max_batch: config.max_batch,
        };
        let report = exchange_workload(&url, &_pool, &exchange).await?;
        if json {
            outln!("{}", serde_json::to_string(&report)?);
        } else {
            print_exchange(&report);
        }
    }
    if config.workloads.contains(&Workload::Lottery) {
        let lottery = LotteryBenchConfig {
            users: args.users.map_or(1_000_000, |users| users.unsigned_abs()),
            prizes: args.prizes,
            concurrency: config.concurrency.clone(),
            win_shares: args.win_share.clone(),
            after_burst: args.after_burst,
            pool_size: config.pool_size,
            max_batch: config.max_batch,
            redis_connections: usize::from(args.redis_connections),
            progress: config.progress,
            gift_rate: args.gift_rate,
        };
        lottery_workload(&url, &lottery, json).await?;
    }
    if config.workloads.contains(&Workload::Cluster) {
        let cluster = ClusterBenchConfig {
            serve_binary: std::env::current_exe()
                .map_err(|e| Failure::new(format!("cannot find the seckill binary: {e}")))?,
            instances: usize::from(args.instances),
            connections: config.concurrency.clone(),
            duration: config.duration,
            secret: random_secret()?,
            progress: config.progress,
        };
        let mut printed = Ok(());
        cluster::run(&url, &cluster, |report| print_report(json, report, print_cluster, &mut printed)).await?;
        printed?;
    }
    Ok(())
}

fn print_cluster(r: &ClusterReport) {
    let (d, b, c) = (&r.direct, &r.balanced, &r.closed);
    outln!(
        "cluster workload: {} instances behind nginx, {} keep-alive connections, {:.1} s per phase; the load \
         generator does {:.0} requests/s against a trivial server in its own process ({:.0} µs of CPU per request, \
         server included)",
        r.instances,
        r.connections,
        d.seconds,
        r.generator_ceiling_per_s,
        r.generator_cpu_us_per_request
    );
    outln!("{}", r.topology.lines().map(|line| format!("  {line}")).collect::<Vec<_>>().join("\n"));
    outln!("  {:<40} {:>16} {:>16} {:>14}", "", "instance 1", "balancer", "balancer/direct");
    let line = |what: &str, direct: String, balanced: String, ratio: String| {
        outln!("  {what:<40} {direct:>16} {balanced:>16} {ratio:>14}");
    };
    line(
        "successful seckills/s",
        format!("{:.0}", d.seckills_per_s),
        format!("{:.0}", b.seckills_per_s),
        format!("{:.0}%", r.balanced_over_direct * 100.0),
    );
    line(
        "HTTP requests/s (exposer + execution)",
        format!("{:.0}", d.requests_per_s),
        format!("{:.0}", b.requests_per_s),
        String::new(),
    );
    line(
        "seckills (errors, in doubt)",
        format!("{} ({}, {})", d.seckills, d.errors, d.in_doubt),
        format!("{} ({}, {})", b.seckills, b.errors, b.in_doubt),
        String::new(),
    );
    line(
        "p50 / p99 ms per seckill",
        format!("{:.1} / {:.1}", d.p50_ms, d.p99_ms),
        format!("{:.1} / {:.1}", b.p50_ms, b.p99_ms),
        String::new(),
    );
    let spread = |counts: &[usize]| counts.iter().map(usize::to_string).collect::<Vec<_>>().join("/");
    line("executions by instance", spread(&d.executions_by_instance), spread(&b.executions_by_instance), String::new());
    line(
        "cores the load generator kept busy",
        format!("{:.2}", d.generator_cores),
        format!("{:.2}", b.generator_cores),
        String::new(),
    );
    outln!("  books, instance 1: {}", d.books);
    outln!("  books, balancer:   {}", b.books);
    outln!(
        "  closed item {} ({} sold, sold_out published by an instance): {:.0} requests/s answered at the balancer, \
         p50 / p99 \
         {:.2} / {:.2} ms, {} unexpected, load generator on {:.2} cores; execution requests reaching the instances \
         in the burst: {} (the balancer found Redis failing or slow {} times)",
        c.seckill_id,
        c.sold,
        c.requests_per_s,
        c.p50_ms,
        c.p99_ms,
        c.unexpected,
        c.generator_cores,
        c.app_execution_requests,
        c.balancer_redis_failures
    );
    outln!("  books, closed item: {}", c.books);
    for (phase, error) in
        [("instance 1", &d.first_error), ("balancer", &b.first_error), ("closed", &c.first_unexpected)]
    {
        if let Some(error) = error {
            outln!("  first error, {phase}: {error}");
        }
    }
}

/// The hot workload's Redis baseline on a private Redis, at every concurrency: the callers sharing `connections`
/// connections (Redis at its best), then a connection each; printed with the batched rate of the same run beside.
async fn hot_redis_baseline(
    config: &BenchConfig,
    connections: usize,
    batched: &[(usize, f64)],
    json: bool,
) -> Result<(), Failure> {
    let redis = tokio::task::block_in_place(LocalRedis::start)
        .map_err(|e| Failure::new(format!("the hot workload's Redis baseline needs a private Redis: {e}")))?;
    for &concurrency in &config.concurrency {
        let shared = hot_redis::run(&redis.url(), concurrency, connections, config.duration).await?;
        let per_caller = hot_redis::run(&redis.url(), concurrency, concurrency, config.duration).await?;
        let ours = batched.iter().find(|(callers, _)| *callers == concurrency).map(|(_, rate)| *rate);
        if json {
            for run in [&shared, &per_caller] {
                let ratio = ours.map(|ours| ours / run.seckills_per_s.max(1e-9));
                outln!("{}", serde_json::json!({"workload": "hot", "run": run, "batched_over_redis": ratio}));
            }
            continue;
        }
        let ratio = |run: &hot_redis::RedisRunReport| {
            ours.map_or("-".to_string(), |ours| format!("{:.2}x", ours / run.seckills_per_s.max(1e-9)))
        };
        outln!(
            "hot    redis lua {concurrency:>6} callers, not durable: {:.0} seckills/s sharing {} connections (p50 {:.2} \
             ms, p99 {:.2} ms; batched / this {}), {:.0} seckills/s with a connection per caller (p99 {:.2} ms; \
             batched / this {})",
            shared.seckills_per_s,
            shared.connections,
            shared.p50_ms,
            shared.p99_ms,
            ratio(&shared),
            per_caller.seckills_per_s,
            per_caller.p99_ms,
            ratio(&per_caller)
        );
        for run in [&shared, &per_caller] {
            if let Some(error) = &run.first_error {
                outln!("  {} errors with {} connections, first: {error}", run.errors, run.connections);
            }
        }
    }
    Ok(())
}

/// The lottery workload: the durable draw on the bench's database, the Redis baseline on a private Redis
/// (never a shared one: the bench writes its keys and reads its command counter), and the delivery of the
/// durable draw's wins through a broker.
async fn lottery_workload(url: &str, config: &LotteryBenchConfig, json: bool) -> Result<(), Failure> {
    config.validate()?;
    let redis = tokio::task::block_in_place(LocalRedis::start)
        .map_err(|e| Failure::new(format!("the lottery's Redis baseline needs a private Redis: {e}")))?;
    let (amqp_url, _private_broker) = broker()?;
    let mut printed = Ok(());
    lottery::run(url, &redis.url(), Some(&amqp_url), config, |report| {
        print_report(json, report, print_lottery, &mut printed)
    })
    .await?;
    Ok(printed?)
}

/// Prints a run's report as one JSON line, or as `table` shows it. A report that cannot be written as JSON is
/// kept in `printed` (the first one), so that the other runs go on and the command fails at the end.
fn print_report<R: serde::Serialize>(
    json: bool,
    report: &R,
    table: fn(&R),
    printed: &mut Result<(), serde_json::Error>,
) {
    if !json {
        return table(report);
    }
    match serde_json::to_string(report) {
        Ok(line) => outln!("{line}"),
        Err(error) if printed.is_ok() => *printed = Err(error),
        Err(_) => {}
    }
}

/// "always", or "1 in 80".
fn odds_in_words(win_share: f64) -> String {
    if win_share >= 1.0 { "always".to_string() } else { format!("1 in {:.0}", 1.0 / win_share) }
}

fn print_lottery(r: &LotteryReport) {
    let (d, b) = (&r.durable, &r.redis);
    let tiers = r.tiers.iter().map(u32::to_string).collect::<Vec<_>>().join("/");
    outln!(
        "lottery workload: {} users, {} prizes in tiers of {tiers}, a draw wins {} while prizes last, {} callers, \
         {:.0} ms burst after all drawn",
        r.users,
        r.prizes,
        odds_in_words(r.win_share),
        r.concurrency,
        r.burst_ms
    );
    outln!("  {:<40} {:>16} {:>16} {:>14}", "", "durable (MariaDB)", "Redis Lua", "durable/Redis");
    let line = |what: &str, durable: String, redis: String, ratio: String| {
        outln!("  {what:<40} {durable:>16} {redis:>16} {ratio:>14}");
    };
    let ratio = |durable: f64, redis: f64| if redis > 0.0 { format!("{:.2}x", durable / redis) } else { "-".into() };
    line(
        "draws/s until all drawn",
        format!("{:.0}", d.draws_per_s),
        format!("{:.0}", b.draws_per_s),
        ratio(d.draws_per_s, b.draws_per_s),
    );
    line(
        "time to all drawn, ms",
        format!("{:.0}", d.all_drawn_ms),
        format!("{:.0}", b.all_drawn_ms),
        ratio(d.all_drawn_ms, b.all_drawn_ms),
    );
    line(
        "draws decided (wins)",
        format!("{} ({})", d.draws, d.wins),
        format!("{} ({})", b.draws, b.wins),
        String::new(),
    );
    line("store calls until all drawn", d.store_calls.to_string(), b.store_calls.to_string(), String::new());
    line(
        "p50 / p99 ms until all drawn",
        format!("{:.2} / {:.2}", d.p50_ms, d.p99_ms),
        format!("{:.2} / {:.2}", b.p50_ms, b.p99_ms),
        String::new(),
    );
    line(
        "rejections/s after all drawn",
        format!("{:.0}", d.burst_rejections_per_s),
        format!("{:.0}", b.burst_rejections_per_s),
        ratio(d.burst_rejections_per_s, b.burst_rejections_per_s),
    );
    line("burst p99 ms", format!("{:.3}", d.burst_p99_ms), format!("{:.3}", b.burst_p99_ms), String::new());
    line(
        "DB statements / CALLs in the burst (server)",
        format!("{} / {}", d.burst_database_queries, d.burst_procedure_calls),
        format!("{} / {}", b.burst_database_queries, b.burst_procedure_calls),
        String::new(),
    );
    let optional = |value: Option<u64>| value.map_or("-".to_string(), |v| v.to_string());
    line("lanes' batches in the burst", optional(d.burst_batches), optional(b.burst_batches), String::new());
    line(
        "Redis EVALSHA calls in the burst",
        optional(d.burst_redis_calls),
        optional(b.burst_redis_calls),
        String::new(),
    );
    line("errors", d.errors.to_string(), b.errors.to_string(), String::new());
    outln!("  books, durable: {}", d.books);
    if let Some(delivery) = &r.delivery {
        outln!(
            "  delivery: {} wins delivered once in effect in {:.0} ms ({} calls, {:.0}% failing on purpose); the \
             gift service saw {:.0} calls/s while the backlog lasted (middle 80% of calls) against {:.0} configured \
             ({:+.1}%), {:.0} calls/s from first call to last",
            delivery.wins,
            delivery.took_ms,
            delivery.calls,
            delivery.fail_share * 100.0,
            delivery.steady_rate,
            delivery.configured_rate,
            delivery.deviation_percent,
            delivery.achieved_rate
        );
    }
    outln!("  books, Redis:   {}", b.books);
    for (design, error) in [("durable", &d.first_error), ("Redis", &b.first_error)] {
        if let Some(error) = error {
            outln!("  first error, {design}: {error}");
        }
    }
}

/// The exchange workload: a warehouse database beside the bench's, and a broker (a private one, which the
/// bench may kill for its broker-restart phase, unless RABBITMQ_URL or AMQP_URL names one).
async fn exchange_workload(
    url: &str,
    shop: &mysql_async::Pool,
    config: &ExchangeBenchConfig,
) -> Result<ExchangeReport, Failure> {
    let warehouse_name = "seckill_bench_warehouse";
    let mut conn = seckill::database::acquire(shop).await?;
    conn.query_drop(format!("DROP DATABASE IF EXISTS `{warehouse_name}`")).await.map_err(DatabaseError::from)?;
    conn.query_drop(format!("CREATE DATABASE `{warehouse_name}`")).await.map_err(DatabaseError::from)?;
    drop(conn);
    let warehouse = ConnectOptions::new(url_with_database(url, warehouse_name)).build_pool()?;
    Migrator::warehouse()?.run(&warehouse).await?;
    let (amqp_url, private) = broker()?;
    Ok(exchange::run(shop, &warehouse, &amqp_url, private.as_ref(), config).await?)
}

/// The broker RABBITMQ_URL or AMQP_URL names, or else a private node the bench starts (and may kill), which
/// stops when dropped.
fn broker() -> Result<(String, Option<LocalRabbitMq>), Failure> {
    let named = ["RABBITMQ_URL", "AMQP_URL"].iter().find_map(|name| std::env::var(name).ok().filter(|u| !u.is_empty()));
    match named {
        Some(url) => Ok((url, None)),
        None => {
            let node = tokio::task::block_in_place(LocalRabbitMq::start).map_err(Failure::new)?;
            Ok((node.url(), Some(node)))
        }
    }
}

fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 && rate <= 1_000_000.0 => Ok(rate),
        _ => Err(format!("{text:?} is not a rate in calls per second (more than 0, at most 1000000)")),
    }
}

fn win_share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(share) if share > 0.0 && share <= 1.0 => Ok(share),
        _ => Err(format!("{text:?} is not a chance of winning (more than 0, at most 1)")),
    }
}

fn print_exchange(r: &ExchangeReport) {
    outln!("exchange workload, {} callers", r.concurrency);
    outln!("  {:<44} {:>12.0}", "exchanges committed per second", r.exchanges_per_s);
    outln!("  {:<44} {:>12}", "exchanges (errors)", format!("{} ({})", r.exchanges, r.exchange_errors));
    outln!("  {:<44} {:>12.0}", "messages relayed with confirms per second", r.messages_per_s);
    outln!("  {:<44} {:>12.0}", "messages then consumed per second", r.messages_consumed_per_s);
    outln!(
        "  {:<44} {:>12.1}",
        format!("exchange-to-shipment p50 ms at {}/s", r.sustained_rate),
        r.shipment_latency_p50_ms
    );
    outln!(
        "  {:<44} {:>12.1}",
        format!("exchange-to-shipment p99 ms at {}/s", r.sustained_rate),
        r.shipment_latency_p99_ms
    );
    match (r.backlog_after_broker_restart, r.drain_after_broker_restart_ms) {
        (Some(backlog), Some(ms)) => {
            outln!("  {:<44} {:>12}", "backlog drained after a broker restart", format!("{backlog} in {ms:.0} ms"))
        }
        _ => outln!("  {:<44} {:>12}", "backlog drained after a broker restart", "- (shared broker)"),
    }
    outln!("  {:<44} {:>12}", "duplicates absorbed by the warehouse", r.duplicates_absorbed);
    outln!("  books balance: every exchange paid and shipped exactly once");
}

fn header() -> String {
    format!(
        "{:<6} {:<10} {:>6} {:>6} {:>12} {:>13} {:>8} {:>8} {:>8} {:>9} {:>8} {:>10} {:>12} {:>7}",
        "work",
        "strategy",
        "callers",
        "rtt",
        "seckills/s",
        "rejections/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "trips/try",
        "RSS MiB",
        "sold out",
        "burst rej/s",
        "queries"
    )
}

fn row(r: &RunReport) -> String {
    let optional = |value: Option<f64>, suffix: &str| value.map_or("-".to_string(), |v| format!("{v:.0}{suffix}"));
    let mut line = format!(
        "{:<6} {:<10} {:>6} {:>5}ms {:>12.0} {:>13.0} {:>8.2} {:>8.2} {:>8.2} {:>9.3} {:>8.1} {:>10} {:>12} {:>7}",
        r.workload.name(),
        r.strategy.name(),
        r.concurrency,
        r.rtt_ms,
        r.seckills_per_s,
        r.rejections_per_s,
        r.p50_ms,
        r.p99_ms,
        r.max_ms,
        r.round_trips_per_attempt,
        r.peak_rss_mib,
        optional(r.sell_out_ms, "ms"),
        optional(r.burst_rejections_per_s, ""),
        r.burst_queries.map_or("-".to_string(), |q| q.to_string()),
    );
    if r.errors > 0 {
        line.push_str(&format!("  ({} inner errors, first: {})", r.errors, r.first_error.as_deref().unwrap_or("?")));
    }
    line
}

/// `5s`, `500ms`, `2m`, `1us`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("invalid duration {text:?}: expected e.g. 5s or 1ms"))?;
    let seconds = match unit {
        "us" => number / 1_000_000.0,
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        _ => return Err(format!("invalid duration {text:?}: use us, ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("duration {text:?} is out of range"))
}
