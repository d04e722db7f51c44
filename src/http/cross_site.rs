//! Refuses state-changing requests that a browser says come from another site's page: a form or script there
//! would otherwise act for a user signed in here by cookie (cross-site request forgery).
//!
//! Browsers label every request with `Sec-Fetch-Site` (Chromium since 2019, Firefox since 2021, Safari since
//! 2023), a header no page can set or change. A POST (or any method but GET, HEAD, OPTIONS) labelled
//! `cross-site` is refused with a 403 before any handler runs. Everything else passes: `same-origin` (the
//! router's own page), `same-site` (a sibling subdomain, which could set the cookie anyway), `none` (typed by
//! the user), and no header at all (other HTTP clients, older browsers). The cookie's `SameSite=Lax` covers older
//! browsers; routers whose POSTs need a header a form cannot send (the exchange's `Idempotency-Key`) are covered
//! by that too.

use axum::extract::Request;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::api_error::ApiError;

/// The header browsers label requests with.
pub const SEC_FETCH_SITE: &str = "sec-fetch-site";

pub async fn refuse_cross_site_changes(request: Request, next: Next) -> Response {
    let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let cross_site = request.headers().get(SEC_FETCH_SITE).is_some_and(|value| value == "cross-site");
    if !safe && cross_site {
        return ApiError::Forbidden("refused: this request came from another site's page".into()).into_response();
    }
    next.run(request).await
}
