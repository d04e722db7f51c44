//! The GTID cookie: read-your-writes for a browser whose requests land on any instance behind a load balancer.
//!
//! A write's answer (a seckill's execution, an exchange, a draw) sets `seckillGtid` to the GTIDs of the user's
//! writes so far: the request's cookie with the write's commit GTID included, the latest per replication
//! domain (`0-1-42`; domains joined by `_`, since a cookie cannot hold a comma). The reads that must show the
//! user's own writes (`/seckill/{id}/result`, the exchange's `balance.json` and `mine.json`, the lottery's
//! `mine.json`) send it along, and whichever instance answers reads on a replica that has applied it, or on the
//! primary. The cookie is `HttpOnly`, `SameSite=Lax`, `Path=/`, for 10 minutes (after that the replicas have long
//! applied it, or the lag bound skips them); a classic front end never reads it and is unaffected.
//!
//! A write whose outcome is in doubt, and which brought back no GTID, clears the cookie: the user's next reads
//! then go where an answer in doubt is settled exactly (the primary, for a seckill's result and a user's draws).
//!
//! The cookie is a hint, never an authority: one that is missing or unreadable is ignored (the read goes where it
//! would without it), and a forged one can only send the forger's own reads to the primary. A position the
//! primary has not committed is never waited for on a replica ([`crate::database::ReadWriteSplit`] compares it
//! with what the primary has committed first), so made-up positions hold no replica connection from anyone's
//! reads.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::HeaderValue;
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::response::{IntoResponseParts, ResponseParts};

use super::cookies::cookie_values;
use crate::database::{Gtid, GtidPosition};

/// The cookie's name.
pub const GTID_COOKIE: &str = "seckillGtid";

/// How long the cookie lives.
pub const GTID_COOKIE_MAX_AGE: Duration = Duration::from_secs(600);

/// The GTIDs of the user's writes the request carries; `None` without a readable cookie.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReadAfter(pub(crate) Option<GtidPosition>);

impl<S: Send + Sync> FromRequestParts<S> for ReadAfter {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ReadAfter(position_in(parts)))
    }
}

/// The cookie's position, when the request has one that reads (the last one, if several).
fn position_in(parts: &Parts) -> Option<GtidPosition> {
    let found = cookie_values(&parts.headers, GTID_COOKIE).flatten().last();
    found.and_then(|value| value.parse::<GtidPosition>().ok()).filter(|position| !position.is_empty())
}

/// What a write's answer does with the cookie: set it, clear it, or leave it.
#[derive(Debug, Clone, Default)]
pub(crate) struct GtidCookie(Option<HeaderValue>);

impl GtidCookie {
    /// After a write: `known` (the request's cookie) with `gtid` included when the write brought one back; a
    /// cleared cookie when it did not and its outcome is `in_doubt`; otherwise nothing.
    pub(crate) fn after_write(known: Option<&GtidPosition>, gtid: Option<Gtid>, in_doubt: bool) -> Self {
        let max_age = GTID_COOKIE_MAX_AGE.as_secs();
        let value = match gtid {
            Some(gtid) => {
                let mut position = known.cloned().unwrap_or_default();
                position.include(gtid);
                let text = position.to_text('_');
                format!("{GTID_COOKIE}={text}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax")
            }
            None if in_doubt => format!("{GTID_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"),
            None => return GtidCookie(None),
        };
        // Digits, '-', '_' and ASCII attributes only: always a valid header value.
        GtidCookie(HeaderValue::from_str(&value).ok())
    }
}

impl IntoResponseParts for GtidCookie {
    type Error = Infallible;

    fn into_response_parts(self, mut parts: ResponseParts) -> Result<ResponseParts, Self::Error> {
        if let Some(value) = self.0 {
            parts.headers_mut().append(SET_COOKIE, value);
        }
        Ok(parts)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Request;
    use axum::http::header::COOKIE;

    use super::*;

    fn parts(cookie: &str) -> Parts {
        Request::builder().header(COOKIE, cookie).body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_cookie_is_read_when_it_reads_and_ignored_otherwise() {
        let read = |cookie: &str| position_in(&parts(cookie)).map(|position| position.to_string());
        assert_eq!(read("killPhone=13800138000; seckillGtid=0-1-42_1-1-7"), Some("0-1-42,1-1-7".into()));
        assert_eq!(read("seckillGtid=0-1-x"), None);
        assert_eq!(read("seckillGtid="), None);
        assert_eq!(read("other=0-1-1"), None);
    }

    #[test]
    fn a_write_sets_the_latest_gtid_per_domain_or_clears_the_cookie_when_in_doubt() {
        let known: GtidPosition = "0-1-50_1-1-3".parse().unwrap();
        let set = GtidCookie::after_write(Some(&known), Some("0-1-60".parse().unwrap()), false);
        let value = set.0.unwrap();
        assert!(value.to_str().unwrap().starts_with("seckillGtid=0-1-60_1-1-3; Path=/; Max-Age=600"), "{value:?}");
        let older = GtidCookie::after_write(Some(&known), Some("0-1-10".parse().unwrap()), false);
        assert!(older.0.unwrap().to_str().unwrap().starts_with("seckillGtid=0-1-50_1-1-3;"), "never goes back");
        let cleared = GtidCookie::after_write(Some(&known), None, true).0.unwrap();
        assert!(cleared.to_str().unwrap().starts_with("seckillGtid=; Path=/; Max-Age=0"));
        assert!(GtidCookie::after_write(Some(&known), None, false).0.is_none());
    }
}
