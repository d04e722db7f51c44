//! What every router of the crate shares, and nothing of any domain: the error type and the envelope every answer
//! is written in, the user seam through which a host app says who a request is for, cookies, the GTID cookie
//! that lets a reader see its own writes, the common layers, the embedded page helper, request metrics, the
//! JSON fallbacks for a whole app, the [`health`] probes for its management listener, and the [`front_door`]: a
//! landing page and a development sign-in.
//!
//! Each domain owns its router ([`crate::seckill::http`], [`crate::exchange::http`], [`crate::lottery::http`]);
//! a host app merges the ones it wants, then calls [`with_json_fallbacks`] on the whole. Every router answers in
//! the classic `{success, data, error}` [`Envelope`], refuses what decided nothing with an [`ApiError`] of a real
//! status, says `charset=utf-8` on JSON, refuses bodies over [`DEFAULT_MAX_BODY`], and counts its requests by
//! route and outcome ([`RequestOutcome`]). None sets a fallback or a logging layer: the host app owns those.
//!
//! # Who the user is
//!
//! The routers never sign anyone in: the host names the user of each request through a [`RequestUser`], one
//! for every router; [`SignedUserCookie`] is the one provided.

mod assets;
pub(crate) mod cookies;
mod envelope;
mod error;
pub(crate) mod fallbacks;
pub mod front_door;
pub(crate) mod gtid_cookie;
pub mod health;
mod idempotency;
pub(crate) mod ids;
mod interception;
mod layers;
pub(crate) mod request_metrics;
mod signed_user_cookie;
mod user;

pub(crate) use assets::{Page, error_page};
pub use envelope::Envelope;
pub use error::ApiError;
pub use fallbacks::with_json_fallbacks;
pub use gtid_cookie::{GTID_COOKIE, GTID_COOKIE_MAX_AGE};
pub use idempotency::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};
pub use interception::{ClosedAnswer, CookieShape, Interception, Shape};
pub(crate) use layers::{CrossSite, with_common_layers};
pub use layers::{DEFAULT_MAX_BODY, JSON_UTF8, SEC_FETCH_SITE};
pub use request_metrics::RequestOutcome;
pub use signed_user_cookie::{MIN_SECRET_LEN, SecretTooShort, SignedUserCookie, USER_COOKIE};
pub use user::RequestUser;
pub(crate) use user::{CurrentUser, Identity};
