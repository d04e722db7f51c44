//! The `Idempotency-Key` convention, shared by every API of the crate that changes something on a client's
//! request (the points exchange's) and by every call it makes to another service (the lottery's gift deliveries):
//! the client makes a new key for each change it means and sends the same key again with every retry, and the
//! server answers a key it knows with its first outcome, doing nothing twice.

/// The header that carries a request's key.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// The header a server may set on a 2xx for a key it had already seen (the convention of payment APIs).
pub const IDEMPOTENT_REPLAYED: &str = "Idempotent-Replayed";
