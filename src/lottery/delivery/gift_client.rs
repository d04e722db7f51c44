//! One call to the gift service, as the contract has it: `POST {gift_url}` with the prize as JSON and the
//! header `Idempotency-Key: lottery-draw-{draw_id}`, bounded by a timeout, and its answer sorted into what the
//! worker does next.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue};
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
    /// 5xx, a timeout or a connection error: worth another try later.
    Unavailable(String),
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
            Err(_) => GiftAnswer::Unavailable(format!("no answer within {:?}", self.timeout)),
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
            Err(error) => return GiftAnswer::Unavailable(format!("connection: {error}")),
        };
        let status = response.status();
        let replayed = response
            .headers()
            .get(IDEMPOTENT_REPLAYED)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"true"));
        // The body is read to the end so that the connection can be used again; a broken body is a broken call.
        let detail = match response.into_body().collect().await {
            Ok(body) => String::from_utf8_lossy(&body.to_bytes()).chars().take(200).collect::<String>(),
            Err(error) => return GiftAnswer::Unavailable(format!("answer cut: {error}")),
        };
        classify(status, replayed, detail)
    }
}

/// The contract's reading of a status.
fn classify(status: StatusCode, replayed: bool, detail: String) -> GiftAnswer {
    if status.is_success() {
        GiftAnswer::Delivered { replayed }
    } else if status == StatusCode::CONFLICT {
        GiftAnswer::Delivered { replayed: true }
    } else if status.is_server_error() {
        GiftAnswer::Unavailable(format!("{status}: {detail}"))
    } else {
        GiftAnswer::Refused { status: status.as_u16(), detail }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_read_as_the_contract_says() {
        let answer = |code: u16| classify(StatusCode::from_u16(code).unwrap(), false, String::new());
        assert_eq!(answer(200), GiftAnswer::Delivered { replayed: false });
        assert_eq!(answer(201), GiftAnswer::Delivered { replayed: false });
        assert_eq!(answer(409), GiftAnswer::Delivered { replayed: true });
        assert!(matches!(answer(400), GiftAnswer::Refused { status: 400, .. }));
        assert!(matches!(answer(422), GiftAnswer::Refused { status: 422, .. }));
        assert!(matches!(answer(302), GiftAnswer::Refused { status: 302, .. }));
        assert!(matches!(answer(500), GiftAnswer::Unavailable(_)));
        assert!(matches!(answer(503), GiftAnswer::Unavailable(_)));
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
