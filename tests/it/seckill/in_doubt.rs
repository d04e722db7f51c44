//! A caller is told "rolled back" only when the server proved it. The procedures prove it by raising SQLSTATE
//! 45RB0 after their own ROLLBACK; any other error once a CALL was sent leaves the outcome in doubt, in the
//! library (`InnerError { in_doubt: true }`), over HTTP (503 naming `/seckill/{id}/result`) and in the CLI
//! (exit 5 and how to check).

use std::collections::HashSet;
use std::time::Duration;

use hyper::StatusCode;
use mysql_async::prelude::Queryable;
use seckill::database::ConnectOptions;
use seckill::seckill::{Outcome, Phone, Seckill};

use crate::common::http::serve;
use crate::common::{
    RowLock, connection_waiting_for_an_item_lock, has_row, migrated_db, open_item, phone, seckill_command, service,
    signer,
};

/// Regression: a server error that arrived after the procedure's COMMIT (a KILL, `lock_wait_timeout`,
/// `max_statement_time` hitting a read the procedure made after committing, or its final SELECT) was reported
/// as a definite failure while the success row was committed. Statement timeouts from 0.1 ms to 3 ms land
/// before, during and after the COMMIT, on the single path and on batches; whatever each caller hears must be
/// backed by the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_timeout_at_any_point_never_reports_a_committed_seckill_as_rolled_back() {
    let db = migrated_db().await;
    let id = open_item(&service(&db), 1_000_000).await.seckill_id;
    let mut told: Vec<(Phone, Outcome)> = Vec::new();
    let mut next_buyer = 0;
    for round in 0..30u64 {
        let timeout = Duration::from_micros(100 + round * 100);
        let pool = ConnectOptions::new(db.url()).statement_timeout(timeout).max_connections(8).build_pool().unwrap();
        let service = Seckill::new(pool.clone(), signer());
        let mut calls = Vec::new();
        for n in 0..28 {
            next_buyer += 1;
            let (buyer, service) = (phone(next_buyer), service.clone());
            // A few lone calls of the single path, then a burst the executor merges into batches.
            let single = n < 4;
            calls.push((
                buyer,
                tokio::spawn(async move {
                    if single {
                        service.execute_one(id, buyer).await
                    } else {
                        service.execute_verified(id, buyer).await
                    }
                }),
            ));
        }
        for (buyer, call) in calls {
            told.push((buyer, call.await.unwrap()));
        }
        pool.disconnect().await.ok();
    }

    let mut conn = db.pool().get_conn().await.unwrap();
    let rows: Vec<i64> = conn.exec("SELECT user_phone FROM success_killed WHERE seckill_id = ?", (id,)).await.unwrap();
    let rows: HashSet<i64> = rows.into_iter().collect();
    let (mut successes, mut rolled_back, mut in_doubt) = (0, 0, 0);
    for (buyer, outcome) in &told {
        match outcome {
            Outcome::Success(_) => {
                successes += 1;
                assert!(rows.contains(&buyer.get()), "{buyer} was told success but has no row");
            }
            Outcome::InnerError(error) if error.in_doubt => in_doubt += 1,
            Outcome::InnerError(error) => {
                rolled_back += 1;
                assert!(!rows.contains(&buyer.get()), "{buyer} was told rolled back ({}) but has a row", error.detail);
            }
            other => panic!("{buyer}: unexpected {other:?}"),
        }
    }
    let answered: HashSet<i64> = told
        .iter()
        .filter(|(_, outcome)| match outcome {
            Outcome::Success(_) => true,
            Outcome::InnerError(error) => error.in_doubt,
            _ => false,
        })
        .map(|(buyer, _)| buyer.get())
        .collect();
    assert!(rows.is_subset(&answered), "every row belongs to a buyer told success or in doubt");
    assert!(successes > 0 && rolled_back + in_doubt > 0, "{successes} successes, {rolled_back} + {in_doubt} errors");
}

/// A seckill whose connection dies after the CALL was sent: in doubt over HTTP (503, naming where to check),
/// and the check answers what the database holds.
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_lost_mid_call_is_a_503_in_doubt_naming_the_result_endpoint() {
    let db = migrated_db().await;
    let service = service(&db);
    let id = open_item(&service, 5).await.seckill_id;
    let me = phone(1);
    let token = service.signer().sign(id, me, chrono::Utc::now());
    let served = std::sync::Arc::new(serve(seckill::seckill::http::router(service)).await);

    let lock = RowLock::take(db.pool(), id).await;
    let execution = tokio::spawn({
        let served = served.clone();
        async move { served.post(&format!("/seckill/{id}/{token}/execution"), Some(&me.to_string())).await }
    });
    let victim = connection_waiting_for_an_item_lock(db.pool()).await;
    db.pool().get_conn().await.unwrap().query_drop(format!("KILL {victim}")).await.unwrap();
    let answer = execution.await.unwrap();
    lock.release().await;

    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{}", answer.text);
    assert_eq!(answer.json["success"], false);
    assert!(answer.json["error"].as_str().unwrap().contains(&format!("/seckill/{id}/result")), "{}", answer.text);
    let result = served.get_as(&format!("/seckill/{id}/result"), &me.to_string()).await;
    assert_eq!((result.status, result.json["data"].is_null()), (StatusCode::OK, true), "{}", result.text);
    assert!(!has_row(db.pool(), id, me).await);
}

/// Regression: `seckill execute` printed "failed and was rolled back" for an outcome in doubt.
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_says_an_outcome_in_doubt_is_unknown_and_how_to_check_it() {
    let db = migrated_db().await;
    let service = service(&db);
    let id = open_item(&service, 5).await.seckill_id;
    let me = phone(7);
    let token = service.signer().sign(id, me, chrono::Utc::now());

    let lock = RowLock::take(db.pool(), id).await;
    let mut execute = seckill_command(db.url());
    execute.args(["execute", &id.to_string(), "--phone", &me.to_string(), "--md5", &token]);
    let cli = tokio::task::spawn_blocking(move || execute.output().unwrap());
    let victim = connection_waiting_for_an_item_lock(db.pool()).await;
    db.pool().get_conn().await.unwrap().query_drop(format!("KILL {victim}")).await.unwrap();
    let output = cli.await.unwrap();
    lock.release().await;

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    assert!(stderr.starts_with("seckill: error: the outcome is unknown"), "{stderr}");
    assert!(stderr.contains(&format!("seckill result {id} --phone {me}")), "{stderr}");
    assert!(!stderr.contains("rolled back"), "{stderr}");

    let check = seckill_command(db.url()).args(["result", &id.to_string(), "--phone", &me.to_string()]).output();
    let check = check.unwrap();
    assert_eq!(check.status.code(), Some(4), "no record: {}", String::from_utf8_lossy(&check.stdout));
    assert!(service.execute_one(id, me).await.is_success());
    let check = seckill_command(db.url()).args(["result", &id.to_string(), "--phone", &me.to_string()]).output();
    assert_eq!(check.unwrap().status.code(), Some(0));
}

/// A failure the procedure caught, rolled back and said so: a definite "rolled back", the classic -2 over HTTP.
#[tokio::test(flavor = "multi_thread")]
async fn a_proven_rollback_is_the_classic_minus_two() {
    let db = migrated_db().await;
    let pool = ConnectOptions::new(db.url()).lock_wait_timeout(Duration::from_secs(1)).build_pool().unwrap();
    let service = Seckill::new(pool, signer());
    let id = open_item(&service, 5).await.seckill_id;
    let me = phone(3);
    let token = service.signer().sign(id, me, chrono::Utc::now());
    let served = serve(seckill::seckill::http::router(service)).await;

    let lock = RowLock::take(db.pool(), id).await;
    let answer = served.post(&format!("/seckill/{id}/{token}/execution"), Some(&me.to_string())).await;
    lock.release().await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!((answer.json["success"].as_bool(), answer.json["data"]["state"].as_i64()), (Some(true), Some(-2)));
    assert!(!has_row(db.pool(), id, me).await);
}
