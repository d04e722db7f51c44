//! The random numbers draws are decided with, drawn in Rust and passed to the procedure.
//!
//! `r = splitmix64(seed ^ mix(campaign_id, user_id, draw_no))`, the high 32 bits: a number in [0, 2^32) that
//! depends only on the seed and the draw, never on arrival order or on which instance took the request. So a
//! campaign replayed with the same seed and the same users decides the same wins (drawn one at a time, so that
//! the stock each draw meets is the same too). The seed is random per process unless configured; a seed that is
//! known makes draws predictable, so production keeps it random or secret.

use std::fmt;

/// The seed of a process's draws.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Seed(pub u64);

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Shown in logs, a seed would make the draws predictable.
        f.write_str("Seed(..)")
    }
}

impl Seed {
    /// A seed from the operating system's entropy (through std's randomly keyed hasher) and the clock.
    pub fn random() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        hasher.write_u128(nanos);
        hasher.write_u32(std::process::id());
        Seed(splitmix64(hasher.finish()))
    }
}

/// Draws `r` for each draw from a seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Randomness {
    seed: Seed,
}

impl Randomness {
    /// Draws from `seed`.
    pub fn new(seed: Seed) -> Self {
        Randomness { seed }
    }

    /// Draws from a random seed.
    pub fn random() -> Self {
        Randomness::new(Seed::random())
    }

    /// The number in [0, 2^32) that decides `user_id`'s draw number `draw_no` in `campaign_id`.
    pub fn r(&self, campaign_id: i64, user_id: i64, draw_no: u32) -> u32 {
        let high = splitmix64(self.seed.0 ^ mix(campaign_id, user_id, draw_no)) >> 32;
        u32::try_from(high).unwrap_or(u32::MAX)
    }
}

/// One draw's identity, spread over 64 bits.
fn mix(campaign_id: i64, user_id: i64, draw_no: u32) -> u64 {
    // Two's complement reinterpretation: ids are positive, and any bit pattern mixes the same way.
    let campaign = splitmix64(campaign_id as u64);
    let user = splitmix64(campaign ^ user_id as u64);
    splitmix64(user ^ u64::from(draw_no))
}

/// Sebastiano Vigna's splitmix64 finaliser: every input bit affects every output bit.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference() {
        // The first outputs of Vigna's splitmix64 generator seeded with 0 (state advanced by the golden gamma).
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(0x9E37_79B9_7F4A_7C15), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn the_same_seed_and_draw_give_the_same_number_and_others_differ() {
        let a = Randomness::new(Seed(42));
        assert_eq!(a.r(1, 7, 1), Randomness::new(Seed(42)).r(1, 7, 1));
        assert_ne!(a.r(1, 7, 1), Randomness::new(Seed(43)).r(1, 7, 1));
        assert_ne!(a.r(1, 7, 1), a.r(1, 8, 1));
        assert_ne!(a.r(1, 7, 1), a.r(2, 7, 1));
        assert_ne!(a.r(1, 7, 1), a.r(1, 7, 2));
        assert_eq!(format!("{:?}", Seed(42)), "Seed(..)");
    }

    #[test]
    fn numbers_spread_over_the_whole_range() {
        let randomness = Randomness::new(Seed(1));
        let mut quarters = [0u32; 4];
        for user in 1..=4000 {
            quarters[(randomness.r(1, user, 1) >> 30) as usize] += 1;
        }
        assert!(quarters.iter().all(|&n| (800..1200).contains(&n)), "{quarters:?}");
    }
}
