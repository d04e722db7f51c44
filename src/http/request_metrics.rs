//! Requests counted by route and outcome (`seckill_http_requests_total`, see [`crate::prometheus`]): a
//! middleware every router of the crate wraps its routes in, and the response part a handler adds to say what
//! its request came to in the domain's words.

use std::convert::Infallible;

use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponseParts, Response, ResponseParts};

use crate::prometheus::names::HTTP_REQUESTS;

/// The route label of a request no route matched: never its raw path, which would make a series per URL.
const UNMATCHED: &str = "unmatched";

/// What a request came to, in the domain's words (`success`, `sold_out`, `won`, `exchanged`, …). A handler
/// returns it with its answer; requests without one are counted by their status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestOutcome(pub &'static str);

impl IntoResponseParts for RequestOutcome {
    type Error = Infallible;

    fn into_response_parts(self, mut response: ResponseParts) -> Result<ResponseParts, Self::Error> {
        response.extensions_mut().insert(self);
        Ok(response)
    }
}

/// Counts the request once its answer is ready, under its matched route and outcome.
pub(crate) async fn count_requests(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    let outcome: &'static str = match response.extensions().get::<RequestOutcome>() {
        Some(RequestOutcome(outcome)) => outcome,
        None => by_status(response.status()),
    };
    count(route.as_ref(), outcome);
    response
}

/// Counts a request answered outside the routes' layers, which the middleware never sees: by the fallbacks for
/// an unknown route (no matched path) or a method the route does not take (the path matched).
pub(crate) fn count_fallback_answer(route: Option<&MatchedPath>, status: StatusCode) {
    count(route, by_status(status));
}

fn count(route: Option<&MatchedPath>, outcome: &'static str) {
    let route = route.map_or(UNMATCHED.to_string(), |path| path.as_str().into());
    metrics::counter!(HTTP_REQUESTS, "route" => route, "outcome" => outcome).increment(1);
}

fn by_status(status: StatusCode) -> &'static str {
    if status.is_server_error() {
        "server_error"
    } else if status.is_client_error() {
        "client_error"
    } else {
        "ok"
    }
}
