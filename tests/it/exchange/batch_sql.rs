//! The set-based `exchange_credit_batch` against its contract, called directly: every answer and every row of
//! many random batches (users twice in a batch, repeats within and across batches, unknown users and gifts,
//! stock and balances running out mid-batch) equals what deciding the requests one at a time, in arrival order,
//! gives; and batches of two gifts that share users in opposite arrival orders, run concurrently many times,
//! never deadlock.

use std::collections::HashMap;
use std::sync::Arc;

use mysql_async::Pool;
use mysql_async::prelude::Queryable;
use seckill::exchange::{Books, Exchange, NewGift};
use serde_json::json;

use seckill::testing::TestDatabase;

use crate::common::{interleaved_ids_db, migrated_db};

/// A small deterministic generator: the same batches on every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

/// One exchange_request row: user, request id, outcome, exchange_id, balance_after.
type Recorded = (i64, String, String, Option<i64>, Option<i64>);

/// One answer row: seq, outcome, repeat, exchange_id, balance_after, stock_left, first_gift_id.
type Answer = (i64, String, i64, Option<i64>, Option<i64>, Option<i64>, Option<i64>);

/// The contract, one request at a time. Exchange ids are not modelled: they are checked against the rows.
#[derive(Default)]
struct Model {
    balances: HashMap<i64, i64>,
    gifts: HashMap<i64, (i64, i64)>,
    /// (user, request id) -> (gift, outcome, balance_after); `exchanged` marks which ones paid.
    first_answers: HashMap<(i64, String), (i64, String, Option<i64>)>,
    /// Some user paid for two requests in one batch.
    paid_twice_in_one_batch: bool,
    /// Some request id was sent again for another gift.
    reused_a_key: bool,
}

/// The expected (outcome, repeat, balance_after, stock_left, first_gift_id) of one request.
type Expected = (String, bool, Option<i64>, Option<i64>, Option<i64>);

impl Model {
    /// The expected answer of each request, in order.
    fn decide(&mut self, gift: i64, requests: &[(i64, String)]) -> Vec<Expected> {
        let mut answers = Vec::new();
        let mut paid = std::collections::HashSet::new();
        for (user, request) in requests {
            let key = (*user, request.clone());
            let stock_left = self.gifts.get(&gift).map(|(_, stock)| *stock);
            if let Some((first_gift, outcome, balance_after)) = self.first_answers.get(&key) {
                // A request id names one request: sent for another gift, it is refused and changes nothing.
                if *first_gift != gift {
                    self.reused_a_key = true;
                    answers.push(("key_reused".into(), true, None, stock_left, Some(*first_gift)));
                } else {
                    answers.push((outcome.clone(), true, *balance_after, stock_left, None));
                }
                continue;
            }
            let (outcome, balance_after) = match (self.gifts.get_mut(&gift), self.balances.get_mut(user)) {
                (None, _) => ("unknown_gift", None),
                (Some(_), None) => ("unknown_user", None),
                (Some((_, stock)), Some(_)) if *stock <= 0 => ("out_of_stock", None),
                (Some((cost, _)), Some(balance)) if *balance < *cost => ("not_enough_points", None),
                (Some((cost, stock)), Some(balance)) => {
                    *balance -= *cost;
                    *stock -= 1;
                    self.paid_twice_in_one_batch |= !paid.insert(*user);
                    ("exchanged", Some(*balance))
                }
            };
            self.first_answers.insert(key, (gift, outcome.to_string(), balance_after));
            let stock_left = self.gifts.get(&gift).map(|(_, stock)| *stock);
            answers.push((outcome.to_string(), false, balance_after, stock_left, None));
        }
        answers
    }
}

async fn call_batch(pool: &Pool, gift: i64, requests: &[(i64, String)]) -> Result<Vec<Answer>, mysql_async::Error> {
    let list: Vec<_> = requests.iter().map(|(user, request)| json!({"user": user, "request": request})).collect();
    let mut conn = pool.get_conn().await?;
    conn.exec("CALL exchange_credit_batch(?, ?)", (gift, serde_json::Value::Array(list).to_string())).await
}

#[tokio::test(flavor = "multi_thread")]
async fn random_batches_are_decided_as_one_request_at_a_time_in_arrival_order() {
    decide_random_batches(&migrated_db().await).await;
}

/// The same where one statement's auto-increment ids need not be consecutive: the new exchanges' ids are read
/// back instead of computed.
#[tokio::test(flavor = "multi_thread")]
async fn random_batches_are_decided_alike_with_interleaved_auto_increment_ids() {
    let db = interleaved_ids_db().await;
    let mut conn = db.pool().get_conn().await.unwrap();
    let mode: i64 = conn.query_first("SELECT @@GLOBAL.innodb_autoinc_lock_mode").await.unwrap().unwrap();
    assert_eq!(mode, 2);
    drop(conn);
    decide_random_batches(&db).await;
}

/// Random batches of one gift at a time against [`Model`], then every row against it.
async fn decide_random_batches(db: &TestDatabase) {
    let service = Exchange::new(db.pool().clone());
    let mut model = Model::default();
    let mut random = Lcg(7);
    let mut gifts = Vec::new();
    for n in 0..4 {
        let (cost, stock) = (10 + 15 * n, 3 + 4 * n as i32);
        let gift = service.create_gift(&NewGift { name: format!("gift {n}"), cost, stock }).await.unwrap();
        model.gifts.insert(gift.gift_id, (cost, i64::from(stock)));
        gifts.push(gift.gift_id);
    }
    gifts.push(9_999); // no such gift
    for user in 1..=12 {
        let amount = 5 + (user * 53) % 250;
        service.grant(user, amount, "welcome").await.unwrap();
        model.balances.insert(user, amount);
    }
    let mut exchange_of: HashMap<(i64, String), i64> = HashMap::new();
    for round in 0..60 {
        let gift = gifts[random.below(gifts.len() as u64) as usize];
        let size = 1 + random.below(24) as usize;
        // Users 13 and 14 were never granted points; few request ids, so repeats are frequent.
        let requests: Vec<(i64, String)> =
            (0..size).map(|_| (1 + random.below(14) as i64, format!("r-{}", random.below(6)))).collect();
        let expected = model.decide(gift, &requests);
        let answers = call_batch(db.pool(), gift, &requests).await.unwrap();
        assert_eq!(answers.len(), requests.len(), "round {round}");
        for (index, (answer, want)) in answers.iter().zip(&expected).enumerate() {
            let (seq, outcome, repeat, exchange_id, balance_after, stock_left, first_gift_id) = answer;
            let got = (outcome.clone(), *repeat != 0, *balance_after, *stock_left, *first_gift_id);
            assert_eq!(*seq, index as i64 + 1);
            assert_eq!(&got, want, "round {round}, request {} {:?} of {requests:?}", index + 1, requests[index]);
            assert_eq!(exchange_id.is_some(), outcome == "exchanged", "round {round}: {answer:?}");
            if let Some(id) = exchange_id {
                // A repeat names the exchange its first answer made.
                let first = *exchange_of.entry(requests[index].clone()).or_insert(*id);
                assert_eq!(first, *id, "round {round}: {answer:?}");
            }
        }
    }

    // The rows: balances, stock, one exchange and one message per paid request, every first answer recorded.
    let mut conn = db.pool().get_conn().await.unwrap();
    let balances: Vec<(i64, i64)> = conn.query("SELECT user_id, credit FROM credit").await.unwrap();
    assert_eq!(balances.into_iter().collect::<HashMap<_, _>>(), model.balances);
    for (gift, (_, stock)) in &model.gifts {
        let left: Option<i64> =
            conn.exec_first("SELECT stock FROM exchange_gift WHERE gift_id = ?", (gift,)).await.unwrap();
        assert_eq!(left, Some(*stock), "gift {gift}");
    }
    let recorded: Vec<Recorded> = conn
        .query("SELECT user_id, request_id, outcome, exchange_id, balance_after FROM exchange_request")
        .await
        .unwrap();
    assert_eq!(recorded.len(), model.first_answers.len());
    for (user, request, outcome, exchange_id, balance_after) in recorded {
        let key = (user, request);
        let first = model.first_answers.get(&key).map(|(_, outcome, balance_after)| (outcome.clone(), *balance_after));
        assert_eq!(first, Some((outcome, balance_after)), "{key:?}");
        assert_eq!(exchange_id, exchange_of.get(&key).copied(), "{key:?}");
    }
    let exchanges: i64 = conn.query_first("SELECT COUNT(*) FROM credit_exchange").await.unwrap().unwrap();
    assert_eq!(exchanges, exchange_of.len() as i64);
    assert!(exchanges >= 15, "the rounds exchanged enough to test something: {exchanges}");
    // Every outcome was met, and users twice in a batch, so the rounds tested the precedence and the order.
    for outcome in ["exchanged", "unknown_gift", "unknown_user", "out_of_stock", "not_enough_points"] {
        assert!(model.first_answers.values().any(|answer| answer.1 == outcome), "no {outcome} in the rounds");
    }
    assert!(model.paid_twice_in_one_batch, "no user paid twice in one batch");
    assert!(model.reused_a_key, "no request id was reused for another gift");
    let messages: i64 = conn.query_first("SELECT COUNT(*) FROM message_outbox").await.unwrap().unwrap();
    assert_eq!(messages, exchanges);
    Books::read(db.pool()).await.unwrap().check().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_of_two_gifts_sharing_users_in_opposite_orders_never_deadlock() {
    // Eight callers at once, each sending 40 batches of all 64 users.
    opposite_orders_never_deadlock(64, 8, 40).await;
}

/// A batch of more users than one locking statement takes (999) locks them in several, still in user_id order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_of_more_users_than_one_lock_statement_takes_never_deadlock_either() {
    opposite_orders_never_deadlock(2_100, 4, 6).await;
}

/// `callers` at once, each sending `rounds` batches of all `users` users: gift one in ascending user order, gift
/// two in descending order. Any lock taken in arrival order would deadlock these within a few rounds. Every
/// request is exchanged, and the books balance.
async fn opposite_orders_never_deadlock(users: i64, callers: usize, rounds: usize) {
    let db = migrated_db().await;
    let service = Exchange::new(db.pool().clone());
    let stock = 1_000_000;
    let first = service.create_gift(&NewGift { name: "one".into(), cost: 1, stock }).await.unwrap().gift_id;
    let second = service.create_gift(&NewGift { name: "two".into(), cost: 1, stock }).await.unwrap().gift_id;
    let users: Vec<i64> = (1..=users).collect();
    for user in &users {
        service.grant(*user, 1_000_000, "welcome").await.unwrap();
    }
    let users = Arc::new(users);
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let (pool, users) = (db.pool().clone(), users.clone());
            tokio::spawn(async move {
                let mut failures = Vec::new();
                for round in 0..rounds {
                    let (gift, order): (i64, Vec<i64>) = if (caller + round) % 2 == 0 {
                        (first, users.iter().copied().collect())
                    } else {
                        (second, users.iter().rev().copied().collect())
                    };
                    let requests: Vec<(i64, String)> =
                        order.into_iter().map(|user| (user, format!("c{caller}-r{round}"))).collect();
                    match call_batch(&pool, gift, &requests).await {
                        Ok(answers) => {
                            assert_eq!(answers.len(), requests.len());
                            assert!(answers.iter().all(|answer| answer.1 == "exchanged"), "{answers:?}");
                        }
                        Err(error) => failures.push(error.to_string()),
                    }
                }
                failures
            })
        })
        .collect();
    let mut failures = Vec::new();
    for task in tasks {
        failures.extend(task.await.unwrap());
    }
    assert!(failures.is_empty(), "{} batches failed, e.g. {:?}", failures.len(), failures.first());
    let mut conn = db.pool().get_conn().await.unwrap();
    let exchanges: i64 = conn.query_first("SELECT COUNT(*) FROM credit_exchange").await.unwrap().unwrap();
    assert_eq!(exchanges, (callers * rounds) as i64 * users.len() as i64);
    Books::read(db.pool()).await.unwrap().check().unwrap();
}

/// Regression: a refusal of an unknown gift is recorded without any user's lock; recorded for the same (user,
/// request id) as a request of a hot gift's batch while that batch was being decided, it made the batch's first
/// answers fail on the duplicate key and rolled the whole batch back, every other user's exchange with it. Now
/// the batch decides again, seeing the refusal: that one request is refused as reused, the rest go through.
#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_of_an_unknown_gift_never_rolls_back_another_users_exchanges() {
    let db = migrated_db().await;
    let service = Exchange::new(db.pool().clone());
    let hot = service.create_gift(&NewGift { name: "hot".into(), cost: 10, stock: 100 }).await.unwrap().gift_id;
    for user in 1..=20 {
        service.grant(user, 100, "welcome").await.unwrap();
    }
    // The hot gift's batch waits, once decided, for the outbox, which the test holds: meanwhile another batch,
    // of a gift that does not exist, records user 1's request id "k".
    let mut holder = db.pool().get_conn().await.unwrap();
    holder.query_drop("LOCK TABLES message_outbox WRITE").await.unwrap();
    let requests: Vec<(i64, String)> = (1..=20).map(|user| (user, "k".to_string())).collect();
    let pool = db.pool().clone();
    let batch = tokio::spawn(async move { call_batch(&pool, hot, &requests).await });
    let mut waiting = false;
    for _ in 0..500 {
        // The batch's session, in this test's database, waiting for the lock the test holds.
        let waiting_sessions: i64 = holder
            .query_first(
                "SELECT COUNT(*) FROM information_schema.processlist \
                  WHERE db = DATABASE() AND id <> CONNECTION_ID() AND state LIKE '%metadata lock%'",
            )
            .await
            .unwrap()
            .unwrap();
        if waiting_sessions > 0 {
            waiting = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(waiting, "the hot gift's batch reached the outbox");
    let refusal = call_batch(db.pool(), 9_999, &[(1, "k".to_string())]).await.unwrap();
    assert_eq!(refusal[0].1, "unknown_gift", "{refusal:?}");
    holder.query_drop("UNLOCK TABLES").await.unwrap();
    let answers = batch.await.unwrap().expect("the hot gift's batch is not rolled back");
    assert_eq!((answers[0].1.as_str(), answers[0].6), ("key_reused", Some(9_999)), "{:?}", answers[0]);
    assert!(answers[1..].iter().all(|answer| answer.1 == "exchanged"), "{answers:?}");
    let mut conn = db.pool().get_conn().await.unwrap();
    let exchanges: i64 = conn.query_first("SELECT COUNT(*) FROM credit_exchange").await.unwrap().unwrap();
    assert_eq!(exchanges, 19);
    Books::read(db.pool()).await.unwrap().check().unwrap();
}
