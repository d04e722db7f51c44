//! The bench's workloads: many callers, one item.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use serde::Serialize;

use super::strategy::{Strategy, attempt};
use crate::cli::latencies::Latencies;
use seckill::seckill::{Outcome, Phone, Seckill};

/// What the callers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// One item with stock that never runs out, for a fixed time: throughput.
    Hot,
    /// Stock 10,000 and 100,000 users, a fifth of whom try twice, until sold out; then a burst of latecomers
    /// for a fixed time: sell-out time and rejections after sell-out.
    Sale,
    /// Points exchanges through the reliable message service to the warehouse (see `bench::exchange`).
    Exchange,
    /// A lottery drawn until every prize is won, then a burst of latecomers: the durable draw against the
    /// field's Redis Lua design (see `bench::lottery`).
    Lottery,
    /// Seckills over HTTP through the nginx balancer in front of N `seckill serve` instances, against one
    /// instance served directly; then a burst for a closed item that no instance sees (see `bench::cluster`).
    Cluster,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Hot => "hot",
            Workload::Sale => "sale",
            Workload::Exchange => "exchange",
            Workload::Lottery => "lottery",
            Workload::Cluster => "cluster",
        }
    }

    /// True for the workloads of one seckill item, which compare strategies ([`super::run`]).
    pub fn is_seckill(self) -> bool {
        matches!(self, Workload::Hot | Workload::Sale)
    }
}

/// The sale workload's shape.
pub(crate) const SALE_STOCK: i32 = 10_000;
pub(crate) const SALE_USERS: u64 = 100_000;

/// What a set of callers observed.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) successes: u64,
    pub(crate) rejections: u64,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) latencies: Latencies,
    /// When the last success was seen, from the start.
    pub(crate) last_success: Option<Duration>,
}

impl Tally {
    /// Attempts of any outcome.
    pub(crate) fn attempts(&self) -> u64 {
        self.successes + self.rejections + self.errors
    }

    fn add(&mut self, outcome: &Outcome, started: Instant, began: Instant) {
        self.latencies.record(began.elapsed());
        match outcome {
            Outcome::Success(_) => {
                self.successes += 1;
                self.last_success = Some(started.elapsed());
            }
            Outcome::InnerError(error) => {
                self.errors += 1;
                self.first_error.get_or_insert_with(|| error.detail.clone());
            }
            _ => self.rejections += 1,
        }
    }

    pub(crate) fn merge(&mut self, other: Tally) {
        self.successes += other.successes;
        self.rejections += other.rejections;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies.merge(other.latencies);
        self.last_success = self.last_success.max(other.last_success);
    }
}

/// Who tries next: a source of phones shared by all callers.
pub(crate) enum Attempts {
    /// A fresh user every time, until the deadline.
    FreshUntil { next: AtomicU64, deadline: Instant },
    /// A fixed list, in order, until it runs out.
    List { phones: Vec<Phone>, next: AtomicUsize },
    /// Users drawn from the first `users`, until the deadline.
    DrawnUntil { users: u64, next: AtomicU64, deadline: Instant },
}

impl Attempts {
    fn next(&self) -> Option<Phone> {
        match self {
            Attempts::FreshUntil { next, deadline } => {
                (Instant::now() < *deadline).then(|| Phone::nth(next.fetch_add(1, Ordering::Relaxed)))
            }
            Attempts::List { phones, next } => phones.get(next.fetch_add(1, Ordering::Relaxed)).copied(),
            Attempts::DrawnUntil { users, next, deadline } => (Instant::now() < *deadline)
                .then(|| Phone::nth(scramble(next.fetch_add(1, Ordering::Relaxed)) % users.max(&1))),
        }
    }
}

/// A cheap bijective mix, so drawn users are spread rather than sequential.
fn scramble(n: u64) -> u64 {
    n.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29)
}

/// The sale's attempt list: every user once, a fifth of them twice, interleaved deterministically.
pub(crate) fn sale_attempts() -> Vec<Phone> {
    let mut order: Vec<u64> = (0..SALE_USERS).chain((0..SALE_USERS).step_by(5)).collect();
    // Fisher-Yates with a fixed linear congruential generator: the same order on every run.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for i in (1..order.len()).rev() {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        order.swap(i, (state >> 33) as usize % (i + 1));
    }
    order.into_iter().map(Phone::nth).collect()
}

/// Runs `concurrency` callers against one item until `attempts` runs dry.
pub(crate) async fn run_callers(
    strategy: Strategy,
    service: &Seckill,
    seckill_id: i64,
    concurrency: usize,
    attempts: Arc<Attempts>,
    progress: &ProgressBar,
) -> Tally {
    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let successes = Arc::new(AtomicU64::new(0));
    let ticker = {
        let (progress, done, successes) = (progress.clone(), done.clone(), successes.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                progress.set_message(format!("{} seckills", successes.load(Ordering::Relaxed)));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let callers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (service, attempts, successes, progress) =
                (service.clone(), attempts.clone(), successes.clone(), progress.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while let Some(phone) = attempts.next() {
                    let began = Instant::now();
                    let outcome = attempt(strategy, &service, seckill_id, phone).await;
                    tally.add(&outcome, started, began);
                    if outcome.is_success() {
                        successes.fetch_add(1, Ordering::Relaxed);
                    }
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
        if let Ok(tally) = caller.await {
            total.merge(tally);
        }
    }
    done.store(true, Ordering::Relaxed);
    let _ = ticker.await;
    total
}
