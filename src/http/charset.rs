//! JSON answers that say `charset=utf-8`. JSON is UTF-8 by definition, but the classic answers carry Chinese
//! text (秒杀成功, 未注册), and clients that guess a charset from the header (old browsers, some HTTP libraries
//! with a Latin-1 default) then show mojibake.

use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;

/// The content type of every JSON answer: what the routers send, and what the load balancer sends for them.
pub(crate) const JSON_UTF8: &str = "application/json; charset=utf-8";

/// Rewrites a bare `application/json` content type to `application/json; charset=utf-8`.
pub async fn utf8_json(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if headers.get(CONTENT_TYPE).is_some_and(|value| value == "application/json") {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    }
    response
}
