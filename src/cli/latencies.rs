//! Latencies as the bench and the demo report them: recorded per request, summed up as percentiles.

/// Latencies in microseconds, in a fixed-size log-linear histogram (about 3% precision), so that millions of
/// samples cost a few kilobytes rather than the memory the bench is supposed to measure.
#[derive(Debug)]
pub(crate) struct Latencies {
    counts: Vec<u64>,
    total: u64,
    max_micros: u64,
}

/// Sub-buckets per power of two.
const SUB_BUCKETS: u64 = 32;

impl Default for Latencies {
    fn default() -> Self {
        Latencies { counts: vec![0; (64 * SUB_BUCKETS) as usize], total: 0, max_micros: 0 }
    }
}

fn bucket_of(micros: u64) -> usize {
    if micros < SUB_BUCKETS {
        return micros as usize;
    }
    let magnitude = 63 - u64::from(micros.leading_zeros()); // floor(log2)
    let shift = magnitude - SUB_BUCKETS.trailing_zeros() as u64;
    let sub = (micros >> shift) - SUB_BUCKETS; // 0..SUB_BUCKETS
    ((shift + 1) * SUB_BUCKETS + sub) as usize
}

fn lower_bound_of(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < SUB_BUCKETS {
        return bucket;
    }
    let shift = bucket / SUB_BUCKETS - 1;
    (SUB_BUCKETS + bucket % SUB_BUCKETS) << shift
}

impl Latencies {
    pub(crate) fn record(&mut self, elapsed: std::time::Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        if let Some(count) = self.counts.get_mut(bucket_of(micros)) {
            *count += 1;
        }
        self.total += 1;
        self.max_micros = self.max_micros.max(micros);
    }

    pub(crate) fn merge(&mut self, other: Latencies) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max_micros = self.max_micros.max(other.max_micros);
    }

    /// The latency at quantile `q` (0 to 1) in milliseconds, 0 when nothing was recorded.
    pub(crate) fn quantile_ms(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((self.total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return lower_bound_of(bucket).min(self.max_micros) as f64 / 1000.0;
            }
        }
        self.max_micros as f64 / 1000.0
    }

    /// p50, p99 and max in milliseconds (zeros when nothing was recorded).
    pub(crate) fn summary(&self) -> (f64, f64, f64) {
        (self.quantile_ms(0.50), self.quantile_ms(0.99), self.max_micros as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn percentiles_are_within_a_few_percent() {
        let mut latencies = Latencies::default();
        for micros in 1..=100_000u64 {
            latencies.record(Duration::from_micros(micros));
        }
        let (p50, p99, max) = latencies.summary();
        assert!((p50 - 50.0).abs() / 50.0 < 0.04, "{p50}");
        assert!((p99 - 99.0).abs() / 99.0 < 0.04, "{p99}");
        assert_eq!(max, 100.0);
        for micros in [0, 1, 31, 32, 33, 1000, 123_456_789] {
            assert!(lower_bound_of(bucket_of(micros)) <= micros, "{micros}");
        }
    }
}
