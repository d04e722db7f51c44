//! An item's closed state shared through Redis: sold out or ended, learnt by the instance whose batch saw it and
//! used by every instance (and a load balancer) to answer without a database.
//!
//! ```text
//! SET seckill:item:{seckill_id}:state sold_out | ended     (no expiry; set by the instance whose batch learnt it)
//! seckill:item:{seckill_id}:generation                     (INCR by whoever reopens the item; instances only)
//! ```
//!
//! Any other value, or no key, means "ask the app". Sold out is not forever: [`super::Seckill::add_stock`]
//! deletes the state and increments the generation, so that a fact observed before the stock was added can
//! never be published after it (see [`crate::shared_state::closed`]). An instance trusts the state for
//! [`crate::shared_state::closed::RECHECK_INTERVAL`] (100 ms) before it asks Redis again, and a balancer that caches the
//! key as long may refuse for that long after stock is added. Stock added by SQL behind the toolkit's back must
//! also `INCR` the generation and `DEL` the state.
//!
//! While an item is closed here, every buyer hears the closed answer (state 0), its winners too: a winner's
//! record stays readable (`Seckill::kill_record`, `GET /seckill/{id}/result`). A balancer answers the same.

use super::outcome::Outcome;
use crate::shared_state::closed::ClosedFact;

/// What names items in a state key, after the app's prefix (`seckill:`): `seckill:item:{seckill_id}:state`.
pub const KEY_KIND: &str = "item:";

/// The default prefix of the state keys: `seckill:item:{seckill_id}:state`.
pub const DEFAULT_KEY_PREFIX: &str = "seckill:item:";

/// Who reads and writes the state, in Redis warnings.
pub(crate) const USER: &str = "seckill item state";

/// Why an item takes no more seckills for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemState {
    /// No stock left (until stock is added).
    SoldOut,
    /// The sale window has closed.
    Ended,
}

impl ItemState {
    /// The state an outcome shows the item in, if it is closed.
    pub fn of(outcome: &Outcome) -> Option<Self> {
        match outcome {
            Outcome::SoldOut => Some(ItemState::SoldOut),
            Outcome::Ended => Some(ItemState::Ended),
            _ => None,
        }
    }

    /// The answer every buyer gets while the item is in this state.
    pub fn outcome(self) -> Outcome {
        match self {
            ItemState::SoldOut => Outcome::SoldOut,
            ItemState::Ended => Outcome::Ended,
        }
    }
}

impl ClosedFact for ItemState {
    fn value(self) -> &'static str {
        match self {
            ItemState::SoldOut => "sold_out",
            ItemState::Ended => "ended",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        match value {
            "sold_out" => Some(ItemState::SoldOut),
            "ended" => Some(ItemState::Ended),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_back_from_their_values_and_nothing_else_closes_an_item() {
        for state in [ItemState::SoldOut, ItemState::Ended] {
            assert_eq!(ItemState::parse(state.value()), Some(state));
            assert_eq!(ItemState::of(&state.outcome()), Some(state));
        }
        for other in ["", "open", "SOLD_OUT", "all_drawn", "sold_out "] {
            assert_eq!(ItemState::parse(other), None, "{other:?}");
        }
    }
}
