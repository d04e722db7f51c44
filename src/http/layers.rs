//! The stack every router of the crate wraps its routes in, as one function ([`with_common_layers`]), and its
//! layers: requests counted by route and outcome ([`super::request_metrics`]), JSON answers that say
//! `charset=utf-8`, bodies over the limit refused before any handler runs (declared or sent in chunks, and never
//! read beyond the limit), and, for routers whose state changes need no header a form could not send, state
//! changes from other sites' pages refused.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::ApiError;
use super::request_metrics::count_requests;

/// The largest request body accepted, declared or sent in chunks; the APIs read none, so anything bigger is
/// refused (413) before any handler runs. Not zero: classic front ends may post a small form the API ignores.
pub const DEFAULT_MAX_BODY: u64 = 4 * 1024;

/// The content type of every JSON answer: what the routers send, and what a load balancer sends for them.
pub const JSON_UTF8: &str = "application/json; charset=utf-8";

/// The header browsers label requests with.
pub const SEC_FETCH_SITE: &str = "sec-fetch-site";

/// Whether a router refuses state changes a browser labels as coming from another site's page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CrossSite {
    /// Its state changes need a header no cross-site form can send, or its users are not signed in by cookie.
    Allowed,
    /// A `POST` labelled `Sec-Fetch-Site: cross-site` is a 403 ([`refuse_cross_site_changes`]).
    Refused,
}

/// `routes` with the common stack, outermost last: the request counted, the answer's charset, the body's
/// limit ([`DEFAULT_MAX_BODY`]) and, where `cross_site` says so, the cross-site refusal.
pub(crate) fn with_common_layers<S>(routes: Router<S>, cross_site: CrossSite) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let routes = match cross_site {
        CrossSite::Refused => routes.layer(axum::middleware::from_fn(refuse_cross_site_changes)),
        CrossSite::Allowed => routes,
    };
    routes
        .layer(axum::middleware::from_fn_with_state(DEFAULT_MAX_BODY, bound_bodies))
        .layer(axum::middleware::map_response(utf8_json))
        .layer(axum::middleware::from_fn(super::assets::not_modified))
        .layer(axum::middleware::from_fn(count_requests))
}

/// Reads the request's body, at most `max` bytes of it, before any handler runs: a body over the limit is a 413
/// and decides nothing. A declared length over the limit is refused before a byte is read; a body sent in chunks
/// declares none, and a handler that reads no body (none of the APIs reads one) would run while it streams in,
/// so every body is read here, bounded, and handed on whole. A body that cannot be read (a client gone
/// mid-body, a malformed chunk) is a 400.
async fn bound_bodies(State(max): State<u64>, request: Request, next: Next) -> Response {
    let declared = request.headers().get(CONTENT_LENGTH).map(|v| v.to_str().ok().and_then(|v| v.parse::<u64>().ok()));
    match declared {
        Some(None) => return ApiError::BadRequest("invalid Content-Length".into()).into_response(),
        Some(Some(length)) if length > max => return ApiError::PayloadTooLarge.into_response(),
        _ => {}
    }
    let (parts, body) = request.into_parts();
    // Fits: DEFAULT_MAX_BODY and any sane limit are far below usize::MAX; a larger one reads no more than that.
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            return ApiError::PayloadTooLarge.into_response();
        }
        Err(_) => return ApiError::BadRequest("the request body could not be read".into()).into_response(),
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// Rewrites a bare `application/json` content type to `application/json; charset=utf-8`. JSON is UTF-8 by
/// definition, but the classic answers carry Chinese text (秒杀成功, 未注册), and clients that guess a charset
/// from the header (old browsers, some HTTP libraries with a Latin-1 default) then show mojibake.
async fn utf8_json(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if headers.get(CONTENT_TYPE).is_some_and(|value| value == "application/json") {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    }
    response
}

/// Refuses state-changing requests that a browser says come from another site's page: a form or script there
/// would otherwise act for a user signed in here by cookie (cross-site request forgery).
///
/// Browsers label every request with `Sec-Fetch-Site` (Chromium since 2019, Firefox since 2021, Safari since
/// 2023), a header no page can set or change. A POST (or any method but GET, HEAD, OPTIONS) labelled
/// `cross-site` is refused with a 403 before any handler runs. Everything else passes: `same-origin` (the
/// router's own page), `same-site` (a sibling subdomain, which could set the cookie anyway), `none` (typed by
/// the user), and no header at all (other HTTP clients, older browsers). The cookie's `SameSite=Lax` covers older
/// browsers; routers whose POSTs need a header a form cannot send (the exchange's `Idempotency-Key`) are covered
/// by that too.
async fn refuse_cross_site_changes(request: Request, next: Next) -> Response {
    let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let cross_site = request.headers().get(SEC_FETCH_SITE).is_some_and(|value| value == "cross-site");
    if !safe && cross_site {
        return ApiError::Forbidden("refused: this request came from another site's page".into()).into_response();
    }
    next.run(request).await
}
