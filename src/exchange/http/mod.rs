//! The points exchange's HTTP side: an axum [`Router`] with a JSON API and a page, for a host app to merge next
//! to its own routes (and to the other domains' routers, such as [`crate::seckill::http::router`]).
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/exchange`, `/exchange/` | the exchange page (HTML) |
//! | GET | `/exchange/gifts.json` | `{success, data: [GiftView]}`, the catalogue; no user needed |
//! | GET | `/exchange/balance.json` | `{success, data: {userId, balance}}`; `balance` is `null` when never granted |
//! | GET | `/exchange/mine.json` | `{success, data: {userId, balance, exchanges, ledger}}`, newest first |
//! | POST | `/exchange/gifts/{id}/exchange` | `{success, data: {outcome, exchangeId, balanceAfter, repeat}}` |
//!
//! Each exchange carries the client's request id in an `Idempotency-Key` header (required; 1 to 64 characters
//! of `A-Z a-z 0-9 . _ : -`): a new one for each exchange meant, the same one for its retries. Every decided
//! outcome is HTTP 200 with `success: true` and the outcome in `data` (`exchanged`, `not_enough_points`,
//! `out_of_stock`, `unknown_user`, `unknown_gift`), refusals included, as in the seckill API; a retry with the
//! same key answers the first outcome with `repeat: true` and never pays twice. What decided nothing is a JSON
//! error in the same envelope with a real status: a missing or invalid key 400, a missing or invalid identity
//! 401, a gift id that is not a number 400 (0: 404), a body over the limit 413, the database unreachable or the
//! exchange rolled back 503, and an outcome in doubt 503 saying "retry with the same Idempotency-Key". So a
//! client's rule is short: on a network error or a 503, send the same request with the same key again. The
//! required header also keeps other sites from spending a signed-in user's points: a cross-site form cannot set
//! it, and a cross-site script needs a CORS preflight the router does not answer. There is no rate limit. JSON
//! says `charset=utf-8`. The router sets no fallback and no logging layer: the host app owns those.
//!
//! # Who the user is
//!
//! The router does not sign anyone in: the host says who each request is for, through a
//! [`RequestUser`], the same seam every router of the crate uses. Either the provided
//! [`SignedUserCookie`] (the host sets `seckillUser=<id>.<tag>`, minted by [`SignedUserCookie::cookie_value`],
//! when the user signs in; the same cookie signs them in to the lottery), or the host's own: a type implementing
//! the trait, or a closure over the request's head. A missing or invalid identity should be
//! [`ApiError::Unauthorized`](crate::http::ApiError::Unauthorized), a JSON 401.
//!
//! ```no_run
//! use seckill::exchange::Exchange;
//! use seckill::exchange::http::{ExchangeHttp, SignedUserCookie};
//! use seckill::http::ApiError;
//!
//! # async fn run(service: Exchange) -> Result<(), Box<dyn std::error::Error>> {
//! // The provided signed cookie:
//! let cookie = SignedUserCookie::new(std::env::var("SECKILL_SECRET")?)?;
//! let app = axum::Router::new().merge(seckill::exchange::http::router(service.clone(), cookie));
//!
//! // Or the host's own identity, say a header its gateway sets after checking the session:
//! let from_gateway = |parts: &axum::http::request::Parts| {
//!     parts
//!         .headers
//!         .get("x-user-id")
//!         .and_then(|value| value.to_str().ok()?.parse::<i64>().ok())
//!         .ok_or_else(|| ApiError::Unauthorized("sign in first".into()))
//! };
//! let other_app = axum::Router::new().merge(ExchangeHttp::new(service, from_gateway).history_limit(50).router());
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # drop(other_app);
//! # Ok(())
//! # }
//! ```

mod handlers;
mod idempotency;
mod page;
mod views;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};

pub use idempotency::IDEMPOTENCY_KEY;
// The user seam lives in `crate::http`, shared by every router; named here too, next to the router that takes it.
pub use crate::http::{RequestUser, SignedUserCookie, USER_COOKIE};
pub use views::{BalanceView, ExchangeAnswer, ExchangeView, GiftView, LedgerView, MineView};

use super::Exchange;
use crate::http::{CrossSite, Identity, with_common_layers};

/// How many exchanges and ledger entries `mine.json` shows by default.
pub const DEFAULT_SHOWN: u32 = 20;

/// The router with default settings, the user from `user`.
pub fn router(service: Exchange, user: impl RequestUser) -> Router {
    ExchangeHttp::new(service, user).router()
}

/// Builds the router.
#[derive(Clone)]
pub struct ExchangeHttp {
    state: ExchangeState,
}

impl std::fmt::Debug for ExchangeHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeHttp")
            .field("history_limit", &self.state.history_limit)
            .field("ledger_limit", &self.state.ledger_limit)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub(crate) struct ExchangeState {
    service: Exchange,
    user: Identity,
    history_limit: u32,
    ledger_limit: u32,
}

impl FromRef<ExchangeState> for Identity {
    fn from_ref(state: &ExchangeState) -> Self {
        state.user.clone()
    }
}

impl ExchangeHttp {
    /// The exchange's routes over `service`, the user of each request from `user`.
    pub fn new(service: Exchange, user: impl RequestUser) -> Self {
        let state = ExchangeState {
            service,
            user: Identity::new(user),
            history_limit: DEFAULT_SHOWN,
            ledger_limit: DEFAULT_SHOWN,
        };
        ExchangeHttp { state }
    }

    /// How many exchanges `mine.json` shows, newest first (default [`DEFAULT_SHOWN`]).
    pub fn history_limit(mut self, limit: u32) -> Self {
        self.state.history_limit = limit;
        self
    }

    /// How many ledger entries `mine.json` shows, newest first (default [`DEFAULT_SHOWN`]).
    pub fn ledger_limit(mut self, limit: u32) -> Self {
        self.state.ledger_limit = limit;
        self
    }

    /// The router.
    pub fn router(self) -> Router {
        let routes = Router::new()
            .route("/exchange", get(page::page))
            .route("/exchange/", get(page::page_in_folder))
            .route("/exchange/assets/{name}", get(page::asset))
            .route("/exchange/gifts.json", get(handlers::gifts))
            .route("/exchange/balance.json", get(handlers::balance))
            .route("/exchange/mine.json", get(handlers::mine))
            .route("/exchange/gifts/{id}/exchange", post(handlers::exchange));
        // An exchange needs an Idempotency-Key, which a cross-site form cannot send.
        with_common_layers(routes, CrossSite::Allowed).with_state(self.state)
    }
}

/// The OpenAPI description of this router's JSON API, from its handlers and the types of their answers (the page
/// and its assets are left out). [`crate::app::openapi`] puts the three domains' together.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(handlers::gifts, handlers::balance, handlers::mine, handlers::exchange))]
    struct Api;
    <Api as utoipa::OpenApi>::openapi()
}
