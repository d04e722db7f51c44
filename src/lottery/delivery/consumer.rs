//! The gift worker: a [`Handler`] of `lottery.prize` messages that asks the gift service to deliver each win,
//! never faster than its rate nor with more calls at once than its concurrency.
//!
//! Every call waits first for a permit (at most `concurrency` calls in flight), then for its slot in the
//! [`Pacer`] (at most `rate` calls a second, `burst` at once), and is bounded by `call_timeout`. A "not now"
//! (408, 429, a 5xx, a timeout or a connection error) is tried again within the same delivery, up to `attempts`
//! calls: after the service's `Retry-After` when it sent one (bounded by `max_retry_after`), for which the whole
//! worker pauses, since the service asked the caller, not the call, to wait; otherwise after a wait that doubles
//! each time (without holding a permit). A message still failing then is answered [`Handled::Later`]: the
//! message service sends it again later, however long that takes. A refusal (another 4xx) is poison at once.
//!
//! The effect happens once because every call for a draw carries the same `Idempotency-Key`: a retry, a
//! redelivery after a crash or a re-send of the relay is answered "already delivered" by the gift service.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::error::GiftDeliveryError;
use super::gift_client::{GiftAnswer, GiftClient};
use super::pacer::Pacer;
use crate::lottery::{PRIZE_TOPIC, PrizeMessage};
use crate::messaging::{ConsumerConfig, Handled, Handler, Incoming, Topology};

/// How the worker paces and retries its calls.
#[derive(Debug, Clone)]
pub struct GiftWorkerConfig {
    /// Calls per second to the gift service, retries included (default 100).
    pub rate: f64,
    /// Calls that may go at once after a quiet spell (default 1: evenly spaced).
    pub burst: u32,
    /// Calls in flight at once (default 8).
    pub concurrency: usize,
    /// The longest a call may take, answer included (default 5 s).
    pub call_timeout: Duration,
    /// Calls for one message within one delivery, the first included (default 4).
    pub attempts: u32,
    /// The wait before the first retry; doubled for each next one (default 100 ms).
    pub first_backoff: Duration,
    /// The longest wait between two retries (default 2 s).
    pub max_backoff: Duration,
    /// The longest pause a service's `Retry-After` may impose (default 60 s): a longer one is cut to this.
    pub max_retry_after: Duration,
}

impl Default for GiftWorkerConfig {
    fn default() -> Self {
        GiftWorkerConfig {
            rate: 100.0,
            burst: 1,
            concurrency: 8,
            call_timeout: Duration::from_secs(5),
            attempts: 4,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl GiftWorkerConfig {
    /// The wait after the `call`-th failed call of a delivery (1 for the first).
    fn backoff(&self, call: u32) -> Duration {
        let doubled = self.first_backoff.saturating_mul(1u32 << call.saturating_sub(1).min(20));
        doubled.min(self.max_backoff)
    }
}

/// What the worker has done, for tests, benchmarks and logs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct GiftStats {
    /// Messages the service answered "delivered" (a 2xx not marked replayed).
    pub delivered: u64,
    /// Messages the service answered "already delivered" (409, or a 2xx marked replayed): duplicates absorbed,
    /// whether they came from a redelivery, a re-send or a retry after a lost answer.
    pub duplicates: u64,
    /// Calls made again within a delivery after a "not now" (408, 429, 5xx, a timeout or a connection error).
    pub retries: u64,
    /// "Not now" answers that said when (`Retry-After`): the worker paused all its calls until then.
    pub throttled: u64,
    /// Messages still failing after their attempts, left for the message service to send again.
    pub failures: u64,
    /// Messages refused: a payload that is no prize, or a 4xx from the service (but 408, 409 and 429).
    pub poison: u64,
    /// Calls made to the gift service.
    pub calls: u64,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    duplicates: AtomicU64,
    retries: AtomicU64,
    throttled: AtomicU64,
    failures: AtomicU64,
    poison: AtomicU64,
    calls: AtomicU64,
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Delivers the wins of `lottery.prize` messages through the gift service.
#[derive(Debug, Clone)]
pub struct GiftWorker {
    client: GiftClient,
    pacer: Arc<Pacer>,
    permits: Arc<Semaphore>,
    config: GiftWorkerConfig,
    counters: Arc<Counters>,
}

impl GiftWorker {
    /// A worker calling the gift service at `gift_url`.
    ///
    /// # Errors
    /// An invalid URL, rate, concurrency (1..=10000), attempts (1..=100) or a zero call timeout.
    pub fn new(gift_url: &str, config: GiftWorkerConfig) -> Result<Self, GiftDeliveryError> {
        if !(1..=10_000).contains(&config.concurrency) {
            let why = format!("{} (expected 1 to 10000 calls at once)", config.concurrency);
            return Err(GiftDeliveryError::InvalidSetting { setting: "concurrency", why });
        }
        if !(1..=100).contains(&config.attempts) {
            let why = format!("{} (expected 1 to 100 calls per delivery)", config.attempts);
            return Err(GiftDeliveryError::InvalidSetting { setting: "attempts", why });
        }
        if config.call_timeout.is_zero() {
            return Err(GiftDeliveryError::InvalidSetting { setting: "call timeout", why: "zero".into() });
        }
        Ok(GiftWorker {
            client: GiftClient::new(gift_url, config.call_timeout)?,
            pacer: Arc::new(Pacer::new(config.rate, config.burst)?),
            permits: Arc::new(Semaphore::new(config.concurrency)),
            config,
            counters: Arc::default(),
        })
    }

    /// What it has done so far.
    pub fn stats(&self) -> GiftStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let counters = &self.counters;
        GiftStats {
            delivered: load(&counters.delivered),
            duplicates: load(&counters.duplicates),
            retries: load(&counters.retries),
            throttled: load(&counters.throttled),
            failures: load(&counters.failures),
            poison: load(&counters.poison),
            calls: load(&counters.calls),
        }
    }

    /// How it is configured.
    pub fn config(&self) -> &GiftWorkerConfig {
        &self.config
    }

    /// The consumer settings that suit this worker under `topology`: batches of a few rounds of its
    /// concurrency, so that a batch (which is called back only once all of it is done) ends quickly and a
    /// crash redelivers little; and several batches at once, so that the calls of the next batch go on while a
    /// batch waits for its last retry: the pacer, not a batch's straggler, sets the pace.
    pub fn consumer_config(&self, topology: Topology) -> ConsumerConfig {
        let batch = (self.config.concurrency * 4).clamp(16, 512);
        let batches_in_flight = 8;
        ConsumerConfig {
            topology,
            prefetch: u16::try_from(batch * batches_in_flight).unwrap_or(u16::MAX),
            batch,
            batches_in_flight,
            ..ConsumerConfig::new(PRIZE_TOPIC)
        }
    }

    /// One message's delivery, with its retries.
    async fn deliver(&self, message: &Incoming) -> Handled {
        let prize = match PrizeMessage::parse(&message.payload) {
            Ok(prize) => prize,
            Err(why) => {
                count(&self.counters.poison);
                return Handled::Poison(why);
            }
        };
        let mut call = 1;
        loop {
            let answer = {
                let Ok(_permit) = self.permits.acquire().await else {
                    // The semaphore is never closed; should it be, nothing was called.
                    return Handled::Later("the worker is stopping".into());
                };
                self.pacer.ready().await;
                count(&self.counters.calls);
                self.client.deliver(&prize).await
            };
            match answer {
                GiftAnswer::Delivered { replayed: false } => {
                    count(&self.counters.delivered);
                    return Handled::Done;
                }
                GiftAnswer::Delivered { replayed: true } => {
                    count(&self.counters.duplicates);
                    return Handled::Done;
                }
                GiftAnswer::Refused { status, detail } => {
                    count(&self.counters.poison);
                    return Handled::Poison(format!(
                        "the gift service refused draw {}: {status} {detail}",
                        prize.draw_id
                    ));
                }
                GiftAnswer::Unavailable { why, .. } if call >= self.config.attempts => {
                    count(&self.counters.failures);
                    return Handled::Later(format!("draw {} not delivered after {call} calls: {why}", prize.draw_id));
                }
                GiftAnswer::Unavailable { retry_after: Some(wait), .. } => {
                    count(&self.counters.retries);
                    count(&self.counters.throttled);
                    // No call of the worker's before then, this delivery's next one included: it waits for its
                    // slot in the pacer like any other.
                    let wait = wait.min(self.config.max_retry_after);
                    self.pacer.hold_until(tokio::time::Instant::now() + wait);
                    call += 1;
                }
                GiftAnswer::Unavailable { retry_after: None, .. } => {
                    count(&self.counters.retries);
                    tokio::time::sleep(self.config.backoff(call)).await;
                    call += 1;
                }
            }
        }
    }
}

impl Handler for GiftWorker {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Handled>, String> {
        // All of the batch at once: the permits and the pacer, not the batch, bound the calls.
        Ok(futures_util::future::join_all(batch.iter().map(|message| self.deliver(message))).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let config = GiftWorkerConfig::default();
        let waits: Vec<u128> = (1..=7).map(|call| config.backoff(call).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(config.backoff(u32::MAX), config.max_backoff);
    }

    #[test]
    fn settings_out_of_range_are_refused() {
        let url = "http://127.0.0.1:1/gifts";
        assert!(GiftWorker::new(url, GiftWorkerConfig::default()).is_ok());
        let cases = [
            GiftWorkerConfig { concurrency: 0, ..GiftWorkerConfig::default() },
            GiftWorkerConfig { attempts: 0, ..GiftWorkerConfig::default() },
            GiftWorkerConfig { rate: 0.0, ..GiftWorkerConfig::default() },
            GiftWorkerConfig { call_timeout: Duration::ZERO, ..GiftWorkerConfig::default() },
        ];
        for config in cases {
            assert!(GiftWorker::new(url, config.clone()).is_err(), "{config:?}");
        }
    }
}
