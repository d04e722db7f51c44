//! Lying clients, by property: random and mutated tokens, phones, path segments, cookies and bodies on every
//! endpoint get the right outcome or a 4xx, never a panic or a 5xx, and never write a row; and bodies sent in
//! chunks, which declare no length, are bounded like declared ones on every router.

use axum::body::Body;
use chrono::Utc;
use hyper::{Method, Request, StatusCode};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use seckill::seckill::Phone;
use seckill::seckill::signing::Signer;
use tower::ServiceExt;

use crate::common::http::{assert_error, call_chunked, serve, signed_in, user_cookies};
use crate::common::{count, migrated_db, open_item, phone, service, signer, stock, success_rows};

#[test]
fn random_tokens_never_verify_and_never_panic() {
    let signer = signer();
    let classic = Signer::classic("salt").unwrap();
    proptest!(|(token in "\\PC{0,80}", id in any::<i64>(), n in 0i64..1_000_000)| {
        prop_assert!(signer.verify(id, phone(n), &token, Utc::now()).is_err());
        let genuine = classic.sign(id, phone(n), Utc::now());
        prop_assert!(token == genuine || classic.verify(id, phone(n), &token, Utc::now()).is_err());
    });
}

#[test]
fn any_change_to_a_genuine_token_is_refused() {
    let signer = signer();
    proptest!(|(id in any::<i64>(), n in 0i64..1_000_000, at in 0usize..45, replacement in any::<char>())| {
        let token = signer.sign(id, phone(n), Utc::now());
        let at = at % token.len();
        let original = token.chars().nth(at).unwrap();
        prop_assume!(original != replacement);
        let mut changed: Vec<char> = token.chars().collect();
        changed[at] = replacement;
        let changed: String = changed.into_iter().collect();
        prop_assert!(signer.verify(id, phone(n), &changed, Utc::now()).is_err(), "{changed}");
    });
}

#[test]
fn phones_are_exactly_eleven_digits_starting_with_one() {
    proptest!(|(text in "\\PC{0,20}")| {
        let valid = text.len() == 11 && text.starts_with('1') && text.bytes().all(|b| b.is_ascii_digit());
        prop_assert_eq!(text.parse::<Phone>().is_ok(), valid);
    });
    proptest!(|(n in any::<i64>())| {
        prop_assert_eq!(Phone::new(n).is_ok(), (10_000_000_000..=19_999_999_999).contains(&n));
    });
}

#[test]
fn the_sql_splitter_never_panics() {
    proptest!(|(script in "(\\PC|[;'\"`$#/*\\-\\n\\\\]){0,200}")| {
        let _ = seckill::migrate::sql_script::split_statements(&script);
        let _ = seckill::migrate::sql_script::fingerprint_text(&script);
    });
}

/// Percent-encodes everything but unreserved characters, so any text can stand in a path segment.
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn garbage_requests_get_a_4xx_and_write_nothing() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (db, router, id, token) = runtime.block_on(async {
        let db = migrated_db().await;
        let service = service(&db);
        let item = open_item(&service, 10).await;
        let token = service.signer().sign(item.seckill_id, phone(1), Utc::now());
        (db, seckill::seckill::http::router(service), item.seckill_id, token)
    });
    let ids = prop_oneof![
        Just(id.to_string()),
        Just(i64::MAX.to_string()),
        Just(i64::MIN.to_string()),
        Just("9223372036854775808".to_string()),
        "[0-9]{1,25}",
        "\\PC{0,300}",
    ];
    let tokens = prop_oneof![Just(token.clone()), "[0-9a-f-]{0,60}", "\\PC{0,400}"];
    let cookies = prop_oneof![
        Just(None),
        Just(Some(phone(1).to_string())),
        Just(Some(phone(2).to_string())),
        "[ -~]{0,40}".prop_map(Some),
    ];
    let kinds = 0usize..6;
    let bodies = prop_oneof![Just(0usize), Just(10), Just(5000), Just(100_000)];
    let mut runner = TestRunner::new(Config { cases: 300, ..Config::default() });
    runner
        .run(&(ids, tokens, cookies, kinds, bodies), |(item, token, cookie, kind, body)| {
            let (method, path) = match kind {
                0 => ("GET", format!("/seckill/{}/detail.json", segment(&item))),
                1 => ("GET", format!("/seckill/{}/detail", segment(&item))),
                2 => ("POST", format!("/seckill/{}/exposer", segment(&item))),
                3 => ("GET", format!("/seckill/{}/result", segment(&item))),
                4 => ("GET", "/seckill/list.json".to_string()),
                _ => ("POST", format!("/seckill/{}/{}/execution", segment(&item), segment(&token))),
            };
            let mut request = Request::builder().method(method).uri(&path);
            if let Some(cookie) = &cookie {
                request = request.header("cookie", format!("killPhone={cookie}"));
            }
            let request = request.body(Body::from(vec![b'x'; body])).unwrap();
            let response = runtime.block_on(router.clone().oneshot(request)).unwrap();
            let status = response.status().as_u16();
            prop_assert!(status == 200 || (400..500).contains(&status), "{method} {path} {cookie:?}: {status}");
            Ok(())
        })
        .unwrap();
    // Only the one genuine buyer (phone 1 with its own token) could ever have bought.
    let rows = runtime.block_on(success_rows(db.pool(), id));
    assert!(rows <= 1, "{rows} rows");
    runtime.block_on(async move { drop(db) });
}

/// A body sent in chunks declares no length: every router reads at most its limit of it before any handler runs,
/// and one over the limit (here 1 MiB, and the limit plus one byte) is a 413 that decides nothing: no sale, no
/// exchange, no draw. A small chunked body is read and the request served as usual, so the refusals burnt
/// nothing (the exchange's idempotency key included).
#[tokio::test(flavor = "multi_thread")]
async fn a_chunked_body_over_the_limit_is_refused_by_every_router_and_changes_nothing() {
    const MIB: usize = 1024 * 1024;
    let over_the_limit = [MIB, seckill::http::DEFAULT_MAX_BODY as usize + 1];
    let db = migrated_db().await;
    let seckill = service(&db);
    let item = open_item(&seckill, 5).await;
    let exchange = seckill::exchange::Exchange::new(db.pool().clone());
    exchange.grant(1, 100, "chunked bodies").await.unwrap();
    let gift =
        exchange.create_gift(&seckill::exchange::NewGift { name: "mug".into(), cost: 30, stock: 5 }).await.unwrap();
    let lottery = seckill::lottery::Lottery::new(db.pool().clone());
    let now = Utc::now();
    let tiers = vec![seckill::lottery::NewTier { name: "mug".into(), stock: 5, weight: 1, value_fen: 0 }];
    let spring = seckill::lottery::NewCampaign::new(
        "chunked bodies",
        now - chrono::Duration::hours(1),
        now + chrono::Duration::hours(1),
        tiers,
    );
    let campaign = lottery.create_campaign(&spring).await.unwrap().campaign_id;

    let buyer = phone(1);
    let token = signer().sign(item.seckill_id, buyer, Utc::now());
    let (buyer_cookie, user) = (format!("killPhone={buyer}"), signed_in(1));
    let execution = format!("/seckill/{}/{token}/execution", item.seckill_id);
    let exchange_path = format!("/exchange/gifts/{}/exchange", gift.gift_id);
    let draw = format!("/lottery/{campaign}/draw");
    // (router, the request that would decide something, its headers)
    let routers = [
        (seckill::seckill::http::router(seckill.clone()), execution.as_str(), vec![("Cookie", buyer_cookie.as_str())]),
        (
            seckill::exchange::http::router(exchange.clone(), user_cookies()),
            exchange_path.as_str(),
            vec![("Cookie", user.as_str()), (seckill::http::IDEMPOTENCY_KEY, "k-1")],
        ),
        (
            seckill::lottery::http::router(lottery.clone(), user_cookies()),
            draw.as_str(),
            vec![("Cookie", user.as_str())],
        ),
    ];
    let mut served = Vec::new();
    for (router, path, headers) in routers {
        let at = serve(router).await;
        for size in over_the_limit {
            let answer = call_chunked(at.address, Method::POST, path, &headers, size).await;
            assert_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, &format!("POST {path} with {size} bytes in chunks"));
        }
        served.push((at, path, headers));
    }

    assert_eq!((success_rows(db.pool(), item.seckill_id).await, stock(db.pool(), item.seckill_id).await), (0, 5));
    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM exchange_request").await, 0, "no exchange decided");
    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM credit_exchange").await, 0, "no exchange made");
    assert_eq!(exchange.balance(1).await.unwrap(), Some(100), "no points spent");
    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM lottery_draw").await, 0, "nothing drawn");
    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM message_outbox").await, 0, "nothing to deliver");

    // Within the limit, a chunked body is read and the request decided as without one.
    for (at, path, headers) in &served {
        let answer = call_chunked(at.address, Method::POST, path, headers, 100).await;
        assert_eq!(
            (answer.status, answer.json["success"].as_bool()),
            (StatusCode::OK, Some(true)),
            "{path}: {}",
            answer.text
        );
    }
    assert_eq!(success_rows(db.pool(), item.seckill_id).await, 1, "the buyer bought");
    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM credit_exchange").await, 1, "the user exchanged");
    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM lottery_draw").await, 1, "the user drew");
}
