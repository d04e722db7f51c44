//! The classic course's own client works unchanged: its MyBatis mapper statements, run verbatim in the +08:00
//! session the course used, read and compare instants right; its page sees every state code as a successful
//! request; any 11-digit phone its page accepts can buy; its exposer needs no cookie in classic signing mode.

use chrono::{Duration, NaiveDateTime, Utc};
use hyper::StatusCode;
use mysql_async::prelude::Queryable;
use seckill::seckill::Seckill;
use seckill::seckill::signing::{Signer, classic_md5};

use crate::common::http::serve;
use crate::common::{item_with_window, migrated_db, open_item, phone, service, success_rows};

/// The course's mapper statements, as MyBatis prepares them (SeckillDao.xml and SuccessKilledDao.xml).
const QUERY_BY_ID: &str =
    "SELECT seckill_id,NAME,NUMBER,start_time,end_time,create_time FROM seckill WHERE seckill_id = ?";
const REDUCE_NUMBER: &str = "UPDATE seckill SET NUMBER = NUMBER - 1 WHERE seckill_id=? \
     AND start_time <= ? AND end_time >= ? AND NUMBER >0;";
const INSERT_SUCCESS_KILLED: &str = "INSERT ignore INTO success_killed(seckill_id,user_phone,state) VALUES (?,?,0)";
const QUERY_BY_ID_WITH_SECKILL: &str = "SELECT sk.seckill_id, sk.user_phone, sk.create_time, sk.state, \
     s.seckill_id \"seckill.seckill_id\", s.name \"seckill.name\", s.number \"seckill.number\", \
     s.start_time \"seckill.start_time\", s.end_time \"seckill.end_time\", s.create_time \"seckill.create_time\" \
     FROM success_killed sk INNER JOIN seckill s ON sk.seckill_id=s.seckill_id \
     WHERE sk.seckill_id = ? AND sk.user_phone=?";
const KILL_BY_PROCEDURE: &str = "call execute_seckill(?, ?, ?, @result)";

/// What a JVM in +08:00 sends for an instant, and expects back: the wall-clock time in Beijing.
fn beijing(at: chrono::DateTime<Utc>) -> NaiveDateTime {
    (at + Duration::hours(8)).naive_utc()
}

fn close(a: NaiveDateTime, b: NaiveDateTime) -> bool {
    (a - b).num_milliseconds().abs() < 5_000
}

/// Regression: the columns held UTC in DATETIME, so the course's mappers in a +08:00 session saw every time 8
/// hours off: an open sale looked ended, and the course's own transaction answered 秒杀结束.
#[tokio::test]
async fn the_course_mappers_read_and_compare_instants_right_in_its_plus_eight_session() {
    let db = migrated_db().await;
    let service = service(&db);
    let item = open_item(&service, 10).await;
    let id = item.seckill_id;
    let mut conn = db.pool().get_conn().await.unwrap();
    conn.query_drop("SET time_zone = '+08:00'").await.unwrap();

    let row: (i64, String, i32, NaiveDateTime, NaiveDateTime, NaiveDateTime) =
        conn.exec_first(QUERY_BY_ID, (id,)).await.unwrap().unwrap();
    assert_eq!(row.3, beijing(item.start_time), "queryById: start_time in the session's zone");
    assert_eq!(row.4, beijing(item.end_time), "queryById: end_time in the session's zone");

    // The course's own transaction: reduceNumber(killTime = new Date()), then insertSuccessKilled.
    let kill_time = beijing(Utc::now());
    conn.query_drop("START TRANSACTION").await.unwrap();
    conn.exec_drop(REDUCE_NUMBER, (id, kill_time, kill_time)).await.unwrap();
    assert_eq!(conn.affected_rows(), 1, "reduceNumber sees the sale open");
    conn.exec_drop(INSERT_SUCCESS_KILLED, (id, phone(1).get())).await.unwrap();
    conn.query_drop("COMMIT").await.unwrap();

    let killed: mysql_async::Row =
        conn.exec_first(QUERY_BY_ID_WITH_SECKILL, (id, phone(1).get())).await.unwrap().unwrap();
    let created: NaiveDateTime = killed.get("create_time").unwrap();
    let start: NaiveDateTime = killed.get("seckill.start_time").unwrap();
    assert!(close(created, kill_time), "queryByIdWithSeckill: create_time {created} vs {kill_time}");
    assert_eq!(start, beijing(item.start_time));

    // killByProcedure with the JVM's local killTime.
    conn.exec_drop(KILL_BY_PROCEDURE, (id, phone(2).get(), beijing(Utc::now()))).await.unwrap();
    let result: Option<i64> = conn.query_first("SELECT @result").await.unwrap();
    assert_eq!(result, Some(1));
    drop(conn);

    // The toolkit, in UTC, agrees on the same instants.
    let record = service.kill_record(id, phone(1)).await.unwrap().unwrap();
    let at = record.create_time.unwrap();
    assert!((at - Utc::now()).num_seconds().abs() < 60, "stored as the right instant: {at}");
    assert_eq!(success_rows(db.pool(), id).await, 2);
}

/// Regression: a forged or expired URL left the course's page stuck on a disabled button, because the page
/// only shows a result for HTTP 200 with `success: true` and the course answers 数据篡改 (-3) that way. Every
/// state code comes back as the course sends it, with `charset=utf-8`.
#[tokio::test(flavor = "multi_thread")]
async fn the_course_page_gets_every_state_code_as_a_successful_request() {
    let db = migrated_db().await;
    let service = service(&db);
    let id = open_item(&service, 1).await.seckill_id;
    let ended = item_with_window(&service, 5, Duration::hours(-2), Duration::hours(-1)).await.seckill_id;
    let sign = |item: i64, n: i64| service.signer().sign(item, phone(n), Utc::now());
    let expired = service.signer().sign(id, phone(4), Utc::now() - Duration::hours(1));
    let served = serve(seckill::seckill::http::router(service.clone())).await;
    let cases = [
        (format!("/seckill/{id}/{}/execution", sign(id, 1)), 1, 1, "秒杀成功"),
        (format!("/seckill/{id}/{}/execution", sign(id, 1)), 1, -1, "重复秒杀"),
        (format!("/seckill/{id}/{}/execution", sign(id, 2)), 2, 0, "秒杀结束"),
        (format!("/seckill/{ended}/{}/execution", sign(ended, 3)), 3, 0, "秒杀结束"),
        (format!("/seckill/424242/{}/execution", sign(424242, 3)), 3, 0, "秒杀结束"),
        (format!("/seckill/{id}/{expired}/execution"), 4, -3, "数据篡改"),
        (format!("/seckill/{id}/{}/execution", sign(id, 5)), 6, -3, "数据篡改"),
    ];
    for (path, buyer, state, info) in cases {
        let answer = served.post(&path, Some(&phone(buyer).to_string())).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text);
        assert_eq!(answer.json["success"], true, "{path}");
        assert_eq!(
            (answer.json["data"]["state"].as_i64(), answer.json["data"]["stateInfo"].as_str()),
            (Some(state), Some(info))
        );
        assert_eq!(answer.content_type, "application/json; charset=utf-8", "{path}");
    }
    assert_eq!(success_rows(db.pool(), id).await, 1);
}

/// Regression: the course's page accepts any 11-digit number, the toolkit refused one not starting with 1 and
/// the page showed a blank box.
#[tokio::test(flavor = "multi_thread")]
async fn any_eleven_digit_phone_the_course_page_accepts_can_buy() {
    let db = migrated_db().await;
    let service = service(&db);
    let id = open_item(&service, 5).await.seckill_id;
    let served = serve(seckill::seckill::http::router(service)).await;
    for buyer in ["23800138000", "01234567890", "99999999999"] {
        let exposer = served.post(&format!("/seckill/{id}/exposer"), Some(buyer)).await;
        assert_eq!(exposer.status, StatusCode::OK, "{buyer}: {}", exposer.text);
        let md5 = exposer.json["data"]["md5"].as_str().unwrap().to_string();
        let execution = served.post(&format!("/seckill/{id}/{md5}/execution"), Some(buyer)).await;
        assert_eq!(execution.json["data"]["state"], 1, "{buyer}: {}", execution.text);
        let result = served.get_as(&format!("/seckill/{id}/result"), buyer).await;
        assert_eq!(result.json["data"]["userPhone"].as_i64(), buyer.parse::<i64>().ok(), "{buyer}");
    }
    for not_a_phone in ["2380013800", "238001380001", "+3800138000", "1e100000000"] {
        let refused = served.post(&format!("/seckill/{id}/exposer"), Some(not_a_phone)).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{not_a_phone}");
    }
    assert_eq!(success_rows(db.pool(), id).await, 3);
}

/// The classic exposer takes no cookie (its md5 is the same for everyone); in HMAC mode the token is bound to
/// the buyer, so the cookie is needed there.
#[tokio::test(flavor = "multi_thread")]
async fn the_classic_exposer_needs_no_cookie_in_classic_signing_mode() {
    let db = migrated_db().await;
    let salt = "classic-salt";
    let classic = Seckill::new(db.pool().clone(), Signer::classic(salt).unwrap());
    let id = open_item(&classic, 5).await.seckill_id;
    let served = serve(seckill::seckill::http::router(classic)).await;
    let exposer = served.post(&format!("/seckill/{id}/exposer"), None).await;
    assert_eq!(exposer.status, StatusCode::OK, "{}", exposer.text);
    assert_eq!(exposer.json["data"]["md5"].as_str(), Some(classic_md5(id, salt).as_str()));

    let hmac = serve(seckill::seckill::http::router(service(&db))).await;
    let refused = hmac.post(&format!("/seckill/{id}/exposer"), None).await;
    assert_eq!((refused.status, refused.json["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("未注册")));
}
