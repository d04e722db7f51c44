//! The lottery's HTTP side: an axum [`Router`] with a JSON API and a page, for a host app to merge next to its
//! own routes (and to the other routers of the crate).
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/lottery/{campaign}`, `/lottery/{campaign}/` | the campaign's page (HTML) |
//! | GET | `/lottery/{campaign}/status.json` | `{success, data: StatusView}`: window, phase, tiers with units left, `prizesLeft`, `allDrawn`; no user needed |
//! | GET | `/lottery/{campaign}/mine.json` | `{success, data: {userId, campaignId, draws: [DrawView]}}`, in draw order |
//! | POST | `/lottery/{campaign}/draw` | `{success, data: {outcome, drawId, tierId, prize, repeat}}` |
//!
//! Every decided draw is HTTP 200 with `success: true` and the outcome in `data` (`won`, `no_prize`,
//! `all_drawn`, `not_started`, `ended`, `unknown_campaign`), as in the seckill and exchange APIs. Drawing again
//! is safe: a user who has used all their draws hears their last result with `repeat: true`, and nothing more is
//! recorded. Once every prize is drawn, draws are answered `all_drawn` from memory without reaching the database
//! (see [`crate::lottery::closed`]). What decided nothing is a JSON error in the same envelope with a real
//! status: a missing or invalid identity 401, a draw from another site's page 403, a campaign id that is not a
//! number 400, 0 or an unknown campaign's status 404, a body over the limit 413, the database unreachable or
//! the draw not made (rolled back: nothing recorded) 503, and a draw in doubt 503 whose error says to look at
//! `mine.json`, which lists the draw if it went through. A client does not simply draw again after one in doubt:
//! with more than one draw per user, that would be a second draw. JSON says `charset=utf-8`. The router sets no
//! fallback and no logging layer: the host app owns those.
//!
//! `status.json` is read from the database at most once per campaign per [`DEFAULT_STATUS_MAX_AGE`] by each
//! router ([`LotteryHttp::status_max_age`]), however many pages ask: it counts the campaign's draws.
//!
//! A draw takes no body and no header of its own, so other sites' pages are kept from drawing for a user signed
//! in here by cookie another way: a draw a browser labels `Sec-Fetch-Site: cross-site` (a header no page can set)
//! is a JSON 403, and the provided cookie is meant to be set `SameSite=Lax`, which browsers never send with a
//! cross-site POST.
//!
//! # Who the user is
//!
//! As for every router of the crate, the host names the user of a request through a
//! [`RequestUser`]: the provided [`SignedUserCookie`](crate::http::SignedUserCookie) (the `seckillUser` cookie,
//! the one that also signs users in to the points exchange), or its own.
//!
//! ```no_run
//! use seckill::http::SignedUserCookie;
//! use seckill::lottery::Lottery;
//!
//! # async fn run(lottery: Lottery) -> Result<(), Box<dyn std::error::Error>> {
//! let cookie = SignedUserCookie::new(std::env::var("SECKILL_SECRET")?)?;
//! let app = axum::Router::new().merge(seckill::lottery::http::router(lottery, cookie));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```

mod audit_cache;
mod handlers;
mod page;
mod status_cache;
mod views;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};

pub use status_cache::DEFAULT_STATUS_MAX_AGE;
pub use views::{DrawAnswer, DrawView, MineView, StatusView, TierView};

use super::Lottery;
use crate::http::{CrossSite, Identity, RequestUser, with_common_layers};

/// The router with default settings, the user from `user`.
pub fn router(service: Lottery, user: impl RequestUser) -> Router {
    LotteryHttp::new(service, user).router()
}

/// Builds the router.
#[derive(Clone)]
pub struct LotteryHttp {
    service: Lottery,
    user: Identity,
    status_max_age: Duration,
}

impl std::fmt::Debug for LotteryHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LotteryHttp").field("status_max_age", &self.status_max_age).finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub(crate) struct LotteryState {
    service: Lottery,
    user: Identity,
    statuses: Arc<status_cache::StatusCache>,
    audits: Arc<audit_cache::AuditCache>,
}

impl FromRef<LotteryState> for Identity {
    fn from_ref(state: &LotteryState) -> Self {
        state.user.clone()
    }
}

impl LotteryHttp {
    /// The lottery's routes over `service`, the user of each request from `user`.
    pub fn new(service: Lottery, user: impl RequestUser) -> Self {
        LotteryHttp { service, user: Identity::new(user), status_max_age: DEFAULT_STATUS_MAX_AGE }
    }

    /// How old a `status.json` answer may be (default [`DEFAULT_STATUS_MAX_AGE`]); zero reads the database for
    /// every request.
    pub fn status_max_age(mut self, max_age: Duration) -> Self {
        self.status_max_age = max_age;
        self
    }

    /// The router.
    pub fn router(self) -> Router {
        let state = LotteryState {
            service: self.service,
            user: self.user,
            statuses: Arc::new(status_cache::StatusCache::new(self.status_max_age)),
            audits: Arc::default(),
        };
        let routes = Router::new()
            .route("/lottery/assets/{name}", get(page::asset))
            .route("/lottery/{campaign}", get(page::page))
            .route("/lottery/{campaign}/", get(page::page_in_folder))
            .route("/lottery/{campaign}/status.json", get(handlers::status))
            .route("/lottery/{campaign}/mine.json", get(handlers::mine))
            .route("/lottery/{campaign}/audit.json", get(handlers::audit))
            .route("/lottery/{campaign}/draw", post(handlers::draw));
        // A draw takes no header a cross-site form could not send: the browser's label is what refuses those.
        with_common_layers(routes, CrossSite::Refused).with_state(state)
    }
}

/// The OpenAPI description of this router's JSON API, from its handlers and the types of their answers (the page
/// and its assets are left out). [`crate::app::openapi`] puts the three domains' together.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(handlers::status, handlers::mine, handlers::draw, handlers::audit))]
    struct Api;
    <Api as utoipa::OpenApi>::openapi()
}
