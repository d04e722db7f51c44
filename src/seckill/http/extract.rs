//! Reading what a seckill request says, with a JSON 4xx for anything malformed: item ids in the path, the
//! signature, and the buyer's phone from the classic `killPhone` cookie.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::http::ApiError;
use crate::http::cookies::cookie_values;
use crate::http::ids::parse_id;
use crate::seckill::Phone;

/// The name of the cookie the classic page keeps the phone in.
pub const PHONE_COOKIE: &str = "killPhone";

/// The longest path segment worth reading; anything longer is garbage.
pub(crate) const MAX_SEGMENT: usize = 128;

/// The message of a missing `killPhone` cookie, as in the classic API: "not registered".
pub(crate) const NOT_REGISTERED: &str = "未注册";

/// Parses an item id from a path segment: digits only, within `i64`.
pub fn parse_item_id(segment: &str) -> Result<i64, ApiError> {
    parse_id(segment).map_err(|shown| ApiError::BadRequest(format!("invalid seckill id {shown:?}")))
}

/// A signature from the path: refused outright when too long to be one.
pub fn check_token_segment(segment: &str) -> Result<&str, ApiError> {
    if segment.len() > MAX_SEGMENT {
        return Err(ApiError::BadRequest("invalid signature".into()));
    }
    Ok(segment)
}

/// The buyer, from the `killPhone` cookie (the last one sent). Missing: 401 "未注册"; malformed: 400.
#[derive(Debug, Clone, Copy)]
pub struct KillPhone(pub Phone);

impl<S: Send + Sync> FromRequestParts<S> for KillPhone {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut value = None;
        for found in cookie_values(&parts.headers, PHONE_COOKIE) {
            value = Some(found.ok_or_else(|| ApiError::BadRequest("unreadable Cookie header".into()))?);
        }
        let value = value.ok_or_else(|| ApiError::Unauthorized(NOT_REGISTERED.into()))?;
        value.parse().map(KillPhone).map_err(|_| ApiError::BadRequest(format!("invalid {PHONE_COOKIE} cookie")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_ids_may_be_zero_and_long_segments_are_no_signature() {
        assert_eq!(parse_item_id("0").ok(), Some(0));
        assert!(matches!(parse_item_id("x1"), Err(ApiError::BadRequest(message)) if message.contains("x1")));
        assert!(check_token_segment(&"a".repeat(MAX_SEGMENT)).is_ok());
        assert!(check_token_segment(&"a".repeat(MAX_SEGMENT + 1)).is_err());
    }
}
