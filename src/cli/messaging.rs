//! `seckill relay`, `seckill warehouse` and `seckill messages`: the reliable message service from the shell.

use clap::{Args, Subcommand};
use seckill::database::{self, ConnectOptions, DEFAULT_ANSWER_TIMEOUT};
use seckill::exchange::SHIPMENT_TOPIC;
use seckill::exchange::warehouse::ShipmentHandler;
use seckill::local::rabbitmq::rabbitmq_url;
use seckill::messaging::{self, ConsumerConfig, MessageState, Relay, RelayConfig, Topology, outbox};
use seckill::migrate::Migrator;

use super::serve::{MetricsArgs, shutdown_signal};
use super::{DatabaseTarget, Failure};

/// Where the broker is.
#[derive(Debug, Args)]
pub(crate) struct BrokerArgs {
    /// RabbitMQ, amqp://user:password@host:port/vhost. Without it: AMQP_URL, or a private throwaway node.
    #[arg(long, env = "RABBITMQ_URL", hide_env_values = true)]
    amqp_url: Option<String>,
    /// The namespace of the exchange and queues, to keep several shops apart on one broker.
    #[arg(long, default_value = messaging::topology::DEFAULT_NAMESPACE)]
    pub(crate) namespace: String,
}

impl BrokerArgs {
    pub(crate) fn url(&self) -> Result<String, Failure> {
        match &self.amqp_url {
            Some(url) if !url.trim().is_empty() => Ok(url.clone()),
            _ => rabbitmq_url().map_err(|e| Failure::new(e).hint("pass --amqp-url or set RABBITMQ_URL")),
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct RelayArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    /// Seconds to wait for a consumer's callback before sending a message again (doubled at each send).
    #[arg(long, default_value_t = 10.0)]
    consume_timeout: f64,
    /// Times a consumer may refuse a message as poison before it is dead. A consumer answering "later" (its own
    /// database or service is down) and a send nobody answered never count: such messages are late, not dead.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1000))]
    max_attempts: u32,
    /// Seconds a claimed message is reserved for this relay: if it dies before the broker's ack, another relay
    /// sends the message again after this.
    #[arg(long, default_value_t = 10.0)]
    claim_lease: f64,
    /// Seconds any one call to the outbox's database may wait for its answers before its connection is closed and
    /// the call tried again on a new one (a frozen server, a network path gone silent).
    #[arg(long, default_value_t = DEFAULT_ANSWER_TIMEOUT.as_secs_f64())]
    database_timeout: f64,
    #[command(flatten)]
    metrics: MetricsArgs,
}

pub(crate) fn seconds(flag: &str, value: f64) -> Result<std::time::Duration, Failure> {
    std::time::Duration::try_from_secs_f64(value)
        .ok()
        .filter(|duration| !duration.is_zero())
        .ok_or_else(|| Failure::new(format!("invalid {flag} {value}: expected seconds > 0")))
}

#[derive(Debug, Args)]
pub(crate) struct WarehouseArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    /// The warehouse's own database, mysql://user:password@host:port/database (migrated on start).
    #[arg(long, env = "WAREHOUSE_DATABASE_URL", hide_env_values = true)]
    warehouse_database_url: String,
    /// Seconds a batch's insert may wait for the warehouse's database before its connection is closed and the
    /// batch tried again later (a frozen server, a network path gone silent).
    #[arg(long, default_value_t = DEFAULT_ANSWER_TIMEOUT.as_secs_f64())]
    database_timeout: f64,
    #[command(flatten)]
    metrics: MetricsArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum MessagesCommand {
    /// Message counts by state and the age of the oldest message not yet consumed.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List dead messages.
    Dead {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Give dead messages (all, or one) a fresh start: sent again at once, no refusal counted.
    Retry {
        /// Only this message.
        #[arg(long)]
        id: Option<i64>,
    },
}

/// Relays the outbox to RabbitMQ until Ctrl-C or SIGTERM.
pub(crate) async fn relay(target: &DatabaseTarget, args: RelayArgs) -> Result<(), Failure> {
    let consume_timeout = seconds("--consume-timeout", args.consume_timeout)?;
    let claim_lease = seconds("--claim-lease", args.claim_lease)?;
    let database_timeout = seconds("--database-timeout", args.database_timeout)?;
    let url = args.broker.url()?;
    let pool = target.connect().await?;
    let mut config = RelayConfig {
        topology: Topology::new(&args.broker.namespace),
        topics: seckill::app::message_topics(),
        database_timeout,
        ..RelayConfig::default()
    };
    config.schedule.consume_timeout = consume_timeout;
    config.schedule.max_attempts = args.max_attempts;
    config.schedule.claim_lease = claim_lease;
    let metrics = args.metrics.serve().await?;
    eprintln!("seckill: relaying the outbox to RabbitMQ (Ctrl-C to stop)");
    Relay::new(pool, url, config).run(shutdown_signal()).await;
    metrics.inspect(tokio::task::JoinHandle::abort);
    eprintln!("seckill: stopped");
    Ok(())
}

/// Consumes shipment requests into the warehouse's own database until Ctrl-C or SIGTERM.
pub(crate) async fn warehouse(args: WarehouseArgs) -> Result<(), Failure> {
    let database_timeout = seconds("--database-timeout", args.database_timeout)?;
    let url = args.broker.url()?;
    let pool = ConnectOptions::new(&args.warehouse_database_url).build_pool()?;
    database::check_connection(&pool).await?;
    Migrator::warehouse()?.run(&pool).await?;
    let handler = ShipmentHandler::new(pool).with_answer_timeout(database_timeout);
    let config =
        ConsumerConfig { topology: Topology::new(&args.broker.namespace), ..ConsumerConfig::new(SHIPMENT_TOPIC) };
    let metrics = args.metrics.serve().await?;
    eprintln!("seckill: consuming {SHIPMENT_TOPIC} into the warehouse (Ctrl-C to stop)");
    messaging::consume(&url, &config, &handler, shutdown_signal()).await;
    metrics.inspect(tokio::task::JoinHandle::abort);
    let stats = handler.stats();
    eprintln!(
        "seckill: stopped ({} shipment requests, {} duplicates absorbed, {} poison)",
        stats.inserted, stats.duplicates, stats.poison
    );
    Ok(())
}

pub(crate) async fn messages(target: &DatabaseTarget, command: MessagesCommand) -> Result<(), Failure> {
    let pool = target.connect().await?;
    match command {
        MessagesCommand::Status { json } => {
            let status = outbox::status(&pool).await?;
            if json {
                outln!("{}", serde_json::to_string(&status)?);
            } else {
                outln!(
                    "pending {}  sent {}  consumed {}  dead {}  oldest not consumed: {}",
                    status.pending,
                    status.sent,
                    status.consumed,
                    status.dead,
                    status.oldest_unconsumed_seconds.map_or("-".to_string(), |s| format!("{s:.1} s")),
                );
            }
        }
        MessagesCommand::Dead { limit, json } => {
            let dead = outbox::list(&pool, MessageState::Dead, limit).await?;
            if json {
                outln!("{}", serde_json::to_string(&dead)?);
            } else if dead.is_empty() {
                outln!("no dead messages");
            } else {
                for message in dead {
                    outln!(
                        "{}  {}  {}  refused {} times, sent {} times  {}",
                        message.message_id,
                        message.topic,
                        message.business_key,
                        message.attempts,
                        message.sends,
                        message.last_error.unwrap_or_default()
                    );
                }
            }
        }
        MessagesCommand::Retry { id } => {
            let retried = outbox::retry_dead(&pool, id).await?;
            if id.is_some() && retried == 0 {
                return Err(Failure::new(format!("no dead message with id {}", id.unwrap_or_default())));
            }
            outln!("{retried} dead messages will be sent again");
        }
    }
    Ok(())
}
