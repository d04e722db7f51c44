//! The HTTP API with a real client against a served router: the classic shapes, and a JSON 4xx or 503 for
//! every kind of bad input or outage, with nothing written.

use std::time::Duration;

use hyper::{Method, StatusCode};
use mysql_async::prelude::Queryable;
use seckill::database::ConnectOptions;
use seckill::local::redis::redis_url;
use seckill::seckill::Seckill;
use seckill::seckill::http::{AdmissionConfig, DetailCache, Rate, SeckillHttp, router};

use crate::common::http::serve;
use crate::common::{item_with_window, migrated_db, open_item, phone, service, signer, stock, success_rows};

#[tokio::test(flavor = "multi_thread")]
async fn the_classic_api_sells_one_unit_per_buyer() {
    let db = migrated_db().await;
    let service = service(&db);
    let item = open_item(&service, 5).await;
    let id = item.seckill_id;
    let served = serve(router(service)).await;
    let buyer = phone(1).to_string();

    let list = served.get("/seckill/list.json").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.json["success"], true);
    assert_eq!(list.json["data"][0]["seckillId"], id);
    assert_eq!(list.json["data"][0]["startTime"], item.start_time.timestamp_millis());

    let detail = served.get(&format!("/seckill/{id}/detail.json")).await;
    assert_eq!(
        (detail.json["data"]["name"].as_str(), detail.json["data"]["number"].as_i64()),
        (Some("test item"), Some(5))
    );

    let now = served.get("/seckill/time/now").await;
    let server_now = now.json["data"].as_i64().unwrap();
    assert!((server_now - chrono::Utc::now().timestamp_millis()).abs() < 60_000);

    let exposer = served.post(&format!("/seckill/{id}/exposer"), Some(&buyer)).await;
    assert_eq!(exposer.status, StatusCode::OK, "{}", exposer.text);
    let data = &exposer.json["data"];
    assert_eq!((data["exposed"].as_bool(), data["seckillId"].as_i64()), (Some(true), Some(id)));
    let md5 = data["md5"].as_str().unwrap();

    let execution = served.post(&format!("/seckill/{id}/{md5}/execution"), Some(&buyer)).await;
    assert_eq!(execution.status, StatusCode::OK);
    let data = &execution.json["data"];
    assert_eq!((data["state"].as_i64(), data["stateInfo"].as_str()), (Some(1), Some("秒杀成功")));
    assert_eq!(data["successKilled"]["userPhone"], phone(1).get());
    assert_eq!(data["successKilled"]["seckill"]["seckillId"], id);

    let again = served.post(&format!("/seckill/{id}/{md5}/execution"), Some(&buyer)).await;
    assert_eq!((again.status, again.json["success"].as_bool()), (StatusCode::OK, Some(true)));
    assert_eq!(again.json["data"]["state"], -1);
    assert_eq!(again.json["data"]["stateInfo"], "重复秒杀");
    assert_eq!(success_rows(db.pool(), id).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_sale_exposes_the_clock_for_a_countdown() {
    let db = migrated_db().await;
    let service = service(&db);
    let early = item_with_window(&service, 5, chrono::Duration::hours(1), chrono::Duration::hours(2)).await;
    let served = serve(router(service)).await;
    let exposer = served.post(&format!("/seckill/{}/exposer", early.seckill_id), Some(&phone(1).to_string())).await;
    let data = &exposer.json["data"];
    assert_eq!(data["exposed"], false);
    assert_eq!(data["md5"], serde_json::Value::Null);
    assert!(data["now"].as_i64().unwrap() < data["start"].as_i64().unwrap());
    assert_eq!(data["start"], early.start_time.timestamp_millis());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_json_4xx_and_writes_nothing() {
    let db = migrated_db().await;
    let service = service(&db);
    let item = open_item(&service, 5).await;
    let id = item.seckill_id;
    let good = service.signer().sign(id, phone(1), chrono::Utc::now());
    let someone_elses = service.signer().sign(id, phone(2), chrono::Utc::now());
    let served = serve(router(service)).await;
    let me = phone(1).to_string();
    let long = "9".repeat(300);
    let cases: Vec<(Method, String, Option<&str>, StatusCode)> = vec![
        (Method::GET, "/seckill/abc/detail.json".into(), None, StatusCode::BAD_REQUEST),
        (Method::GET, "/seckill/-1/detail.json".into(), None, StatusCode::BAD_REQUEST),
        (Method::GET, "/seckill/99999999999999999999/detail.json".into(), None, StatusCode::BAD_REQUEST),
        (Method::GET, "/seckill/9223372036854775807/detail.json".into(), None, StatusCode::NOT_FOUND),
        (Method::GET, "/seckill/abc/detail".into(), None, StatusCode::BAD_REQUEST),
        (Method::POST, format!("/seckill/{id}/exposer"), None, StatusCode::UNAUTHORIZED),
        (Method::POST, format!("/seckill/{id}/exposer"), Some("12345"), StatusCode::BAD_REQUEST),
        (Method::POST, "/seckill/424242/exposer".into(), Some(&me), StatusCode::NOT_FOUND),
        (Method::POST, format!("/seckill/{id}/{good}/execution"), None, StatusCode::UNAUTHORIZED),
        (Method::POST, format!("/seckill/{id}/{good}/execution"), Some("1380013800x"), StatusCode::BAD_REQUEST),
        (Method::POST, format!("/seckill/{id}/{long}/execution"), Some(&me), StatusCode::BAD_REQUEST),
        (Method::POST, format!("/seckill/{long}/{good}/execution"), Some(&me), StatusCode::BAD_REQUEST),
        (Method::POST, format!("/seckill/%ZZ/{good}/execution"), Some(&me), StatusCode::BAD_REQUEST),
    ];
    for (method, path, cookie, expected) in cases {
        let answer = served.request(method.clone(), &path, cookie, Vec::new()).await;
        assert_eq!(answer.status, expected, "{method} {path} {cookie:?}: {}", answer.text);
        assert!(answer.content_type.starts_with("application/json"), "{path}: {}", answer.content_type);
        assert_eq!(answer.json["success"], false, "{path}");
        assert!(answer.json["error"].is_string(), "{path}");
    }
    let missing_cookie = served.post(&format!("/seckill/{id}/{good}/execution"), None).await;
    assert_eq!(missing_cookie.json["error"], "未注册");
    // A bad signature is the classic -3, answered as the course does: 200, success, the state in data.
    for token in [someone_elses.as_str(), "deadbeef"] {
        let forged = served.post(&format!("/seckill/{id}/{token}/execution"), Some(&me)).await;
        assert_eq!((forged.status, forged.json["success"].as_bool()), (StatusCode::OK, Some(true)), "{token}");
        assert_eq!(
            (forged.json["data"]["state"].as_i64(), forged.json["data"]["stateInfo"].as_str()),
            (Some(-3), Some("数据篡改"))
        );
    }
    let oversized =
        served.request(Method::POST, &format!("/seckill/{id}/exposer"), Some(&me), vec![b'x'; 64 * 1024]).await;
    assert_eq!(oversized.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(oversized.json["success"], false);
    assert_eq!(success_rows(db.pool(), id).await, 0);
    assert_eq!(stock(db.pool(), id).await, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_is_a_json_503() {
    // Nothing listens on port 1: every connection attempt is refused at once.
    let pool = ConnectOptions::new("mysql://root@127.0.0.1:1/none").build_pool().unwrap();
    let service = Seckill::new(pool, signer());
    let token = service.signer().sign(1000, phone(1), chrono::Utc::now());
    let served = serve(router(service)).await;
    let me = phone(1).to_string();
    for (method, path) in [
        (Method::GET, "/seckill/list.json".to_string()),
        (Method::GET, "/seckill/1000/detail.json".to_string()),
        (Method::GET, "/seckill/time/now".to_string()),
        (Method::POST, "/seckill/1000/exposer".to_string()),
        (Method::POST, format!("/seckill/1000/{token}/execution")),
    ] {
        let answer = served.request(method, &path, Some(&me), Vec::new()).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {}", answer.text);
        assert_eq!(answer.json["success"], false);
        assert!(!answer.text.contains("127.0.0.1:1"), "no internal detail leaks: {}", answer.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_and_its_assets_are_served() {
    let db = migrated_db().await;
    let served = serve(router(service(&db))).await;
    let list = served.get("/seckill/list").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.content_type.starts_with("text/html"));
    assert!(list.text.contains("src=\"assets/app.js?v="));
    let detail = served.get("/seckill/1000/detail").await;
    assert!(detail.text.contains("src=\"../assets/app.js?v="));
    let script = served.get("/seckill/assets/app.js").await;
    assert!(script.content_type.starts_with("text/javascript") && script.text.contains("killPhone"));
    assert_eq!(served.get("/seckill/assets/secret.txt").await.status, StatusCode::NOT_FOUND);
}

/// Questions on the pool's only connection: how many statements the service sent.
async fn questions(pool: &mysql_async::Pool) -> i64 {
    let mut conn = pool.get_conn().await.unwrap();
    let row: Option<(String, i64)> = conn.query_first("SHOW SESSION STATUS LIKE 'Questions'").await.unwrap();
    row.unwrap().1
}

#[tokio::test(flavor = "multi_thread")]
async fn details_come_from_redis_for_a_short_ttl_and_a_cold_key_loads_once() {
    let db = migrated_db().await;
    let pool = ConnectOptions::new(db.url()).max_connections(1).build_pool().unwrap();
    let service = Seckill::new(pool.clone(), signer());
    let item = open_item(&service, 5).await;
    let id = item.seckill_id;
    let cache = DetailCache::connect(&redis_url().unwrap())
        .await
        .unwrap()
        .ttl(Duration::from_millis(800))
        .key_prefix(format!("seckill-test:{}:", db.name()));
    let served = std::sync::Arc::new(serve(SeckillHttp::new(service).detail_cache(cache).router()).await);

    let before = questions(&pool).await;
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let served = served.clone();
            tokio::spawn(async move { served.get(&format!("/seckill/{id}/detail.json")).await })
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.await.unwrap().json["data"]["number"], 5);
    }
    assert_eq!(questions(&pool).await - before, 2, "one load for 50 concurrent cold reads, plus the SHOW");

    let mut conn = db.pool().get_conn().await.unwrap();
    conn.exec_drop("UPDATE seckill SET name = 'renamed', number = 0 WHERE seckill_id = ?", (id,)).await.unwrap();
    drop(conn);
    assert_eq!(served.get(&format!("/seckill/{id}/detail.json")).await.json["data"]["name"], "test item", "cached");

    // Stock decisions never read the cache: it still shows 5 units, the database says none.
    let me = phone(1).to_string();
    let md5 = served.post(&format!("/seckill/{id}/exposer"), Some(&me)).await.json["data"]["md5"]
        .as_str()
        .unwrap()
        .to_string();
    let execution = served.post(&format!("/seckill/{id}/{md5}/execution"), Some(&me)).await;
    assert_eq!(execution.json["data"]["state"], 0);

    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(served.get(&format!("/seckill/{id}/detail.json")).await.json["data"]["name"], "renamed", "expired");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_buyer_or_one_item_over_its_rate_gets_429_and_nothing_written() {
    let db = migrated_db().await;
    let service = service(&db);
    let item = open_item(&service, 1000).await;
    let id = item.seckill_id;
    let sign = |n: i64| service.signer().sign(id, phone(n), chrono::Utc::now());
    let limits = AdmissionConfig { per_user: Some(Rate::new(0.1, 3.0)), per_item: None };
    let served = serve(SeckillHttp::new(service.clone()).admission(limits).router()).await;
    let flood = sign(1);
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses
            .push(served.post(&format!("/seckill/{id}/{flood}/execution"), Some(&phone(1).to_string())).await.status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 3, "the burst: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count(), 7);
    let other = served.post(&format!("/seckill/{id}/{}/execution", sign(2)), Some(&phone(2).to_string())).await;
    assert_eq!(other.json["data"]["state"], 1, "another buyer is not held back");
    // A forged signature does not spend the buyer's bucket.
    for _ in 0..5 {
        let forged = served.post(&format!("/seckill/{id}/{}/execution", sign(3)), Some(&phone(4).to_string())).await;
        assert_eq!((forged.status, forged.json["data"]["state"].as_i64()), (StatusCode::OK, Some(-3)));
    }
    let genuine = served.post(&format!("/seckill/{id}/{}/execution", sign(4)), Some(&phone(4).to_string())).await;
    assert_eq!(genuine.json["data"]["state"], 1);

    let item_limited = serve(
        SeckillHttp::new(service.clone())
            .admission(AdmissionConfig { per_user: None, per_item: Some(Rate::new(0.1, 5.0)) })
            .router(),
    )
    .await;
    let mut admitted = 0;
    for n in 100..120 {
        let answer =
            item_limited.post(&format!("/seckill/{id}/{}/execution", sign(n)), Some(&phone(n).to_string())).await;
        match answer.status {
            StatusCode::OK => admitted += 1,
            status => {
                assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
                assert_eq!(answer.json["success"], false);
            }
        }
    }
    assert_eq!(admitted, 5);
    assert_eq!(success_rows(db.pool(), id).await, 1 + 1 + 1 + 5, "only admitted requests wrote");
}
