//! The answers for requests no route takes: an unknown path is a 404 and a method the route does not take a 405,
//! both in the JSON error envelope and both counted in `seckill_http_requests_total`, which the routes' own
//! metrics layer cannot do (axum runs fallbacks outside the routes' layers).

use axum::Router;
use axum::extract::MatchedPath;
use axum::http::StatusCode;

use super::ApiError;
use super::request_metrics::count_fallback_answer;

/// `router` with JSON answers for unknown routes (404, counted under `route="unmatched"`) and for methods a
/// route does not take (405, counted under the route). Call it on the merged router of the whole app, after
/// every route is in: a host's own routes keep their fallbacks otherwise.
pub fn with_json_fallbacks(router: Router) -> Router {
    router
        .fallback(|| async {
            count_fallback_answer(None, StatusCode::NOT_FOUND);
            ApiError::NotFound("no such route".into())
        })
        .method_not_allowed_fallback(|route: Option<MatchedPath>| async move {
            count_fallback_answer(route.as_ref(), StatusCode::METHOD_NOT_ALLOWED);
            ApiError::MethodNotAllowed
        })
}
