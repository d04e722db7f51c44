//! The points exchange's HTTP side with a real client against a served router: the API end to end (a retry with
//! the same `Idempotency-Key` answers the first outcome and pays once, refusals are 200s that say so), a JSON
//! 4xx for every missing or bad input with nothing written, a JSON 503 for an outage and for an outcome in
//! doubt, and the page in headless Chromium. Writes a screenshot to `target/e2e-exchange-page.png`.

use std::net::SocketAddr;
use std::time::Duration;

use fantoccini::Locator;
use hyper::header::COOKIE;
use hyper::{Method, StatusCode};
use mysql_async::Pool;
use mysql_async::prelude::Queryable;
use seckill::database::ConnectOptions;
use seckill::exchange::http::{IDEMPOTENCY_KEY, SignedUserCookie, USER_COOKIE, router};
use seckill::exchange::{Books, Exchange, Gift, NewGift};
use serde_json::json;

use crate::common::browser::{
    ChromeDriver, browser, eventually, open_with_cookie, profile_dir, save_screenshot, text_of,
};
use crate::common::http::{Answer, JSON_UTF8, assert_error, call, serve, signed_in, user_cookies};
use crate::common::{RowLock, connection_waiting_behind, count, migrated_db};

/// `GET path` as `user`.
async fn get_as(address: SocketAddr, path: &str, user: i64) -> Answer {
    call(address, Method::GET, path, &[(COOKIE.as_str(), &signed_in(user))], Vec::new()).await
}

/// `POST /exchange/gifts/{gift}/exchange` as `user` under `key`.
async fn exchange(address: SocketAddr, user: i64, gift: &str, key: &str) -> Answer {
    let path = format!("/exchange/gifts/{gift}/exchange");
    call(address, Method::POST, &path, &[(COOKIE.as_str(), &signed_in(user)), (IDEMPOTENCY_KEY, key)], Vec::new()).await
}

async fn new_gift(service: &Exchange, name: &str, cost: i64, stock: i32) -> Gift {
    service.create_gift(&NewGift { name: name.into(), cost, stock }).await.unwrap()
}

async fn assert_books(pool: &Pool) {
    let books = Books::read(pool).await.unwrap();
    books.check().unwrap_or_else(|problems| panic!("the books do not balance: {problems}"));
}

/// A decided exchange's data: outcome, exchange id, balance after, repeat.
fn decided(answer: &Answer) -> (&str, Option<i64>, Option<i64>, bool) {
    assert_eq!((answer.status, answer.json["success"].as_bool()), (StatusCode::OK, Some(true)), "{}", answer.text);
    assert_eq!(answer.content_type, JSON_UTF8);
    let data = &answer.json["data"];
    (
        data["outcome"].as_str().unwrap(),
        data["exchangeId"].as_i64(),
        data["balanceAfter"].as_i64(),
        data["repeat"].as_bool().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_exchanges_once_per_key_and_answers_refusals_as_outcomes() {
    let db = migrated_db().await;
    let service = Exchange::new(db.pool().clone());
    service.grant(1, 100, "welcome").await.unwrap();
    let mug = new_gift(&service, "马克杯 Mug", 30, 5).await.gift_id.to_string();
    let tv = new_gift(&service, "电视 TV", 500, 5).await.gift_id.to_string();
    let pen = new_gift(&service, "笔 Pen", 10, 0).await.gift_id.to_string();
    let served = serve(router(service.clone(), user_cookies())).await;
    let at = served.address;

    let gifts = call(at, Method::GET, "/exchange/gifts.json", &[], Vec::new()).await;
    assert_eq!((gifts.status, gifts.content_type.as_str()), (StatusCode::OK, JSON_UTF8), "no user needed");
    let catalogue = gifts.json["data"].as_array().unwrap();
    assert_eq!(catalogue.len(), 3);
    assert_eq!(catalogue[0]["giftId"].to_string(), mug);
    assert_eq!((catalogue[0]["name"].as_str(), catalogue[0]["cost"].as_i64()), (Some("马克杯 Mug"), Some(30)));
    assert_eq!((catalogue[0]["stock"].as_i64(), catalogue[2]["stock"].as_i64()), (Some(5), Some(0)));

    let balance = get_as(at, "/exchange/balance.json", 1).await;
    assert_eq!((balance.status, balance.content_type.as_str()), (StatusCode::OK, JSON_UTF8));
    assert_eq!(balance.json["data"], json!({"userId": 1, "balance": 100}));

    let first = exchange(at, 1, &mug, "k-1").await;
    let (outcome, exchange_id, balance_after, repeat) = decided(&first);
    assert_eq!((outcome, balance_after, repeat), ("exchanged", Some(70), false));
    assert_eq!(first.json["data"]["giftId"].to_string(), mug, "the answer names its gift");
    let exchange_id = exchange_id.unwrap();
    let again = exchange(at, 1, &mug, "k-1").await;
    assert_eq!(decided(&again), ("exchanged", Some(exchange_id), Some(70), true), "the first outcome, once");
    assert_eq!(get_as(at, "/exchange/balance.json", 1).await.json["data"]["balance"], 70);
    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM credit_exchange WHERE user_id = 1").await, 1);

    assert_eq!(decided(&exchange(at, 1, &tv, "k-2").await), ("not_enough_points", None, None, false));
    assert_eq!(decided(&exchange(at, 1, &tv, "k-2").await), ("not_enough_points", None, None, true));
    assert_eq!(decided(&exchange(at, 1, &pen, "k-3").await), ("out_of_stock", None, None, false));
    assert_eq!(decided(&exchange(at, 1, "999999", "k-4").await), ("unknown_gift", None, None, false));

    // Never granted: a balance of null, not 0, and its exchange is refused as an unknown user. Keys are per user,
    // so user 1's `k-1` is another request.
    assert_eq!(get_as(at, "/exchange/balance.json", 2).await.json["data"], json!({"userId": 2, "balance": null}));
    assert_eq!(decided(&exchange(at, 2, &mug, "k-1").await), ("unknown_user", None, None, false));

    let mine = get_as(at, "/exchange/mine.json", 1).await;
    assert_eq!((mine.status, mine.content_type.as_str()), (StatusCode::OK, JSON_UTF8));
    let data = &mine.json["data"];
    assert_eq!((data["userId"].as_i64(), data["balance"].as_i64()), (Some(1), Some(70)));
    let exchanges = data["exchanges"].as_array().unwrap();
    assert_eq!(exchanges.len(), 1);
    assert_eq!(exchanges[0]["exchangeId"], exchange_id);
    assert_eq!(exchanges[0]["giftId"].to_string(), mug);
    assert_eq!((exchanges[0]["points"].as_i64(), exchanges[0]["requestId"].as_str()), (Some(30), Some("k-1")));
    assert_eq!(exchanges[0]["shipment"], "pending", "not relayed yet");
    let ledger = data["ledger"].as_array().unwrap();
    let entries: Vec<_> = ledger
        .iter()
        .map(|entry| (entry["delta"].as_i64(), entry["balanceAfter"].as_i64(), entry["reason"].as_str()))
        .collect();
    assert_eq!(entries, [(Some(-30), Some(70), Some("exchange")), (Some(100), Some(100), Some("grant"))]);
    assert_eq!(ledger[0]["reference"], exchange_id.to_string());

    // The warehouse's callback marks the message consumed: the shipment was requested.
    let mut conn = db.pool().get_conn().await.unwrap();
    conn.exec_drop(
        "UPDATE message_outbox SET state = 'consumed', consumed_at = NOW(3) WHERE business_key = ?",
        (exchange_id.to_string(),),
    )
    .await
    .unwrap();
    let mine = get_as(at, "/exchange/mine.json", 1).await;
    assert_eq!(mine.json["data"]["exchanges"][0]["shipment"], "consumed");
    assert_books(db.pool()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_or_bad_identity_keys_and_gift_ids_are_json_errors_and_write_nothing() {
    let db = migrated_db().await;
    let service = Exchange::new(db.pool().clone());
    service.grant(1, 100, "welcome").await.unwrap();
    let gift = new_gift(&service, "马克杯 Mug", 30, 5).await.gift_id.to_string();
    let served = serve(router(service.clone(), user_cookies())).await;
    let at = served.address;
    let exchange_path = format!("/exchange/gifts/{gift}/exchange");

    let other_secret = SignedUserCookie::new("another-secret-0123456789").unwrap().cookie_value(1);
    let (_, tag_of_user_1) =
        user_cookies().cookie_value(1).split_once('.').map(|(a, b)| (a.to_string(), b.to_string())).unwrap();
    let forged_cookies = [
        format!("{USER_COOKIE}={other_secret}"),
        format!("{USER_COOKIE}=2.{tag_of_user_1}"),
        format!("{USER_COOKIE}=1"),
        format!("{USER_COOKIE}=garbage"),
    ];
    for (method, path) in
        [(Method::GET, "/exchange/balance.json"), (Method::GET, "/exchange/mine.json"), (Method::POST, &exchange_path)]
    {
        let key = (IDEMPOTENCY_KEY, "k-1");
        let missing = call(at, method.clone(), path, &[key, ("Cookie", "killPhone=13800138000")], Vec::new()).await;
        assert_error(&missing, StatusCode::UNAUTHORIZED, &format!("{path} without the cookie"));
        assert!(missing.json["error"].as_str().unwrap().contains("sign in"), "{}", missing.text);
        for forged in &forged_cookies {
            let answer = call(at, method.clone(), path, &[key, ("Cookie", forged)], Vec::new()).await;
            assert_error(&answer, StatusCode::UNAUTHORIZED, &format!("{path} with {forged}"));
        }
    }

    let me = signed_in(1);
    let no_key = call(at, Method::POST, &exchange_path, &[("Cookie", &me)], Vec::new()).await;
    assert_error(&no_key, StatusCode::BAD_REQUEST, "no Idempotency-Key");
    assert!(no_key.json["error"].as_str().unwrap().contains(IDEMPOTENCY_KEY), "{}", no_key.text);
    for bad in ["", "k 1", "k/1", "é", &"k".repeat(65)] {
        let answer = exchange(at, 1, &gift, bad).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, &format!("Idempotency-Key {bad:?}"));
    }
    let two_keys = call(
        at,
        Method::POST,
        &exchange_path,
        &[("Cookie", &me), (IDEMPOTENCY_KEY, "k-1"), (IDEMPOTENCY_KEY, "k-2")],
        Vec::new(),
    )
    .await;
    assert_error(&two_keys, StatusCode::BAD_REQUEST, "two keys");

    // Not an id at all is a 400, as for a seckill item; 0 is an id that names nothing, a 404.
    for (not_a_gift, status) in [
        ("abc", StatusCode::BAD_REQUEST),
        ("0", StatusCode::NOT_FOUND),
        ("-1", StatusCode::BAD_REQUEST),
        ("1.5", StatusCode::BAD_REQUEST),
        ("99999999999999999999", StatusCode::BAD_REQUEST),
        ("%E7%A4%BC", StatusCode::BAD_REQUEST),
    ] {
        let answer = exchange(at, 1, not_a_gift, "k-1").await;
        assert_error(&answer, status, &format!("gift {not_a_gift:?}"));
    }
    let oversized =
        call(at, Method::POST, &exchange_path, &[("Cookie", &me), (IDEMPOTENCY_KEY, "k-1")], vec![b'x'; 8192]).await;
    assert_error(&oversized, StatusCode::PAYLOAD_TOO_LARGE, "a body over 4 KiB");

    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM exchange_request").await, 0, "nothing decided");
    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM credit_exchange").await, 0);
    assert_eq!(service.balance(1).await.unwrap(), Some(100));
    // And the same key still works once the request is right.
    assert_eq!(decided(&exchange(at, 1, &gift, "k-1").await).0, "exchanged");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_is_a_json_503() {
    // Nothing listens on port 1: every connection attempt is refused at once.
    let pool = ConnectOptions::new("mysql://root@127.0.0.1:1/none").build_pool().unwrap();
    let served = serve(router(Exchange::new(pool), user_cookies())).await;
    for (method, path) in [
        (Method::GET, "/exchange/gifts.json"),
        (Method::GET, "/exchange/balance.json"),
        (Method::GET, "/exchange/mine.json"),
        (Method::POST, "/exchange/gifts/1/exchange"),
    ] {
        let headers = [("Cookie", signed_in(1)), (IDEMPOTENCY_KEY, "k-1".to_string())];
        let headers: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
        let answer = call(served.address, method, path, &headers, Vec::new()).await;
        assert_error(&answer, StatusCode::SERVICE_UNAVAILABLE, path);
        assert!(!answer.text.contains("127.0.0.1:1"), "no internal detail leaks: {}", answer.text);
    }
}

/// An exchange whose connection dies after the CALL was sent: in doubt over HTTP (503, saying to retry with the
/// same key), and the retry with that key settles it, paying once.
#[tokio::test(flavor = "multi_thread")]
async fn an_exchange_in_doubt_is_a_503_and_a_retry_with_the_same_key_settles_it() {
    let db = migrated_db().await;
    let service = Exchange::new(db.pool().clone());
    service.grant(1, 100, "welcome").await.unwrap();
    let gift = new_gift(&service, "马克杯 Mug", 30, 5).await.gift_id;
    let served = serve(router(service.clone(), user_cookies())).await;
    let at = served.address;

    let lock = RowLock::gift(db.pool(), gift).await;
    let in_flight = tokio::spawn(async move { exchange(at, 1, &gift.to_string(), "k-doubt").await });
    let victim = connection_waiting_behind(db.pool(), &lock, "%FROM exchange_gift%FOR UPDATE%").await;
    db.pool().get_conn().await.unwrap().query_drop(format!("KILL {victim}")).await.unwrap();
    let answer = in_flight.await.unwrap();
    lock.release().await;

    assert_error(&answer, StatusCode::SERVICE_UNAVAILABLE, "in doubt");
    let error = answer.json["error"].as_str().unwrap();
    assert!(error.contains("retry with the same Idempotency-Key: it answers the first outcome"), "{error}");

    let retry = exchange(at, 1, &gift.to_string(), "k-doubt").await;
    let (outcome, exchange_id, balance_after, _) = decided(&retry);
    assert_eq!((outcome, balance_after), ("exchanged", Some(70)));
    let again = exchange(at, 1, &gift.to_string(), "k-doubt").await;
    assert_eq!(decided(&again), ("exchanged", exchange_id, Some(70), true));
    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM credit_exchange WHERE user_id = 1").await, 1);
    assert_books(db.pool()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_and_its_assets_are_served_with_their_charset() {
    let db = migrated_db().await;
    let served = serve(router(Exchange::new(db.pool().clone()), user_cookies())).await;
    let at = served.address;
    let page = call(at, Method::GET, "/exchange", &[], Vec::new()).await;
    assert_eq!((page.status, page.content_type.as_str()), (StatusCode::OK, "text/html; charset=utf-8"));
    assert!(page.text.contains("积分兑换") && page.text.contains("src=\"exchange/assets/app.js?v="), "{}", page.text);
    let in_folder = call(at, Method::GET, "/exchange/", &[], Vec::new()).await;
    assert!(in_folder.text.contains("src=\"assets/app.js?v="), "{}", in_folder.text);
    let script = call(at, Method::GET, "/exchange/assets/app.js", &[], Vec::new()).await;
    assert_eq!(script.content_type, "text/javascript; charset=utf-8");
    assert!(script.text.contains("Idempotency-Key"));
    let style = call(at, Method::GET, "/exchange/assets/style.css", &[], Vec::new()).await;
    assert_eq!(style.content_type, "text/css; charset=utf-8");
    let unknown = call(at, Method::GET, "/exchange/assets/secret.txt", &[], Vec::new()).await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "an unknown asset");
}

/// Opens the exchange page at `origin` in `client`, signed in as `user`.
async fn open_signed_in(client: &fantoccini::Client, origin: &str, user: i64) {
    open_with_cookie(client, origin, "/exchange/gifts.json", &signed_in(user), "/exchange").await;
}

/// Clicks the Exchange button of `gift` once it is enabled.
async fn click_exchange(client: &fantoccini::Client, gift: i64) {
    let button = format!("exchange-{gift}");
    eventually(Duration::from_secs(10), "the Exchange button", || async {
        match client.find(Locator::Id(&button)).await {
            Ok(element) => element.is_enabled().await.unwrap_or(false),
            Err(_) => false,
        }
    })
    .await;
    client.find(Locator::Id(&button)).await.unwrap().click().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_sees_the_balance_exchanges_a_gift_in_the_browser_and_sees_it_listed() {
    let db = migrated_db().await;
    let service = Exchange::new(db.pool().clone());
    service.grant(1, 100, "welcome").await.unwrap();
    let mug = new_gift(&service, "马克杯 Mug", 30, 5).await.gift_id;
    new_gift(&service, "雨伞 Umbrella", 80, 2).await;
    new_gift(&service, "电视 TV", 500, 0).await;
    let served = serve(router(service.clone(), user_cookies())).await;
    let driver = ChromeDriver::start_when_alone().await;
    let profile = profile_dir("exchange-page");
    let client = browser(&driver, &profile).await;
    let origin = format!("http://{}", served.address);

    open_signed_in(&client, &origin, 1).await;

    eventually(Duration::from_secs(10), "the balance", || async { text_of(&client, "balance").await == "100" }).await;
    click_exchange(&client, mug).await;
    eventually(Duration::from_secs(10), "the outcome", || async {
        text_of(&client, "result").await.contains("兑换成功")
    })
    .await;
    eventually(Duration::from_secs(10), "the new balance", || async { text_of(&client, "balance").await == "70" })
        .await;
    eventually(Duration::from_secs(10), "the exchange listed", || async {
        let listed = text_of(&client, "exchanges").await;
        listed.contains("马克杯 Mug") && listed.contains("待发送")
    })
    .await;

    // The warehouse's callback arrives; the page's refresh shows the shipment requested.
    let mut conn = db.pool().get_conn().await.unwrap();
    conn.query_drop("UPDATE message_outbox SET state = 'consumed', consumed_at = NOW(3)").await.unwrap();
    eventually(Duration::from_secs(10), "the shipment state", || async {
        text_of(&client, "exchanges").await.contains("已请求发货 · Shipment requested")
    })
    .await;
    // Tall enough for the whole page, exchanges and ledger included.
    client.set_window_size(1000, 1100).await.unwrap();
    save_screenshot(&client, "e2e-exchange-page.png").await;

    client.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM credit_exchange WHERE user_id = 1").await, 1);
    assert_eq!(service.balance(1).await.unwrap(), Some(70));
    assert_books(db.pool()).await;
}

/// The answer to an exchange is lost on the way back (the request reached the server, the browser saw a network
/// error): the page sends it again with the same key, hears the first outcome, and the points are paid once.
#[tokio::test(flavor = "multi_thread")]
async fn the_page_retries_a_lost_answer_with_the_same_key_and_pays_once() {
    let db = migrated_db().await;
    let service = Exchange::new(db.pool().clone());
    service.grant(1, 100, "welcome").await.unwrap();
    let umbrella = new_gift(&service, "雨伞 Umbrella", 80, 2).await.gift_id;
    let served = serve(router(service.clone(), user_cookies())).await;
    let driver = ChromeDriver::start_when_alone().await;
    let profile = profile_dir("exchange-page-retry");
    let client = browser(&driver, &profile).await;
    open_signed_in(&client, &format!("http://{}", served.address), 1).await;
    eventually(Duration::from_secs(10), "the balance", || async { text_of(&client, "balance").await == "100" }).await;

    // The first POST goes through to the server, but the page is told the network failed.
    let lose_first_answer = r#"
        window.sentKeys = [];
        var realFetch = window.fetch;
        var lost = false;
        window.fetch = function (url, options) {
            var answer = realFetch.apply(this, arguments);
            if (!options || options.method !== 'POST') { return answer; }
            window.sentKeys.push(options.headers['Idempotency-Key']);
            if (lost) { return answer; }
            lost = true;
            return answer.then(function () { throw new TypeError('Failed to fetch'); });
        };
    "#;
    client.execute(lose_first_answer, Vec::new()).await.unwrap();
    click_exchange(&client, umbrella).await;
    eventually(Duration::from_secs(10), "the outcome", || async {
        text_of(&client, "result").await.contains("兑换成功")
    })
    .await;
    let keys = client.execute("return window.sentKeys;", Vec::new()).await.unwrap();
    let keys: Vec<String> = serde_json::from_value(keys).unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(keys[0], keys[1], "the retry carries the same key");
    eventually(Duration::from_secs(10), "the new balance", || async { text_of(&client, "balance").await == "20" })
        .await;

    client.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM credit_exchange WHERE user_id = 1").await, 1);
    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM exchange_request WHERE user_id = 1").await, 1);
    assert_eq!(service.balance(1).await.unwrap(), Some(20));
    assert_books(db.pool()).await;
}

/// An `Idempotency-Key` names one request: sent again for another gift, it is a JSON 422 naming the gift it was
/// first used for, and changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_reused_for_another_gift_is_a_json_422_and_changes_nothing() {
    let db = migrated_db().await;
    let service = Exchange::new(db.pool().clone());
    service.grant(1, 100, "welcome").await.unwrap();
    let mug = new_gift(&service, "马克杯 Mug", 30, 5).await.gift_id;
    let pen = new_gift(&service, "笔 Pen", 10, 5).await.gift_id;
    let served = serve(router(service.clone(), user_cookies())).await;
    assert_eq!(decided(&exchange(served.address, 1, &mug.to_string(), "k-1").await).0, "exchanged");
    let reused = exchange(served.address, 1, &pen.to_string(), "k-1").await;
    assert_error(&reused, StatusCode::UNPROCESSABLE_ENTITY, "a key reused for another gift");
    let message = reused.json["error"].as_str().unwrap();
    assert!(message.contains(&format!("first used for gift {mug}")), "{message}");
    assert_eq!(get_as(served.address, "/exchange/balance.json", 1).await.json["data"]["balance"], 70);
    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM credit_exchange").await, 1);
    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM exchange_request").await, 1);
    assert_books(db.pool()).await;
}
