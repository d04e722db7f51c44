//! What an exchange request came to.

pub use crate::database::call::InnerError;

/// The outcome of one exchange request.
///
/// `repeat` is true when the database had already decided this (user, request id), in an earlier call or
/// earlier in the same batch: the outcome is that first answer, and nothing was done again. A refusal stays a
/// refusal on every retry of its request id (points granted since do not change it): a client that wants to try
/// again sends a new request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeOutcome {
    /// The points were deducted and the gift's shipment requested; the rows are committed.
    Exchanged {
        /// The `credit_exchange` row, also the shipment message's business key.
        exchange_id: i64,
        /// The user's balance right after this exchange.
        balance_after: i64,
        repeat: bool,
    },
    /// The balance was below the gift's cost.
    NotEnoughPoints { repeat: bool },
    /// The gift had no stock left.
    OutOfStock { repeat: bool },
    /// The user has never been granted points (no balance).
    UnknownUser { repeat: bool },
    /// No gift has this id.
    UnknownGift { repeat: bool },
    /// The request id was first used for another gift, `first_gift_id`: a request id names one request, so
    /// this one is refused and nothing is done or recorded. A new exchange needs a new request id.
    KeyReused { first_gift_id: i64 },
    /// The request failed: rolled back (e.g. a lock wait timeout), or in doubt (e.g. a lost connection).
    InnerError(InnerError),
}

impl ExchangeOutcome {
    /// The inner error for a request that was never sent.
    pub fn not_sent(detail: impl ToString) -> Self {
        ExchangeOutcome::InnerError(InnerError { detail: detail.to_string(), unavailable: false, in_doubt: false })
    }

    /// The inner error for a request that may or may not have committed.
    pub fn in_doubt(detail: impl ToString) -> Self {
        ExchangeOutcome::InnerError(InnerError { detail: detail.to_string(), unavailable: false, in_doubt: true })
    }

    /// The outcome for the procedure's name of it (`exchanged` needs its id and balance, `key_reused` its first
    /// gift).
    pub(crate) fn decided(
        outcome: &str,
        repeat: bool,
        exchange_id: Option<i64>,
        balance_after: Option<i64>,
        first_gift_id: Option<i64>,
    ) -> Option<Self> {
        Some(match outcome {
            "key_reused" => ExchangeOutcome::KeyReused { first_gift_id: first_gift_id? },
            "exchanged" => {
                ExchangeOutcome::Exchanged { exchange_id: exchange_id?, balance_after: balance_after?, repeat }
            }
            "not_enough_points" => ExchangeOutcome::NotEnoughPoints { repeat },
            "out_of_stock" => ExchangeOutcome::OutOfStock { repeat },
            "unknown_user" => ExchangeOutcome::UnknownUser { repeat },
            "unknown_gift" => ExchangeOutcome::UnknownGift { repeat },
            _ => return None,
        })
    }

    /// A stable machine name: `exchanged`, `not_enough_points`, `out_of_stock`, `unknown_user`, `unknown_gift`,
    /// `key_reused`, `inner_error` (the procedure's names).
    pub fn reason(&self) -> &'static str {
        match self {
            ExchangeOutcome::Exchanged { .. } => "exchanged",
            ExchangeOutcome::NotEnoughPoints { .. } => "not_enough_points",
            ExchangeOutcome::OutOfStock { .. } => "out_of_stock",
            ExchangeOutcome::UnknownUser { .. } => "unknown_user",
            ExchangeOutcome::UnknownGift { .. } => "unknown_gift",
            ExchangeOutcome::KeyReused { .. } => "key_reused",
            ExchangeOutcome::InnerError(_) => "inner_error",
        }
    }

    /// True for [`ExchangeOutcome::Exchanged`], first time or repeat.
    pub fn is_exchanged(&self) -> bool {
        matches!(self, ExchangeOutcome::Exchanged { .. })
    }

    /// True when this is the first answer of an earlier decision of the same request id.
    pub fn is_repeat(&self) -> bool {
        match self {
            ExchangeOutcome::Exchanged { repeat, .. }
            | ExchangeOutcome::NotEnoughPoints { repeat }
            | ExchangeOutcome::OutOfStock { repeat }
            | ExchangeOutcome::UnknownUser { repeat }
            | ExchangeOutcome::UnknownGift { repeat } => *repeat,
            // The request id was used before: what is refused is its second use.
            ExchangeOutcome::KeyReused { .. } => true,
            ExchangeOutcome::InnerError(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_procedures_names_map_to_outcomes() {
        assert_eq!(ExchangeOutcome::decided("exchanged", false, None, Some(1), None), None, "needs its exchange id");
        assert_eq!(ExchangeOutcome::decided("key_reused", true, None, None, None), None, "needs its first gift");
        for name in ["exchanged", "not_enough_points", "out_of_stock", "unknown_user", "unknown_gift", "key_reused"] {
            let outcome = ExchangeOutcome::decided(name, true, Some(1), Some(0), Some(3)).unwrap();
            assert_eq!(outcome.reason(), name);
            assert!(outcome.is_repeat());
        }
        assert_eq!(ExchangeOutcome::decided("sold_out", false, None, None, None), None);
    }
}
