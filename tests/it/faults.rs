//! Faults against real servers: the database killed mid-sale, connections cut at random points, lock storms.
//! After each, the books must balance, every buyer told "success" must have a row, and every row must belong
//! to a buyer told "success" or told "in doubt" (never to one told anything else). And a connection that goes
//! silent: bounded work closes it, and the pool never hands it out again.
//!
//! Set `SECKILL_SOAK=1` for longer runs (about ten times the load).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use seckill::database::{Checkout, ConnectOptions, DatabaseError, within};
use seckill::local::tcp_proxy::TcpProxy;
use seckill::seckill::{Books, Outcome, Phone, Seckill};

use crate::common::private_database;
use crate::common::{migrated_db, open_item, phone, signer};

fn soak() -> u64 {
    if std::env::var("SECKILL_SOAK").is_ok_and(|v| v == "1") { 10 } else { 1 }
}

/// What buyers were told.
#[derive(Default)]
struct Told {
    success: HashSet<Phone>,
    in_doubt: HashSet<Phone>,
    inner_errors: u64,
}

/// Buyers hammering one item until `stop` is set or they keep hearing "sold out".
async fn crowd(service: &Seckill, seckill_id: i64, callers: i64, stop: Arc<AtomicBool>, told: Arc<Mutex<Told>>) {
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let (service, told, stop) = (service.clone(), told.clone(), stop.clone());
            tokio::spawn(async move {
                let mut sold_out_in_a_row = 0;
                for k in 0.. {
                    if stop.load(Ordering::Relaxed) || sold_out_in_a_row > 20 {
                        break;
                    }
                    let buyer = phone(caller * 100_000 + k);
                    let outcome = service.execute_verified(seckill_id, buyer).await;
                    sold_out_in_a_row = if outcome == Outcome::SoldOut { sold_out_in_a_row + 1 } else { 0 };
                    let failed = {
                        let mut told = told.lock().unwrap();
                        match outcome {
                            Outcome::Success(_) => {
                                told.success.insert(buyer);
                                false
                            }
                            Outcome::InnerError(error) => {
                                told.inner_errors += 1;
                                if error.in_doubt {
                                    told.in_doubt.insert(buyer);
                                }
                                true
                            }
                            _ => false,
                        }
                    };
                    if failed {
                        tokio::time::sleep(Duration::from_millis(20)).await; // back off while it is down
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// The checks every fault test ends with.
async fn assert_books(service: &Seckill, pool: &mysql_async::Pool, seckill_id: i64, initial: i64, told: &Told) {
    let books = Books::read(pool, seckill_id).await.unwrap();
    assert!(books.stock >= 0 && initial - books.stock == books.rows, "stock taken = rows: {books:?}");
    assert_eq!(books.rows, books.distinct_buyers, "no buyer twice");
    let mut conn = pool.get_conn().await.unwrap();
    let rows: Vec<i64> =
        conn.exec("SELECT user_phone FROM success_killed WHERE seckill_id = ?", (seckill_id,)).await.unwrap();
    let rows: HashSet<i64> = rows.into_iter().collect();
    for buyer in &told.success {
        assert!(rows.contains(&buyer.get()), "{buyer} was told success but has no row");
    }
    for row in &rows {
        let buyer = Phone::new(*row).unwrap();
        assert!(
            told.success.contains(&buyer) || told.in_doubt.contains(&buyer),
            "{buyer} has a row but was told neither success nor in doubt"
        );
    }
    // Buyers in doubt can find out.
    for buyer in told.in_doubt.iter().take(50) {
        let record = service.kill_record(seckill_id, *buyer).await.unwrap();
        assert_eq!(record.is_some(), rows.contains(&buyer.get()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_database_mid_sale_loses_no_sale_and_the_sale_resumes() {
    // A server of its own: this test kills it.
    let (server, url) = private_database("crash_test").await;
    let pool = ConnectOptions::new(&url).build_pool().unwrap();
    let service = Seckill::new(pool.clone(), signer());
    // Stock that lasts: the load runs until told to stop, through the crash and well after the restart.
    let stock = 1_000_000_000;
    let item = open_item(&service, stock).await;

    let told = Arc::new(Mutex::new(Told::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn({
        let (service, told, stop) = (service.clone(), told.clone(), stop.clone());
        async move { crowd(&service, item.seckill_id, 64, stop, told).await }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    let server = crate::common::crash(server, Duration::from_millis(500)).await;
    let sold_before_restart = told.lock().unwrap().success.len();
    let server = crate::common::restart(server).await;
    tokio::time::sleep(Duration::from_millis(1500 * soak())).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let told = Arc::try_unwrap(told).ok().unwrap().into_inner().unwrap();
    assert!(sold_before_restart > 0, "the sale was under way when the server died");
    assert!(told.inner_errors > 0, "the crash was felt");
    assert!(told.success.len() > sold_before_restart, "the sale resumed after the restart without restarting the app");
    assert_books(&service, &pool, item.seckill_id, i64::from(stock), &told).await;
    drop(server); // the guardian removes it when the test process ends
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_cut_at_random_points_lose_no_sale() {
    let db = migrated_db().await;
    let opts = mysql_async::Opts::from_url(db.url()).unwrap();
    let upstream = format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port()).parse().unwrap();
    let proxy = TcpProxy::start(upstream, Duration::ZERO).await.unwrap();
    let pool = ConnectOptions::new(db.url()).via(proxy.address()).build_pool().unwrap();
    let service = Seckill::new(pool.clone(), signer());
    let stock = 2000 * soak() as i32;
    let item = open_item(&Seckill::new(db.pool().clone(), signer()), stock).await;

    let told = Arc::new(Mutex::new(Told::default()));
    let stop = Arc::new(AtomicBool::new(false));
    proxy.set_cut_probability(0.05);
    let stopper = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3 * soak())).await;
        stopper.store(true, Ordering::Relaxed);
    });
    crowd(&service, item.seckill_id, 48, stop, told.clone()).await;
    proxy.set_cut_probability(0.0);
    let told = Arc::try_unwrap(told).ok().unwrap().into_inner().unwrap();
    assert!(proxy.cuts() > 10, "connections were cut: {}", proxy.cuts());
    assert!(!told.success.is_empty(), "sales went through between the cuts");
    assert_books(&service, db.pool(), item.seckill_id, i64::from(stock), &told).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lock_storm_leaves_no_transaction_open_and_the_books_balance() {
    let db = migrated_db().await;
    let options = ConnectOptions::new(db.url()).lock_wait_timeout(Duration::from_secs(1)).max_connections(48);
    let service = Seckill::new(options.build_pool().unwrap(), signer());
    let stock = 1500;
    let item = open_item(&service, stock).await;
    let id = item.seckill_id;
    let told = Arc::new(Mutex::new(Told::default()));

    // 4,096 callers through the executor, and 32 sessions of classic CALLs on the same item at the same time.
    let executor_side: Vec<_> = (0..4096i64)
        .map(|n| {
            let (service, told) = (service.clone(), told.clone());
            tokio::spawn(async move {
                for attempt in 0..soak() as i64 {
                    let buyer = phone(n + attempt * 10_000);
                    if let Outcome::Success(_) = service.execute_verified(id, buyer).await {
                        told.lock().unwrap().success.insert(buyer);
                    }
                }
            })
        })
        .collect();
    let classic_side: Vec<_> = (0..32i64)
        .map(|worker| {
            let (pool, told) = (service.pool().clone(), told.clone());
            tokio::spawn(async move {
                let mut conn = pool.get_conn().await.unwrap();
                for k in 0..60 * soak() as i64 {
                    let buyer = phone(5_000_000 + worker * 10_000 + k);
                    conn.exec_drop("CALL execute_seckill(?, ?, NULL, @r)", (id, buyer.get())).await.unwrap();
                    let result: i64 = conn.query_first("SELECT @r").await.unwrap().unwrap();
                    if result == 1 {
                        told.lock().unwrap().success.insert(buyer);
                    }
                }
            })
        })
        .collect();
    for task in executor_side.into_iter().chain(classic_side) {
        task.await.unwrap();
    }

    let mut conn = db.pool().get_conn().await.unwrap();
    let open: Option<i64> = conn
        .query_first(
            "SELECT COUNT(*) FROM information_schema.INNODB_TRX t \
             JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id WHERE p.DB = DATABASE()",
        )
        .await
        .unwrap();
    assert_eq!(open, Some(0), "no transaction left open");
    drop(conn);
    let recovered = tokio::time::timeout(Duration::from_secs(5), service.execute_one(id, phone(9_999_999))).await;
    assert!(matches!(recovered, Ok(Outcome::Success(_) | Outcome::SoldOut)), "the pool recovers: {recovered:?}");
    let mut told = Arc::try_unwrap(told).ok().unwrap().into_inner().unwrap();
    if let Ok(Outcome::Success(_)) = recovered {
        told.success.insert(phone(9_999_999));
    }
    assert_books(&service, db.pool(), id, i64::from(stock), &told).await;
}

/// A pooled connection goes silent (no FIN, no RST) while new connections would get through: bounded work on it
/// ends at its bound, the connection is closed rather than returned, and the next call, in a pool allowed only
/// one connection, gets a new one that answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connection_gone_silent_is_closed_at_the_bound_and_never_handed_out_again() {
    let db = migrated_db().await;
    let opts = mysql_async::Opts::from_url(db.url()).unwrap();
    let upstream = format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port()).parse().unwrap();
    let proxy = TcpProxy::start(upstream, Duration::ZERO).await.unwrap();
    let pool = ConnectOptions::new(db.url()).via(proxy.address()).max_connections(1).build_pool().unwrap();
    let select_one = |bound: Duration| {
        let pool = pool.clone();
        within(bound, "a test query", async move {
            let mut conn = Checkout::take(&pool).await?;
            let one: Option<i64> = conn.query_first("SELECT 1").await?;
            conn.release();
            Ok(one)
        })
    };
    assert_eq!(select_one(Duration::from_secs(5)).await.unwrap(), Some(1));
    assert_eq!(proxy.silenced(), 0);

    proxy.silence(); // the pool's one connection, idle now, goes silent
    assert_eq!(proxy.silenced(), 1);
    // Without the bound this would wait for the kernel: the outer limit only keeps a failure from hanging the run.
    let silent = tokio::time::timeout(Duration::from_secs(30), select_one(Duration::from_millis(500))).await;
    assert!(matches!(silent, Ok(Err(DatabaseError::NoAnswer { .. }))), "{silent:?}");
    let again = tokio::time::timeout(Duration::from_secs(30), select_one(Duration::from_secs(5))).await;
    assert!(matches!(again, Ok(Ok(Some(1)))), "a new connection answers: {again:?}");
    for _ in 0..100 {
        if proxy.silent_connections_closed_by_client() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(proxy.silent_connections_closed_by_client(), 1, "the client closed the silent connection");
    pool.disconnect().await.unwrap();
}

/// Work past its bound between two statements, a transaction open (the pool's client library cannot know it:
/// the work began it with a statement): the connection is closed, so the transaction is rolled back by the server
/// and the next caller, in a pool allowed only one connection, gets a fresh session, not the open transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn work_cut_short_by_its_bound_never_hands_its_open_transaction_to_the_next_caller() {
    let db = migrated_db().await;
    let pool = ConnectOptions::new(db.url()).max_connections(1).build_pool().unwrap();
    let cut_short = within(Duration::from_millis(300), "a test transaction", async {
        let mut conn = Checkout::take(&pool).await?;
        conn.query_drop("START TRANSACTION").await?;
        conn.query_drop(
            "INSERT INTO seckill (name, number, start_time, end_time) VALUES ('x', 1, NOW(), NOW() + INTERVAL 1 HOUR)",
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(5)).await; // the caller's own delay, between statements
        conn.release();
        Ok(())
    })
    .await;
    assert!(matches!(cut_short, Err(DatabaseError::NoAnswer { .. })), "{cut_short:?}");
    let next = within(Duration::from_secs(5), "a test query", async {
        let mut conn = Checkout::take(&pool).await?;
        let open: Option<i64> = conn.query_first("SELECT @@in_transaction").await?;
        conn.release();
        Ok(open)
    })
    .await;
    assert_eq!(next.unwrap(), Some(0), "a fresh session, no transaction left open");
    let rows: Option<i64> =
        db.pool().get_conn().await.unwrap().query_first("SELECT COUNT(*) FROM seckill").await.unwrap();
    assert_eq!(rows, Some(0), "the cut-short transaction was rolled back");
    pool.disconnect().await.unwrap();
}
