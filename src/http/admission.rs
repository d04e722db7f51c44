//! Admission on the execution endpoint: token buckets per buyer and per item, so one client cannot flood an
//! item and one item cannot flood the database.
//!
//! The buyer's bucket is charged only after the signature checks out. In HMAC mode the signature binds the
//! buyer, so nobody can drain a victim's bucket with a forged cookie; in classic mode it does not, and a client
//! can spend anyone's bucket by naming their phone. Limits are per process: N servers admit N times the rate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::seckill::Phone;

/// A rate: a steady `per_second`, with bursts of up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

impl Rate {
    pub fn new(per_second: f64, burst: f64) -> Self {
        Rate { per_second: per_second.max(0.0), burst: burst.max(1.0) }
    }
}

/// Which limits apply; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdmissionConfig {
    /// Per buyer (phone), across items. Default: 5/s, bursts of 10.
    pub per_user: Option<Rate>,
    /// Per item. Default: unlimited (the executor already bounds the database's load per item).
    pub per_item: Option<Rate>,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig { per_user: Some(Rate::new(5.0, 10.0)), per_item: None }
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    User,
    Item,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Takes a token if there is one, refilling for the time since last time.
    fn take(&mut self, rate: Rate, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * rate.per_second;
        self.tokens = (self.tokens + refill).min(rate.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn is_full(&self, rate: Rate, now: Instant) -> bool {
        self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * rate.per_second >= rate.burst
    }
}

/// The buckets. Buyers' buckets that have refilled are forgotten when the table grows, so memory stays
/// bounded by the number of recently active buyers.
#[derive(Debug)]
pub(crate) struct Admission {
    config: AdmissionConfig,
    users: Mutex<HashMap<Phone, Bucket>>,
    items: Mutex<HashMap<i64, Bucket>>,
}

/// Past this many buyers' buckets, full ones are swept out.
const SWEEP_ABOVE: usize = 100_000;

impl Admission {
    pub(crate) fn new(config: AdmissionConfig) -> Self {
        Admission { config, users: Mutex::default(), items: Mutex::default() }
    }

    /// Admits one execution, or says which limit refused it. Charges the item first, so that a buyer's token is
    /// not spent on a request the item refuses.
    pub(crate) fn admit(&self, seckill_id: i64, phone: Phone) -> Result<(), Refusal> {
        let now = Instant::now();
        if let Some(rate) = self.config.per_item {
            let mut items = self.items.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let bucket = items.entry(seckill_id).or_insert(Bucket { tokens: rate.burst, at: now });
            if !bucket.take(rate, now) {
                return Err(Refusal::Item);
            }
        }
        if let Some(rate) = self.config.per_user {
            let mut users = self.users.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if users.len() > SWEEP_ABOVE {
                users.retain(|_, bucket| !bucket.is_full(rate, now));
            }
            let bucket = users.entry(phone).or_insert(Bucket { tokens: rate.burst, at: now });
            if !bucket.take(rate, now) {
                return Err(Refusal::User);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let rate = Rate::new(10.0, 3.0);
        let start = Instant::now();
        let mut bucket = Bucket { tokens: rate.burst, at: start };
        assert!((0..3).all(|_| bucket.take(rate, start)));
        assert!(!bucket.take(rate, start));
        assert!(bucket.take(rate, start + Duration::from_millis(110)), "one token back after 0.1 s");
        assert!(!bucket.take(rate, start + Duration::from_millis(120)));
    }
}
