//! `seckill bench`: the strategies side by side, as a table or as JSON lines.

use std::io::IsTerminal;
use std::time::Duration;

use clap::Args;
use mysql_async::prelude::Queryable;
use seckill::bench::exchange::{ExchangeBenchConfig, ExchangeReport};
use seckill::bench::{self, BenchConfig, RunReport, Strategy, Workload};
use seckill::database::{ConnectOptions, url_with_database};
use seckill::database_error::DatabaseError;
use seckill::local_rabbitmq::LocalRabbitMq;
use seckill::migrate::Migrator;

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
    /// The executor's largest batch.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=10000))]
    max_batch: u16,
    /// Exchange workload: users with points.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(i64).range(1..=10_000_000))]
    users: i64,
    /// Exchange workload: exchanges per second in the sustained phases (latency, broker restart).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    rate: u32,
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
    let seckill_workloads = config.workloads.iter().any(|workload| *workload != Workload::Exchange);
    if !json && seckill_workloads {
        println!("{}", header());
    }
    bench::run(&url, &config, |report| {
        if json {
            println!("{}", serde_json::to_string(report).unwrap_or_default());
        } else {
            println!("{}", row(report));
        }
    })
    .await?;
    if config.workloads.contains(&Workload::Exchange) {
        let exchange = ExchangeBenchConfig {
            users: args.users,
            concurrency: config.concurrency.first().copied().unwrap_or(256),
            duration: config.duration,
            sustained_rate: args.rate,
        };
        let report = exchange_workload(&url, &_pool, &exchange).await?;
        if json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print_exchange(&report);
        }
    }
    Ok(())
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
    let named = ["RABBITMQ_URL", "AMQP_URL"].iter().find_map(|name| std::env::var(name).ok().filter(|u| !u.is_empty()));
    let private = match named {
        Some(_) => None,
        None => Some(tokio::task::block_in_place(LocalRabbitMq::start).map_err(Failure::new)?),
    };
    let amqp_url = match (&named, &private) {
        (Some(url), _) => url.clone(),
        (None, Some(node)) => node.url(),
        (None, None) => return Err(Failure::new("no RabbitMQ")),
    };
    Ok(bench::exchange::run(shop, &warehouse, &amqp_url, private.as_ref(), config).await?)
}

fn print_exchange(r: &ExchangeReport) {
    println!("exchange workload, {} callers", r.concurrency);
    println!("  {:<44} {:>12.0}", "exchanges committed per second", r.exchanges_per_s);
    println!("  {:<44} {:>12}", "exchanges (errors)", format!("{} ({})", r.exchanges, r.exchange_errors));
    println!("  {:<44} {:>12.0}", "messages relayed with confirms per second", r.messages_per_s);
    println!(
        "  {:<44} {:>12.1}",
        format!("exchange-to-shipment p50 ms at {}/s", r.sustained_rate),
        r.shipment_latency_p50_ms
    );
    println!(
        "  {:<44} {:>12.1}",
        format!("exchange-to-shipment p99 ms at {}/s", r.sustained_rate),
        r.shipment_latency_p99_ms
    );
    match (r.backlog_after_broker_restart, r.drain_after_broker_restart_ms) {
        (Some(backlog), Some(ms)) => {
            println!("  {:<44} {:>12}", "backlog drained after a broker restart", format!("{backlog} in {ms:.0} ms"))
        }
        _ => println!("  {:<44} {:>12}", "backlog drained after a broker restart", "- (shared broker)"),
    }
    println!("  {:<44} {:>12}", "duplicates absorbed by the warehouse", r.duplicates_absorbed);
    println!("  books balance: every exchange paid and shipped exactly once");
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
