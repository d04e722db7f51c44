//! The answers for requests no route takes: an unknown path is a 404 and a method the route does not take a 405,
//! both in the JSON error envelope, saying `charset=utf-8` as every other answer, and both counted in
//! `seckill_http_requests_total`, which the routes' own layers cannot do (axum runs fallbacks outside them).

use axum::Router;
use axum::extract::MatchedPath;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;

use super::request_metrics::count_fallback_answer;
use super::{ApiError, JSON_UTF8};

/// The error message of the 404 for a route no router has, which a balancer in front also answers for the paths
/// it keeps from the public, so that those look like any unknown route.
pub(crate) const NO_SUCH_ROUTE: &str = "no such route";

/// `router` with JSON answers for unknown routes (404, counted under `route="unmatched"`) and for methods a
/// route does not take (405, counted under the route). Call it on the merged router of the whole app, after
/// every route is in: a host's own routes keep their fallbacks otherwise.
pub fn with_json_fallbacks(router: Router) -> Router {
    router
        .fallback(|| async {
            count_fallback_answer(None, StatusCode::NOT_FOUND);
            ([(CONTENT_TYPE, JSON_UTF8)], ApiError::NotFound(NO_SUCH_ROUTE.into()))
        })
        .method_not_allowed_fallback(|route: Option<MatchedPath>| async move {
            count_fallback_answer(route.as_ref(), StatusCode::METHOD_NOT_ALLOWED);
            ([(CONTENT_TYPE, JSON_UTF8)], ApiError::MethodNotAllowed)
        })
}
