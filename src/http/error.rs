//! Every way a request can fail, as one type with one status code each.
//!
//! Client errors are answered as they are, in the classic envelope; server errors are logged in full and
//! answered with a generic message, so internal details never reach clients.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::envelope::Envelope;
use super::request_metrics::RequestOutcome;
use crate::database::error::DatabaseError;

/// A failed request.
#[derive(Debug)]
pub enum ApiError {
    /// A malformed id, cookie or path: 400.
    BadRequest(String),
    /// A missing or invalid identity (a cookie that is absent, malformed or not signed by us): 401, with the
    /// message as given, which must not say which check failed beyond what the client sent.
    Unauthorized(String),
    /// A request the server refuses whoever sends it, such as a state-changing request from another site's page:
    /// 403.
    Forbidden(String),
    /// No such item or route: 404.
    NotFound(String),
    /// A method the route does not take: 405.
    MethodNotAllowed,
    /// A well-formed request that cannot be taken as it is, such as a request id first used for another
    /// request: 422, with the message as given.
    Unprocessable(String),
    /// A body over the limit: 413.
    PayloadTooLarge,
    /// Over a rate limit: 429.
    TooManyRequests(&'static str),
    /// The database cannot be reached: 503.
    Unavailable(String),
    /// The request was sent to the database and its outcome is unknown: it may or may not have committed. 503,
    /// and the answer says how to find out (`check`); `detail` is logged.
    InDoubt { check: String, detail: String },
    /// Anything else: 500.
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::InDoubt { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<DatabaseError> for ApiError {
    fn from(error: DatabaseError) -> Self {
        if error.is_unavailable() {
            ApiError::Unavailable(error.to_string())
        } else {
            ApiError::Internal(error.to_string())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // Counted apart from other errors of their status: they are answers, not faults.
        let outcome = match &self {
            ApiError::TooManyRequests(_) => Some(RequestOutcome("rate_limited")),
            ApiError::InDoubt { .. } => Some(RequestOutcome("in_doubt")),
            _ => None,
        };
        let message = match self {
            ApiError::BadRequest(message)
            | ApiError::Forbidden(message)
            | ApiError::NotFound(message)
            | ApiError::Unprocessable(message)
            | ApiError::Unauthorized(message) => message,
            ApiError::MethodNotAllowed => "method not allowed".to_string(),
            ApiError::PayloadTooLarge => "request body too large".to_string(),
            ApiError::TooManyRequests(which) => format!("too many requests {which}; slow down"),
            ApiError::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                "service unavailable, try again shortly".to_string()
            }
            ApiError::InDoubt { check, detail } => {
                tracing::warn!(%detail, "outcome in doubt");
                format!("outcome unknown: {check}")
            }
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "internal error".to_string()
            }
        };
        (status, outcome, Json(Envelope::error(message))).into_response()
    }
}
