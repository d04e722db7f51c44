//! Reading what a request says, with a JSON 4xx for anything malformed: item ids in the path, the signature,
//! and the buyer's phone from the classic `killPhone` cookie.

use axum::extract::FromRequestParts;
use axum::http::header::COOKIE;
use axum::http::request::Parts;

use super::api_error::ApiError;
use crate::seckill::Phone;

/// The name of the cookie the classic page keeps the phone in.
pub const PHONE_COOKIE: &str = "killPhone";

/// The longest path segment worth reading; anything longer is garbage.
const MAX_SEGMENT: usize = 128;

/// The longest id in decimal (`i64::MAX`).
const MAX_ID_DIGITS: usize = 19;

/// Parses an item id from a path segment: digits only, within `i64`.
pub fn parse_item_id(segment: &str) -> Result<i64, ApiError> {
    let valid = !segment.is_empty() && segment.len() <= MAX_ID_DIGITS && segment.bytes().all(|b| b.is_ascii_digit());
    valid
        .then(|| segment.parse::<i64>().ok())
        .flatten()
        .ok_or_else(|| ApiError::BadRequest(format!("invalid seckill id {:?}", shorten(segment))))
}

/// A positive id (a gift's, a campaign's) from a path segment: digits only, within `i64`, above 0. `Err` holds
/// the segment shortened for an error message: anything else names nothing, so the routers answer 404.
pub(crate) fn parse_positive_id(segment: &str) -> Result<i64, String> {
    let digits = !segment.is_empty() && segment.len() <= MAX_ID_DIGITS && segment.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| segment.parse::<i64>().ok()).flatten().filter(|id| *id > 0).ok_or_else(|| shorten(segment))
}

/// A signature from the path: refused outright when too long to be one.
pub fn check_token_segment(segment: &str) -> Result<&str, ApiError> {
    if segment.len() > MAX_SEGMENT {
        return Err(ApiError::BadRequest("invalid signature".into()));
    }
    Ok(segment)
}

fn shorten(text: &str) -> String {
    text.chars().take(32).collect()
}

/// The buyer, from the `killPhone` cookie. Missing: 401 "未注册"; malformed: 400.
#[derive(Debug, Clone, Copy)]
pub struct KillPhone(pub Phone);

impl<S: Send + Sync> FromRequestParts<S> for KillPhone {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut value = None;
        for header in parts.headers.get_all(COOKIE) {
            let header = header.to_str().map_err(|_| ApiError::BadRequest("unreadable Cookie header".into()))?;
            for pair in header.split(';') {
                if let Some((name, v)) = pair.trim().split_once('=')
                    && name == PHONE_COOKIE
                {
                    value = Some(v.trim().trim_matches('"'));
                }
            }
        }
        let value = value.ok_or(ApiError::NotRegistered)?;
        value.parse().map(KillPhone).map_err(|_| ApiError::BadRequest(format!("invalid {PHONE_COOKIE} cookie")))
    }
}
