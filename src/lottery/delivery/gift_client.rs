//! One call to the gift service, as the contract has it: `POST {gift_url}` with the prize as JSON and the
//! header `Idempotency-Key: lottery-draw-{draw_id}`, bounded by a timeout, and its answer sorted into what the
//! worker does next.
//!
//! "Not now" is never "never": 408 (the service gave up waiting for the call), 429 (too many calls) and every
//! 5xx are worth another try, and a `Retry-After` the service sends with them (seconds, or an HTTP date) says
//! when. Only another 4xx (or a redirect) is a refusal.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::error::GiftDeliveryError;
use crate::lottery::PrizeMessage;

// The header that makes a delivery happen once, however often it is asked for, and the one a gift service may
// set on a 2xx for a key it had already seen (the worker counts such answers as duplicates).
pub use crate::http::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};

/// What the gift service said to one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiftAnswer {
    /// 2xx or 409: the gift is delivered (`replayed`: it had been already, by an earlier call).
    Delivered { replayed: bool },
    /// Another 4xx (or a redirect, which is not followed): this prize will never be accepted as it is.
    Refused { status: u16, detail: String },
    /// 408, 429, 5xx, a timeout or a connection error: worth another try, after `retry_after` when the service
    /// said when (its `Retry-After`, as it sent it: the worker bounds it).
    Unavailable { why: String, retry_after: Option<Duration> },
}

/// A client of one gift service.
#[derive(Clone, Debug)]
pub struct GiftClient {
    client: Client<HttpConnector, Full<Bytes>>,
    url: Uri,
    timeout: Duration,
}

impl GiftClient {
    /// A client of the gift service at `url` (plain `http://`: the service is expected on a private network or
    /// behind a local proxy), each call bounded by `timeout`.
    ///
    /// # Errors
    /// [`GiftDeliveryError::InvalidUrl`] for anything but an `http://host[:port][/path]` URL.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, GiftDeliveryError> {
        let invalid = |why: &str| GiftDeliveryError::InvalidUrl { url: url.to_string(), why: why.to_string() };
        let parsed: Uri = url.parse().map_err(|error: hyper::http::uri::InvalidUri| invalid(&error.to_string()))?;
        match parsed.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(invalid("https is not supported; reach the service through a local proxy")),
            _ => return Err(invalid("expected http://host:port/path")),
        }
        if parsed.host().is_none_or(str::is_empty) {
            return Err(invalid("no host"));
        }
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build_http();
        Ok(GiftClient { client, url: parsed, timeout })
    }

    /// The service's URL.
    pub fn url(&self) -> &Uri {
        &self.url
    }

    /// Asks the service to deliver `prize`, once in effect.
    pub async fn deliver(&self, prize: &PrizeMessage) -> GiftAnswer {
        match tokio::time::timeout(self.timeout, self.call(prize)).await {
            Ok(answer) => answer,
            Err(_) => {
                GiftAnswer::Unavailable { why: format!("no answer within {:?}", self.timeout), retry_after: None }
            }
        }
    }

    async fn call(&self, prize: &PrizeMessage) -> GiftAnswer {
        let body = match serde_json::to_vec(prize) {
            Ok(body) => body,
            // A struct of numbers and a string always serializes; should it not, the prize is unusable.
            Err(error) => {
                return GiftAnswer::Refused { status: 0, detail: format!("cannot encode the prize: {error}") };
            }
        };
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(IDEMPOTENCY_KEY, prize.idempotency_key())
            .body(Full::new(Bytes::from(body)));
        let request = match request {
            Ok(request) => request,
            Err(error) => return GiftAnswer::Refused { status: 0, detail: format!("cannot build the call: {error}") },
        };
        let response = match self.client.request(request).await {
            Ok(response) => response,
            Err(error) => {
                return GiftAnswer::Unavailable { why: format!("connection: {error}"), retry_after: None };
            }
        };
        let status = response.status();
        let retry_after = response.headers().get(RETRY_AFTER).and_then(|value| value.to_str().ok()).and_then(|value| {
            // A value that is neither seconds nor a date is as good as none: the worker's own backoff applies.
            retry_after_of(value, Utc::now())
        });
        let replayed = response
            .headers()
            .get(IDEMPOTENT_REPLAYED)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"true"));
        // The body is read to the end so that the connection can be used again; a broken body is a broken call.
        let detail = match response.into_body().collect().await {
            Ok(body) => String::from_utf8_lossy(&body.to_bytes()).chars().take(200).collect::<String>(),
            Err(error) => return GiftAnswer::Unavailable { why: format!("answer cut: {error}"), retry_after: None },
        };
        classify(status, replayed, retry_after, detail)
    }
}

/// The contract's reading of a status, with the service's `Retry-After` if it sent one.
fn classify(status: StatusCode, replayed: bool, retry_after: Option<Duration>, detail: String) -> GiftAnswer {
    let not_now =
        status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS;
    if status.is_success() {
        GiftAnswer::Delivered { replayed }
    } else if status == StatusCode::CONFLICT {
        GiftAnswer::Delivered { replayed: true }
    } else if not_now {
        GiftAnswer::Unavailable { why: format!("{status}: {detail}"), retry_after }
    } else {
        GiftAnswer::Refused { status: status.as_u16(), detail }
    }
}

/// How long a `Retry-After` value asks to wait, as of `now`: delay-seconds, or an HTTP date in any of the three
/// forms HTTP allows (a date already past: no wait). `None` for anything else.
fn retry_after_of(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
        // More digits than a u64 holds is still "a very long time".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let date = DateTime::parse_from_rfc2822(value).map(|date| date.with_timezone(&Utc)).ok().or_else(|| {
        // RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`), both in GMT.
        ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
            .iter()
            .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
            .map(|date| date.and_utc())
    })?;
    Some((date - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_read_as_the_contract_says() {
        let answer = |code: u16| classify(StatusCode::from_u16(code).unwrap(), false, None, String::new());
        assert_eq!(answer(200), GiftAnswer::Delivered { replayed: false });
        assert_eq!(answer(201), GiftAnswer::Delivered { replayed: false });
        assert_eq!(answer(409), GiftAnswer::Delivered { replayed: true });
        assert!(matches!(answer(400), GiftAnswer::Refused { status: 400, .. }));
        assert!(matches!(answer(422), GiftAnswer::Refused { status: 422, .. }));
        assert!(matches!(answer(302), GiftAnswer::Refused { status: 302, .. }));
        for not_now in [408, 429, 500, 503] {
            assert!(matches!(answer(not_now), GiftAnswer::Unavailable { retry_after: None, .. }), "{not_now}");
        }
        let told = classify(StatusCode::TOO_MANY_REQUESTS, false, Some(Duration::from_secs(2)), String::new());
        assert!(matches!(told, GiftAnswer::Unavailable { retry_after: Some(wait), .. } if wait.as_secs() == 2));
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_a_date_in_any_of_its_forms() {
        let now = DateTime::parse_from_rfc3339("1994-11-06T08:49:30Z").unwrap().with_timezone(&Utc);
        let wait = |value: &str| retry_after_of(value, now);
        assert_eq!(wait("1"), Some(Duration::from_secs(1)));
        assert_eq!(wait(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(wait("0"), Some(Duration::ZERO));
        assert_eq!(wait("99999999999999999999999"), Some(Duration::from_secs(u64::MAX)));
        assert_eq!(wait("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::from_secs(7)));
        assert_eq!(wait("Sunday, 06-Nov-94 08:49:37 GMT"), Some(Duration::from_secs(7)));
        assert_eq!(wait("Sun Nov  6 08:49:37 1994"), Some(Duration::from_secs(7)));
        assert_eq!(wait("Sun, 06 Nov 1994 08:49:00 GMT"), Some(Duration::ZERO), "a date already past");
        for nonsense in ["", "-1", "1.5", "soon", "Sun, 06 Nov 1994"] {
            assert_eq!(wait(nonsense), None, "{nonsense:?}");
        }
    }

    #[test]
    fn only_plain_http_urls_with_a_host_are_taken() {
        let timeout = Duration::from_secs(1);
        assert!(GiftClient::new("http://127.0.0.1:8080/gifts", timeout).is_ok());
        for url in ["", "127.0.0.1:8080", "https://gifts.example/", "ftp://x/", "http:///gifts", "not a url"] {
            assert!(GiftClient::new(url, timeout).is_err(), "{url}");
        }
    }
}
