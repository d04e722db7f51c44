//! The demo's lottery act: a campaign opening a moment later, a crowd far larger than the prizes drawing at once,
//! "all drawn" shared through Redis, the wins delivered by a gift worker to a gift service that fails some
//! calls, and the books reconciled with what the crowd was told and what the gift service did.
//!
//! The crowd draws through the library service [`Lottery`], not HTTP (the lottery's HTTP API is not part of
//! the demo yet): many concurrent tasks over several `Lottery` instances, each with its own pool and lanes,
//! standing for app instances behind a load balancer, sharing one Redis (`REDIS_URL`, or a private one started
//! here and removed on exit) for the "all drawn" flag. The relay and the gift worker run in-process beside them
//! against a real [`GiftServiceStub`] on loopback.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use chrono::Utc;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mysql_async::Pool;
use seckill::database::ConnectOptions;
use seckill::group_commit::GroupCommitStats;
use seckill::local::gift_service::{GiftServiceStub, StubConfig};
use seckill::local::redis::redis_url;
use seckill::lottery::delivery::{GiftWorker, GiftWorkerConfig};
use seckill::lottery::read_gift_call;
use seckill::lottery::{Campaign, DrawOutcome, Lottery, NewCampaign, NewTier};
use seckill::messaging::{self, Running};
use seckill::migrate::Migrator;
use seckill::shared_state::bounded_redis::BoundedRedis;
use tokio::sync::Semaphore;

use super::super::Failure;
use super::checks;
use super::lottery_crowd::{self, CrowdReport, Draws};
use super::lottery_reconciliation::{self, GiftSide};
use super::message_service::{RECONNECT_DELAY, broker_url, find_broker};
use super::{Context, Finished};

/// How long after its creation the campaign opens.
const OPENS_IN: Duration = Duration::from_secs(2);
/// App instances taking the rush; one more joins after it.
const RUSH_INSTANCES: usize = 3;
/// Connections of each instance's pool: its lanes use one per campaign at a time.
const INSTANCE_CONNECTIONS: usize = 8;
/// The wheel's "no prize" share, against the tiers' 20 slots: a draw wins one time in five while prizes last.
const BLANK_WEIGHT: u32 = 80;
/// The share of the gift service's calls that deliver and then answer 503 all the same (a lost answer).
const LOST_ANSWER_SHARE: f64 = 0.05;
/// Calls the gift worker makes at once, and the latency of each at the gift service.
const GIFT_CONCURRENCY: usize = 8;
const GIFT_LATENCY: Duration = Duration::from_millis(2);
/// Calls for one win within one delivery: with 30% of calls failing, one win in tens of thousands needs the
/// relay's re-send.
const GIFT_ATTEMPTS: u32 = 10;
/// Consumers sharing the one gift worker (its pacer and permits, so the rate and concurrency hold for all of
/// them): a consumer hands its batch to the worker and takes the next only once all of it is done, so one
/// consumer would wait on each batch's slowest win, retries and all, with the worker idle.
const GIFT_CONSUMERS: usize = 4;
/// The waits between a win's calls, doubling: a local stub that failed a call is worth asking again soon.
const GIFT_FIRST_BACKOFF: Duration = Duration::from_millis(50);
const GIFT_MAX_BACKOFF: Duration = Duration::from_millis(800);
/// How long the act waits for the gift worker to deliver every win.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);
/// How long the act waits to see "all drawn" published in Redis before the late wave.
const PUBLISH_LIMIT: Duration = Duration::from_secs(2);

#[derive(Debug, Args)]
#[command(next_help_heading = "Lottery act")]
pub(crate) struct LotteryActArgs {
    /// Users in the lottery crowd, all drawing the moment the campaign opens (every fifth twice at once).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=500_000))]
    lottery_users: u32,
    /// Prizes, in three tiers: a twentieth gold mugs, a fifth silver pens, the rest stickers.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    prizes: u32,
    /// Calls per second the gift worker makes to the gift service, retries included.
    #[arg(long, default_value_t = 200.0, value_parser = positive_rate)]
    gift_rate: f64,
    /// The share of the gift service's calls (0 to 0.95) that fail with 503, delivering nothing.
    #[arg(long, default_value_t = 0.3, value_parser = share)]
    gift_fail_share: f64,
}

fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if (0.1..=100_000.0).contains(&rate) => Ok(rate),
        _ => Err(format!("{text} is not a rate: expected calls per second, 0.1 to 100000")),
    }
}

fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        // Every call failing would leave every win undelivered: the act could only fail.
        Ok(share) if (0.0..0.95).contains(&share) => Ok(share),
        _ => Err(format!("{text} is not a share: expected 0 to 0.95 (e.g. 0.3)")),
    }
}

pub(super) async fn run(context: &Context<'_>, args: &LotteryActArgs) -> Result<Finished, Failure> {
    outln!(
        "{} users draw through the library service Lottery, not HTTP: {RUSH_INSTANCES} instances stand for app \
         instances sharing Redis for \"all drawn\"; every fifth user draws twice at once, every tenth comes back \
         later through a fourth instance",
        args.lottery_users
    );
    // The broker and Redis come up while the database is migrated: private ones take a moment.
    let broker = find_broker();
    let redis = tokio::task::spawn_blocking(redis_url);
    let (url, shop) = context.target.url_or_throwaway("seckill_demo").await?;
    Migrator::embedded()?.run(&shop).await?;
    outln!("migrated the shop's database");

    let stub = GiftServiceStub::start(StubConfig {
        fail_share: args.gift_fail_share,
        lost_answer_share: LOST_ANSWER_SHARE,
        seed: u64::from(std::process::id()),
        latency: GIFT_LATENCY,
        ..StubConfig::new(read_gift_call)
    })
    .await?;
    let gift_config = GiftWorkerConfig {
        rate: args.gift_rate,
        concurrency: GIFT_CONCURRENCY,
        attempts: GIFT_ATTEMPTS,
        first_backoff: GIFT_FIRST_BACKOFF,
        max_backoff: GIFT_MAX_BACKOFF,
        ..GiftWorkerConfig::default()
    };
    let worker = GiftWorker::new(&stub.url(), gift_config)?;
    outln!(
        "gift service stub at {}: fails {:.0}% of calls with 503, and loses {:.0}% of answers after delivering",
        stub.url(),
        args.gift_fail_share * 100.0,
        LOST_ANSWER_SHARE * 100.0
    );

    let redis_url = redis
        .await
        .map_err(|e| Failure::new(format!("starting Redis: {e}")))?
        .map_err(|e| Failure::new(e).hint("set REDIS_URL, or install redis-server (.ci/install)"))?;
    let prefix = format!("seckill-demo-{}-{}:lottery:", std::process::id(), Utc::now().timestamp_millis());
    let mut instances = Vec::new();
    for _ in 0..=RUSH_INSTANCES {
        let pool = ConnectOptions::new(url.clone()).max_connections(INSTANCE_CONNECTIONS).build_pool()?;
        let redis = BoundedRedis::connect(&redis_url).await.map_err(|e| Failure::new(format!("Redis: {e}")))?;
        instances.push(Lottery::new(pool).with_redis(redis, Some(&prefix)));
    }
    // The admin's instance: creating the campaign and reading its books take no part in the draws.
    let admin = Lottery::new(shop.clone());
    let campaign = create_campaign(&admin, args.prizes).await?;

    let amqp_url = broker_url(broker).await?;
    let mut consumer = worker.consumer_config(context.messages.topology(&shop, &amqp_url));
    consumer.reconnect_delay = RECONNECT_DELAY;
    let delivering: Vec<Running> =
        (0..GIFT_CONSUMERS).map(|_| messaging::spawn_consumer(&amqp_url, consumer.clone(), worker.clone())).collect();
    outln!(
        "relay and gift worker running in-process: {} calls/s, {GIFT_CONCURRENCY} at once, up to {GIFT_ATTEMPTS} \
         calls per win, {GIFT_CONSUMERS} consumers",
        args.gift_rate
    );

    let opens = Instant::now() + (campaign.start_time - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    let draws = Draws {
        instances: Arc::new(instances),
        campaign_id: campaign.campaign_id,
        opens,
        in_flight: Arc::new(Semaphore::new(context.concurrency as usize)),
    };
    let mut crowd = lottery_crowd::rush(&draws, RUSH_INSTANCES, args.lottery_users).await;
    let rush_stats: Vec<GroupCommitStats> = draws.instances.iter().map(Lottery::stats).collect();
    let published = match draws.instances.first().filter(|_| crowd.all_drawn_at().is_some()) {
        Some(instance) => await_published(&redis_url, &instance.state_key(campaign.campaign_id)).await,
        None => None,
    };
    lottery_crowd::late_wave(&draws, RUSH_INSTANCES, args.lottery_users, &mut crowd).await;
    let stats: Vec<GroupCommitStats> = draws.instances.iter().map(Lottery::stats).collect();
    let crowd_done = Instant::now();

    print_crowd(&crowd, args.lottery_users);
    print_all_drawn(&crowd, &stats, &rush_stats, published.as_deref());

    let books = admin.books(campaign.campaign_id).await?;
    let drained = drain(&shop, &stub, campaign.campaign_id, books.wins).await?;
    let gifts = GiftSide {
        effects: stub.effects_per_id(),
        calls: stub.call_log(),
        stats: worker.stats(),
        config: worker.config().clone(),
    };
    outln!(
        "gift worker caught up {:.1} s after the crowd: {} calls for {} wins, {} tried again, {} duplicates \
         absorbed by the key",
        drained.saturating_duration_since(crowd_done).as_secs_f64(),
        gifts.stats.calls,
        books.wins,
        gifts.stats.retries,
        gifts.stats.duplicates
    );
    for consumer in delivering {
        consumer.stop().await;
    }
    stub.stop().await;

    let checks = lottery_reconciliation::reconcile(&shop, &campaign, &books, &crowd, &gifts).await?;
    checks::print("reconciliation", &checks);
    if let Some(first) = crowd.failures.first() {
        return Err(Failure::new(format!("{} users could not finish; first: {first}", crowd.failures.len())));
    }
    checks::all_passed("the lottery's", &checks)?;
    let told = crowd.count(|outcome| outcome.draw_id().is_some() && !outcome.is_repeat());
    outln!(
        "lottery books balance: {} draws recorded = {told} users told, {wins} won = {wins} prizes taken = {wins} \
         gifts delivered once",
        books.draws,
        wins = books.wins
    );
    Ok(Finished { routes: Router::new(), pages: Vec::new(), keep_running: Vec::new() })
}

/// The campaign: `prizes` in three tiers whose weights follow their stock (so they run out together), and a
/// blank share, opening [`OPENS_IN`] from now for half an hour.
async fn create_campaign(lottery: &Lottery, prizes: u32) -> Result<Campaign, Failure> {
    let (gold, silver) = (prizes / 20, prizes / 5);
    let tiers = vec![
        NewTier { name: "金 Gold mug".into(), stock: gold, weight: 1, value_fen: 19_900 },
        NewTier { name: "银 Silver pen".into(), stock: silver, weight: 4, value_fen: 4_900 },
        NewTier { name: "Sticker".into(), stock: prizes - gold - silver, weight: 15, value_fen: 500 },
    ];
    let now = Utc::now();
    let opens_in = chrono::Duration::from_std(OPENS_IN).unwrap_or_default();
    let campaign = NewCampaign {
        blank_weight: BLANK_WEIGHT,
        ..NewCampaign::new("抽奖 demo campaign", now + opens_in, now + opens_in + chrono::Duration::minutes(30), tiers)
    };
    let campaign = lottery.create_campaign(&campaign).await?;
    let tiers: Vec<String> = campaign.tiers.iter().map(|tier| format!("{} {:?}", tier.stock, tier.name)).collect();
    outln!(
        "campaign {} with {} prizes ({}) opens at {}; a draw wins one time in five while prizes last",
        campaign.campaign_id,
        campaign.prizes_left(),
        tiers.join(", "),
        campaign.start_time.to_rfc3339()
    );
    Ok(campaign)
}

/// Waits, up to [`PUBLISH_LIMIT`], until the campaign's key in Redis says "all drawn"; answers its value.
async fn await_published(redis_url: &str, key: &str) -> Option<String> {
    let redis = BoundedRedis::connect(redis_url).await.ok()?;
    let started = Instant::now();
    loop {
        let mut connection = redis.connection();
        let key = key.to_string();
        let value = redis
            .bounded("the demo's look at the all-drawn flag", async move {
                redis::AsyncCommands::get::<_, Option<String>>(&mut connection, key).await
            })
            .await
            .ok()
            .flatten();
        if value.is_some() || started.elapsed() > PUBLISH_LIMIT {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every win's message is consumed (or one is dead, or [`DRAIN_LIMIT`] passed), showing the gift
/// worker catching up; answers when it ended.
async fn drain(shop: &Pool, stub: &GiftServiceStub, campaign_id: i64, wins: i64) -> Result<Instant, Failure> {
    let started = Instant::now();
    let progress = if std::io::stderr().is_terminal() {
        ProgressBar::new(u64::try_from(wins).unwrap_or(0))
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} gifts delivered {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress.set_prefix("gifts");
    loop {
        progress.set_position(stub.delivered() as u64);
        let states = lottery_reconciliation::message_states(shop, campaign_id).await?;
        if states.in_flight() == 0 || started.elapsed() > DRAIN_LIMIT {
            progress.finish_and_clear();
            return Ok(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn print_crowd(crowd: &CrowdReport, users: u32) {
    let first = |outcome: &DrawOutcome| !outcome.is_repeat();
    let inner_errors = crowd.count(|outcome| matches!(outcome, DrawOutcome::InnerError(_)));
    outln!("\n  {users} users, {} draws asked", crowd.asked.iter().sum::<u64>());
    outln!("  {:<40} {:>10}", "won (中奖)", crowd.count(|o| o.is_win() && first(o)));
    outln!(
        "  {:<40} {:>10}",
        "no prize (未中奖)",
        crowd.count(|o| matches!(o, DrawOutcome::NoPrize { .. }) && first(o))
    );
    outln!("  {:<40} {:>10}", "repeats answered with the first result", crowd.count(DrawOutcome::is_repeat));
    outln!("  {:<40} {:>10}", "all drawn (奖品已抽完)", crowd.count(|o| *o == DrawOutcome::AllDrawn));
    outln!("  {:<40} {:>10}", "not started yet, drawn again", crowd.not_started);
    outln!("  {:<40} {:>10}", "inner errors", inner_errors);
    let rush_draws = crowd.told.iter().filter(|told| told.at.as_secs_f64() <= crowd.rush_seconds).count();
    outln!("  {:<40} {:>10.0}", "rush draws/s", rush_draws as f64 / crowd.rush_seconds);
    outln!("  {:<40} {:>10.3}", "draw p50 ms", crowd.latencies.quantile_ms(0.5));
    outln!("  {:<40} {:>10.3}", "draw p99 ms", crowd.latencies.quantile_ms(0.99));
}

/// The "all drawn" moment, and who turned the crowd away: the instances' flags (memory, or Redis) before the
/// lanes, the lanes' memory, or the database.
fn print_all_drawn(
    crowd: &CrowdReport,
    stats: &[GroupCommitStats],
    rush_stats: &[GroupCommitStats],
    published: Option<&str>,
) {
    let Some(at) = crowd.all_drawn_at() else {
        outln!("\n  not all drawn: prizes are left after the whole crowd drew");
        return;
    };
    let all_drawn = crowd.count(|outcome| *outcome == DrawOutcome::AllDrawn) as u64;
    let before_lanes: Vec<u64> =
        crowd.asked.iter().zip(stats).map(|(asked, stats)| asked.saturating_sub(stats.requests)).collect();
    let flags: u64 = before_lanes.iter().sum();
    let lanes: u64 = stats.iter().map(|stats| stats.short_circuited).sum();
    outln!("\n  all drawn {:.2} s after the opening (the first \"all drawn\" answer)", at.as_secs_f64());
    outln!("  {all_drawn} answers \"all drawn\", no draw recorded for them; answered");
    outln!("  {:<56} {:>8}", "  by the instances' flags, before their lanes", flags);
    outln!("  {:<56} {:>8}", "  by the lanes' memory of the campaign", lanes);
    outln!(
        "  {:<56} {:>8}",
        "  by the database (a batch that found no prize left)",
        all_drawn.saturating_sub(flags + lanes)
    );
    outln!("\n  {:<12} {:>8} {:>10} {:>9} {:>14}", "instance", "draws", "to lanes", "batches", "turned away");
    for (index, ((asked, stats), away)) in crowd.asked.iter().zip(stats).zip(&before_lanes).enumerate() {
        let late = if index >= RUSH_INSTANCES { " (late)" } else { "" };
        let name = format!("app {}{late}", index + 1);
        outln!("  {name:<12} {asked:>8} {:>10} {:>9} {away:>14}", stats.requests, stats.batches);
    }
    let late_lanes: u64 =
        stats.iter().zip(rush_stats).skip(RUSH_INSTANCES).map(|(s, r)| s.requests.saturating_sub(r.requests)).sum();
    let late_asked: u64 = crowd.asked.iter().skip(RUSH_INSTANCES).sum();
    match published {
        Some(value) => outln!(
            "  Redis said {value:?} before app {} joined: {} of its {late_asked} draws reached its lanes{}",
            RUSH_INSTANCES + 1,
            late_lanes,
            if late_lanes == 0 { ", it knew from Redis alone" } else { "" }
        ),
        None => outln!("  Redis did not say \"all drawn\" in time: app {} asked its database", RUSH_INSTANCES + 1),
    }
}
