//! The calls `docs/java.md` shows a Java shop, made as it shows them: the user's cookie computed as its Java code
//! computes it (HMAC-MD5 over `seckillUser:<id>`, lowercase hex), the headers it sends and the fields it reads.

use hmac::{Hmac, KeyInit, Mac};
use hyper::{Method, StatusCode};
use seckill::exchange::{Exchange, NewGift};
use seckill::lottery::Lottery;

use crate::common::http::{call, serve, user_cookies};
use crate::common::{SECRET, migrated_db, phone, service};

/// `seckillUserCookie(userId, secret)` of the page, in Rust.
fn java_cookie(user_id: i64, secret: &str) -> String {
    let mut mac = Hmac::<md5::Md5>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("seckillUser:{user_id}").as_bytes());
    format!("seckillUser={user_id}.{}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn the_calls_the_java_page_shows_answer_as_it_says() {
    let db = migrated_db().await;
    let exchange = Exchange::new(db.pool().clone());
    exchange.grant(42, 100, "welcome").await.unwrap();
    let gift = exchange.create_gift(&NewGift { name: "mug".into(), cost: 30, stock: 5 }).await.unwrap().gift_id;
    let lottery = Lottery::new(db.pool().clone());
    let campaign = crate::common::open_campaign(&lottery, "pen", 5).await;
    let sale = service(&db);
    let item = crate::common::open_item(&sale, 3).await.seckill_id;
    let app = seckill::exchange::http::router(exchange, user_cookies())
        .merge(seckill::lottery::http::router(lottery, user_cookies()))
        .merge(seckill::seckill::http::router(sale));
    let served = serve(app).await;
    let at = served.address;
    let cookie = java_cookie(42, SECRET);

    // An exchange with a key, then the same request again: the first outcome, flagged repeat.
    let path = format!("/exchange/gifts/{gift}/exchange");
    let headers = [("Cookie", cookie.as_str()), ("Idempotency-Key", "3f1c7d2e-5b8a-4c1e-9f00-7a6b5c4d3e2f")];
    let first = call(at, Method::POST, &path, &headers, Vec::new()).await;
    assert_eq!((first.status, first.json["success"].as_bool()), (StatusCode::OK, Some(true)), "{}", first.text);
    assert_eq!(first.json["data"]["outcome"], "exchanged", "{}", first.text);
    let again = call(at, Method::POST, &path, &headers, Vec::new()).await;
    assert_eq!(
        (again.json["data"]["outcome"].as_str(), again.json["data"]["repeat"].as_bool()),
        (Some("exchanged"), Some(true))
    );

    // A draw, and drawing again: the last result with repeat.
    let draw_path = format!("/lottery/{campaign}/draw");
    let drew = call(at, Method::POST, &draw_path, &[("Cookie", &cookie)], Vec::new()).await;
    assert_eq!(drew.json["data"]["outcome"], "won", "{}", drew.text);
    let redrew = call(at, Method::POST, &draw_path, &[("Cookie", &cookie)], Vec::new()).await;
    assert_eq!(
        (redrew.json["data"]["outcome"].as_str(), redrew.json["data"]["repeat"].as_bool()),
        (Some("won"), Some(true))
    );

    // The course's two calls: the exposer's md5, then the execution.
    let kill_phone = format!("killPhone={}", phone(1));
    let exposer =
        call(at, Method::POST, &format!("/seckill/{item}/exposer"), &[("Cookie", &kill_phone)], Vec::new()).await;
    let md5 = exposer.json["data"]["md5"].as_str().unwrap_or_default().to_string();
    assert_eq!(exposer.json["data"]["exposed"], true, "{}", exposer.text);
    let execution =
        call(at, Method::POST, &format!("/seckill/{item}/{md5}/execution"), &[("Cookie", &kill_phone)], Vec::new())
            .await;
    assert_eq!(execution.json["data"]["state"], 1, "{}", execution.text);

    // A cookie signed with another secret signs no one in.
    let forged = java_cookie(42, "not-the-server-secret-0123456789");
    let refused = call(at, Method::POST, &draw_path, &[("Cookie", &forged)], Vec::new()).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
}
