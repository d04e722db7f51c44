//! `seckill bench --workload lottery`: the durable draw against the field's Redis Lua design, side by side in
//! one run, each with its books checked.
//!
//! Both designs get the same campaign (`prizes` units in four tiers, one draw per user), the same odds (each
//! `win_share`: the chance that a draw lands on a prize while prizes last, the rest of the wheel being the blank
//! share; 1 is every draw wins, so the prizes go to the first comers; 0.0125, one in eighty, makes 10,000 prizes
//! last for about 800,000 of a million users), the same crowd (users 1, 2, 3, ... taken in order by
//! `concurrency` callers, their draws decided by random numbers drawn the same way from the same seed) and two
//! phases:
//!
//! 1. **Until all drawn**: callers draw for distinct users until one hears "all drawn" (or the users run out):
//!    draws decided per second, the time from the first draw to the last win, latency percentiles.
//! 2. **The burst after**: the same callers keep drawing, users cycling, for `after_burst`: every answer must be
//!    "all drawn". Rejections per second, and what reached the store meanwhile: for the durable draw, the
//!    server's `Questions` and `Com_call_procedure` (server-wide: other clients of a shared server count too)
//!    and the lanes' batches (this process only, exact), all expected 0; for Redis, the draw scripts it ran.
//!
//! The durable draw is [`seckill::lottery::Lottery`] (group-commit lanes, one procedure call per batch, the
//! "all drawn" flag in memory); the baseline is `lottery_redis.rs`. Books: for the durable draw,
//! [`seckill::lottery::LotteryBooks`] (wins = units taken = prize messages, no user over their draws) and draws
//! recorded = results told; for Redis, stream entries = wins told = units popped, no user twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use mysql_async::Pool;
use serde::Serialize;

mod delivery;
mod design;
mod redis_baseline;

use delivery::DeliveryReport;
use design::{Design, Told};
use redis_baseline::{RedisLottery, Wheel};

use super::error::BenchError;
use super::measurement::{self, ServerCounters};
use super::progress::progress_bar;
use crate::cli::latencies::Latencies;
use seckill::database::ConnectOptions;
use seckill::group_commit::GroupCommitConfig;
use seckill::lottery::{DrawOutcome, Lottery, NewCampaign, NewTier};

/// How the lottery workload runs.
#[derive(Debug, Clone)]
pub struct LotteryBenchConfig {
    /// Users in the crowd (ids 1 to `users`), at least `prizes`.
    pub users: u64,
    /// Units in all tiers.
    pub prizes: u32,
    /// Callers in flight, one run (both designs) per value.
    pub concurrency: Vec<usize>,
    /// The chance a draw wins while prizes last, one run (both designs) per value and concurrency.
    pub win_shares: Vec<f64>,
    /// How long the burst after all drawn lasts.
    pub after_burst: Duration,
    /// Connections in the durable draw's pool.
    pub pool_size: usize,
    /// The lanes' largest batch.
    pub max_batch: usize,
    /// Multiplexed connections the Redis design's callers share.
    pub redis_connections: usize,
    /// Show progress spinners (off for scripts).
    pub progress: bool,
    /// The gift worker's calls per second in the delivery phase, which runs when a broker is given.
    pub gift_rate: f64,
}

impl LotteryBenchConfig {
    /// Checks that the crowd can draw every prize.
    ///
    /// # Errors
    /// [`BenchError::Invalid`], saying what to change.
    pub fn validate(&self) -> Result<(), BenchError> {
        if !(self.gift_rate.is_finite() && self.gift_rate > 0.0) {
            return Err(BenchError::Invalid(format!("the gift rate must be positive, not {}", self.gift_rate)));
        }
        if self.prizes == 0 || self.users < u64::from(self.prizes) {
            return Err(BenchError::Invalid(format!(
                "the lottery workload needs at least one prize and at least as many users as prizes \
                 (--users {} --prizes {})",
                self.users, self.prizes
            )));
        }
        for &share in &self.win_shares {
            if !(share > 0.0 && share <= 1.0) {
                return Err(BenchError::Invalid(format!("a win share is a chance in (0, 1], not {share}")));
            }
            // A quarter more draws than the odds need, so that the crowd draws every prize all but surely.
            if (self.users as f64) * share < f64::from(self.prizes) * 1.25 && share < 1.0 {
                return Err(BenchError::Invalid(format!(
                    "at a win share of {share}, {} users would not draw all {} prizes: give more --users or a \
                     larger --win-share",
                    self.users, self.prizes
                )));
            }
        }
        Ok(())
    }
}

/// The seed of both designs: the durable draw's random numbers and the order of the Redis design's units.
const SEED: u64 = 0x5EC_C111_2026;

/// The campaign's tiers: name, weight, and share of the prizes in percent (the last tier takes the rest).
const TIERS: [(&str, u32, u32); 4] =
    [("Grand prize", 1, 1), ("Gold mug", 9, 9), ("Tote bag", 30, 30), ("Sticker", 60, 60)];

/// The weight of the wheel's blank share that makes a draw land on a prize with chance `win_share` (the tiers'
/// weights sum to 100).
pub(crate) fn blank_weight(win_share: f64) -> u32 {
    let tiers: u32 = TIERS.iter().map(|&(_, weight, _)| weight).sum();
    (f64::from(tiers) * (1.0 - win_share) / win_share).round() as u32
}

/// The units of each tier for `prizes` in all.
pub(crate) fn tier_stock(prizes: u32) -> Vec<u32> {
    let mut stock: Vec<u32> =
        TIERS.iter().map(|&(_, _, percent)| (u64::from(prizes) * u64::from(percent) / 100) as u32).collect();
    let given: u32 = stock.iter().sum();
    if let Some(last) = stock.last_mut() {
        *last += prizes - given;
    }
    stock
}

/// The durable draw: the lottery service on one campaign.
struct Durable {
    lottery: Lottery,
    campaign_id: i64,
}

impl Design for Durable {
    async fn draw(&self, _caller: usize, user_id: i64) -> Told {
        match self.lottery.draw(self.campaign_id, user_id).await {
            Ok(DrawOutcome::Won { repeat: false, .. }) => Told::Won,
            Ok(DrawOutcome::NoPrize { repeat: false, .. }) => Told::NoPrize,
            Ok(DrawOutcome::Won { .. } | DrawOutcome::NoPrize { .. }) => Told::Repeat,
            Ok(DrawOutcome::AllDrawn) => Told::AllDrawn,
            Ok(DrawOutcome::InnerError(error)) => Told::Error(error.detail),
            Ok(other) => Told::Other(other.reason()),
            Err(error) => Told::Error(error.to_string()),
        }
    }

    async fn store_calls(&self) -> Result<u64, BenchError> {
        Ok(self.lottery.stats().batches)
    }
}

/// The crowd's users, taken in order by every caller.
struct Crowd {
    users: u64,
    next: AtomicU64,
    /// Set by the first caller told "all drawn" in the first phase.
    all_drawn: AtomicBool,
    /// Whether each user (user n at n - 1) was told a draw of theirs was recorded (won, or no prize).
    drew: Vec<AtomicBool>,
}

/// When callers stop.
#[derive(Debug, Clone, Copy)]
enum Until {
    /// At the first "all drawn", or when every user has drawn once.
    AllDrawn,
    /// At this instant, users cycling.
    Deadline(Instant),
}

impl Crowd {
    fn new(users: u64) -> Self {
        let users = users.max(1);
        let drew = (0..users).map(|_| AtomicBool::new(false)).collect();
        Crowd { users, next: AtomicU64::new(0), all_drawn: AtomicBool::new(false), drew }
    }

    /// The next user to draw, or `None` when the phase is over.
    fn next(&self, until: Until) -> Option<i64> {
        let n = match until {
            Until::AllDrawn => {
                if self.all_drawn.load(Ordering::Relaxed) {
                    return None;
                }
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                if n >= self.users {
                    return None;
                }
                n
            }
            Until::Deadline(deadline) => {
                if Instant::now() >= deadline {
                    return None;
                }
                self.next.fetch_add(1, Ordering::Relaxed) % self.users
            }
        };
        i64::try_from(n + 1).ok()
    }

    /// Records what `user` was told: in the first phase whether they drew; after it, whether the answer is the
    /// one the database would give them (their result again if they drew, "all drawn" if not). Other answers
    /// are tallied, not judged here.
    fn told(&self, user: i64, told: &Told, until: Until) -> bool {
        let Some(drew) = usize::try_from(user - 1).ok().and_then(|index| self.drew.get(index)) else { return true };
        match (until, told) {
            (Until::AllDrawn, Told::Won | Told::NoPrize) => {
                drew.store(true, Ordering::Relaxed);
                true
            }
            (Until::Deadline(_), Told::Repeat) => drew.load(Ordering::Relaxed),
            (Until::Deadline(_), Told::AllDrawn) => !drew.load(Ordering::Relaxed),
            _ => true,
        }
    }
}

/// What the callers of one phase were told.
#[derive(Debug, Default)]
struct Tally {
    won: u64,
    no_prize: u64,
    all_drawn: u64,
    repeat: u64,
    other: u64,
    errors: u64,
    first_error: Option<String>,
    /// Answers after all drawn that were not the user's own: a repeat to a user who never drew, "all drawn" to
    /// one who did.
    not_theirs: u64,
    latencies: Latencies,
    /// When the last win was told, from the phase's start.
    last_win: Option<Duration>,
}

impl Tally {
    fn add(&mut self, told: Told, started: Instant, began: Instant) {
        self.latencies.record(began.elapsed());
        match told {
            Told::Won => {
                self.won += 1;
                self.last_win = Some(started.elapsed());
            }
            Told::NoPrize => self.no_prize += 1,
            Told::AllDrawn => self.all_drawn += 1,
            Told::Repeat => self.repeat += 1,
            Told::Other(_) => self.other += 1,
            Told::Error(detail) => {
                self.errors += 1;
                self.first_error.get_or_insert(detail);
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.won += other.won;
        self.no_prize += other.no_prize;
        self.all_drawn += other.all_drawn;
        self.repeat += other.repeat;
        self.other += other.other;
        self.errors += other.errors;
        self.not_theirs += other.not_theirs;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies.merge(other.latencies);
        self.last_win = self.last_win.max(other.last_win);
    }

    fn answers(&self) -> u64 {
        self.won + self.no_prize + self.all_drawn + self.repeat + self.other + self.errors
    }
}

/// Runs `concurrency` callers drawing from `design` for the crowd's users until `until`; returns what they were
/// told and how long the phase took.
async fn draw_crowd<D: Design>(
    design: &Arc<D>,
    crowd: &Arc<Crowd>,
    concurrency: usize,
    until: Until,
    progress: &indicatif::ProgressBar,
) -> (Tally, Duration) {
    let started = Instant::now();
    let callers: Vec<_> = (0..concurrency.max(1))
        .map(|caller| {
            let (design, crowd, progress) = (design.clone(), crowd.clone(), progress.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while let Some(user) = crowd.next(until) {
                    let began = Instant::now();
                    let told = design.draw(caller, user).await;
                    if matches!(until, Until::AllDrawn) && told == Told::AllDrawn {
                        crowd.all_drawn.store(true, Ordering::Relaxed);
                    }
                    if !crowd.told(user, &told, until) {
                        tally.not_theirs += 1;
                    }
                    tally.add(told, started, began);
                    progress.inc(1);
                    // An answer from memory never waits, so without this a caller would keep its worker
                    // thread to itself until the deadline.
                    tokio::task::coop::consume_budget().await;
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for caller in callers {
        match caller.await {
            Ok(tally) => total.merge(tally),
            Err(error) => {
                total.errors += 1;
                total.first_error.get_or_insert_with(|| format!("a caller failed: {error}"));
            }
        }
    }
    (total, started.elapsed())
}

/// One design's figures.
#[derive(Debug, Clone, Serialize)]
pub struct DesignReport {
    /// `durable` or `redis_lua`.
    pub design: &'static str,
    /// Draws decided (won or no prize) until all drawn.
    pub draws: u64,
    pub wins: u64,
    /// Draws answered with an error, in either phase.
    pub errors: u64,
    pub first_error: Option<String>,
    /// From the first draw to the last win told.
    pub all_drawn_ms: f64,
    /// Draws decided per second until all drawn.
    pub draws_per_s: f64,
    /// Calls to the store until all drawn: the durable draw's batches (one procedure call each), the Redis
    /// design's draw scripts.
    pub store_calls: u64,
    /// Latency of every answer until all drawn.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Answers in the burst after all drawn: "all drawn" to users who never drew, their result again (a repeat)
    /// to users who did.
    pub burst_rejections: u64,
    pub burst_rejections_per_s: f64,
    pub burst_p99_ms: f64,
    /// Statements the database server received during the burst (server-wide, less the bench's own reads of
    /// the counter).
    pub burst_database_queries: u64,
    /// Procedure calls the database server ran during the burst (server-wide).
    pub burst_procedure_calls: u64,
    /// Durable only: batches the lanes sent during the burst (this process only).
    pub burst_batches: Option<u64>,
    /// Redis only: draw scripts Redis ran during the burst (EVALSHA calls).
    pub burst_redis_calls: Option<u64>,
    /// What was checked, in words.
    pub books: String,
}

/// Both designs' figures at one concurrency.
#[derive(Debug, Clone, Serialize)]
pub struct LotteryReport {
    pub workload: &'static str,
    pub concurrency: usize,
    /// The chance a draw wins while prizes last, and the wheel's blank share that gives it.
    pub win_share: f64,
    pub blank_weight: u32,
    pub users: u64,
    pub prizes: u32,
    /// Units per tier.
    pub tiers: Vec<u32>,
    pub burst_ms: f64,
    pub durable: DesignReport,
    pub redis: DesignReport,
    /// Durable draws per second over the Redis design's.
    pub draws_ratio: f64,
    /// Durable rejections per second after all drawn over the Redis design's.
    pub rejections_ratio: f64,
    /// The durable draw's wins delivered through the message service, when a broker was given.
    pub delivery: Option<DeliveryReport>,
}

/// What one design's two phases came to, before the report.
struct Phases {
    drawing: Tally,
    drawing_took: Duration,
    /// The design's own count of calls to its store until all drawn.
    drawing_store_calls: u64,
    burst: Tally,
    burst_took: Duration,
    server: ServerCounters,
    /// The design's own count of calls to its store during the burst.
    store_calls: u64,
}

impl Phases {
    fn report(self, design: &'static str, books: String) -> DesignReport {
        let all_drawn = self.drawing.last_win.unwrap_or(self.drawing_took);
        let draws = self.drawing.won + self.drawing.no_prize;
        let (p50_ms, p99_ms, max_ms) = self.drawing.latencies.summary();
        let (_, burst_p99_ms, _) = self.burst.latencies.summary();
        DesignReport {
            design,
            draws,
            wins: self.drawing.won,
            errors: self.drawing.errors + self.burst.errors,
            first_error: self.drawing.first_error.or(self.burst.first_error),
            all_drawn_ms: all_drawn.as_secs_f64() * 1000.0,
            draws_per_s: draws as f64 / all_drawn.as_secs_f64().max(1e-9),
            store_calls: self.drawing_store_calls,
            p50_ms,
            p99_ms,
            max_ms,
            burst_rejections: self.burst.all_drawn + self.burst.repeat,
            burst_rejections_per_s: (self.burst.all_drawn + self.burst.repeat) as f64
                / self.burst_took.as_secs_f64().max(1e-9),
            burst_p99_ms,
            burst_database_queries: self.server.questions,
            burst_procedure_calls: self.server.procedure_calls,
            burst_batches: None,
            burst_redis_calls: None,
            books,
        }
    }
}

/// Runs both designs at every concurrency, the database at `url` and the (private) Redis at `redis_url`, and
/// checks both designs' books after each run. Reports are handed to `on_report` as they come.
///
/// # Errors
/// [`BenchError::BooksDoNotBalance`] as soon as one design's books are off; database and Redis errors.
pub async fn run(
    url: &str,
    redis_url: &str,
    amqp_url: Option<&str>,
    config: &LotteryBenchConfig,
    mut on_report: impl FnMut(&LotteryReport),
) -> Result<(), BenchError> {
    config.validate()?;
    let monitor = ConnectOptions::new(url).max_connections(1).build_pool()?;
    // The monitor's connection is opened now, so that opening it never counts in a burst.
    measurement::server_counters(&monitor).await?;
    let runs = config.concurrency.iter().flat_map(|&c| config.win_shares.iter().map(move |&share| (c, share)));
    for (run, (concurrency, win_share)) in runs.enumerate() {
        let blank_weight = blank_weight(win_share);
        let odds = Odds { concurrency, blank_weight };
        let (durable, delivery) = durable(url, amqp_url, &monitor, config, odds).await?;
        let prefix = format!("seckill:bench:lottery:{}:{run}:", std::process::id());
        let redis = redis_lua(redis_url, &prefix, &monitor, config, odds).await?;
        let ratio = |durable: f64, redis: f64| if redis > 0.0 { durable / redis } else { 0.0 };
        on_report(&LotteryReport {
            workload: "lottery",
            concurrency,
            win_share,
            blank_weight,
            users: config.users,
            prizes: config.prizes,
            tiers: tier_stock(config.prizes),
            burst_ms: config.after_burst.as_secs_f64() * 1000.0,
            draws_ratio: ratio(durable.draws_per_s, redis.draws_per_s),
            rejections_ratio: ratio(durable.burst_rejections_per_s, redis.burst_rejections_per_s),
            durable,
            redis,
            delivery,
        });
    }
    monitor.disconnect().await.ok();
    Ok(())
}

/// One run's callers and wheel.
#[derive(Debug, Clone, Copy)]
struct Odds {
    concurrency: usize,
    blank_weight: u32,
}

/// Both phases of one design, the database server's counters and the design's own count of store calls read
/// around the burst.
async fn phases<D: Design>(
    design: &Arc<D>,
    name: &str,
    monitor: &Pool,
    config: &LotteryBenchConfig,
    concurrency: usize,
) -> Result<Phases, BenchError> {
    let crowd = Arc::new(Crowd::new(config.users));
    let progress = progress_bar(config.progress, None, format!("lottery {name} x{concurrency}"));
    let calls_at_start = design.store_calls().await?;
    let (drawing, drawing_took) = draw_crowd(design, &crowd, concurrency, Until::AllDrawn, &progress).await;
    progress.finish_and_clear();
    let progress = progress_bar(config.progress, None, format!("after all drawn {name} x{concurrency}"));
    let before = measurement::server_counters(monitor).await?;
    let calls_before = design.store_calls().await?;
    let deadline = Instant::now() + config.after_burst;
    let (burst, burst_took) = draw_crowd(design, &crowd, concurrency, Until::Deadline(deadline), &progress).await;
    let calls_after = design.store_calls().await?;
    let after = measurement::server_counters(monitor).await?;
    progress.finish_and_clear();
    Ok(Phases {
        drawing,
        drawing_took,
        drawing_store_calls: calls_before.saturating_sub(calls_at_start),
        burst,
        burst_took,
        server: after.since(before),
        store_calls: calls_after.saturating_sub(calls_before),
    })
}

/// The durable draw: a fresh campaign, the lottery service on its own pool; then, with a broker, the delivery
/// of its wins.
async fn durable(
    url: &str,
    amqp_url: Option<&str>,
    monitor: &Pool,
    config: &LotteryBenchConfig,
    odds: Odds,
) -> Result<(DesignReport, Option<DeliveryReport>), BenchError> {
    let pool = ConnectOptions::new(url).max_connections(config.pool_size).build_pool()?;
    let lanes = GroupCommitConfig { max_batch: config.max_batch, ..GroupCommitConfig::default() };
    let lottery = Lottery::with_config(pool.clone(), lanes);
    let now = Utc::now();
    let tiers = TIERS
        .iter()
        .zip(tier_stock(config.prizes))
        .map(|(&(name, weight, _), stock)| NewTier { name: name.to_string(), stock, weight, value_fen: 0 })
        .collect();
    let campaign = NewCampaign {
        blank_weight: odds.blank_weight,
        ..NewCampaign::new("bench lottery", now - chrono::Duration::minutes(1), now + chrono::Duration::hours(1), tiers)
    };
    let campaign_id = lottery.create_campaign(&campaign).await?.campaign_id;
    let design = Arc::new(Durable { lottery: lottery.clone(), campaign_id });
    let outcome = match phases(&design, "durable", monitor, config, odds.concurrency).await {
        Ok(phases) => durable_books(&lottery, campaign_id, config.prizes, &phases).await.map(|books| (phases, books)),
        Err(error) => Err(error),
    };
    // Every win the books hold is delivered, including any whose caller heard an error.
    let delivery = match (&outcome, amqp_url) {
        (Ok(_), Some(amqp_url)) => Some(match lottery.books(campaign_id).await {
            Ok(books) => {
                let wins = u64::try_from(books.wins).unwrap_or(0);
                delivery::deliver(&pool, amqp_url, campaign_id, wins, config.gift_rate).await
            }
            Err(error) => Err(error.into()),
        }),
        _ => None,
    };
    pool.disconnect().await.ok();
    let (phases, books) = outcome?;
    let delivery = delivery.transpose()?;
    let burst_batches = phases.store_calls;
    Ok((DesignReport { burst_batches: Some(burst_batches), ..phases.report("durable", books) }, delivery))
}

/// Checks the durable draw's books against what the callers were told; says what was checked.
async fn durable_books(
    lottery: &Lottery,
    campaign_id: i64,
    prizes: u32,
    phases: &Phases,
) -> Result<String, BenchError> {
    let books = lottery.books(campaign_id).await?;
    let (drawing, burst) = (&phases.drawing, &phases.burst);
    let told_wins = drawing.won + burst.won;
    let told_draws = told_wins + drawing.no_prize + burst.no_prize;
    let errors = drawing.errors + burst.errors;
    // A draw answered with an error may have committed: it is in the books but was told nothing.
    let within = |recorded: i64, told: u64| (told..=told + errors).contains(&u64::try_from(recorded).unwrap_or(0));
    let mut problems = Vec::new();
    if !books.balances() {
        problems.push(format!("units taken, wins and prize messages disagree: {books:?}"));
    }
    if books.units_won() != i64::from(prizes) {
        problems.push(format!("{} of {prizes} prizes drawn", books.units_won()));
    }
    if books.users != books.draws {
        problems.push(format!("{} draws by {} users: a user drew twice", books.draws, books.users));
    }
    if !within(books.draws, told_draws) {
        problems.push(format!("{} draws recorded, {told_draws} told ({errors} errors)", books.draws));
    }
    if !within(books.wins, told_wins) {
        problems.push(format!("{} wins recorded, {told_wins} told ({errors} errors)", books.wins));
    }
    problems.extend(burst_problems(burst, phases.store_calls, "batches sent by the lanes"));
    if !problems.is_empty() {
        return Err(BenchError::BooksDoNotBalance(format!("durable draw: {}", problems.join("; "))));
    }
    Ok(format!(
        "{} wins = units taken = prize messages; {} draws recorded = told; no user twice",
        books.wins, books.draws
    ))
}

/// What is wrong with a burst after all drawn: answers other than each user's own ("all drawn" to a user who
/// never drew, their result again to one who did), or calls to the store when `store_calls_must_be_zero` names
/// them.
fn burst_problems(burst: &Tally, store_calls: u64, store_calls_must_be_zero: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let others = burst.answers() - burst.all_drawn - burst.repeat;
    if others > 0 {
        problems.push(format!(
            "{others} of {} draws after all drawn were neither \"all drawn\" nor a repeat (first error: {})",
            burst.answers(),
            burst.first_error.as_deref().unwrap_or("none")
        ));
    }
    if burst.not_theirs > 0 {
        problems.push(format!(
            "{} of {} draws after all drawn were not the user's own answer (\"all drawn\" to a user who drew, or \
             a repeat to one who did not)",
            burst.not_theirs,
            burst.answers()
        ));
    }
    if !store_calls_must_be_zero.is_empty() && store_calls > 0 {
        problems.push(format!("{store_calls} {store_calls_must_be_zero} after all drawn"));
    }
    problems
}

/// The Redis design: a fresh campaign under its own keys on the private Redis.
async fn redis_lua(
    redis_url: &str,
    prefix: &str,
    monitor: &Pool,
    config: &LotteryBenchConfig,
    odds: Odds,
) -> Result<DesignReport, BenchError> {
    let stock = tier_stock(config.prizes);
    let tier_weight = TIERS.iter().map(|&(_, weight, _)| weight).sum();
    let wheel = Wheel { tier_weight, blank_weight: odds.blank_weight };
    let design = Arc::new(
        RedisLottery::set_up(redis_url, prefix, &stock, wheel, SEED, config.redis_connections)
            .await
            .map_err(BenchError::Redis)?,
    );
    let phases = phases(&design, "redis_lua", monitor, config, odds.concurrency).await?;
    let books = design.books().await.map_err(BenchError::Redis)?;
    let (drawing, burst) = (&phases.drawing, &phases.burst);
    let told_wins = drawing.won + burst.won;
    let told_draws = told_wins + drawing.no_prize + burst.no_prize;
    let errors = drawing.errors + burst.errors;
    let prizes = u64::from(config.prizes);
    let mut problems = Vec::new();
    if !(told_wins..=told_wins + errors).contains(&books.stream) {
        problems.push(format!("{} wins in the stream, {told_wins} told ({errors} errors)", books.stream));
    }
    if books.stream != prizes - books.units_left.min(prizes) || books.units_left != 0 {
        problems.push(format!(
            "{} wins in the stream, {} of {prizes} units popped",
            books.stream,
            prizes - books.units_left.min(prizes)
        ));
    }
    if !(told_draws..=told_draws + errors).contains(&books.users) || books.distinct_winners != books.stream {
        problems.push(format!(
            "{} users recorded for {told_draws} draws told, {} distinct winners for {} wins: a user drew twice or \
             lost a draw",
            books.users, books.distinct_winners, books.stream
        ));
    }
    if odds.blank_weight == 0 && drawing.no_prize + burst.no_prize > 0 {
        problems.push("the script answered \"no prize\" on a wheel without a blank share".to_string());
    }
    problems.extend(burst_problems(burst, phases.store_calls, ""));
    if !problems.is_empty() {
        return Err(BenchError::BooksDoNotBalance(format!("Redis baseline: {}", problems.join("; "))));
    }
    let books = format!(
        "{} wins = stream entries = units popped; {} draws recorded = told; no user twice",
        books.stream, books.users
    );
    let redis_commands = phases.store_calls;
    Ok(DesignReport { burst_redis_calls: Some(redis_commands), ..phases.report("redis_lua", books) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_share_every_prize() {
        assert_eq!(tier_stock(10_000), [100, 900, 3000, 6000]);
        assert_eq!(tier_stock(300), [3, 27, 90, 180]);
        assert_eq!(tier_stock(7), [0, 0, 2, 5]);
        assert_eq!(tier_stock(1).iter().sum::<u32>(), 1);
    }

    #[test]
    fn the_crowd_stops_when_told_or_out_of_users_and_cycles_in_a_burst() {
        let crowd = Crowd::new(3);
        let taken: Vec<_> = std::iter::from_fn(|| crowd.next(Until::AllDrawn)).collect();
        assert_eq!(taken, [1, 2, 3]);
        let crowd = Crowd::new(3);
        assert_eq!(crowd.next(Until::AllDrawn), Some(1));
        crowd.all_drawn.store(true, Ordering::Relaxed);
        assert_eq!(crowd.next(Until::AllDrawn), None);
        let later = Until::Deadline(Instant::now() + Duration::from_secs(60));
        let cycled: Vec<_> = (0..4).filter_map(|_| crowd.next(later)).collect();
        assert_eq!(cycled, [2, 3, 1, 2]);
        assert_eq!(crowd.next(Until::Deadline(Instant::now())), None);
    }
}
