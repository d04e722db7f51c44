//! The points exchange against a real server: no oversell and no overdraft under a crowd, a retry with the same
//! request id answering the first outcome, refusals that change nothing, whole-batch rollbacks said as such,
//! and a database killed mid-exchange. Every test ends with the books.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql_async::Pool;
use mysql_async::prelude::Queryable;
use seckill::database::ConnectOptions;
use seckill::exchange::{Books, Exchange, ExchangeError, ExchangeOutcome, Gift, NewGift, RequestId};
use serde_json::json;

use crate::common::private_database;
use crate::common::{count, migrated_db, seckill_command};

async fn new_gift(service: &Exchange, cost: i64, stock: i32) -> Gift {
    service.create_gift(&NewGift { name: "test gift".into(), cost, stock }).await.expect("the gift is created")
}

fn rid(text: &str) -> RequestId {
    RequestId::new(text).expect("a valid request id")
}

async fn stock(pool: &Pool, gift_id: i64) -> i64 {
    let mut conn = pool.get_conn().await.unwrap();
    conn.exec_first("SELECT stock FROM exchange_gift WHERE gift_id = ?", (gift_id,)).await.unwrap().unwrap()
}

/// The books balance, and every exchange's shipment message is exactly the one the warehouse expects.
async fn assert_books(pool: &Pool) {
    let books = Books::read(pool).await.unwrap();
    books.check().unwrap_or_else(|problems| panic!("the books do not balance: {problems}"));
    let mut conn = pool.get_conn().await.unwrap();
    let exchanges: Vec<(i64, i64, i64, i64)> =
        conn.query("SELECT id, product_id, user_id, exchanged_credit FROM credit_exchange").await.unwrap();
    let messages: Vec<(String, String, String)> =
        conn.query("SELECT topic, business_key, payload FROM message_outbox").await.unwrap();
    assert_eq!(messages.len(), exchanges.len(), "one message per exchange");
    let by_key: HashMap<String, serde_json::Value> = messages
        .into_iter()
        .map(|(topic, key, payload)| {
            assert_eq!(topic, "warehouse.shipment");
            (key, serde_json::from_str(&payload).unwrap())
        })
        .collect();
    for (id, product_id, user_id, exchanged_credit) in exchanges {
        let expected = json!({"type": 2, "credit_exchange_id": id, "product_id": product_id, "user_id": user_id,
                              "exchanged_credit": exchanged_credit});
        assert_eq!(by_key.get(&id.to_string()), Some(&expected), "the message of exchange {id}");
    }
    assert!(count(pool, "SELECT COUNT(*) FROM credit WHERE credit < 0").await == 0, "no negative balance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crowd_exchanging_a_hot_gift_never_oversells_or_overdraws() {
    let db = migrated_db().await;
    let service = Exchange::new(db.pool().clone());
    let hot = new_gift(&service, 100, 50).await;
    // A second gift the same users exchange at the same time: batches of two gifts that share users must
    // never deadlock (every failure would show as an inner error below).
    let cheap = new_gift(&service, 30, 10_000).await;
    // 300 users: a quarter can afford nothing, a quarter one hot gift, a half one or two, before the cheap one.
    let points = [50, 100, 150, 250];
    for user in 1..=300i64 {
        service.grant(user, points[user as usize % 4], "welcome").await.unwrap();
    }
    let granted: i64 = (1..=300).map(|user| points[user as usize % 4]).sum();

    // 600 attempts at the hot gift (every user twice, with a new request id each time) and 300 at the cheap one,
    // interleaved, all at once.
    let mut attempts = Vec::new();
    for round in 0..3 {
        for user in 1..=300i64 {
            let (gift, request) = match round {
                0 | 1 => (hot.gift_id, format!("hot-{user}-{round}")),
                _ => (cheap.gift_id, format!("cheap-{user}")),
            };
            let service = service.clone();
            attempts.push((
                user,
                gift,
                tokio::spawn(async move { service.exchange(user, gift, &request).await.unwrap() }),
            ));
        }
    }
    let mut exchanged: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
    let mut exchange_ids = HashSet::new();
    for (user, gift, attempt) in attempts {
        let outcome = attempt.await.unwrap();
        match outcome {
            ExchangeOutcome::Exchanged { exchange_id, balance_after, repeat: false } => {
                assert!(balance_after >= 0);
                assert!(exchange_ids.insert(exchange_id), "exchange {exchange_id} reported twice");
                exchanged.entry(gift).or_default().push((user, exchange_id));
            }
            ExchangeOutcome::NotEnoughPoints { repeat: false } | ExchangeOutcome::OutOfStock { repeat: false } => {}
            other => panic!("user {user}, gift {gift}: {other:?}"),
        }
    }
    let hot_exchanges = exchanged.get(&hot.gift_id).map_or(0, Vec::len);
    assert_eq!(hot_exchanges, 50, "exactly the stock: far more users could afford it");
    assert_eq!(stock(db.pool(), hot.gift_id).await, 0);
    let cheap_exchanges = exchanged.get(&cheap.gift_id).map_or(0, Vec::len) as i64;
    assert_eq!(stock(db.pool(), cheap.gift_id).await, 10_000 - cheap_exchanges);

    // What callers were told is what the database holds.
    let mut conn = db.pool().get_conn().await.unwrap();
    let rows: Vec<(i64, i64, i64)> = conn.query("SELECT id, user_id, product_id FROM credit_exchange").await.unwrap();
    let told: HashSet<(i64, i64, i64)> =
        exchanged.iter().flat_map(|(gift, list)| list.iter().map(move |(user, id)| (*id, *user, *gift))).collect();
    assert_eq!(rows.into_iter().collect::<HashSet<_>>(), told);
    let spent = 100 * hot_exchanges as i64 + 30 * cheap_exchanges;
    let balances: i64 = conn.query_first("SELECT CAST(SUM(credit) AS SIGNED) FROM credit").await.unwrap().unwrap();
    assert_eq!(balances, granted - spent);
    assert!(service.stats().largest_batch > 1, "exchanges were merged into batches");
    assert_books(db.pool()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_with_the_same_request_id_returns_the_first_answer_and_deducts_once() {
    let db = migrated_db().await;
    let service = Exchange::new(db.pool().clone());
    let gift = new_gift(&service, 100, 10).await;
    let g = gift.gift_id;
    service.grant(1, 300, "welcome").await.unwrap();

    let first = service.exchange(1, g, "r-1").await.unwrap();
    let ExchangeOutcome::Exchanged { exchange_id, balance_after: 200, repeat: false } = first else {
        panic!("{first:?}")
    };
    let again = service.exchange(1, g, "r-1").await.unwrap();
    assert_eq!(again, ExchangeOutcome::Exchanged { exchange_id, balance_after: 200, repeat: true });
    assert_eq!(service.balance(1).await.unwrap(), Some(200));

    // Twenty retries of one request at once, merged into batches or not: one exchange, nineteen repeats of it.
    let retries: Vec<_> = (0..20).map(|_| service.submit(1, g, rid("r-2")).unwrap()).collect();
    let mut outcomes = Vec::new();
    for retry in retries {
        outcomes.push(retry.await);
    }
    let ExchangeOutcome::Exchanged { exchange_id: second, balance_after: 100, .. } = outcomes[0] else {
        panic!("{outcomes:?}")
    };
    assert_eq!(outcomes.iter().filter(|outcome| !outcome.is_repeat()).count(), 1, "{outcomes:?}");
    for outcome in &outcomes {
        assert_eq!(outcome.as_exchanged_id(), Some(second), "{outcome:?}");
    }
    assert_eq!(service.balance(1).await.unwrap(), Some(100));

    // A refusal is a first answer too: points granted later do not change it, a new request id does.
    service.grant(2, 50, "welcome").await.unwrap();
    assert_eq!(service.exchange(2, g, "n-1").await.unwrap(), ExchangeOutcome::NotEnoughPoints { repeat: false });
    service.grant(2, 100, "top-up").await.unwrap();
    assert_eq!(service.exchange(2, g, "n-1").await.unwrap(), ExchangeOutcome::NotEnoughPoints { repeat: true });
    assert!(matches!(
        service.exchange(2, g, "n-2").await.unwrap(),
        ExchangeOutcome::Exchanged { balance_after: 50, repeat: false, .. }
    ));
    // Request ids are exact: another case is another request.
    assert!(matches!(service.exchange(2, g, "N-1").await.unwrap(), ExchangeOutcome::NotEnoughPoints { repeat: false }));

    // A gift sold out is answered from memory, and the memory keeps first answers too.
    let last = new_gift(&service, 10, 1).await;
    service.grant(3, 10, "welcome").await.unwrap();
    let won = service.exchange(3, last.gift_id, "s-1").await.unwrap();
    assert!(matches!(won, ExchangeOutcome::Exchanged { repeat: false, .. }), "{won:?}");
    assert_eq!(service.exchange(2, last.gift_id, "s-2").await.unwrap(), ExchangeOutcome::OutOfStock { repeat: false });
    let before = service.stats();
    assert_eq!(service.exchange(3, last.gift_id, "s-1").await.unwrap(), won.as_repeat_for_test());
    assert_eq!(service.exchange(4, last.gift_id, "s-3").await.unwrap(), ExchangeOutcome::OutOfStock { repeat: false });
    assert_eq!(service.stats().batches, before.batches, "answered without the database");
    // Another process, with no memory, hears the same first answer from the database.
    let elsewhere = Exchange::new(db.pool().clone());
    assert_eq!(elsewhere.exchange(3, last.gift_id, "s-1").await.unwrap(), won.as_repeat_for_test());
    assert_eq!(elsewhere.exchange(2, g, "n-1").await.unwrap(), ExchangeOutcome::NotEnoughPoints { repeat: true });

    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM credit_exchange").await, 4);
    assert_eq!(service.balance(3).await.unwrap(), Some(0));
    let history = service.history(1, 10).await.unwrap();
    assert_eq!(history.iter().map(|record| record.exchange_id).collect::<Vec<_>>(), [second, exchange_id]);
    assert!(history.iter().all(|record| record.shipment == Some(seckill::messaging::MessageState::Pending)));
    assert_books(db.pool()).await;
}

/// Test-only views of an outcome.
trait OutcomeViews {
    fn as_exchanged_id(&self) -> Option<i64>;
    fn as_repeat_for_test(&self) -> ExchangeOutcome;
}

impl OutcomeViews for ExchangeOutcome {
    fn as_exchanged_id(&self) -> Option<i64> {
        match self {
            ExchangeOutcome::Exchanged { exchange_id, .. } => Some(*exchange_id),
            _ => None,
        }
    }

    fn as_repeat_for_test(&self) -> ExchangeOutcome {
        match self.clone() {
            ExchangeOutcome::Exchanged { exchange_id, balance_after, .. } => {
                ExchangeOutcome::Exchanged { exchange_id, balance_after, repeat: true }
            }
            other => panic!("not an exchange: {other:?}"),
        }
    }
}

/// Everything a refusal must leave alone.
async fn state(pool: &Pool) -> Vec<i64> {
    let mut snapshot = Vec::new();
    for query in [
        "SELECT COUNT(*) FROM credit",
        "SELECT CAST(COALESCE(SUM(credit), 0) AS SIGNED) FROM credit",
        "SELECT COUNT(*) FROM credit_ledger",
        "SELECT COUNT(*) FROM credit_exchange",
        "SELECT COUNT(*) FROM message_outbox",
        "SELECT COUNT(*) FROM exchange_gift",
        "SELECT CAST(COALESCE(SUM(stock), 0) AS SIGNED) FROM exchange_gift",
    ] {
        snapshot.push(count(pool, query).await);
    }
    snapshot
}

fn one_line_error(output: &std::process::Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with(&format!("seckill: error: {expected}")), "expected {expected:?}: {stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_users_and_gifts_and_bad_input_change_nothing() {
    let db = migrated_db().await;
    let service = Exchange::new(db.pool().clone());
    let gift = new_gift(&service, 100, 5).await;
    let g = gift.gift_id;
    service.grant(1, 500, "welcome").await.unwrap();
    let before = state(db.pool()).await;

    // Refused before anything is sent.
    assert!(matches!(service.exchange(0, g, "r-1").await, Err(ExchangeError::InvalidUser(0))));
    assert!(matches!(service.exchange(-3, g, "r-1").await, Err(ExchangeError::InvalidUser(-3))));
    assert!(matches!(service.exchange(1, 0, "r-1").await, Err(ExchangeError::InvalidGiftId(0))));
    for bad in ["", "r 1", "r'1); DROP TABLE credit; --", "r\\1", "é", &"x".repeat(65)] {
        let error = service.exchange(1, g, bad).await.unwrap_err();
        assert!(matches!(error, ExchangeError::InvalidRequestId(_)), "{bad:?}: {error}");
    }
    assert!(matches!(service.grant(0, 10, "").await, Err(ExchangeError::InvalidUser(0))));
    assert!(matches!(service.grant(1, 0, "").await, Err(ExchangeError::InvalidGrant(_))));
    assert!(matches!(service.grant(1, -10, "").await, Err(ExchangeError::InvalidGrant(_))));
    assert!(matches!(service.grant(1, 10, &"n".repeat(256)).await, Err(ExchangeError::InvalidGrant(_))));
    let bad_gift = NewGift { name: "free".into(), cost: 0, stock: 1 };
    assert!(matches!(service.create_gift(&bad_gift).await, Err(ExchangeError::InvalidGift(_))));
    assert_eq!(service.balance(999).await.unwrap(), None);

    // Decided by the database: refused, and the refusal is the first answer of its request id.
    assert_eq!(service.exchange(999, g, "u-1").await.unwrap(), ExchangeOutcome::UnknownUser { repeat: false });
    assert_eq!(service.exchange(999, g, "u-1").await.unwrap(), ExchangeOutcome::UnknownUser { repeat: true });
    assert_eq!(service.exchange(1, 4242, "g-1").await.unwrap(), ExchangeOutcome::UnknownGift { repeat: false });
    assert_eq!(service.exchange(1, 4242, "g-1").await.unwrap(), ExchangeOutcome::UnknownGift { repeat: true });

    // The procedures refuse bad input of their own, proving the rollback.
    let mut conn = db.pool().get_conn().await.unwrap();
    for call in [
        "CALL grant_credit(1, -5, 'x')",
        "CALL grant_credit(0, 5, 'x')",
        "CALL exchange_credit_batch(1, 'not json')",
        "CALL exchange_credit_batch(1, '[{\"user\": 1, \"request\": \"has space\"}]')",
        "CALL exchange_credit_batch(1, '[{\"user\": 0, \"request\": \"r\"}]')",
    ] {
        let error = conn.query_drop(call).await.unwrap_err();
        assert!(matches!(&error, mysql_async::Error::Server(e) if e.state == "45RB0"), "{call}: {error}");
    }
    drop(conn);

    // The command line: one line, a non-zero exit.
    let url = db.url();
    let id = g.to_string();
    let bad_commands: [(&[&str], &str); 7] = [
        (&["credit", "grant", "--user", "0", "--amount", "5"], "invalid user id 0"),
        (&["credit", "grant", "--user", "1", "--amount", "-5"], "invalid --amount -5"),
        (&["credit", "balance", "--user", "-1"], "invalid user id -1"),
        (&["exchange", &id, "--user", "1", "--request-id", "bad id"], "invalid request id"),
        (&["exchange", "0", "--user", "1", "--request-id", "r-9"], "invalid gift id 0"),
        (&["gift", "create", "--name", "x", "--cost", "0", "--stock", "1"], "invalid gift: the cost"),
        (&["gift", "create", "--name", "x", "--cost", "10", "--stock", "-1"], "invalid --stock -1"),
    ];
    for (args, expected) in bad_commands {
        let output = seckill_command(url).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        one_line_error(&output, expected);
    }
    let refused: [(&[&str], &str); 3] = [
        (&["exchange", &id, "--user", "999", "--request-id", "c-1"], "refused: unknown_user"),
        (&["exchange", "--user", "1", "--gift", "4242", "--request-id", "c-2"], "refused: unknown_gift"),
        (&["credit", "balance", "--user", "999"], "user 999 has never been granted points"),
    ];
    for (args, expected) in refused {
        let output = seckill_command(url).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(4), "{args:?}");
        assert!(String::from_utf8_lossy(&output.stdout).starts_with(expected), "{args:?}: {output:?}");
    }

    assert_eq!(state(db.pool()).await, before, "nothing changed");
    // Only the refusals' first answers were recorded.
    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM exchange_request").await, 4);
    assert_books(db.pool()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_line_exchanges_and_shows_balances_ledgers_and_shipments() {
    let db = migrated_db().await;
    let url = db.url();
    let run = |args: &[&str]| {
        let output = seckill_command(url).args(args).output().unwrap();
        (output.status.code(), String::from_utf8_lossy(&output.stdout).into_owned(), output)
    };
    let (code, out, output) = run(&["gift", "create", "--name", "mug", "--cost", "100", "--stock", "3", "--json"]);
    assert_eq!(code, Some(0), "{output:?}");
    let gift: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = gift["gift_id"].as_i64().unwrap().to_string();
    assert_eq!((gift["cost"].as_i64(), gift["stock"].as_i64()), (Some(100), Some(3)));

    let (code, out, _) = run(&["credit", "grant", "--user", "7", "--amount", "150", "--note", "welcome", "--json"]);
    assert_eq!(code, Some(0));
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["balance"], 150);

    let exchange = ["exchange", "--user", "7", "--gift", &id, "--request-id", "cli-1", "--json"];
    let (code, out, _) = run(&exchange);
    assert_eq!(code, Some(0), "{out}");
    let first: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((first["outcome"].as_str(), first["repeat"].as_bool()), (Some("exchanged"), Some(false)));
    assert_eq!(first["balance_after"], 50);
    let (code, out, _) = run(&exchange);
    assert_eq!(code, Some(0), "a repeat of an exchange is still an exchange");
    let again: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((again["exchange_id"].clone(), again["repeat"].as_bool()), (first["exchange_id"].clone(), Some(true)));

    let (code, out, _) = run(&["exchange", &id, "--user", "7", "--request-id", "cli-2"]);
    assert_eq!(code, Some(4));
    assert!(out.starts_with("refused: not_enough_points"), "{out}");

    let (code, out, _) = run(&["credit", "balance", "--user", "7"]);
    assert_eq!((code, out.trim()), (Some(0), "user 7 has 50 points"));
    let (_, out, _) = run(&["credit", "ledger", "--user", "7", "--json"]);
    let ledger: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let deltas: Vec<_> = ledger.iter().map(|entry| (entry["delta"].as_i64(), entry["reason"].as_str())).collect();
    assert_eq!(deltas, [(Some(-100), Some("exchange")), (Some(150), Some("grant"))]);
    let (_, out, _) = run(&["credit", "history", "--user", "7", "--json"]);
    let history: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0]["exchange_id"].clone(), history[0]["shipment"].as_str()),
        (first["exchange_id"].clone(), Some("pending"))
    );
    let (_, out, _) = run(&["gift", "list"]);
    assert!(out.contains("\"mug\"  cost 100  stock 2 of 3"), "{out}");
    assert_books(db.pool()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_batch_is_rolled_back_whole_and_says_so() {
    let db = migrated_db().await;
    let service = Exchange::new(db.pool().clone());
    let gift = new_gift(&service, 10, 100).await;
    let g = gift.gift_id;
    for user in 1..=6 {
        service.grant(user, 100, "welcome").await.unwrap();
    }
    let mut conn = db.pool().get_conn().await.unwrap();
    conn.query_drop(
        "CREATE TRIGGER poison BEFORE INSERT ON credit_exchange FOR EACH ROW \
         IF NEW.user_id = 4 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'poisoned exchange'; END IF",
    )
    .await
    .unwrap();

    let lock = crate::common::RowLock::gift(db.pool(), g).await;
    let first = service.submit(1, g, rid("a")).unwrap();
    let first = tokio::spawn(first);
    tokio::time::sleep(Duration::from_millis(200)).await; // the lone first request is in flight, stuck on the lock
    let batch: Vec<_> = (2..=6).map(|user| tokio::spawn(service.submit(user, g, rid("a")).unwrap())).collect();
    lock.release().await;

    assert!(first.await.unwrap().is_exchanged());
    for caller in batch {
        let outcome = caller.await.unwrap();
        let ExchangeOutcome::InnerError(error) = &outcome else { panic!("{outcome:?}") };
        assert!(!error.in_doubt, "proven by the procedure: {error:?}");
        assert!(error.detail.contains("rolled back") && error.detail.contains("poisoned exchange"), "{error:?}");
    }
    assert_eq!(service.stats().largest_batch, 5);
    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM credit_exchange").await, 1, "only the separate first batch");
    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM message_outbox").await, 1);
    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM exchange_request").await, 1, "nothing recorded either");
    assert_eq!(count(db.pool(), "SELECT COUNT(*) FROM credit_ledger WHERE reason = 'exchange'").await, 1);
    assert_eq!(count(db.pool(), "SELECT CAST(SUM(credit) AS SIGNED) FROM credit WHERE user_id > 1").await, 500);
    assert_eq!(stock(db.pool(), g).await, 99);

    // Nothing was recorded, so the same request ids are decided afresh once the fault is gone.
    conn.query_drop("DROP TRIGGER poison").await.unwrap();
    let retries: Vec<_> = (2..=6).map(|user| service.submit(user, g, rid("a")).unwrap()).collect();
    for retry in retries {
        let outcome = retry.await;
        assert!(matches!(outcome, ExchangeOutcome::Exchanged { balance_after: 90, repeat: false, .. }), "{outcome:?}");
    }
    assert_eq!(stock(db.pool(), g).await, 94);
    assert_books(db.pool()).await;
}

/// What callers of the crowd below were told.
#[derive(Default)]
struct Told {
    /// Exchanges, by (user, request id).
    exchanged: HashMap<(i64, String), i64>,
    /// Requests answered in doubt.
    in_doubt: Vec<(i64, String)>,
    /// Requests refused or proven rolled back: no exchange may exist for them.
    nothing: Vec<(i64, String)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_database_killed_mid_exchange_tells_no_one_success_without_its_rows() {
    // A server of its own: this test kills it.
    let (server, url) = private_database("exchange_crash").await;
    let pool = ConnectOptions::new(url).build_pool().unwrap();
    let service = Exchange::new(pool.clone());
    // Stock and points that last: the load runs through the crash and after the restart.
    let gift = new_gift(&service, 1, 1_000_000).await;
    for user in 1..=64 {
        service.grant(user, 1_000_000, "welcome").await.unwrap();
    }

    let told = Arc::new(Mutex::new(Told::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let crowd: Vec<_> = (1..=64i64)
        .map(|user| {
            let (service, told, stop) = (service.clone(), told.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let request = format!("k-{n}");
                    let outcome = service.exchange(user, gift.gift_id, &request).await.unwrap();
                    {
                        let mut told = told.lock().unwrap();
                        match outcome {
                            ExchangeOutcome::Exchanged { exchange_id, repeat: false, .. } => {
                                told.exchanged.insert((user, request), exchange_id);
                            }
                            ExchangeOutcome::InnerError(error) if error.in_doubt => told.in_doubt.push((user, request)),
                            ExchangeOutcome::InnerError(_) => told.nothing.push((user, request)),
                            other => panic!("user {user}: {other:?}"),
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let server = crate::common::crash(server, Duration::from_millis(500)).await;
    let before_restart = told.lock().unwrap().exchanged.len();
    let server = crate::common::restart(server).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for caller in crowd {
        caller.await.unwrap();
    }
    let told = Arc::try_unwrap(told).ok().unwrap().into_inner().unwrap();
    assert!(before_restart > 0, "exchanges were under way when the server died");
    assert!(told.exchanged.len() > before_restart, "exchanges resumed after the restart");
    assert!(!told.in_doubt.is_empty() || !told.nothing.is_empty(), "the crash was felt");

    // Every exchange reported is in the database, and nothing exists for a request that was refused or rolled
    // back.
    let mut conn = pool.get_conn().await.unwrap();
    let rows: Vec<(i64, String, i64)> =
        conn.query("SELECT user_id, request_id, id FROM credit_exchange").await.unwrap();
    let in_database: HashMap<(i64, String), i64> = rows.into_iter().map(|(u, r, id)| ((u, r), id)).collect();
    for (request, id) in &told.exchanged {
        assert_eq!(in_database.get(request), Some(id), "{request:?} was told exchanged");
    }
    for request in &told.nothing {
        assert!(!in_database.contains_key(request), "{request:?} was told rolled back but committed");
    }
    // An in-doubt request is settled by retrying it: the first answer if it committed, a decision now if not.
    for (user, request) in &told.in_doubt {
        let settled = service.exchange(*user, gift.gift_id, request).await.unwrap();
        match (in_database.get(&(*user, request.clone())), &settled) {
            (Some(id), ExchangeOutcome::Exchanged { exchange_id, repeat: true, .. }) => assert_eq!(id, exchange_id),
            (None, ExchangeOutcome::Exchanged { repeat: false, .. }) => {}
            (known, other) => panic!("in doubt {user}/{request}: database {known:?}, retry {other:?}"),
        }
    }
    assert_books(&pool).await;
    drop(server); // the guardian removes it when the test process ends
}

/// Regression: an instance that found a gift out of stock answered "out of stock" from memory to every request
/// it had not seen decided itself, a retry of an exchange made on another instance too (the points gone, the
/// client told it was never made). Now a retry hears its first answer on any instance.
#[tokio::test(flavor = "multi_thread")]
async fn a_retry_reaching_another_instance_after_the_gift_ran_out_hears_its_first_answer() {
    let db = migrated_db().await;
    let instance = || Exchange::new(ConnectOptions::new(db.url()).max_connections(4).build_pool().unwrap());
    let (a, b) = (instance(), instance());
    let g = new_gift(&a, 100, 1).await.gift_id;
    for user in [1, 2] {
        a.grant(user, 300, "welcome").await.unwrap();
    }
    let first = a.exchange(1, g, "k-1").await.unwrap();
    let ExchangeOutcome::Exchanged { exchange_id, balance_after, repeat: false } = first else { panic!("{first:?}") };
    assert_eq!(b.exchange(2, g, "k-2").await.unwrap(), ExchangeOutcome::OutOfStock { repeat: false });
    let batches = b.stats().batches;
    for _ in 0..10 {
        let again = b.exchange(1, g, "k-1").await.unwrap();
        assert_eq!(again, ExchangeOutcome::Exchanged { exchange_id, balance_after, repeat: true });
        // A refusal recorded on this instance is a first answer too.
        assert_eq!(b.exchange(2, g, "k-2").await.unwrap(), ExchangeOutcome::OutOfStock { repeat: true });
    }
    // A new request is refused without a batch.
    assert_eq!(b.exchange(2, g, "k-3").await.unwrap(), ExchangeOutcome::OutOfStock { repeat: false });
    assert_eq!(b.stats().batches, batches, "answered from the requests' records, not by the procedure");
    assert_eq!(b.balance(1).await.unwrap(), Some(200));
    assert_books(db.pool()).await;
}

/// Regression: a request id first used for gift A, sent for gift B, answered "exchanged" (a repeat of A's) and
/// the user had no exchange of B. A request id names one request: sent with another gift it is refused, as
/// reused, and changes nothing, whether the procedure or a closed gift's memory answers.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_id_names_one_request_and_is_refused_for_another_gift() {
    let db = migrated_db().await;
    let service = Exchange::new(db.pool().clone());
    let (a, b) = (new_gift(&service, 100, 5).await.gift_id, new_gift(&service, 50, 5).await.gift_id);
    let sold_out = new_gift(&service, 10, 0).await.gift_id;
    service.grant(1, 300, "welcome").await.unwrap();
    assert!(service.exchange(1, a, "k-1").await.unwrap().is_exchanged());
    let reused = ExchangeOutcome::KeyReused { first_gift_id: a };
    assert_eq!(service.exchange(1, b, "k-1").await.unwrap(), reused);
    // Out of stock: the first refusal is a batch's, the later ones are answered from memory; both refuse.
    assert_eq!(service.exchange(1, sold_out, "k-1").await.unwrap(), reused);
    assert_eq!(service.exchange(1, sold_out, "k-1").await.unwrap(), reused);
    // An unknown gift's refusal, by the procedure's other path.
    assert_eq!(service.exchange(1, 9_999, "k-1").await.unwrap(), reused);
    assert_eq!(service.balance(1).await.unwrap(), Some(200), "charged once, for gift a");
    assert_eq!((stock(db.pool(), a).await, stock(db.pool(), b).await), (4, 5));
    let recorded = count(db.pool(), "SELECT COUNT(*) FROM exchange_request").await;
    assert_eq!(recorded, 1, "nothing recorded for the reused id");
    assert_books(db.pool()).await;
}
