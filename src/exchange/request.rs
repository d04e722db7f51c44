//! What a client asks for: a user's exchange under the client's own request id, the key that makes a retry safe.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// The longest request id the schema holds (`VARCHAR(64)`).
pub const MAX_REQUEST_ID_CHARS: usize = 64;

/// A client's id for one exchange: 1 to 64 characters of `A-Z a-z 0-9 . _ : -`, compared exactly (`r-1` and
/// `R-1` are two requests). A client sends a new id for each exchange it means and the same id again when it
/// retries one: the database answers a known (user, request id) with its first answer and does nothing again.
///
/// The narrow alphabet is also what lets a batch travel as a JSON literal inside one text-protocol CALL: no
/// request id can hold a quote or a backslash.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(String);

/// A request id outside the allowed form.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid request id {shown:?}: expected 1 to 64 characters of A-Z a-z 0-9 . _ : -")]
pub struct InvalidRequestId {
    /// The start of what was given, for the message.
    shown: String,
}

impl RequestId {
    /// Checks `text` and wraps it.
    ///
    /// # Errors
    /// [`InvalidRequestId`] when it is empty, longer than 64 characters, or has a character outside the set.
    pub fn new(text: impl Into<String>) -> Result<Self, InvalidRequestId> {
        let text = text.into();
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
        if text.is_empty() || text.len() > MAX_REQUEST_ID_CHARS || !text.chars().all(allowed) {
            return Err(InvalidRequestId { shown: text.chars().take(MAX_REQUEST_ID_CHARS + 1).collect() });
        }
        Ok(RequestId(text))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for RequestId {
    type Err = InvalidRequestId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        RequestId::new(text)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One exchange request as a gift's lane queues it: the lanes remember decided requests by this value, so a
/// retry of the same (user, request id) is recognised in memory too.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ExchangeRequest {
    pub(crate) user_id: i64,
    pub(crate) request_id: RequestId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_short_and_plain() {
        for good in ["r-1", "a", "order:2026.11.11_0001", &"x".repeat(64)] {
            assert_eq!(RequestId::new(good).unwrap().as_str(), good);
        }
        for bad in ["", " r", "r 1", "r'1", "r\"1", "r\\1", "é", "r/1", &"x".repeat(65)] {
            let error = RequestId::new(bad).unwrap_err();
            assert!(error.to_string().starts_with("invalid request id"), "{error}");
        }
    }

    #[test]
    fn request_ids_compare_exactly() {
        assert_ne!(RequestId::new("r-1").unwrap(), RequestId::new("R-1").unwrap());
    }
}
