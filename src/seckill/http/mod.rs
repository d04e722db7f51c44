//! The seckill's HTTP side: an axum [`Router`] with the classic course's API and a sale page, for a host app to
//! merge.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/seckill/list` | the sale page (HTML) |
//! | GET | `/seckill/list.json` | `{success, data: [Item]}` |
//! | GET | `/seckill/{id}/detail` | the sale page for one item (HTML) |
//! | GET | `/seckill/{id}/detail.json` | `{success, data: Item}` |
//! | GET | `/seckill/time/now` | `{success, data: epoch ms}` (the database's clock) |
//! | POST | `/seckill/{id}/exposer` | `{success, data: Exposer}`; buyer from the `killPhone` cookie |
//! | POST | `/seckill/{id}/{md5}/execution` | `{success, data: SeckillExecution}`; buyer from `killPhone` |
//! | GET | `/seckill/{id}/result` | `{success, data: SuccessKilled or null}`: did my seckill go through? |
//!
//! An execution's answer also sets the `seckillGtid` cookie to the GTID of its commit, and `/result` reads after
//! it: on a replica that has applied it, else on the primary, so a buyer told "success" by any instance is
//! never told "no" by another (see [`GTID_COOKIE`](crate::http::GTID_COOKIE)). Without the cookie, `/result` reads the primary.
//!
//! As in the classic API, every execution outcome that has a state code (1, 0, -1, -2, -3) is HTTP 200 with
//! `success: true` and the state in `data`, so the classic page shows each one. What the classic API has no
//! state for is a JSON error in the same envelope with a real status: a malformed id or cookie 400, a missing
//! cookie 401 ("未注册"), an unknown item 404 (details and exposer), a body over the limit 413, a buyer or
//! item over its rate limit 429 (see [`AdmissionConfig`]), an unreachable database 503, and a seckill whose
//! outcome is in doubt 503 naming `/seckill/{id}/result`. JSON says `charset=utf-8`. The router sets no
//! fallback and no logging layer: the host app owns those.
//!
//! The buyer is the classic `killPhone` cookie's phone ([`PHONE_COOKIE`]), not a signed-in user: the classic
//! page asks for the phone and keeps it there. Every other piece (the envelope, errors and layers) is the one
//! all the crate's routers share ([`crate::http`]). In front of several instances, a load balancer may answer
//! executions of closed items itself ([`balancer_interception`]).
//!
//! ```no_run
//! # async fn run(service: seckill::seckill::Seckill) -> std::io::Result<()> {
//! let app = axum::Router::new().merge(seckill::seckill::http::router(service));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

mod admission;
mod balancer;
pub mod detail_cache;
mod extract;
mod handlers;
mod page;
mod views;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};

pub use admission::shared_limit;
pub use admission::{AdmissionConfig, Rate};
pub use balancer::balancer_interception;
pub use detail_cache::DetailCache;
pub use extract::PHONE_COOKIE;
pub use views::{Execution, Exposer, SuccessKilledView};

use super::{Item, Seckill, SeckillError};
use crate::http::{ApiError, CrossSite, with_common_layers};
use crate::shared_state::BoundedRedis;

/// The execution's route, as axum matches it (and as request counts name it).
pub const EXECUTION_ROUTE: &str = "/seckill/{id}/{md5}/execution";

/// The router with default settings.
pub fn router(service: Seckill) -> Router {
    SeckillHttp::new(service).router()
}

/// Builds the router.
#[derive(Debug, Clone)]
pub struct SeckillHttp {
    state: AppState,
    limits: AdmissionConfig,
    /// Where the buyer's limit is shared, and under which prefix.
    shared_limits: Option<(BoundedRedis, String)>,
}

#[derive(Debug, Clone)]
pub(crate) struct AppState {
    service: Seckill,
    detail_cache: Option<DetailCache>,
    /// The item shown in a success answer, remembered for a moment: a hot item's winners would otherwise cost
    /// the database one extra read per sale, just to decorate the answer.
    shown_items: Arc<Mutex<HashMap<i64, ShownItem>>>,
    admission: Arc<admission::Admission>,
}

/// An item remembered for decorating answers, and since when.
type ShownItem = (Instant, Option<Item>);

/// How long [`AppState::shown_item`] remembers an item.
const SHOWN_ITEM_TTL: Duration = Duration::from_secs(1);

/// The most a success answer waits for its decoration (the item it shows).
const DECORATION_BUDGET: Duration = Duration::from_millis(50);

impl AppState {
    /// The item for decorating a success answer, within [`DECORATION_BUDGET`]: from a moment ago if possible,
    /// else as [`AppState::item`]. A decoration never delays or fails an answer: the sale is committed, so a
    /// slow cache or database just means the answer goes out without it.
    async fn shown_item(&self, seckill_id: i64) -> Option<Item> {
        tokio::time::timeout(DECORATION_BUDGET, self.remembered_or_read(seckill_id)).await.ok().flatten()
    }

    async fn remembered_or_read(&self, seckill_id: i64) -> Option<Item> {
        let remembered = {
            let items = self.shown_items.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            items.get(&seckill_id).filter(|(at, _)| at.elapsed() < SHOWN_ITEM_TTL).map(|(_, item)| item.clone())
        };
        if let Some(item) = remembered {
            return item;
        }
        // A failure to read it must not hide a completed sale: the answer goes out without it.
        let item = self.item(seckill_id).await.ok()?;
        let mut items = self.shown_items.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        items.retain(|_, (at, _)| at.elapsed() < SHOWN_ITEM_TTL);
        items.insert(seckill_id, (Instant::now(), item.clone()));
        item
    }

    /// One item, from the cache when there is one. Only for display: stock decisions never read the cache.
    async fn item(&self, seckill_id: i64) -> Result<Option<Item>, SeckillError> {
        match &self.detail_cache {
            Some(cache) => cache.get(&self.service, seckill_id).await,
            None => self.service.get(seckill_id).await,
        }
    }
}

impl SeckillHttp {
    pub fn new(service: Seckill) -> Self {
        let admission = Arc::new(admission::Admission::new(AdmissionConfig::default()));
        let state = AppState { service, detail_cache: None, shown_items: Arc::default(), admission };
        SeckillHttp { state, limits: AdmissionConfig::default(), shared_limits: None }
    }

    /// Serves item details through a Redis cache (cache-aside, short TTL).
    pub fn detail_cache(mut self, cache: DetailCache) -> Self {
        self.state.detail_cache = Some(cache);
        self
    }

    /// Rate limits on the execution endpoint (default: 5/s per buyer with bursts of 10, no per-item limit).
    pub fn admission(mut self, config: AdmissionConfig) -> Self {
        self.limits = config;
        self
    }

    /// Holds the per-buyer limit across every instance that shares `redis` (one atomic script per execution,
    /// keys `{prefix}rate:buyer:{phone}`, prefix `seckill:` by default; see [`shared_limit`]), instead of per
    /// process. When Redis fails, each process's own limit applies: nobody is refused because Redis is down.
    pub fn shared_buyer_limit(mut self, redis: BoundedRedis, prefix: Option<&str>) -> Self {
        self.shared_limits = Some((redis, prefix.unwrap_or(shared_limit::DEFAULT_KEY_PREFIX).to_string()));
        self
    }

    /// The router.
    pub fn router(mut self) -> Router {
        self.state.admission = Arc::new(match self.shared_limits {
            Some((redis, prefix)) => admission::Admission::shared(self.limits, |rate| {
                admission::shared_limit::SharedBuyerLimit::new(redis, prefix, rate)
            }),
            None => admission::Admission::new(self.limits),
        });
        let routes = Router::new()
            .route("/seckill/list", get(page::list_page))
            .route("/seckill/list.json", get(handlers::list))
            .route("/seckill/time/now", get(handlers::now))
            .route("/seckill/assets/{name}", get(page::asset))
            .route("/seckill/{id}/detail", get(page::detail_page))
            .route("/seckill/{id}/detail.json", get(handlers::detail))
            .route("/seckill/{id}/exposer", post(handlers::exposer))
            .route("/seckill/{id}/result", get(handlers::result))
            .route(EXECUTION_ROUTE, post(handlers::execution));
        // As the classic API: no cross-site refusal. Its buyer is a phone in a cookie, not a signed-in session,
        // and the classic page and clients post without any header a refusal could rely on.
        with_common_layers(routes, CrossSite::Allowed).with_state(self.state)
    }
}

impl From<SeckillError> for ApiError {
    fn from(error: SeckillError) -> Self {
        match error {
            SeckillError::NotFound(id) => ApiError::NotFound(format!("no seckill item with id {id}")),
            SeckillError::Database(database) => database.into(),
            SeckillError::InvalidItem(message) => ApiError::BadRequest(message),
            SeckillError::InvalidPhone(phone) => ApiError::BadRequest(phone.to_string()),
        }
    }
}

/// The OpenAPI description of this router's JSON API, from its handlers and the types of their answers (the page
/// and its assets are left out). [`crate::app::openapi`] puts the three domains' together.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        handlers::list,
        handlers::now,
        handlers::detail,
        handlers::exposer,
        handlers::result,
        handlers::execution
    ))]
    struct Api;
    <Api as utoipa::OpenApi>::openapi()
}
