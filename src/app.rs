//! The whole app, as `seckill serve` runs it: the three domains side by side, and what a load balancer in front
//! of its instances needs to know of it. The one module that knows every domain; the local servers
//! ([`crate::local`]) are told about the app through here rather than knowing it themselves.

use std::path::PathBuf;

use crate::http::fallbacks::NO_SUCH_ROUTE;
use crate::http::front_door::{Entrance, FrontDoor};
use crate::http::health::{HEALTH_PATH, READY_PATH};
use crate::http::{Envelope, Interception};
use crate::local::cluster::ServedApp;
use crate::prometheus::METRICS_PATH;

/// What a balancer in front of the app may answer itself: executions of closed items, whose closed answer (state
/// 0, 秒杀结束) says nothing about the buyer. Draws are not among them: "all drawn" tells a user that nothing
/// was recorded for them, which is false of a user who drew before, and only an instance can tell them apart.
pub fn balancer_interceptions() -> Vec<Interception> {
    vec![crate::seckill::http::balancer_interception()]
}

/// The landing page's links: the three domains' pages (see [`crate::http::front_door`]).
pub fn front_door() -> FrontDoor {
    FrontDoor::new(vec![
        Entrance {
            title: "秒杀 · Flash sale", path: "/seckill/list", about: "items on sale, a countdown, one click"
        },
        Entrance {
            title: "积分兑换 · Points exchange",
            path: "/exchange",
            about: "your balance, gifts, your exchanges",
        },
        Entrance { title: "抽奖 · Lottery", path: "/lottery/{id}", about: "a campaign by its id: draw, your draws" },
    ])
}

/// The OpenAPI 3.1 description of the JSON API `seckill serve` answers (served at [`OPENAPI_PATH`]): the three
/// domains' routes, their answers in the `{success, data, error}` envelope, and the `seckillUser` cookie the
/// exchange and the lottery read. Clients are generated from it (openapi-generator, for a Java shop).
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
    let mut api = crate::seckill::http::openapi();
    api.merge(crate::exchange::http::openapi());
    api.merge(crate::lottery::http::openapi());
    api.info.title = "seckill".into();
    api.info.version = env!("CARGO_PKG_VERSION").into();
    api.info.description = Some(
        "Flash sales, points exchanges and lotteries. Every answer is the envelope {success, data, error}; what \
         decided nothing is an error with a real status. The exchange and the lottery know the user from the \
         seckillUser cookie: <user id>.<hex HMAC-MD5 of \"seckillUser:<user id>\" keyed with the server's secret>."
            .into(),
    );
    let components = api.components.get_or_insert_with(Default::default);
    let cookie = ApiKey::Cookie(ApiKeyValue::new(crate::http::USER_COOKIE));
    components.add_security_scheme(crate::http::USER_COOKIE, SecurityScheme::ApiKey(cookie));
    api
}

/// Where `seckill serve` answers [`openapi`].
pub const OPENAPI_PATH: &str = "/openapi.json";

/// `GET /openapi.json`: [`openapi`], written once.
pub fn openapi_router() -> axum::Router {
    // The document holds strings, numbers and maps only: writing it cannot fail.
    let json = openapi().to_json().unwrap_or_default();
    axum::Router::new().route(
        OPENAPI_PATH,
        axum::routing::get(move || {
            let json = json.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, crate::http::JSON_UTF8)], json) }
        }),
    )
}

/// The topics of every message the domains produce, which a relay of the app's outbox carries: the points
/// exchange's shipments and the lottery's prizes.
pub fn message_topics() -> Vec<String> {
    vec![crate::exchange::SHIPMENT_TOPIC.to_string(), crate::lottery::PRIZE_TOPIC.to_string()]
}

/// The app's error envelope for a request no instance answered (the balancer's 502 and 504): its outcome is
/// unknown, and the seckill's is told at its result route.
pub fn gateway_error() -> String {
    let message = "no answer from the app: the outcome is unknown (a seckill's is at GET /seckill/{id}/result)";
    // The envelope holds only strings, booleans and nulls: serializing it cannot fail.
    serde_json::to_string(&Envelope::error(message)).unwrap_or_default()
}

/// The app's answer for a route it does not have (404, the body of [`crate::http::with_json_fallbacks`]'s): what a
/// balancer answers for the paths it keeps from the public, so that they look like any unknown route.
pub fn not_found() -> String {
    // As above: serializing the envelope cannot fail.
    serde_json::to_string(&Envelope::error(NO_SUCH_ROUTE)).unwrap_or_default()
}

/// The paths a balancer must never pass on: operational endpoints, which `seckill serve` does not serve on its
/// API's listener anyway (metrics and probes have a listener of their own).
pub fn internal_paths() -> Vec<String> {
    vec![METRICS_PATH.to_string(), HEALTH_PATH.to_string(), READY_PATH.to_string()]
}

/// The app served by `binary`'s `seckill serve`, as a cluster of its instances needs to know it.
pub fn served(binary: impl Into<PathBuf>) -> ServedApp {
    ServedApp {
        binary: binary.into(),
        // The database's clock: an answer proves the instance reaches its database too.
        ready_path: "/seckill/time/now".into(),
        front_page: "/seckill/list".into(),
        interceptions: balancer_interceptions(),
        gateway_error: gateway_error(),
        internal_paths: internal_paths(),
        not_found: not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_error_is_the_apps_error_envelope() {
        let error: serde_json::Value = serde_json::from_str(&gateway_error()).unwrap();
        assert_eq!((error["success"].as_bool(), error["data"].is_null()), (Some(false), true));
        assert!(error["error"].as_str().unwrap().contains("/seckill/{id}/result"));
    }

    #[test]
    fn the_balancers_not_found_is_the_fallbacks_answer() {
        let not_found: serde_json::Value = serde_json::from_str(&not_found()).unwrap();
        assert_eq!(not_found, serde_json::json!({"success": false, "data": null, "error": NO_SUCH_ROUTE}));
    }

    #[test]
    fn every_interception_names_a_key_of_its_own() {
        let interceptions = balancer_interceptions();
        let keys: std::collections::HashSet<_> = interceptions.iter().map(|rule| rule.key.as_str()).collect();
        assert_eq!(keys.len(), interceptions.len());
    }
}
