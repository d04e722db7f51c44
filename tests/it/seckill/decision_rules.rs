//! One rule for every path, judged when the decision is taken: the window is judged once the item's row lock
//! is held, with one clock reading; the single path and the batch path agree in every state; no session
//! setting changes an answer; and no row anybody wrote can wedge an item's lane.

use std::time::Duration;

use hyper::StatusCode;
use mysql_async::prelude::Queryable;
use seckill::seckill::{Item, Outcome, Seckill};

use crate::common::http::serve;
use crate::common::{RowLock, has_row, item_with_window, migrated_db, open_item, phone, service, stock, success_rows};

/// Regression: with the item row held by another session across `end_time`, a batch sold units after the end
/// (its window was judged when the CALL started, not when the lock was granted).
#[tokio::test(flavor = "multi_thread")]
async fn calls_waiting_for_the_lock_across_the_end_sell_nothing() {
    let db = migrated_db().await;
    let service = service(&db);
    let item = item_with_window(&service, 10, chrono::Duration::hours(-1), chrono::Duration::milliseconds(1200)).await;
    let id = item.seckill_id;

    let lock = RowLock::take(db.pool(), id).await;
    let lone = tokio::spawn(service.submit_verified(id, phone(1)));
    tokio::time::sleep(Duration::from_millis(200)).await; // the lone request is in flight, stuck on the lock
    let batch: Vec<_> = (2..6).map(|n| tokio::spawn(service.submit_verified(id, phone(n)))).collect();
    let single = tokio::spawn({
        let service = service.clone();
        async move { service.execute_one(id, phone(9)).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await; // past end_time, still waiting
    lock.release().await;

    assert_eq!(lone.await.unwrap(), Outcome::Ended);
    for request in batch {
        assert_eq!(request.await.unwrap(), Outcome::Ended);
    }
    assert_eq!(single.await.unwrap(), Outcome::Ended);
    assert_eq!(success_rows(db.pool(), id).await, 0);
    assert_eq!(stock(db.pool(), id).await, 10);
}

/// Regression: a lone call that reached the server before `start_time` and finished after it answered "sold
/// out" for an item with stock (its reason came from a second clock reading), and the lane then answered "sold
/// out" from memory for a second.
#[tokio::test(flavor = "multi_thread")]
async fn a_call_waiting_across_the_start_is_decided_at_the_start() {
    let db = migrated_db().await;
    let service = service(&db);
    let item = item_with_window(&service, 10, chrono::Duration::milliseconds(800), chrono::Duration::hours(1)).await;
    let id = item.seckill_id;

    let lock = RowLock::take(db.pool(), id).await;
    let lone = tokio::spawn(service.submit_verified(id, phone(1)));
    tokio::time::sleep(Duration::from_millis(1200)).await; // past start_time, still waiting
    lock.release().await;

    assert!(lone.await.unwrap().is_success(), "decided when the lock was granted, after the start");
    assert!(service.execute_verified(id, phone(2)).await.is_success(), "the lane did not learn 'sold out'");
    assert_eq!(stock(db.pool(), id).await, 8);
}

/// The states an item and a buyer can be in, set up on a fresh item each time.
#[derive(Debug, Clone, Copy)]
enum State {
    NotFound,
    NotStarted,
    NotStartedWithRow,
    Open,
    OpenWithRow,
    SoldOut,
    SoldOutWithRow,
    Ended,
    EndedWithRow,
}

async fn set_up(db: &seckill::testing::TestDatabase, service: &Seckill, state: State, buyer: i64) -> i64 {
    let hour = chrono::Duration::hours(1);
    let (stock, start, end) = match state {
        State::NotFound => return 987_654_321,
        State::NotStarted | State::NotStartedWithRow => (5, hour, hour * 2),
        State::Open | State::OpenWithRow => (5, -hour, hour),
        State::SoldOut | State::SoldOutWithRow => (0, -hour, hour),
        State::Ended | State::EndedWithRow => (5, -hour * 2, -hour),
    };
    let item: Item = item_with_window(service, stock, start, end).await;
    if matches!(state, State::NotStartedWithRow | State::OpenWithRow | State::SoldOutWithRow | State::EndedWithRow) {
        let mut conn = db.pool().get_conn().await.unwrap();
        conn.exec_drop(
            "INSERT INTO success_killed (seckill_id, user_phone, state) VALUES (?, ?, 0)",
            (item.seckill_id, phone(buyer).get()),
        )
        .await
        .unwrap();
    }
    item.seckill_id
}

/// Regression: after a sale ended, a winner asking again heard "repeat" through the single path and "ended"
/// through the batch path. Both paths decide with one order of precedence; here they are compared in every
/// state, and against the classic procedure's code.
#[tokio::test(flavor = "multi_thread")]
async fn the_single_and_the_batch_path_agree_in_every_state() {
    let db = migrated_db().await;
    let service = service(&db);
    let states = [
        State::NotFound,
        State::NotStarted,
        State::NotStartedWithRow,
        State::Open,
        State::OpenWithRow,
        State::SoldOut,
        State::SoldOutWithRow,
        State::Ended,
        State::EndedWithRow,
    ];
    for state in states {
        let single_item = set_up(&db, &service, state, 1).await;
        let single = service.execute_one(single_item, phone(1)).await;

        let batch_item = set_up(&db, &service, state, 1).await;
        // A stuck lone request, so that the next two are decided together by execute_seckill_batch.
        let held = match state {
            State::NotFound => None, // no row to lock: not found either way
            _ => Some(RowLock::take(db.pool(), batch_item).await),
        };
        let lone = tokio::spawn(service.submit_verified(batch_item, phone(50)));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let in_batch = tokio::spawn(service.submit_verified(batch_item, phone(1)));
        let other = tokio::spawn(service.submit_verified(batch_item, phone(51)));
        if let Some(held) = held {
            held.release().await;
        }
        lone.await.unwrap();
        other.await.unwrap();
        let in_batch = in_batch.await.unwrap();

        let classic_item = set_up(&db, &service, state, 1).await;
        let mut conn = db.pool().get_conn().await.unwrap();
        conn.exec_drop("CALL execute_seckill(?, ?, NULL, @r)", (classic_item, phone(1).get())).await.unwrap();
        let classic: Option<i32> = conn.query_first("SELECT @r").await.unwrap();

        assert_eq!(single.reason(), in_batch.reason(), "{state:?}: single {single:?}, batch {in_batch:?}");
        assert_eq!(Some(single.state()), classic, "{state:?}: the classic code");
        let expected = match state {
            State::NotFound => "not_found",
            State::NotStartedWithRow | State::OpenWithRow | State::SoldOutWithRow | State::EndedWithRow => "repeat",
            State::NotStarted => "not_started",
            State::Open => "success",
            State::SoldOut => "sold_out",
            State::Ended => "ended",
        };
        assert_eq!(single.reason(), expected, "{state:?}");
    }
}

/// Regression: execute_seckill_batch gathered the batch's earlier winners with JSON_ARRAYAGG, which
/// `group_concat_max_len` cuts (1024 is MySQL's default): a batch with ~85 earlier winners failed whole or
/// told repeat buyers "sold out". No session setting may change an answer.
#[tokio::test]
async fn the_batch_procedure_does_not_depend_on_group_concat_max_len() {
    let db = migrated_db().await;
    let service = service(&db);
    let id = open_item(&service, 150).await.seckill_id;
    let mut conn = db.pool().get_conn().await.unwrap();
    let earlier: Vec<String> = (0..120).map(|n| phone(n).get().to_string()).collect();
    conn.query_drop(format!("CALL execute_seckill_batch({id}, '[{}]')", earlier.join(","))).await.unwrap();
    assert_eq!(success_rows(db.pool(), id).await, 120);

    conn.query_drop("SET SESSION group_concat_max_len = 1024").await.unwrap();
    let mut again = earlier.clone();
    again.extend((1000..1010).map(|n| phone(n).get().to_string()));
    let row: Option<(String, i64, String, Option<i64>, String)> =
        conn.query_first(format!("CALL execute_seckill_batch({id}, '[{}]')", again.join(","))).await.unwrap();
    let (status, won, existing, stock_left, _) = row.unwrap();
    let existing: Vec<i64> = serde_json::from_str(&existing).unwrap();
    assert_eq!((status.as_str(), won, existing.len(), stock_left), ("open", 10, 120, Some(20)));
    assert_eq!(success_rows(db.pool(), id).await, 130);
}

/// Regression: one success row with the zero date (MariaDB's default sql_mode accepts it from any client)
/// made a row conversion panic inside the item's lane task; every later buyer of the item waited forever, and
/// `GET /seckill/{id}/result` for that buyer panicked the handler.
#[tokio::test(flavor = "multi_thread")]
async fn a_zero_date_row_wedges_nothing() {
    let db = migrated_db().await;
    let service = service(&db);
    let id = open_item(&service, 10).await.seckill_id;
    let mut conn = db.pool().get_conn().await.unwrap();
    conn.query_drop("SET SESSION sql_mode = ''").await.unwrap();
    conn.exec_drop(
        "INSERT INTO success_killed (seckill_id, user_phone, state, create_time) VALUES (?, ?, 0, '0000-00-00 00:00:00')",
        (id, phone(1).get()),
    )
    .await
    .unwrap();
    drop(conn);

    let within = |future| tokio::time::timeout(Duration::from_secs(5), future);
    assert_eq!(within(service.execute_verified(id, phone(1))).await.expect("answered"), Outcome::RepeatKill);
    assert!(within(service.execute_verified(id, phone(2))).await.expect("the lane is not wedged").is_success());
    let record = service.kill_record(id, phone(1)).await.unwrap().expect("the hand-written row");
    assert_eq!(record.create_time, None);

    let served = serve(seckill::seckill::http::router(service)).await;
    let result = served.get_as(&format!("/seckill/{id}/result"), &phone(1).to_string()).await;
    assert_eq!(result.status, StatusCode::OK, "{}", result.text);
    assert_eq!(result.json["data"]["userPhone"], phone(1).get());
    assert!(result.json["data"]["createTime"].is_null());
    assert!(has_row(db.pool(), id, phone(2)).await);
}
