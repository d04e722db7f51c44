//! The procedures at SQL level, through `CALL execute_seckill(...)` as classic callers (MyBatis mappers) use it.

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use seckill::testing::TestDatabase;

use crate::common::migrated_db;

/// Creates an item with `stock` whose window is [now + start_hours, now + end_hours).
async fn item(conn: &mut Conn, stock: i32, start_hours: i32, end_hours: i32) -> i64 {
    conn.exec_drop(
        "INSERT INTO seckill (name, number, start_time, end_time) \
         VALUES ('sql item', ?, UTC_TIMESTAMP(3) + INTERVAL ? HOUR, UTC_TIMESTAMP(3) + INTERVAL ? HOUR)",
        (stock, start_hours, end_hours),
    )
    .await
    .unwrap();
    conn.last_insert_id().unwrap() as i64
}

async fn call(conn: &mut Conn, seckill_id: i64, phone: i64) -> i64 {
    conn.exec_drop("CALL execute_seckill(?, ?, NULL, @r)", (seckill_id, phone)).await.unwrap();
    conn.query_first("SELECT @r").await.unwrap().unwrap()
}

async fn count(conn: &mut Conn, sql: &str, id: i64) -> i64 {
    conn.exec_first(sql, (id,)).await.unwrap().unwrap()
}

#[tokio::test]
async fn classic_call_codes_success_repeat_end() {
    let db = migrated_db().await;
    let mut conn = db.pool().get_conn().await.unwrap();
    let open = item(&mut conn, 1, -1, 1).await;
    let early = item(&mut conn, 1, 1, 2).await;
    let late = item(&mut conn, 1, -2, -1).await;
    assert_eq!(call(&mut conn, open, 13800000001).await, 1);
    assert_eq!(call(&mut conn, open, 13800000001).await, -1);
    assert_eq!(call(&mut conn, open, 13800000002).await, 0, "sold out");
    assert_eq!(call(&mut conn, open, 13800000002).await, 0, "a loser's retry is not a repeat");
    assert_eq!(call(&mut conn, early, 13800000001).await, 0);
    assert_eq!(call(&mut conn, late, 13800000001).await, 0);
    assert_eq!(call(&mut conn, 987654, 13800000001).await, 0);
    assert_eq!(count(&mut conn, "SELECT COUNT(*) FROM success_killed WHERE seckill_id >= ?", 0).await, 1);
    assert_eq!(count(&mut conn, "SELECT SUM(number) FROM seckill WHERE seckill_id >= ?", 0).await, 2);
}

#[tokio::test]
async fn a_kill_time_is_read_in_the_sessions_time_zone() {
    let db = migrated_db().await;
    let mut conn = db.pool().get_conn().await.unwrap();
    let open = item(&mut conn, 5, -1, 1).await;
    // A caller in UTC+8 passing its local "now" (the classic 8-hour bug) is inside the window.
    conn.query_drop("SET time_zone = '+08:00'").await.unwrap();
    conn.exec_drop("CALL execute_seckill(?, 13800000001, NOW(3), @r)", (open,)).await.unwrap();
    let result: i64 = conn.query_first("SELECT @r").await.unwrap().unwrap();
    assert_eq!(result, 1);
    conn.query_drop("SET time_zone = '+00:00'").await.unwrap();
    let gap: i64 = conn
        .exec_first(
            "SELECT ABS(TIMESTAMPDIFF(SECOND, create_time, UTC_TIMESTAMP())) FROM success_killed WHERE seckill_id = ?",
            (open,),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(gap < 60, "stored in UTC, {gap} s from now");
}

/// The classic defect, at SQL level: the failed CALL must not leave a transaction for the next one to commit.
#[tokio::test(flavor = "multi_thread")]
async fn lock_wait_timeout_in_a_call_rolls_back_before_the_next_transaction() {
    let db = migrated_db().await;
    let mut setup = db.pool().get_conn().await.unwrap();
    let id = item(&mut setup, 10, -1, 1).await;
    let mut blocker = db.pool().get_conn().await.unwrap();
    blocker.query_drop("START TRANSACTION").await.unwrap();
    blocker.exec_drop("SELECT number FROM seckill WHERE seckill_id = ? FOR UPDATE", (id,)).await.unwrap();

    let mut caller = db.pool().get_conn().await.unwrap();
    caller.query_drop("SET SESSION innodb_lock_wait_timeout = 1").await.unwrap();
    assert_eq!(call(&mut caller, id, 13800000001).await, -2);
    let open: i64 = caller.query_first("SELECT @@in_transaction").await.unwrap().unwrap();
    assert_eq!(open, 0, "no transaction left open");
    blocker.query_drop("ROLLBACK").await.unwrap();
    caller.query_drop("START TRANSACTION").await.unwrap();
    caller.query_drop("COMMIT").await.unwrap();

    assert_eq!(count(&mut setup, "SELECT COUNT(*) FROM success_killed WHERE seckill_id = ?", id).await, 0);
    assert_eq!(count(&mut setup, "SELECT number FROM seckill WHERE seckill_id = ?", id).await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_never_oversell() {
    let db: TestDatabase = migrated_db().await;
    let mut setup = db.pool().get_conn().await.unwrap();
    let id = item(&mut setup, 50, -1, 1).await;
    let callers: Vec<_> = (0..16)
        .map(|caller| {
            let pool = db.pool().clone();
            tokio::spawn(async move {
                let mut conn = pool.get_conn().await.unwrap();
                let mut won = 0;
                for n in 0..40 {
                    // Every user tries twice: the second is a repeat or another sold-out answer.
                    let phone = 13800000000 + caller * 100 + n;
                    for _ in 0..2 {
                        if call(&mut conn, id, phone).await == 1 {
                            won += 1;
                        }
                    }
                }
                won
            })
        })
        .collect();
    let mut won = 0;
    for caller in callers {
        won += caller.await.unwrap();
    }
    assert_eq!(won, 50);
    assert_eq!(count(&mut setup, "SELECT COUNT(*) FROM success_killed WHERE seckill_id = ?", id).await, 50);
    assert_eq!(count(&mut setup, "SELECT number FROM seckill WHERE seckill_id = ?", id).await, 0);
}
