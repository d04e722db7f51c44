//! The lottery act's crowd: users drawing through the library service [`Lottery`], one task each, spread over
//! several instances of it standing for app instances behind a load balancer, and what they were told.
//!
//! The rush: every user draws the moment the campaign opens (a jitter of up to 100 ms, as real clicks have),
//! through the instances in turn; every fifth double-clicks: two draws at once, through two instances (one is
//! decided, the other answered with its result, flagged repeat). The late wave: every tenth user comes back after the rush, through an
//! instance that has not drawn before (one scaled out after the rush). A draw the database answers "not
//! started" (a clock a little ahead) is drawn again a moment later; an inner error a few times, as drawing again
//! is always safe.

use crate::cli::latencies::Latencies;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use seckill::lottery::{DrawOutcome, Lottery};
use tokio::sync::Semaphore;

/// How long a user keeps drawing again while the database says "not started".
const NOT_STARTED_LIMIT: Duration = Duration::from_secs(5);
/// Draws of one user after an inner error before the crowd gives up (the draw is then in doubt).
const INNER_ERROR_DRAWS: u32 = 3;

/// One answer a user heard.
#[derive(Debug, Clone)]
pub(super) struct Told {
    pub(super) user_id: i64,
    pub(super) outcome: DrawOutcome,
    /// When it was heard, from the campaign's opening.
    pub(super) at: Duration,
}

/// What the crowd did and was told.
#[derive(Debug, Default)]
pub(super) struct CrowdReport {
    /// Every answer, each user's in the order heard.
    pub(super) told: Vec<Told>,
    /// Draws each instance was asked for (answers drawn again after "not started" or an inner error included).
    pub(super) asked: Vec<u64>,
    /// "Not started" answers drawn again.
    pub(super) not_started: u64,
    /// Users whose task failed, or whose draw was refused as input (neither should happen).
    pub(super) failures: Vec<String>,
    pub(super) latencies: Latencies,
    /// From the opening to the rush's last answer.
    pub(super) rush_seconds: f64,
}

impl CrowdReport {
    /// Answers for which `pick` holds.
    pub(super) fn count(&self, pick: impl Fn(&DrawOutcome) -> bool) -> usize {
        self.told.iter().filter(|told| pick(&told.outcome)).count()
    }

    /// When the first "all drawn" was heard, from the opening.
    pub(super) fn all_drawn_at(&self) -> Option<Duration> {
        self.told.iter().filter(|told| told.outcome == DrawOutcome::AllDrawn).map(|told| told.at).min()
    }

    fn absorb(&mut self, mut user: UserLog) {
        for part in std::mem::take(&mut user.parts) {
            self.absorb(part);
        }
        self.told.extend(user.told);
        self.not_started += user.not_started;
        self.latencies.merge(user.latencies);
        for (instance, asked) in user.asked {
            if let Some(count) = self.asked.get_mut(instance) {
                *count += asked;
            }
        }
        self.failures.extend(user.failure);
    }
}

/// The instances and the campaign the crowd draws from.
#[derive(Clone)]
pub(super) struct Draws {
    pub(super) instances: Arc<Vec<Lottery>>,
    pub(super) campaign_id: i64,
    /// The campaign's opening, on this process's clock.
    pub(super) opens: Instant,
    pub(super) in_flight: Arc<Semaphore>,
}

/// One user's answers and counts.
#[derive(Debug, Default)]
struct UserLog {
    told: Vec<Told>,
    asked: Vec<(usize, u64)>,
    not_started: u64,
    latencies: Latencies,
    failure: Option<String>,
    /// The logs of draws made at once.
    parts: Vec<UserLog>,
}

impl Draws {
    /// One draw of `user_id` through instance `instance`, drawn again while "not started" and, a few times,
    /// after an inner error.
    async fn draw(&self, instance: usize, user_id: i64, log: &mut UserLog) {
        let Some(lottery) = self.instances.get(instance) else {
            log.failure = Some(format!("no instance {instance}"));
            return;
        };
        let mut inner_errors = 0;
        loop {
            let outcome = {
                let Ok(_permit) = self.in_flight.acquire().await else {
                    log.failure = Some("the crowd's draw limit closed".into());
                    return;
                };
                // The draw's own time, not its wait for a place among the draws in flight.
                let started = Instant::now();
                let outcome = lottery.draw(self.campaign_id, user_id).await;
                log.latencies.record(started.elapsed());
                outcome
            };
            log.asked.push((instance, 1));
            let outcome = match outcome {
                Ok(outcome) => outcome,
                Err(error) => {
                    log.failure = Some(format!("user {user_id}: {error}"));
                    return;
                }
            };
            let again = match &outcome {
                DrawOutcome::NotStarted => self.opens.elapsed() < NOT_STARTED_LIMIT,
                DrawOutcome::InnerError(error) => {
                    inner_errors += 1;
                    tracing::warn!(user_id, %error.detail, "a draw failed; drawing again");
                    inner_errors < INNER_ERROR_DRAWS
                }
                _ => false,
            };
            if !again {
                log.told.push(Told { user_id, outcome, at: self.opens.elapsed() });
                return;
            }
            if outcome == DrawOutcome::NotStarted {
                log.not_started += 1;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn progress_bar(users: u64, prefix: &'static str) -> ProgressBar {
    let progress = if std::io::stderr().is_terminal() { ProgressBar::new(users) } else { ProgressBar::hidden() };
    progress.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} users {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress.set_prefix(prefix);
    progress
}

/// The rush: users `1..=users` draw at the opening through `instances` (indexes of `draws.instances`) in turn;
/// every fifth draws twice at once, through that one and the next.
pub(super) async fn rush(draws: &Draws, instances: usize, users: u32) -> CrowdReport {
    let instances = instances.max(1);
    let progress = progress_bar(u64::from(users), "lottery");
    let tasks: Vec<_> = (1..=i64::from(users))
        .map(|user_id| {
            let (draws, progress) = (draws.clone(), progress.clone());
            tokio::spawn(async move {
                let jitter = Duration::from_millis(user_id.unsigned_abs() % 100);
                tokio::time::sleep_until(tokio::time::Instant::from_std(draws.opens + jitter)).await;
                let mut log = UserLog::default();
                let first = usize::try_from(user_id).unwrap_or(0) % instances;
                if user_id % 5 == 0 {
                    let (mut one, mut other) = (UserLog::default(), UserLog::default());
                    tokio::join!(
                        draws.draw(first, user_id, &mut one),
                        draws.draw((first + 1) % instances, user_id, &mut other)
                    );
                    log.parts = vec![one, other];
                } else {
                    draws.draw(first, user_id, &mut log).await;
                }
                progress.inc(1);
                log
            })
        })
        .collect();
    let mut report = CrowdReport { asked: vec![0; draws.instances.len()], ..CrowdReport::default() };
    for task in tasks {
        match task.await {
            Ok(log) => report.absorb(log),
            Err(error) => report.failures.push(format!("a user's task failed: {error}")),
        }
    }
    progress.finish_and_clear();
    report.rush_seconds = draws.opens.elapsed().as_secs_f64().max(0.001);
    report
}

/// The late wave: every tenth of users `1..=users` comes back through instance `instance`, the first alone (so
/// that whatever the instance learns, it learns from that draw), then the rest at once.
pub(super) async fn late_wave(draws: &Draws, instance: usize, users: u32, report: &mut CrowdReport) {
    let mut comers = (1..=i64::from(users)).filter(|user_id| user_id % 10 == 3);
    let Some(first) = comers.next() else { return };
    let mut log = UserLog::default();
    draws.draw(instance, first, &mut log).await;
    report.absorb(log);
    let tasks: Vec<_> = comers
        .map(|user_id| {
            let draws = draws.clone();
            tokio::spawn(async move {
                let mut log = UserLog::default();
                draws.draw(instance, user_id, &mut log).await;
                log
            })
        })
        .collect();
    for task in tasks {
        match task.await {
            Ok(log) => report.absorb(log),
            Err(error) => report.failures.push(format!("a late user's task failed: {error}")),
        }
    }
}
