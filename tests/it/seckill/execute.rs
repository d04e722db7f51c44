//! `Seckill::execute` against a real server: the books stay straight under real concurrency.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use mysql_async::prelude::Queryable;
use seckill::database::ConnectOptions;
use seckill::seckill::signing::Signer;
use seckill::seckill::{Exposure, Outcome, Seckill};

use crate::common::{item_with_window, migrated_db, open_item, phone, service, signer, stock, success_rows};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_buyers_on_stock_100_make_exactly_100_sales() {
    let db = migrated_db().await;
    let service = service(&db);
    let item = open_item(&service, 100).await;
    let attempts: Vec<_> = (0..2000)
        .map(|n| {
            let service = service.clone();
            tokio::spawn(async move {
                let token = service.signer().sign(item.seckill_id, phone(n), Utc::now());
                service.execute(item.seckill_id, phone(n), &token).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for attempt in attempts {
        outcomes.push(attempt.await.unwrap());
    }
    let successes = outcomes.iter().filter(|o| o.is_success()).count();
    let sold_out = outcomes.iter().filter(|o| **o == Outcome::SoldOut).count();
    assert_eq!(
        (successes, sold_out),
        (100, 1900),
        "{:?}",
        outcomes.iter().find(|o| !o.is_success() && **o != Outcome::SoldOut)
    );
    assert_eq!(success_rows(db.pool(), item.seckill_id).await, 100);
    assert_eq!(stock(db.pool(), item.seckill_id).await, 0);
}

#[tokio::test]
async fn the_same_user_twice_is_a_repeat_with_one_row() {
    let db = migrated_db().await;
    let service = service(&db);
    let item = open_item(&service, 10).await;
    let first = service.execute_one(item.seckill_id, phone(1)).await;
    let Outcome::Success(kill) = &first else { panic!("{first:?}") };
    assert_eq!((kill.seckill_id, kill.user_phone, kill.state), (item.seckill_id, phone(1), 0));
    assert_eq!(service.execute_one(item.seckill_id, phone(1)).await, Outcome::RepeatKill);
    assert_eq!(success_rows(db.pool(), item.seckill_id).await, 1);
    assert_eq!(stock(db.pool(), item.seckill_id).await, 9);
}

#[tokio::test]
async fn a_sold_out_loser_who_retries_hears_sold_out_again_and_leaves_no_row() {
    let db = migrated_db().await;
    let service = service(&db);
    let item = open_item(&service, 1).await;
    assert!(service.execute_one(item.seckill_id, phone(1)).await.is_success());
    assert_eq!(service.execute_one(item.seckill_id, phone(2)).await, Outcome::SoldOut);
    assert_eq!(service.execute_one(item.seckill_id, phone(2)).await, Outcome::SoldOut);
    assert_eq!(success_rows(db.pool(), item.seckill_id).await, 1);
}

#[tokio::test]
async fn outside_the_window_nothing_is_written() {
    let db = migrated_db().await;
    let service = service(&db);
    let early = item_with_window(&service, 5, chrono::Duration::hours(1), chrono::Duration::hours(2)).await;
    let late = item_with_window(&service, 5, chrono::Duration::hours(-2), chrono::Duration::hours(-1)).await;
    let sign = |id| service.signer().sign(id, phone(1), Utc::now());
    assert_eq!(service.execute(early.seckill_id, phone(1), &sign(early.seckill_id)).await, Outcome::NotStarted);
    assert_eq!(service.execute(late.seckill_id, phone(1), &sign(late.seckill_id)).await, Outcome::Ended);
    assert_eq!(service.execute(424242, phone(1), &sign(424242)).await, Outcome::NotFound);
    for item in [&early, &late] {
        assert_eq!(success_rows(db.pool(), item.seckill_id).await, 0);
        assert_eq!(stock(db.pool(), item.seckill_id).await, 5);
    }
}

#[tokio::test]
async fn the_exposer_counts_down_before_the_sale_and_signs_during_it() {
    let db = migrated_db().await;
    let service = service(&db);
    let early = item_with_window(&service, 5, chrono::Duration::hours(1), chrono::Duration::hours(2)).await;
    let open = open_item(&service, 5).await;
    let Exposure::Closed { now, start, end } = service.expose(early.seckill_id, phone(1)).await.unwrap() else {
        panic!("a sale an hour away is not open")
    };
    assert!(now < start && start == early.start_time && end == early.end_time);
    let Exposure::Open { token, .. } = service.expose(open.seckill_id, phone(1)).await.unwrap() else {
        panic!("an open sale exposes its token")
    };
    assert!(service.execute(open.seckill_id, phone(1), &token).await.is_success());
    assert!(matches!(service.expose(99999, phone(1)).await.unwrap(), Exposure::NotFound { .. }));
}

#[tokio::test]
async fn tampered_expired_and_other_users_signatures_write_nothing() {
    let db = migrated_db().await;
    let service = service(&db);
    let item = open_item(&service, 5).await;
    let id = item.seckill_id;
    let mine = service.signer().sign(id, phone(1), Utc::now());
    let expired = service.signer().sign(id, phone(1), Utc::now() - chrono::Duration::hours(1));
    let other_item = service.signer().sign(id + 1, phone(1), Utc::now());
    let other_key = Signer::hmac("some-other-secret-key").unwrap().sign(id, phone(1), Utc::now());
    let last = if mine.ends_with('0') { '1' } else { '0' };
    let flipped = format!("{}{last}", &mine[..mine.len() - 1]);
    for token in [expired.as_str(), other_item.as_str(), other_key.as_str(), flipped.as_str(), "", "garbage", "1-2"] {
        assert_eq!(service.execute(id, phone(1), token).await, Outcome::Tampered, "{token:?}");
    }
    assert_eq!(service.execute(id, phone(2), &mine).await, Outcome::Tampered, "another user's signature");
    assert_eq!(success_rows(db.pool(), id).await, 0);
    assert_eq!(stock(db.pool(), id).await, 5);
}

#[tokio::test]
async fn classic_signatures_match_md5_computed_by_the_server() {
    let db = migrated_db().await;
    let salt = "sdlkjfd83*&^%$kjdf秒杀";
    let service = Seckill::new(db.pool().clone(), Signer::classic(salt).unwrap());
    let item = open_item(&service, 5).await;
    // Computed independently of the toolkit's code: by the server's own MD5() over the UTF-8 text.
    let mut conn = db.pool().get_conn().await.unwrap();
    for id in [item.seckill_id, 1000, 1, -7] {
        let expected: String = conn.exec_first("SELECT MD5(CONCAT(?, '/', ?))", (id, salt)).await.unwrap().unwrap();
        assert_eq!(service.signer().sign(id, phone(1), Utc::now()), expected);
    }
    drop(conn);
    let Exposure::Open { token, .. } = service.expose(item.seckill_id, phone(1)).await.unwrap() else { panic!() };
    assert_eq!(service.signer().sign(item.seckill_id, phone(99), Utc::now()), token, "classic tokens are per item");
    assert!(service.execute(item.seckill_id, phone(1), &token).await.is_success());
    assert_eq!(service.execute(item.seckill_id, phone(2), &token.to_uppercase()).await, Outcome::Tampered);
}

/// Regression for the classic procedure's worst defect: after a lock wait timeout it left its transaction open
/// on the pooled connection, and the next START TRANSACTION there committed a success row without stock.
#[tokio::test(flavor = "multi_thread")]
async fn a_lock_wait_timeout_is_an_inner_error_and_leaves_nothing_behind() {
    let db = migrated_db().await;
    let pool = ConnectOptions::new(db.url())
        .max_connections(1)
        .lock_wait_timeout(Duration::from_secs(1))
        .build_pool()
        .unwrap();
    let service = Seckill::new(pool, signer());
    let item = open_item(&service, 10).await;

    let mut blocker = db.pool().get_conn().await.unwrap();
    blocker.query_drop("START TRANSACTION").await.unwrap();
    blocker.exec_drop("SELECT number FROM seckill WHERE seckill_id = ? FOR UPDATE", (item.seckill_id,)).await.unwrap();

    let outcome = service.execute_one(item.seckill_id, phone(1)).await;
    assert!(matches!(&outcome, Outcome::InnerError(e) if !e.in_doubt), "proven rolled back: {outcome:?}");
    blocker.query_drop("ROLLBACK").await.unwrap();

    // The same pooled connection (the pool holds one) goes on to run more transactions.
    assert!(service.execute_one(item.seckill_id, phone(2)).await.is_success());
    assert!(service.execute_one(item.seckill_id, phone(3)).await.is_success());
    let mut conn = service.pool().get_conn().await.unwrap();
    let in_transaction: Option<i64> = conn.query_first("SELECT @@in_transaction").await.unwrap();
    assert_eq!(in_transaction, Some(0));
    drop(conn);
    let rows_for_first: Option<i64> = db
        .pool()
        .get_conn()
        .await
        .unwrap()
        .exec_first(
            "SELECT COUNT(*) FROM success_killed WHERE seckill_id = ? AND user_phone = ?",
            (item.seckill_id, phone(1).get()),
        )
        .await
        .unwrap();
    assert_eq!(rows_for_first, Some(0));
    assert_eq!(success_rows(db.pool(), item.seckill_id).await, 2);
    assert_eq!(stock(db.pool(), item.seckill_id).await, 8);
}

/// `Questions` counts the statements a client sent on this session, not those run inside procedures.
async fn questions(pool: &mysql_async::Pool) -> i64 {
    let mut conn = pool.get_conn().await.unwrap();
    let row: Option<(String, i64)> = conn.query_first("SHOW SESSION STATUS LIKE 'Questions'").await.unwrap();
    row.unwrap().1
}

#[tokio::test]
async fn execute_is_exactly_one_round_trip() {
    let db = migrated_db().await;
    let pool = ConnectOptions::new(db.url()).max_connections(1).build_pool().unwrap();
    let service = Arc::new(Seckill::new(pool.clone(), signer()));
    let item = open_item(&service, 10).await;
    let token = service.signer().sign(item.seckill_id, phone(1), Utc::now());
    let before = questions(&pool).await; // counts itself
    let outcome = service.execute(item.seckill_id, phone(1), &token).await;
    let after = questions(&pool).await; // counts itself too
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(after - before, 2, "one statement for execute, one for the second SHOW STATUS");

    let before = questions(&pool).await;
    assert_eq!(service.execute(item.seckill_id, phone(1), &token).await, Outcome::RepeatKill);
    assert_eq!(questions(&pool).await - before, 2);
}
