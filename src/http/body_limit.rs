//! Refuses requests whose declared body is over the limit, before any handler runs. The API reads no bodies,
//! so this is all it takes: an undeclared (chunked) body is never read.

use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::api_error::ApiError;

pub async fn refuse_large_bodies(State(max): State<u64>, request: Request, next: Next) -> Response {
    let declared = request.headers().get(CONTENT_LENGTH).map(|v| v.to_str().ok().and_then(|v| v.parse::<u64>().ok()));
    match declared {
        Some(None) => ApiError::BadRequest("invalid Content-Length".into()).into_response(),
        Some(Some(length)) if length > max => ApiError::PayloadTooLarge.into_response(),
        _ => next.run(request).await,
    }
}
