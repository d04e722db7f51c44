//! A rate: what the buyer's and the item's limits are made of, here and in the shared limit in Redis.

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
