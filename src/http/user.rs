//! Who is asking: the seam through which a host app tells the crate's routers (the points exchange's, the
//! lottery's) which user a request is for.
//!
//! The routers never log anyone in. They ask a [`RequestUser`] for the user id of each request that needs one
//! and refuse the request with the error it returns (a 401 for a missing or invalid identity). The crate
//! provides one, [`super::SignedUserCookie`]; a host app with its own sessions implements the trait, or passes
//! a closure. One identity serves every router: a host gives the same one to each.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;

use super::ApiError;

/// Reads the user id from a request's head (headers, extensions, URI), or refuses the request.
///
/// Implementations are called once per request that needs a user, on the request's task: keep them cheap and
/// free of I/O. A host whose sessions live in a store resolves them in its own middleware (which may be async)
/// and puts the result into the request's extensions, where the implementation reads it:
///
/// ```
/// use axum::http::request::Parts;
/// use seckill::http::{ApiError, RequestUser};
///
/// /// What the host's session middleware inserted into the request's extensions.
/// #[derive(Clone)]
/// struct Session {
///     account_id: i64,
/// }
///
/// struct FromSession;
///
/// impl RequestUser for FromSession {
///     fn user_id(&self, parts: &Parts) -> Result<i64, ApiError> {
///         parts
///             .extensions
///             .get::<Session>()
///             .map(|session| session.account_id)
///             .ok_or_else(|| ApiError::Unauthorized("sign in first".into()))
///     }
/// }
/// ```
///
/// Any `Fn(&Parts) -> Result<i64, ApiError>` is one too, for a one-liner.
pub trait RequestUser: Send + Sync + 'static {
    /// The user id (positive) this request acts for.
    ///
    /// # Errors
    /// The answer to send instead: [`ApiError::Unauthorized`] for a missing or invalid identity.
    fn user_id(&self, parts: &Parts) -> Result<i64, ApiError>;
}

impl<F> RequestUser for F
where
    F: Fn(&Parts) -> Result<i64, ApiError> + Send + Sync + 'static,
{
    fn user_id(&self, parts: &Parts) -> Result<i64, ApiError> {
        self(parts)
    }
}

/// A router's handle on the host's [`RequestUser`], kept in its state (which implements `FromRef` for it).
#[derive(Clone)]
pub(crate) struct Identity(Arc<dyn RequestUser>);

impl Identity {
    pub(crate) fn new(user: impl RequestUser) -> Self {
        Identity(Arc::new(user))
    }
}

/// The extractor of the user a request acts for, as the host's [`RequestUser`] names it, checked to be positive.
pub(crate) struct CurrentUser(pub(crate) i64);

impl<S> FromRequestParts<S> for CurrentUser
where
    S: Send + Sync,
    Identity: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user_id = Identity::from_ref(state).0.user_id(parts)?;
        if user_id <= 0 {
            // A host's identity that names no user is a host bug, but to the client it is no identity at all.
            tracing::warn!(user_id, "the host's RequestUser returned a user id that is not positive");
            return Err(ApiError::Unauthorized("invalid user".into()));
        }
        Ok(CurrentUser(user_id))
    }
}
