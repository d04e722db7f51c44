//! `seckill gift-worker` and `seckill gift-stub`: the lottery's prize delivery from the shell.

use clap::Args;
use seckill::local::gift_service::{GiftServiceStub, RateLimit, StubConfig};
use seckill::lottery::PRIZE_TOPIC;
use seckill::lottery::delivery::{GiftWorker, GiftWorkerConfig};
use seckill::lottery::read_gift_call;
use seckill::messaging::{self, Topology};

use super::Failure;
use super::messaging::{BrokerArgs, seconds};
use super::serve::{MetricsArgs, shutdown_signal};

#[derive(Debug, Args)]
pub(crate) struct GiftWorkerArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    /// The gift service, http://host:port/path: each win is POSTed there with an Idempotency-Key.
    #[arg(long, env = "GIFT_URL", hide_env_values = true)]
    gift_url: String,
    /// Calls per second to the gift service, retries included.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Calls that may go at once after a quiet spell (1: evenly spaced).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    burst: u32,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    concurrency: u32,
    /// Seconds a call may take, answer included.
    #[arg(long, default_value_t = 5.0)]
    call_timeout: f64,
    /// Calls for one message in one delivery (408, 429, 5xx, timeouts and connection errors are tried again,
    /// after the service's Retry-After or a doubling wait); a message still failing is sent again later by the
    /// relay.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=100))]
    attempts: u32,
    /// The longest pause, in seconds, a service's Retry-After may impose on the worker's calls.
    #[arg(long, default_value_t = 60.0)]
    max_retry_after: f64,
    #[command(flatten)]
    metrics: MetricsArgs,
}

#[derive(Debug, Args)]
pub(crate) struct GiftStubArgs {
    /// Where to listen, host:port (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// The share of calls (0 to 1) answered 503 without delivering.
    #[arg(long, default_value_t = 0.0)]
    fail_share: f64,
    /// The share of calls (0 to 1) that deliver and then answer 503 all the same.
    #[arg(long, default_value_t = 0.0)]
    lost_answer_share: f64,
    /// Milliseconds each call takes.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Chooses which calls fail (the same seed fails the same calls).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Calls per second taken; calls above are answered 429 with Retry-After (default: no limit).
    #[arg(long)]
    rate_limit: Option<f64>,
    /// Calls the rate limit takes at once after a quiet spell.
    #[arg(long, default_value_t = 1, requires = "rate_limit")]
    rate_limit_burst: u32,
}

/// Delivers lottery wins through the gift service until Ctrl-C or SIGTERM.
pub(crate) async fn gift_worker(args: GiftWorkerArgs) -> Result<(), Failure> {
    let config = GiftWorkerConfig {
        rate: args.rate,
        burst: args.burst,
        concurrency: usize::try_from(args.concurrency).unwrap_or(usize::MAX),
        call_timeout: seconds("--call-timeout", args.call_timeout)?,
        attempts: args.attempts,
        max_retry_after: seconds("--max-retry-after", args.max_retry_after)?,
        ..GiftWorkerConfig::default()
    };
    let worker = GiftWorker::new(&args.gift_url, config)?;
    let url = args.broker.url()?;
    let consumer = worker.consumer_config(Topology::new(&args.broker.namespace));
    let metrics = args.metrics.serve().await?;
    eprintln!(
        "seckill: delivering {PRIZE_TOPIC} to {} at {} calls/s, {} at once (Ctrl-C to stop)",
        args.gift_url, args.rate, args.concurrency
    );
    messaging::consume(&url, &consumer, &worker, shutdown_signal()).await;
    metrics.inspect(tokio::task::JoinHandle::abort);
    let stats = worker.stats();
    eprintln!(
        "seckill: stopped ({} delivered, {} duplicates absorbed, {} retries ({} told when), {} left for a re-send, \
         {} poison)",
        stats.delivered, stats.duplicates, stats.retries, stats.throttled, stats.failures, stats.poison
    );
    Ok(())
}

/// Serves a gift-service stub until Ctrl-C or SIGTERM; prints its URL first.
pub(crate) async fn gift_stub(args: GiftStubArgs) -> Result<(), Failure> {
    let config = StubConfig {
        fail_share: args.fail_share,
        lost_answer_share: args.lost_answer_share,
        seed: args.seed,
        latency: std::time::Duration::from_millis(args.latency_ms),
        rate_limit: args.rate_limit.map(|rate| RateLimit { rate, burst: args.rate_limit_burst }),
        ..StubConfig::new(read_gift_call)
    };
    let stub = GiftServiceStub::listen(&args.listen, config).await?;
    outln!("{}", stub.url());
    eprintln!("seckill: gift service stub at {} (Ctrl-C to stop)", stub.url());
    shutdown_signal().await;
    let log = stub.call_log();
    eprintln!(
        "seckill: stopped ({} calls, {} gifts delivered, {} at once at most, {})",
        log.calls.len(),
        stub.delivered(),
        stub.max_in_flight(),
        log.achieved_rate().map_or("no rate".to_string(), |rate| format!("{rate:.1} calls/s")),
    );
    stub.stop().await;
    Ok(())
}
