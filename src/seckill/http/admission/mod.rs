//! Admission on the execution endpoint: token buckets per buyer and per item, so one client cannot flood an
//! item and one item cannot flood the database.
//!
//! The buyer's bucket is charged only after the signature checks out. In HMAC mode the signature binds the
//! buyer, so nobody can drain a victim's bucket with a forged cookie; in classic mode it does not, and a client
//! can spend anyone's bucket by naming their phone.
//!
//! Limits are per process, except the buyer's with a shared limit ([`super::SeckillHttp::shared_buyer_limit`]):
//! then one atomic Redis script holds it across every instance ([`shared_limit`]), and this process's
//! bucket takes over whenever Redis fails, so nobody is refused because Redis is down. The item's limit stays
//! per process: it protects this process's share of the database, which the lanes already bound.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod rate;
pub mod shared_limit;

pub use rate::Rate;
use shared_limit::SharedBuyerLimit;

use crate::seckill::Phone;

/// Which limits apply; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdmissionConfig {
    /// Per buyer (phone), across items. Default: 5/s, bursts of 10.
    pub per_user: Option<Rate>,
    /// Per item. Default: unlimited (the lanes already bound the database's load per item).
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
}

/// Buckets by key, in two generations so that forgetting idle ones costs nothing per call.
///
/// A bucket untouched for `burst / per_second` seconds (the period) is full again, so forgetting it is exact:
/// a new bucket starts full. Every period, `current` becomes `previous` and the old `previous` is dropped; a
/// bucket found in `previous` moves back into `current`. A dropped bucket was last touched before the rotation
/// before, a period or more ago, so it was full. Memory stays bounded by the keys seen in the last two
/// periods, and each call does one or two map lookups however many keys there are.
#[derive(Debug)]
struct Buckets<K> {
    rate: Rate,
    /// `None` when the bucket never refills (a rate of zero): nothing may be forgotten then.
    period: Option<Duration>,
    current: HashMap<K, Bucket>,
    previous: HashMap<K, Bucket>,
    /// When `current` was started; `None` before the first call.
    rotated_at: Option<Instant>,
}

impl<K: Hash + Eq> Buckets<K> {
    fn new(rate: Rate) -> Self {
        // A millisecond over the exact refill time, so that rounding never forgets a bucket an ulp short of full.
        let period = Duration::try_from_secs_f64(rate.burst / rate.per_second)
            .ok()
            .and_then(|period| period.checked_add(Duration::from_millis(1)));
        Buckets { rate, period, current: HashMap::new(), previous: HashMap::new(), rotated_at: None }
    }

    /// Takes a token from `key`'s bucket if it has one. Also returns what a rotation let go of, for the caller
    /// to drop once it has released the lock.
    fn take(&mut self, key: K, now: Instant) -> (bool, Option<HashMap<K, Bucket>>) {
        let forgotten = self.rotate(now);
        let rate = self.rate;
        let bucket = match self.current.entry(key) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let bucket = self.previous.remove(entry.key()).unwrap_or(Bucket { tokens: rate.burst, at: now });
                entry.insert(bucket)
            }
        };
        (bucket.take(rate, now), forgotten)
    }

    fn rotate(&mut self, now: Instant) -> Option<HashMap<K, Bucket>> {
        let Some(rotated_at) = self.rotated_at else {
            self.rotated_at = Some(now);
            return None;
        };
        let period = self.period?;
        let idle = now.saturating_duration_since(rotated_at);
        if idle < period {
            return None;
        }
        self.rotated_at = Some(now);
        let current = std::mem::take(&mut self.current);
        if idle >= period.saturating_mul(2) {
            // Nothing was touched for a whole period: every bucket in both generations is full.
            self.previous.clear();
            Some(current)
        } else {
            Some(std::mem::replace(&mut self.previous, current))
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

/// The buckets per buyer and per item, as configured.
#[derive(Debug)]
pub(crate) struct Admission {
    users: Option<Mutex<Buckets<Phone>>>,
    items: Option<Mutex<Buckets<i64>>>,
    /// The buyer's limit across instances, when shared; `users` is its fallback.
    shared_users: Option<SharedBuyerLimit>,
}

/// Takes a token from `key`'s bucket, holding the lock only for the lookup.
fn take<K: Hash + Eq>(buckets: &Mutex<Buckets<K>>, key: K, now: Instant) -> bool {
    let (taken, forgotten) = buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take(key, now);
    // Dropped here, after the lock: other callers do not wait for a generation to be freed.
    drop(forgotten);
    taken
}

impl Admission {
    pub(crate) fn new(config: AdmissionConfig) -> Self {
        Admission {
            users: config.per_user.map(|rate| Mutex::new(Buckets::new(rate))),
            items: config.per_item.map(|rate| Mutex::new(Buckets::new(rate))),
            shared_users: None,
        }
    }

    /// The same limits, the buyer's held across instances through `shared` when there is a buyer limit.
    pub(crate) fn shared(config: AdmissionConfig, shared: impl FnOnce(Rate) -> Option<SharedBuyerLimit>) -> Self {
        Admission { shared_users: config.per_user.and_then(shared), ..Admission::new(config) }
    }

    /// Admits one execution, or says which limit refused it. Charges the item first, so that a buyer's token is
    /// not spent on a request the item refuses. The buyer's shared limit is asked in Redis; if Redis fails,
    /// this process's bucket decides.
    pub(crate) async fn admit(&self, seckill_id: i64, phone: Phone) -> Result<(), Refusal> {
        let Some(shared) = &self.shared_users else { return self.admit_at(seckill_id, phone, Instant::now()) };
        if let Some(items) = &self.items
            && !take(items, seckill_id, Instant::now())
        {
            return Err(Refusal::Item);
        }
        let admitted = match shared.take(phone).await {
            Ok(admitted) => admitted,
            Err(_) => self.users.as_ref().is_none_or(|users| take(users, phone, Instant::now())),
        };
        if admitted { Ok(()) } else { Err(Refusal::User) }
    }

    /// [`Self::admit`] at a given time, which must not go backwards between calls.
    pub(crate) fn admit_at(&self, seckill_id: i64, phone: Phone, now: Instant) -> Result<(), Refusal> {
        if let Some(items) = &self.items
            && !take(items, seckill_id, now)
        {
            return Err(Refusal::Item);
        }
        if let Some(users) = &self.users
            && !take(users, phone, now)
        {
            return Err(Refusal::User);
        }
        Ok(())
    }

    /// How many buyers' buckets are held, in both generations.
    #[cfg(test)]
    fn user_buckets(&self) -> usize {
        self.users.as_ref().map_or(0, |users| users.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buyer(n: i64) -> Phone {
        Phone::new(13_000_000_000 + n).unwrap()
    }

    fn per_user(rate: Rate) -> Admission {
        Admission::new(AdmissionConfig { per_user: Some(rate), per_item: None })
    }

    fn admitted(admission: &Admission, phone: Phone, now: Instant, tries: usize) -> usize {
        (0..tries).filter(|_| admission.admit_at(1, phone, now).is_ok()).count()
    }

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

    #[test]
    fn a_buyer_who_used_the_burst_just_before_a_rotation_is_still_limited_after_it() {
        // Refills in 10 s: the generations rotate every 10.001 s.
        let admission = per_user(Rate::new(1.0, 10.0));
        let start = Instant::now();
        let (drained, idle) = (buyer(1), buyer(2));
        assert_eq!(admitted(&admission, idle, start, 10), 10, "the first call starts the generations");
        let before = start + Duration::from_millis(9_990);
        assert_eq!(admitted(&admission, drained, before, 11), 10);

        let after = start + Duration::from_millis(10_010);
        assert_eq!(admission.admit_at(1, drained, after), Err(Refusal::User), "still empty after the rotation");
        assert_eq!(admission.user_buckets(), 2, "the idle buyer is kept in the previous generation");
        // 3.5 s after draining, 3.5 tokens, as if no rotation had happened.
        assert_eq!(admitted(&admission, drained, before + Duration::from_millis(3_500), 10), 3);
        // The idle buyer drained at `start` and was untouched since: kept across one rotation, with its refill.
        assert_eq!(admitted(&admission, idle, start + Duration::from_millis(15_000), 10), 10);

        // Untouched for two rotations: forgotten, and full when seen again, as its bucket would be.
        let much_later = start + Duration::from_secs(40);
        assert_eq!(admitted(&admission, buyer(3), much_later, 1), 1);
        assert_eq!(admission.user_buckets(), 1, "both idle generations forgotten");
        assert_eq!(admitted(&admission, drained, much_later, 11), 10);
    }

    #[test]
    fn memory_stays_bounded_by_the_buyers_of_the_last_two_periods() {
        // Refills in 1 s (a period of 1.001 s); a new buyer every 100 µs, so about 10,010 per period.
        let admission = per_user(Rate::new(10.0, 10.0));
        let start = Instant::now();
        let step = Duration::from_micros(100);
        let per_period = 10_010;
        for n in 0..300_000 {
            let now = start + step * u32::try_from(n).unwrap();
            assert!(admission.admit_at(1, buyer(n), now).is_ok());
            let held = admission.user_buckets();
            assert!(held <= 2 * per_period + 2, "{held} buckets held after {n} buyers");
        }
    }

    #[test]
    fn a_call_costs_the_same_however_many_buyers_are_held() {
        // Refills in 10,000 s: no bucket is ever full, so none may be forgotten and all 300k are held. Each call
        // must still be a lookup, not a scan: 300k calls take well under a second, a scan per call hours.
        let admission = per_user(Rate::new(0.001, 10.0));
        let start = Instant::now();
        let budget = Duration::from_secs(20);
        for n in 0..300_000 {
            let now = start + Duration::from_millis(u64::try_from(n).unwrap());
            assert!(admission.admit_at(1, buyer(n), now).is_ok());
            if n % 1_000 == 0 {
                assert!(start.elapsed() < budget, "{:?} for the first {n} buyers", start.elapsed());
            }
        }
        assert_eq!(admission.user_buckets(), 300_000, "none was full, so none was forgotten");
        assert!(start.elapsed() < budget, "{:?} for 300k buyers", start.elapsed());
    }
}
