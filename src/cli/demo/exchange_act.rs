//! The demo's points-exchange act: a crowd exchanging points for gifts through the real HTTP API, the warehouse
//! shipping them through RabbitMQ, and both databases reconciled with what the crowd was told.
//!
//! Migrates the shop's database and the warehouse's own (a private throwaway server by default), gets a broker
//! (`RABBITMQ_URL` / `AMQP_URL`, or a private node started here and removed on exit), grants the crowd its
//! points, stocks a hot gift with fewer units than the crowd wants and a few others, and runs the warehouse
//! consumer in-process beside the demo's relay ([`super::message_service`]). After the crowd, it waits until every exchange's message is consumed, then
//! prints what the crowd was told and the reconciliation; any failed check is a non-zero exit.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mysql_async::Pool;
use seckill::database::acquire;
use seckill::database::rows::exec_first;
use seckill::exchange::SHIPMENT_TOPIC;
use seckill::exchange::http::{ExchangeHttp, SignedUserCookie, USER_COOKIE};
use seckill::exchange::warehouse::ShipmentHandler;
use seckill::exchange::{Exchange, Gift, NewGift};
use seckill::messaging::{self, ConsumerConfig, Running};
use seckill::migrate::Migrator;

use super::super::http_client::ApiClient;
use super::super::{DatabaseTarget, Failure};
use super::checks;
use super::exchange_crowd::{self, CrowdReport, CrowdUser};
use super::exchange_reconciliation;
use super::message_service::{RECONNECT_DELAY, broker_url, find_broker};
use super::{Context, Finished};

/// How long the act waits for the last shipment messages to be consumed.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// Points most users get: the hot gift and one other, but not the hot gift and the dearest one.
const POINTS: i64 = 250;
/// Points every tenth user gets: too few for any gift.
const FEW_POINTS: i64 = 30;

#[derive(Debug, Args)]
#[command(next_help_heading = "Exchange act")]
pub(crate) struct ExchangeActArgs {
    /// Users in the exchange crowd, each granted points (every tenth too few for any gift).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=50_000))]
    users: u32,
    /// Units of the hot gift, which every user wants.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i32).range(0..))]
    hot_stock: i32,
    /// The warehouse's own database, mysql://user:password@host:port/database. Without it, a database in a
    /// private throwaway MariaDB.
    #[arg(long, env = "WAREHOUSE_DATABASE_URL", hide_env_values = true)]
    warehouse_database_url: Option<String>,
}

pub(super) async fn run(context: &Context<'_>, args: &ExchangeActArgs) -> Result<Finished, Failure> {
    // The broker comes up while the databases are migrated: a private node takes a few seconds.
    let broker = find_broker();
    let (_, shop) = context.target.url_or_throwaway("seckill_demo").await?;
    Migrator::embedded()?.run(&shop).await?;
    let warehouse_target = DatabaseTarget::named_by(args.warehouse_database_url.clone(), "--warehouse-database-url");
    let (_, warehouse) = warehouse_target.url_or_throwaway("seckill_demo_warehouse").await?;
    Migrator::warehouse()?.run(&warehouse).await?;
    outln!("migrated the shop's database and the warehouse's");

    let exchange = Exchange::new(shop.clone());
    let (hot, others) = stock_gifts(&exchange, args).await?;
    let users = grant_points(&exchange, &shop, args.users).await?;
    let cookie = SignedUserCookie::new(context.secret)?;
    let amqp_url = broker_url(broker).await?;
    let handler = ShipmentHandler::new(warehouse.clone());
    let consumer = ConsumerConfig {
        topology: context.messages.topology(&shop, &amqp_url),
        reconnect_delay: RECONNECT_DELAY,
        ..ConsumerConfig::new(SHIPMENT_TOPIC)
    };
    let keep_running: Vec<Running> = vec![messaging::spawn_consumer(&amqp_url, consumer, handler.clone())];

    let routes = ExchangeHttp::new(exchange, cookie.clone()).router();
    let server = context.stage.open(routes.clone())?;
    let client = ApiClient::new(context.stage.base_url());
    let mut gifts = vec![hot.clone()];
    gifts.extend(others.iter().cloned());
    let crowd = exchange_crowd::run(&client, &cookie, &users, &hot, &others, context.concurrency).await;
    drop(client);
    server.stop().await;

    let drained = drain(&shop, &gifts).await?;
    print_crowd(&crowd, users.len());
    let checks = exchange_reconciliation::reconcile(&shop, &warehouse, &gifts, &users, &crowd, handler.stats()).await?;
    checks::print(
        &format!("reconciliation (messages drained {:.1} s after the crowd)", drained.as_secs_f64()),
        &checks,
    );
    if let Some(first) = crowd.unexpected.first() {
        return Err(Failure::new(format!("{} unexpected answers; first: {first}", crowd.unexpected.len())));
    }
    checks::all_passed("the exchange's", &checks)?;
    let exchanged = crowd.attempts.iter().filter(|attempt| attempt.exchanged()).count();
    outln!("exchange books balance: {exchanged} exchanged = {exchanged} paid = {exchanged} shipped, nothing twice");
    let first_user = users.first().map_or(1, |user| user.user_id);
    let page = format!(
        "the exchange page: {{base}}/exchange (signed in as user {first_user} with the cookie {USER_COOKIE}={})",
        cookie.cookie_value(first_user)
    );
    Ok(Finished { routes, pages: vec![page], keep_running })
}

/// The hot gift, with fewer units than the crowd wants, and three others: one cheap and plentiful, one dear,
/// one scarce.
async fn stock_gifts(exchange: &Exchange, args: &ExchangeActArgs) -> Result<(Gift, Vec<Gift>), Failure> {
    let users = i32::try_from(args.users).unwrap_or(i32::MAX);
    let hot = NewGift { name: "限量 hot gift".into(), cost: 100, stock: args.hot_stock };
    let others = [
        NewGift { name: "mug".into(), cost: 40, stock: users },
        NewGift { name: "backpack".into(), cost: 200, stock: users / 5 },
        NewGift { name: "headphones".into(), cost: 120, stock: users / 20 },
    ];
    let hot = exchange.create_gift(&hot).await?;
    let mut created = Vec::new();
    for gift in &others {
        created.push(exchange.create_gift(gift).await?);
    }
    for gift in std::iter::once(&hot).chain(&created) {
        outln!("gift {} {:?}: cost {}, stock {}", gift.gift_id, gift.name, gift.cost, gift.stock);
    }
    Ok((hot, created))
}

/// Grants points to `count` new users, numbered after every user the database knows, so that a database used
/// before still gives a fresh crowd.
async fn grant_points(exchange: &Exchange, shop: &Pool, count: u32) -> Result<Vec<CrowdUser>, Failure> {
    let mut conn = acquire(shop).await?;
    let last: Option<(i64,)> =
        exec_first(&mut conn, "SELECT CAST(COALESCE(MAX(user_id), 0) AS SIGNED) FROM credit", (), "the last user")
            .await?;
    drop(conn);
    let first = last.map_or(0, |(last,)| last) + 1;
    let users: Vec<CrowdUser> = (0..i64::from(count))
        .map(|n| CrowdUser { user_id: first + n, granted: if n % 10 == 9 { FEW_POINTS } else { POINTS } })
        .collect();
    // A few grants at once: each is its own procedure call and transaction.
    const GRANTING: usize = 16;
    let grants: Vec<_> = (0..GRANTING)
        .map(|worker| {
            let (exchange, mine) =
                (exchange.clone(), users.iter().skip(worker).step_by(GRANTING).copied().collect::<Vec<_>>());
            tokio::spawn(async move {
                for user in mine {
                    exchange.grant(user.user_id, user.granted, "demo").await?;
                }
                Ok::<_, seckill::exchange::ExchangeError>(())
            })
        })
        .collect();
    for grant in grants {
        grant.await.map_err(|e| Failure::new(format!("granting points: {e}")))??;
    }
    outln!(
        "granted points to users {}..={}: {POINTS} each, {FEW_POINTS} to every tenth",
        first,
        first + i64::from(count) - 1
    );
    Ok(users)
}

/// Waits until no message of this run is pending or sent, up to [`DRAIN_LIMIT`]; answers how long it took.
async fn drain(shop: &Pool, gifts: &[Gift]) -> Result<Duration, Failure> {
    let started = Instant::now();
    let progress = if std::io::stderr().is_terminal() { ProgressBar::new(0) } else { ProgressBar::hidden() };
    progress.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} shipment requests consumed")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress.set_prefix("shipping");
    loop {
        let states = exchange_reconciliation::message_states(shop, gifts).await?;
        progress.set_length(u64::try_from(states.consumed + states.in_flight()).unwrap_or(0));
        progress.set_position(u64::try_from(states.consumed).unwrap_or(0));
        if states.in_flight() == 0 || started.elapsed() > DRAIN_LIMIT {
            progress.finish_and_clear();
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn print_crowd(crowd: &CrowdReport, users: usize) {
    let unavailable: u32 = crowd.attempts.iter().map(|attempt| attempt.unavailable).sum();
    let undecided: u32 = crowd.attempts.iter().map(|attempt| attempt.undecided).sum();
    outln!("\n  {users} users, {} exchanges meant, {} HTTP requests", crowd.attempts.len(), crowd.requests);
    outln!("  {:<40} {:>10}", "exchanged (兑换成功)", crowd.count("exchanged"));
    outln!("  {:<40} {:>10}", "not enough points (积分不足)", crowd.count("not_enough_points"));
    outln!("  {:<40} {:>10}", "out of stock (库存不足)", crowd.count("out_of_stock"));
    outln!("  {:<40} {:>10}", "unknown user or gift", crowd.count("unknown_user") + crowd.count("unknown_gift"));
    outln!("  {:<40} {:>10}", "resends answered with the first outcome", crowd.resends_answered());
    outln!("  {:<40} {:>10}", "503s sent again with the same key", unavailable);
    outln!("  {:<40} {:>10}", "undecided after retries", undecided);
    outln!("  {:<40} {:>10}", "unexpected answers", crowd.unexpected.len());
    outln!("  {:<40} {:>10.0}", "exchange requests/s", crowd.requests as f64 / crowd.seconds);
    outln!("  {:<40} {:>10.2}", "exchange p50 ms", crowd.latencies.quantile_ms(0.5));
    outln!("  {:<40} {:>10.2}", "exchange p99 ms", crowd.latencies.quantile_ms(0.99));
}
