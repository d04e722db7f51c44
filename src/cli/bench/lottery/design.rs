//! What the two lottery designs the bench compares have in common: a draw for a user, what it was told, and how
//! many calls the design sent to its store.

use crate::cli::bench::error::BenchError;

/// What a caller was told by one draw, in either design.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Told {
    Won,
    NoPrize,
    AllDrawn,
    Repeat,
    /// Anything else a design may answer (not started, ended...), by name.
    Other(&'static str),
    Error(String),
}

/// A lottery design the crowd draws from.
pub(super) trait Design: Send + Sync + 'static {
    /// Draws for `user_id`; `caller` numbers the caller (a design may spread callers over connections).
    fn draw(&self, caller: usize, user_id: i64) -> impl Future<Output = Told> + Send;

    /// Calls this design has sent to its store so far, as it counts them: the durable draw's lanes count
    /// their batches (one round trip each, this process only), Redis the draw scripts it ran.
    fn store_calls(&self) -> impl Future<Output = Result<u64, BenchError>> + Send;
}
