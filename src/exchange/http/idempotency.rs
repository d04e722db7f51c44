//! The client's request id, from the `Idempotency-Key` header: the key that makes a retried exchange safe.
//!
//! A client makes a new key for each exchange it means and sends the same key again when it retries that one
//! (after a network error or a 503): the database answers a known (user, key) with its first answer and does
//! nothing again. The key is required: an exchange without one could not be retried safely.

use axum::http::HeaderMap;

use crate::exchange::RequestId;
use crate::http::ApiError;
pub use crate::http::IDEMPOTENCY_KEY;

/// The request id in the `Idempotency-Key` header.
///
/// # Errors
/// [`ApiError::BadRequest`] when the header is missing, repeated, or not 1 to 64 characters of
/// `A-Z a-z 0-9 . _ : -`.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<RequestId, ApiError> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(ApiError::BadRequest(format!(
            "send exactly one {IDEMPOTENCY_KEY} header: a new id for each exchange, the same one for its retries"
        )));
    };
    let text = value.to_str().map_err(|_| ApiError::BadRequest(format!("unreadable {IDEMPOTENCY_KEY} header")))?;
    RequestId::new(text).map_err(|invalid| ApiError::BadRequest(format!("{IDEMPOTENCY_KEY}: {invalid}")))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(IDEMPOTENCY_KEY, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn one_plain_key_is_required() {
        assert_eq!(idempotency_key(&headers(&["k-1"])).unwrap().as_str(), "k-1");
        for bad in [&[][..], &["k-1", "k-2"], &[""], &["k 1"], &[&"x".repeat(65)]] {
            let error = idempotency_key(&headers(bad)).unwrap_err();
            assert!(matches!(error, ApiError::BadRequest(_)), "{bad:?}: {error:?}");
        }
    }
}
