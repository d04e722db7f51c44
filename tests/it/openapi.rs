//! The OpenAPI document `seckill serve` answers at `/openapi.json`: it lists every JSON route the routers have
//! (read from the routers' own source, so a route added without its description fails here), and each route,
//! called as the document describes it, answers one of the statuses it lists, with the fields its schema requires.

use std::collections::BTreeSet;

use hyper::{Method, StatusCode};
use serde_json::Value;

use crate::common::http::{JSON_UTF8, call, serve, signed_in, user_cookies};
use crate::common::{item_with_window, migrated_db, phone, service};

/// The (method, path) of every route a router sends to a handler (pages and assets go to `page::`), from the
/// router's source: `.route("/path", get(handlers::x))`, the path by its constant when it is one.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (file, source) in [
        ("seckill", include_str!("../../src/seckill/http/mod.rs")),
        ("exchange", include_str!("../../src/exchange/http/mod.rs")),
        ("lottery", include_str!("../../src/lottery/http/mod.rs")),
    ] {
        for line in source.lines().map(str::trim).filter(|line| line.starts_with(".route(")) {
            let Some((path, handler)) = line.trim_start_matches(".route(").split_once(", ") else { continue };
            let Some((method, target)) = handler.split_once('(') else { continue };
            if !target.starts_with("handlers::") {
                continue;
            }
            let path = match path.trim_matches('"') {
                "EXECUTION_ROUTE" => seckill::seckill::http::EXECUTION_ROUTE.to_string(),
                path => path.to_string(),
            };
            assert!(path.starts_with('/'), "{file}: a route path: {line}");
            routes.insert((method.to_string(), path));
        }
    }
    routes
}

/// The schema `reference` (`#/components/schemas/X`) points to, or `schema` itself.
fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str().and_then(|reference| reference.strip_prefix("#/components/schemas/")) {
        Some(name) => &document["components"]["schemas"][name],
        None => schema,
    }
}

/// The first object schema in `schema`, looking through `oneOf` (an optional value) and array items.
fn object_schema<'a>(document: &'a Value, schema: &'a Value) -> Option<&'a Value> {
    let schema = resolve(document, schema);
    if schema["properties"].is_object() {
        return Some(schema);
    }
    let inner = schema["oneOf"].as_array().into_iter().flatten().chain(std::iter::once(&schema["items"]));
    inner.filter(|inner| !inner.is_null()).find_map(|inner| object_schema(document, inner))
}

#[tokio::test]
async fn the_document_lists_every_json_route_and_each_answers_as_it_says() {
    let db = migrated_db().await;
    let exchange = seckill::exchange::Exchange::new(db.pool().clone());
    exchange.grant(1, 100, "welcome").await.unwrap();
    let gift = seckill::exchange::NewGift { name: "mug".into(), cost: 10, stock: 5 };
    let gift = exchange.create_gift(&gift).await.unwrap().gift_id;
    let lottery = seckill::lottery::Lottery::new(db.pool().clone());
    let campaign = crate::common::open_campaign(&lottery, "pen", 5).await;
    // Drawn out, so that its seed is revealed and its audit log served.
    for user in 100..105 {
        assert!(lottery.draw(campaign, user).await.unwrap().is_win());
    }
    let (now, hour) = (chrono::Utc::now(), chrono::Duration::hours(1));
    let sale = service(&db);
    let item = item_with_window(&sale, 3, -hour, hour).await.seckill_id;
    let token = sale.signer().sign(item, phone(1), now);
    let app = seckill::seckill::http::router(sale)
        .merge(seckill::exchange::http::router(exchange, user_cookies()))
        .merge(seckill::lottery::http::router(lottery, user_cookies()))
        .merge(seckill::app::openapi_router());
    let served = serve(app).await;

    let answer = call(served.address, Method::GET, seckill::app::OPENAPI_PATH, &[], Vec::new()).await;
    assert_eq!((answer.status, answer.content_type.as_str()), (StatusCode::OK, JSON_UTF8));
    let document = &answer.json;
    assert_eq!(document["openapi"], "3.1.0");
    let described: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(path, operations)| {
            operations.as_object().into_iter().flatten().map(move |(method, _)| (method.clone(), path.clone()))
        })
        .collect();
    assert_eq!(described, routes_in_source(), "the document and the routers list the same JSON routes");

    let (kill_phone, user) = (format!("killPhone={}", phone(1)), signed_in(1));
    for (method, path) in &described {
        let operation = &document["paths"][path][method];
        let concrete = path
            .replace("{md5}", &token)
            .replace("{campaign}", &campaign.to_string())
            .replace("{id}", &if path.starts_with("/exchange") { gift } else { item }.to_string());
        let cookie = if path.starts_with("/seckill") { &kill_phone } else { &user };
        let headers = [("Cookie", cookie.as_str()), ("Idempotency-Key", "openapi-1")];
        let method_of = if method == "post" { Method::POST } else { Method::GET };
        let answer = call(served.address, method_of, &concrete, &headers, Vec::new()).await;
        let status = answer.status.as_u16().to_string();
        assert!(
            operation["responses"][&status].is_object(),
            "{method} {path}: {status} is not documented: {}",
            answer.text
        );
        assert_eq!(answer.status, StatusCode::OK, "{method} {path}: {}", answer.text);
        // The envelope, and in its data every field the data's schema requires.
        let envelope = resolve(document, &operation["responses"]["200"]["content"]["application/json"]["schema"]);
        assert_eq!(answer.json["success"], true, "{method} {path}");
        let data = &answer.json["data"];
        let sample = data.as_array().and_then(|items| items.first()).unwrap_or(data);
        // (null is a documented answer too: no record yet.)
        if let Some(schema) = object_schema(document, &envelope["properties"]["data"]).filter(|_| !sample.is_null()) {
            for field in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                assert!(sample.get(field).is_some(), "{method} {path}: `{field}` missing from {sample}");
            }
        }
    }
}
