//! `GET /healthz` and `GET /readyz`, for whatever supervises the process (Kubernetes probes, a balancer's health
//! check, systemd or a script): served beside the metrics on the management listener, never on the public one.
//!
//! - `/healthz` (liveness) answers 200 while the process serves at all, and checks nothing else: a database
//!   that is down is no reason to restart this process.
//! - `/readyz` (readiness) answers 200 when a request could be served now: the database answers within
//!   [`READY_TIMEOUT`] and its schema is this build's (what `seckill status` calls in sync; an account that
//!   cannot read the procedures' definitions reports it "not checked"); 503 otherwise. Redis,
//!   when configured, is reported but never makes the process unready: every path that uses it falls back to the
//!   database.
//!
//! Both answer JSON: `{"ready": true, "checks": {"database": "ok", "schema": "in sync", "redis": "ok"}}`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mysql_async::Pool;
use mysql_async::prelude::Queryable;
use serde_json::{Value, json};

use super::JSON_UTF8;
use crate::database::acquire;
use crate::migrate::Migrator;
use crate::shared_state::BoundedRedis;

/// The liveness route.
pub const HEALTH_PATH: &str = "/healthz";
/// The readiness route.
pub const READY_PATH: &str = "/readyz";
/// How long each check of `/readyz` may take: a probe must answer before its own timeout (1 s by default in
/// Kubernetes, so a slower check reads as a failure anyway).
pub const READY_TIMEOUT: Duration = Duration::from_millis(900);

/// What `/readyz` checks.
#[derive(Clone, Debug)]
pub struct Readiness {
    pool: Pool,
    migrator: Arc<Migrator>,
    redis: Option<BoundedRedis>,
}

impl Readiness {
    /// Checks the database behind `pool` against `migrator`'s files.
    pub fn new(pool: Pool, migrator: Migrator) -> Self {
        Readiness { pool, migrator: Arc::new(migrator), redis: None }
    }

    /// Reports Redis too.
    pub fn with_redis(mut self, redis: BoundedRedis) -> Self {
        self.redis = Some(redis);
        self
    }

    /// Whether a request could be served now, and each check's result.
    pub async fn check(&self) -> (bool, Value) {
        let database = bounded(async {
            let mut conn = acquire(&self.pool).await.map_err(|e| e.to_string())?;
            conn.query_drop("DO 1").await.map_err(|e| e.to_string())
        })
        .await;
        // The schema is read only from a database that answers, so that a down database costs one timeout. An
        // account that cannot read the procedures' definitions cannot check it: said, and not held against it.
        let schema = match &database {
            Ok(()) => match tokio::time::timeout(READY_TIMEOUT, self.migrator.status(&self.pool)).await {
                Ok(Ok(status)) if status.is_in_sync() => Ok("in sync".to_string()),
                Ok(Ok(status)) => Err(format!("not in sync: {}", status.summary())),
                Ok(Err(error)) => Ok(format!("not checked: {error}")),
                Err(_) => Err(format!("no answer within {READY_TIMEOUT:?}")),
            },
            Err(_) => Err("not checked: the database does not answer".to_string()),
        };
        let redis = match &self.redis {
            None => "not configured".to_string(),
            Some(redis) => {
                let mut conn = redis.connection();
                let ping = redis::cmd("PING");
                match redis.bounded("readiness", ping.query_async::<String>(&mut conn)).await {
                    Ok(_) => "ok".to_string(),
                    Err(fault) => format!("failing, the database answers in its place: {fault}"),
                }
            }
        };
        let ready = database.is_ok() && schema.is_ok();
        let checks = json!({
            "database": database.map_or_else(|error| error, |()| "ok".to_string()),
            "schema": schema.unwrap_or_else(|error| error),
            "redis": redis,
        });
        (ready, checks)
    }
}

/// Runs a check within [`READY_TIMEOUT`].
async fn bounded(check: impl Future<Output = Result<(), String>>) -> Result<(), String> {
    tokio::time::timeout(READY_TIMEOUT, check)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {READY_TIMEOUT:?}")))
}

/// `/healthz` and `/readyz`, to merge into the management listener's router.
pub fn router(readiness: Readiness) -> Router {
    Router::new()
        .route(HEALTH_PATH, get(|| async { answer(StatusCode::OK, &json!({"status": "up"})) }))
        .route(READY_PATH, get(ready))
        .with_state(readiness)
}

async fn ready(State(readiness): State<Readiness>) -> Response {
    let (ready, checks) = readiness.check().await;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    answer(status, &json!({"ready": ready, "checks": checks}))
}

/// JSON saying `charset=utf-8`, as every other answer.
fn answer(status: StatusCode, body: &Value) -> Response {
    (status, [(CONTENT_TYPE, JSON_UTF8)], body.to_string()).into_response()
}
