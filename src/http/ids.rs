//! Ids in a path, read the same way by every router: digits only, within `i64`, so that a malformed id is the
//! router's own JSON answer rather than axum's plain-text rejection.

use super::ApiError;

/// The longest id in decimal (`i64::MAX`).
const MAX_ID_DIGITS: usize = 19;

/// An id from a path segment: digits only, within `i64`. `Err` holds the segment shortened for an error
/// message.
pub(crate) fn parse_id(segment: &str) -> Result<i64, String> {
    let digits = !segment.is_empty() && segment.len() <= MAX_ID_DIGITS && segment.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| segment.parse::<i64>().ok()).flatten().ok_or_else(|| shorten(segment))
}

/// A positive id (a gift's, a campaign's) from a path segment, `what` naming its kind: what is not an id at all
/// (not digits, past `i64`) is a 400, as every router answers a malformed id, and an id that cannot name
/// anything (0) a 404, as an unknown one.
pub(crate) fn positive_id(segment: &str, what: &str) -> Result<i64, ApiError> {
    match parse_id(segment) {
        Ok(id) if id > 0 => Ok(id),
        Ok(id) => Err(ApiError::NotFound(format!("no {what} with id {id}"))),
        Err(shown) => Err(ApiError::BadRequest(format!("invalid {what} id {shown:?}"))),
    }
}

/// The first characters of what a client sent, for an error message that must not echo a whole request.
pub(crate) fn shorten(text: &str) -> String {
    text.chars().take(32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_digits_within_i64_and_positive_ids_above_zero() {
        assert_eq!(parse_id("0"), Ok(0));
        assert_eq!(parse_id("9223372036854775807"), Ok(i64::MAX));
        assert!(parse_id("9223372036854775808").is_err());
        for bad in ["", "-1", "+1", "1.0", " 1", "abc"] {
            assert!(parse_id(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(positive_id("17", "gift"), Ok(17)));
        assert!(matches!(positive_id("0", "gift"), Err(ApiError::NotFound(m)) if m == "no gift with id 0"));
        assert!(matches!(positive_id("-1", "gift"), Err(ApiError::BadRequest(m)) if m == "invalid gift id \"-1\""));
        assert_eq!(parse_id(&"9".repeat(100)).unwrap_err().len(), 32);
    }
}
