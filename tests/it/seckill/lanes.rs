//! The group-commit executor against a real server: exact per-caller outcomes, whole-batch rollback, and
//! straight books when mixed with classic CALLs.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use seckill::seckill::{LaneConfig, Outcome, Seckill};

use crate::common::{RowLock, item_with_window, migrated_db, open_item, phone, service, signer, stock, success_rows};

fn reasons(outcomes: &[Outcome]) -> Vec<&'static str> {
    outcomes.iter().map(Outcome::reason).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_answers_each_caller_as_if_run_one_by_one_in_arrival_order() {
    let db = migrated_db().await;
    let service = service(&db);
    let item = open_item(&service, 4).await;
    let id = item.seckill_id;
    assert!(service.execute_verified(id, phone(1)).await.is_success(), "phone 1 already has the item");

    let lock = RowLock::take(db.pool(), id).await;
    let first = tokio::spawn(service.submit_verified(id, phone(9)));
    tokio::time::sleep(Duration::from_millis(200)).await; // the lone request is in flight, stuck on the lock
    let order = [2, 1, 3, 2, 4, 5, 4];
    let queued: Vec<_> = order.iter().map(|&n| tokio::spawn(service.submit_verified(id, phone(n)))).collect();
    lock.release().await;

    assert!(first.await.unwrap().is_success());
    let mut outcomes = Vec::new();
    for request in queued {
        outcomes.push(request.await.unwrap());
    }
    // Stock 4: phone 1 took one, phone 9 one, then 2 and 3; phone 4 finds it gone and so does its retry.
    assert_eq!(reasons(&outcomes), ["success", "repeat", "success", "repeat", "sold_out", "sold_out", "sold_out"]);
    assert_eq!(service.lane_stats().largest_batch, 7);
    assert_eq!(success_rows(db.pool(), id).await, 4);
    assert_eq!(stock(db.pool(), id).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_failing_mid_way_is_rolled_back_whole_and_everyone_in_it_hears_inner_error() {
    let db = migrated_db().await;
    let service = service(&db);
    let item = open_item(&service, 100).await;
    let id = item.seckill_id;
    let poison = phone(666);
    db.pool()
        .get_conn()
        .await
        .unwrap()
        .query_drop(format!(
            "CREATE TRIGGER poison BEFORE INSERT ON success_killed FOR EACH ROW \
             IF NEW.user_phone = {} THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'poisoned row'; END IF",
            poison.get()
        ))
        .await
        .unwrap();

    let lock = RowLock::take(db.pool(), id).await;
    let first = tokio::spawn(service.submit_verified(id, phone(1)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let batch: Vec<_> =
        [2, 3, 666, 4, 5].iter().map(|&n| tokio::spawn(service.submit_verified(id, phone(n)))).collect();
    lock.release().await;

    assert!(first.await.unwrap().is_success());
    for request in batch {
        let outcome = request.await.unwrap();
        assert!(matches!(&outcome, Outcome::InnerError(e) if e.detail.contains("poisoned row")), "{outcome:?}");
    }
    assert_eq!(success_rows(db.pool(), id).await, 1, "only the first, separate batch wrote");
    assert_eq!(stock(db.pool(), id).await, 99);
    // The pool and the lane recover: the same users can try again.
    assert!(service.execute_verified(id, phone(2)).await.is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_and_classic_calls_on_one_item_keep_the_books() {
    let db = migrated_db().await;
    let service = service(&db);
    let item = open_item(&service, 300).await;
    let id = item.seckill_id;
    // 1,000 users; each tries through the executor twice, and every fifth also through a classic CALL at the
    // same time. The same user in a batch and in a classic CALL at once can deadlock; InnoDB then rolls one
    // back (an inner error, nothing written). Whatever the interleaving, the books must balance.
    let executor_side: Vec<_> = (0..2000)
        .map(|n| {
            let service = service.clone();
            tokio::spawn(async move { service.execute_verified(id, phone(n % 1000)).await })
        })
        .collect();
    let classic_side: Vec<_> = (0..8)
        .map(|worker| {
            let pool = db.pool().clone();
            tokio::spawn(async move {
                let mut conn = pool.get_conn().await.unwrap();
                let (mut won, mut answered) = (0, 0);
                for n in (worker..1000).step_by(8).filter(|n| n % 5 == 0) {
                    conn.exec_drop("CALL execute_seckill(?, ?, NULL, @r)", (id, phone(n).get())).await.unwrap();
                    let result: i64 = conn.query_first("SELECT @r").await.unwrap().unwrap();
                    assert!([1, 0, -1, -2].contains(&result), "classic CALL answered {result}");
                    won += i64::from(result == 1);
                    answered += i64::from(result != -2);
                }
                (won, answered)
            })
        })
        .collect();
    let mut successes = 0;
    for request in executor_side {
        let outcome = request.await.unwrap();
        assert!(
            matches!(outcome, Outcome::Success(_) | Outcome::SoldOut | Outcome::RepeatKill | Outcome::InnerError(_)),
            "{outcome:?}"
        );
        successes += i64::from(outcome.is_success());
    }
    let mut classic_answered = 0;
    for worker in classic_side {
        let (won, answered) = worker.await.unwrap();
        successes += won;
        classic_answered += answered;
    }
    assert!(classic_answered > 0, "the classic side took part");
    assert_eq!(successes, 300);
    assert_eq!(success_rows(db.pool(), id).await, 300);
    assert_eq!(stock(db.pool(), id).await, 0);
    assert!(service.lane_stats().largest_batch > 1, "requests were merged");
}

#[tokio::test(flavor = "multi_thread")]
async fn after_sell_out_requests_are_answered_without_the_database() {
    let db = migrated_db().await;
    let service = service(&db);
    let item = open_item(&service, 1).await;
    let id = item.seckill_id;
    assert!(service.execute_verified(id, phone(1)).await.is_success());
    assert_eq!(service.execute_verified(id, phone(2)).await, Outcome::SoldOut);
    let before = service.lane_stats();
    for n in 3..103 {
        assert_eq!(service.execute_verified(id, phone(n)).await, Outcome::SoldOut);
    }
    assert_eq!(service.execute_verified(id, phone(1)).await, Outcome::RepeatKill, "the winner, from memory");
    let after = service.lane_stats();
    assert_eq!(after.database_calls, before.database_calls);
    assert_eq!(after.short_circuited - before.short_circuited, 101);

    // Stock added through the toolkit reopens the item at once.
    service.add_stock(id, 1).await.unwrap();
    assert!(service.execute_verified(id, phone(200)).await.is_success());
    assert_eq!(success_rows(db.pool(), id).await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn stock_added_behind_the_toolkits_back_is_noticed_within_the_recheck_interval() {
    let db = migrated_db().await;
    let config = LaneConfig { recheck_interval: Duration::from_millis(300), ..LaneConfig::default() };
    let service = Seckill::with_config(db.pool().clone(), signer(), config);
    let item = open_item(&service, 0).await;
    let id = item.seckill_id;
    assert_eq!(service.execute_verified(id, phone(1)).await, Outcome::SoldOut);
    db.pool()
        .get_conn()
        .await
        .unwrap()
        .exec_drop("UPDATE seckill SET number = number + 1 WHERE seckill_id = ?", (id,))
        .await
        .unwrap();
    assert_eq!(service.execute_verified(id, phone(1)).await, Outcome::SoldOut, "still remembered");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(service.execute_verified(id, phone(1)).await.is_success(), "noticed after the interval");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hot_item_stuck_on_its_lock_does_not_hold_up_another_item() {
    let db = migrated_db().await;
    let service = service(&db);
    let hot = open_item(&service, 10).await;
    let other = open_item(&service, 10).await;
    let lock = RowLock::take(db.pool(), hot.seckill_id).await;
    let stuck: Vec<_> = (0..50).map(|n| tokio::spawn(service.submit_verified(hot.seckill_id, phone(n)))).collect();
    let elsewhere =
        tokio::time::timeout(Duration::from_secs(5), service.execute_verified(other.seckill_id, phone(1))).await;
    assert!(elsewhere.expect("the other item answers while the hot one is stuck").is_success());
    lock.release().await;
    let mut successes = 0;
    for request in stuck {
        successes += usize::from(request.await.unwrap().is_success());
    }
    assert_eq!(successes, 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_whole_batch_outside_the_window_writes_nothing() {
    let db = migrated_db().await;
    let service = service(&db);
    let early = item_with_window(&service, 5, chrono::Duration::hours(1), chrono::Duration::hours(2)).await;
    let late = item_with_window(&service, 5, chrono::Duration::hours(-2), chrono::Duration::hours(-1)).await;
    for (item, expected) in [(&early, Outcome::NotStarted), (&late, Outcome::Ended)] {
        let lock = RowLock::take(db.pool(), item.seckill_id).await;
        let requests: Vec<_> =
            (0..20).map(|n| tokio::spawn(service.submit_verified(item.seckill_id, phone(n)))).collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        lock.release().await;
        for request in requests {
            assert_eq!(request.await.unwrap(), expected);
        }
        assert_eq!(success_rows(db.pool(), item.seckill_id).await, 0);
        assert_eq!(stock(db.pool(), item.seckill_id).await, 5);
    }
    let missing: Vec<_> = (0..20).map(|n| tokio::spawn(service.submit_verified(777_777, phone(n)))).collect();
    for request in missing {
        assert_eq!(request.await.unwrap(), Outcome::NotFound);
    }
}

/// Regression: an instance that found an item sold out answered every buyer "sold out" from memory, a buyer who
/// won through another instance too, where the database says "repeat". Now it refuses only buyers who did not
/// buy: the others hear "repeat" (from a point read of their row), on any instance.
#[tokio::test(flavor = "multi_thread")]
async fn a_buyer_who_won_through_another_instance_hears_repeat_not_sold_out() {
    let db = migrated_db().await;
    let (a, b) = (service(&db), service(&db));
    let id = open_item(&a, 1).await.seckill_id;
    assert!(a.execute_verified(id, phone(1)).await.is_success());
    assert_eq!(b.execute_verified(id, phone(2)).await, Outcome::SoldOut, "b learns the item is sold out");
    let before = b.lane_stats();
    assert_eq!(b.execute_verified(id, phone(1)).await, Outcome::RepeatKill, "the winner, on the other instance");
    assert_eq!(b.execute_verified(id, phone(3)).await, Outcome::SoldOut);
    let after = b.lane_stats();
    assert_eq!(after.database_calls, before.database_calls, "answered without a batch");
    assert_eq!(after.short_circuited - before.short_circuited, 2);
    // The instance that sold every unit knows every winner, and answers from memory.
    assert_eq!(a.execute_verified(id, phone(1)).await, Outcome::RepeatKill);
    assert_eq!(success_rows(db.pool(), id).await, 1);
}
