//! A pacer for calls to a service that must not be flooded: the generic cell rate algorithm (GCRA), exact
//! and O(1), with a reservation per call.
//!
//! Each call reserves the next slot of a schedule spaced `1 / rate` apart and waits for it; up to `burst`
//! calls may run ahead of the schedule after a quiet spell. What it guarantees, whatever the timing of the
//! callers: in any interval of length `w`, at most `burst + w × rate` calls are let through (rounded down, plus
//! the one on the boundary). A caller that gives up while waiting (a shutdown) leaves its slot unused: the
//! rate can only come out lower, never higher.
//!
//! A service can also ask for a pause (its `Retry-After`): [`Pacer::hold_until`] gives no slot before then to
//! anyone. The schedule restarts from the end of the pause as if the calls had asked then, so the guarantee above
//! still holds: the pause cannot be made up for by a flood after it.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Calls per second, with a burst.
#[derive(Debug)]
pub struct Pacer {
    /// Time between two slots.
    interval: Duration,
    /// How far ahead of the schedule a call may go: `(burst - 1) × interval`.
    tolerance: Duration,
    schedule: Mutex<Schedule>,
}

#[derive(Debug, Default)]
struct Schedule {
    /// The theoretical arrival time of the next call (GCRA's TAT).
    next: Option<Instant>,
    /// No slot before this: a pause the service asked for.
    hold: Option<Instant>,
}

/// A rate that cannot pace anything.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("invalid rate {0} calls/s: expected a number > 0 and at most 1000000")]
pub struct InvalidRate(pub f64);

impl Pacer {
    /// `rate` calls per second, at most `burst` at once after a quiet spell (a burst of 0 counts as 1).
    ///
    /// # Errors
    /// [`InvalidRate`] unless `0 < rate <= 1_000_000`.
    pub fn new(rate: f64, burst: u32) -> Result<Self, InvalidRate> {
        if !(rate > 0.0 && rate <= 1_000_000.0) {
            return Err(InvalidRate(rate));
        }
        let interval = Duration::from_secs_f64(1.0 / rate);
        let tolerance = interval * burst.max(1).saturating_sub(1);
        Ok(Pacer { interval, tolerance, schedule: Mutex::new(Schedule::default()) })
    }

    /// The time between two calls at the configured rate.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Waits for this call's slot.
    pub async fn ready(&self) {
        let slot = self.reserve(Instant::now());
        tokio::time::sleep_until(slot).await;
    }

    /// Gives no slot before `until` (a later hold than one already set wins; an earlier one changes nothing).
    /// Calls already waiting for a slot before then wait until then too.
    pub fn hold_until(&self, until: Instant) {
        let mut schedule = self.schedule();
        schedule.hold = Some(schedule.hold.map_or(until, |hold| hold.max(until)));
    }

    fn schedule(&self) -> std::sync::MutexGuard<'_, Schedule> {
        // A poisoned lock only means another caller panicked between two assignments of an Instant: the
        // value is still one of them, and pacing goes on from it.
        self.schedule.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reserves the next slot for a call asking at `now`, and returns when it may go.
    fn reserve(&self, now: Instant) -> Instant {
        let mut schedule = self.schedule();
        // A call asking during a hold is scheduled as if it asked when the hold ends.
        let asked = schedule.hold.map_or(now, |hold| hold.max(now));
        let theoretical = schedule.next.map_or(asked, |next| next.max(asked));
        let allowed = theoretical.checked_sub(self.tolerance).map_or(asked, |at| at.max(asked));
        schedule.next = Some(theoretical + self.interval);
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slots handed out for `calls` callers asking at `now`, in order.
    fn slots(pacer: &Pacer, now: Instant, calls: usize) -> Vec<Instant> {
        (0..calls).map(|_| pacer.reserve(now)).collect()
    }

    #[test]
    fn a_crowd_at_once_gets_the_burst_then_one_slot_per_interval() {
        let pacer = Pacer::new(100.0, 5).unwrap();
        let now = Instant::now();
        let slots = slots(&pacer, now, 20);
        assert!(slots[..5].iter().all(|slot| *slot == now), "the burst goes at once");
        for (n, slot) in slots.iter().enumerate().skip(5) {
            assert_eq!(*slot - now, pacer.interval() * (n as u32 - 4), "slot {n}");
        }
    }

    #[test]
    fn no_window_holds_more_than_the_burst_plus_the_rate() {
        let (rate, burst) = (50.0, 3);
        let pacer = Pacer::new(rate, burst).unwrap();
        let start = Instant::now();
        // Callers asking at irregular times, some in clumps, some after quiet spells.
        let mut granted = Vec::new();
        for n in 0u64..400 {
            let asked = start + Duration::from_millis(n * 7 % 13 + n * 11 + if n > 200 { 3000 } else { 0 });
            granted.push(pacer.reserve(asked));
        }
        granted.sort();
        for window in [Duration::from_millis(10), Duration::from_millis(100), Duration::from_secs(1)] {
            let bound = f64::from(burst) + window.as_secs_f64() * rate + 1.0;
            for (i, first) in granted.iter().enumerate() {
                let within = granted[i..].iter().take_while(|slot| **slot - *first <= window).count();
                assert!(within as f64 <= bound, "{within} calls within {window:?} (bound {bound})");
            }
        }
    }

    #[test]
    fn a_hold_gives_no_slot_before_it_ends_and_no_flood_after() {
        let (rate, burst) = (50.0, 3);
        let pacer = Pacer::new(rate, burst).unwrap();
        let start = Instant::now();
        let mut granted = slots(&pacer, start, 10);
        let hold = start + Duration::from_secs(2);
        pacer.hold_until(hold);
        pacer.hold_until(start + Duration::from_secs(1)); // an earlier hold changes nothing
        let during = slots(&pacer, start + Duration::from_millis(500), 40);
        assert!(during.iter().all(|slot| *slot >= hold), "nobody goes before the hold ends");
        assert_eq!(during.iter().filter(|slot| **slot == hold).count(), burst as usize, "the burst at its end");
        granted.extend(during);
        granted.extend(slots(&pacer, hold + Duration::from_secs(3), 20));
        granted.sort();
        for window in [Duration::from_millis(10), Duration::from_millis(100), Duration::from_secs(1)] {
            let bound = f64::from(burst) + window.as_secs_f64() * rate + 1.0;
            for (i, first) in granted.iter().enumerate() {
                let within = granted[i..].iter().take_while(|slot| **slot - *first <= window).count();
                assert!(within as f64 <= bound, "{within} calls within {window:?} (bound {bound})");
            }
        }
    }

    #[test]
    fn rates_that_cannot_pace_are_refused() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY, 2e6] {
            assert!(Pacer::new(rate, 1).is_err(), "{rate}");
        }
    }
}
