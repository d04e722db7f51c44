//! A small JSON client for the demo's crowds: keep-alive connections, a cookie and headers per call.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, COOKIE};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// How long one request may take, answer read, before the client gives up on it (no caller waits forever).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client of one server.
#[derive(Clone)]
pub(crate) struct ApiClient {
    client: Client<HttpConnector, Empty<Bytes>>,
    base: String,
}

impl ApiClient {
    /// A client of `base`, e.g. `http://127.0.0.1:8080`.
    pub(crate) fn new(base: impl Into<String>) -> Self {
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build_http();
        ApiClient { client, base: base.into() }
    }

    /// Sends `method path` with the seckill API's `killPhone` cookie if given, and reads the JSON answer.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        phone: Option<i64>,
    ) -> Result<(StatusCode, serde_json::Value), String> {
        let cookie = phone.map(|phone| format!("killPhone={phone}"));
        self.request(method, path, cookie.as_deref(), &[]).await
    }

    /// Sends `method path` with the `Cookie` header if given and the other headers given, and reads the JSON
    /// answer, within [`REQUEST_TIMEOUT`].
    pub(crate) async fn request(
        &self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<(StatusCode, serde_json::Value), String> {
        let mut request =
            Request::builder().method(method).uri(format!("{}{path}", self.base)).header(ACCEPT, "application/json");
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Empty::new()).map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| e.to_string())?;
            let status = response.status();
            let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            let json = serde_json::from_slice(&body).map_err(|e| format!("{status}: not JSON ({e})"))?;
            Ok((status, json))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))?
    }
}
