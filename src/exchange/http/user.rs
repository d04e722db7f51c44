//! Who is asking: the seam through which a host app tells the exchange's router which user a request is for.
//!
//! The router never logs anyone in. It asks an [`ExchangeUser`] for the user id of each request that needs one
//! and refuses the request with the error it returns (a 401 for a missing or invalid identity). The crate
//! provides one, [`super::SignedUserCookie`]; a host app with its own sessions implements the trait, or passes
//! a closure.

use axum::http::request::Parts;

use crate::http::ApiError;

/// Reads the user id from a request's head (headers, extensions, URI), or refuses the request.
///
/// Implementations are called once per request that needs a user, on the request's task: keep them cheap and
/// free of I/O. A host whose sessions live in a store resolves them in its own middleware (which may be async)
/// and puts the result into the request's extensions, where the implementation reads it:
///
/// ```
/// use axum::http::request::Parts;
/// use seckill::exchange::http::ExchangeUser;
/// use seckill::http::ApiError;
///
/// /// What the host's session middleware inserted into the request's extensions.
/// #[derive(Clone)]
/// struct Session {
///     account_id: i64,
/// }
///
/// struct FromSession;
///
/// impl ExchangeUser for FromSession {
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
pub trait ExchangeUser: Send + Sync + 'static {
    /// The user id (positive) this request acts for.
    ///
    /// # Errors
    /// The answer to send instead: [`ApiError::Unauthorized`] for a missing or invalid identity.
    fn user_id(&self, parts: &Parts) -> Result<i64, ApiError>;
}

impl<F> ExchangeUser for F
where
    F: Fn(&Parts) -> Result<i64, ApiError> + Send + Sync + 'static,
{
    fn user_id(&self, parts: &Parts) -> Result<i64, ApiError> {
        self(parts)
    }
}
