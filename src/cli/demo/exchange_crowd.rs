//! The exchange act's crowd: users exchanging points for gifts through the real HTTP API, each signed in by the
//! `exchangeUser` cookie, and what they were told.
//!
//! Every user wants the hot gift, then one of the others. Every fourth sends its hot-gift request a second time
//! with the same `Idempotency-Key` once the first answer is in (a client that lost the answer); every eighth
//! double-clicks its second exchange (two sends at once, one key). Every answer of a key must be the same
//! outcome and exchange: the first is decided, the rest are its repeats. A 503 is sent again with the same key,
//! as the API asks, a bounded number of times.

use crate::cli::latencies::Latencies;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use indicatif::{ProgressBar, ProgressStyle};
use seckill::exchange::Gift;
use seckill::exchange::http::{IDEMPOTENCY_KEY, SignedUserCookie, USER_COOKIE};
use tokio::sync::Semaphore;

use super::super::http_client::ApiClient;

/// Sends of one request that answered 503 before the crowd gives up on it (it is then undecided).
const MAX_SENDS: u32 = 20;

/// One user of the crowd.
#[derive(Debug, Clone, Copy)]
pub(super) struct CrowdUser {
    pub(super) user_id: i64,
    /// Points granted.
    pub(super) granted: i64,
}

/// A decided answer: `outcome` as the API names it, the exchange for `exchanged`, and whether it was a repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Answer {
    pub(super) outcome: String,
    pub(super) exchange_id: Option<i64>,
    pub(super) repeat: bool,
}

/// One exchange a user meant: one key, sent once or more.
#[derive(Debug, Clone)]
pub(super) struct Attempt {
    pub(super) user_id: i64,
    pub(super) gift_id: i64,
    /// The decided answers, in the order they came.
    pub(super) answers: Vec<Answer>,
    /// Sends of this key beyond the ones that decided (503s, sent again).
    pub(super) unavailable: u32,
    /// Sends of this key that gave up after [`MAX_SENDS`] 503s: the exchange may or may not have happened.
    pub(super) undecided: u32,
}

impl Attempt {
    /// The first decided answer, if any.
    pub(super) fn first(&self) -> Option<&Answer> {
        self.answers.first()
    }

    /// Every decided answer is the same outcome and the same exchange.
    pub(super) fn consistent(&self) -> bool {
        self.answers
            .windows(2)
            .all(|pair| pair[0].outcome == pair[1].outcome && pair[0].exchange_id == pair[1].exchange_id)
    }

    /// The crowd was told this exchange went through.
    pub(super) fn exchanged(&self) -> bool {
        self.first().is_some_and(|answer| answer.outcome == "exchanged")
    }
}

/// What the crowd did and was told.
#[derive(Debug, Default)]
pub(super) struct CrowdReport {
    pub(super) attempts: Vec<Attempt>,
    /// Answers that are not part of the API's contract (a 4xx, a 500, not JSON): each is a failure of the act.
    pub(super) unexpected: Vec<String>,
    /// HTTP requests sent.
    pub(super) requests: u64,
    pub(super) latencies: Latencies,
    pub(super) seconds: f64,
}

impl CrowdReport {
    /// Attempts whose first answer was `outcome`.
    pub(super) fn count(&self, outcome: &str) -> usize {
        self.attempts.iter().filter(|a| a.first().is_some_and(|answer| answer.outcome == outcome)).count()
    }

    /// Sends answered again with their key's first outcome (a repeat, or the same answer from memory).
    pub(super) fn resends_answered(&self) -> usize {
        self.attempts.iter().map(|attempt| attempt.answers.len().saturating_sub(1)).sum()
    }
}

/// The crowd: `users` exchange `hot` and then one of `others` each, at most `concurrency` requests at once.
pub(super) async fn run(
    client: &ApiClient,
    cookie: &SignedUserCookie,
    users: &[CrowdUser],
    hot: &Gift,
    others: &[Gift],
    concurrency: u32,
) -> CrowdReport {
    let progress =
        if std::io::stderr().is_terminal() { ProgressBar::new(users.len() as u64) } else { ProgressBar::hidden() };
    progress.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} users {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress.set_prefix("exchange");
    let in_flight = Arc::new(Semaphore::new(concurrency as usize));
    let started = Instant::now();
    let tasks: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(n, user)| {
            let second = others.get(n % others.len().max(1)).map_or(hot.gift_id, |gift| gift.gift_id);
            let signed_in = format!("{USER_COOKIE}={}", cookie.cookie_value(user.user_id));
            let (client, in_flight, progress, user, hot) =
                (client.clone(), in_flight.clone(), progress.clone(), *user, hot.gift_id);
            tokio::spawn(async move {
                let user = Exchanger { client, in_flight, signed_in, user_id: user.user_id };
                let hot_sends = if n % 4 == 1 { Sends::OneAfterAnother } else { Sends::Once };
                let second_sends = if n % 8 == 3 { Sends::AtOnce } else { Sends::Once };
                let mut log = SendLog::default();
                let attempts = vec![
                    user.exchange(hot, &format!("demo-{}-hot", user.user_id), hot_sends, &mut log).await,
                    user.exchange(second, &format!("demo-{}-second", user.user_id), second_sends, &mut log).await,
                ];
                progress.inc(1);
                (attempts, log)
            })
        })
        .collect();
    let mut report = CrowdReport::default();
    for task in tasks {
        match task.await {
            Ok((attempts, log)) => {
                report.attempts.extend(attempts);
                report.unexpected.extend(log.unexpected);
                report.requests += log.requests;
                report.latencies.merge(log.latencies);
            }
            Err(error) => report.unexpected.push(format!("a user's task failed: {error}")),
        }
    }
    progress.finish_and_clear();
    report.seconds = started.elapsed().as_secs_f64().max(0.001);
    report
}

/// How a key is sent.
#[derive(Debug, Clone, Copy)]
enum Sends {
    Once,
    /// Again with the same key after the first answer.
    OneAfterAnother,
    /// Twice at once with the same key.
    AtOnce,
}

/// What one user's sends came to, besides the decided answers.
#[derive(Debug, Default)]
struct SendLog {
    unexpected: Vec<String>,
    requests: u64,
    latencies: Latencies,
}

/// One send's end: decided, or given up after [`MAX_SENDS`] 503s, with the 503s it met.
struct Sent {
    answer: Option<Answer>,
    unavailable: u32,
}

struct Exchanger {
    client: ApiClient,
    in_flight: Arc<Semaphore>,
    signed_in: String,
    user_id: i64,
}

impl Exchanger {
    async fn exchange(&self, gift_id: i64, key: &str, sends: Sends, log: &mut SendLog) -> Attempt {
        let mut attempt = Attempt { user_id: self.user_id, gift_id, answers: Vec::new(), unavailable: 0, undecided: 0 };
        let sent = match sends {
            Sends::Once => vec![self.send(gift_id, key, log).await],
            Sends::OneAfterAnother => {
                let first = self.send(gift_id, key, log).await;
                vec![first, self.send(gift_id, key, log).await]
            }
            Sends::AtOnce => {
                let (mut one, mut other) = (SendLog::default(), SendLog::default());
                let (a, b) = tokio::join!(self.send(gift_id, key, &mut one), self.send(gift_id, key, &mut other));
                for part in [one, other] {
                    log.unexpected.extend(part.unexpected);
                    log.requests += part.requests;
                    log.latencies.merge(part.latencies);
                }
                vec![a, b]
            }
        };
        for sent in sent {
            attempt.unavailable += sent.unavailable;
            match sent.answer {
                Some(answer) => attempt.answers.push(answer),
                None => attempt.undecided += 1,
            }
        }
        attempt
    }

    /// Sends until decided: a 503 (nothing decided, or in doubt) is sent again with the same key.
    async fn send(&self, gift_id: i64, key: &str, log: &mut SendLog) -> Sent {
        let path = format!("/exchange/gifts/{gift_id}/exchange");
        let mut unavailable = 0;
        for send in 0..MAX_SENDS {
            if send > 0 {
                tokio::time::sleep(Duration::from_millis(20 * u64::from(send))).await;
            }
            let started = Instant::now();
            let answer = {
                let Ok(_permit) = self.in_flight.acquire().await else {
                    log.unexpected.push("the crowd's request limit closed".into());
                    return Sent { answer: None, unavailable };
                };
                self.client.request(Method::POST, &path, Some(&self.signed_in), &[(IDEMPOTENCY_KEY, key)]).await
            };
            log.requests += 1;
            log.latencies.record(started.elapsed());
            match answer {
                Ok((StatusCode::OK, body)) if body["success"].as_bool() == Some(true) => {
                    let data = &body["data"];
                    let Some(outcome) = data["outcome"].as_str() else {
                        log.unexpected.push(format!("200 without an outcome: {body}"));
                        return Sent { answer: None, unavailable };
                    };
                    let answer = Answer {
                        outcome: outcome.to_string(),
                        exchange_id: data["exchangeId"].as_i64(),
                        repeat: data["repeat"].as_bool() == Some(true),
                    };
                    return Sent { answer: Some(answer), unavailable };
                }
                Ok((StatusCode::SERVICE_UNAVAILABLE, _)) => unavailable += 1,
                Ok((status, body)) => {
                    log.unexpected.push(format!("{status} {body}"));
                    return Sent { answer: None, unavailable };
                }
                // The answer was lost on the way: as for a 503, the same key again is safe.
                Err(error) => {
                    tracing::warn!(%error, key, "exchange request failed; sending it again");
                    unavailable += 1;
                }
            }
        }
        Sent { answer: None, unavailable }
    }
}
