//! The test harness itself: one database per test, dropped when the test passes, kept when it fails.

use mysql_async::prelude::Queryable;
use seckill::testing::{TestDatabase, server_url};

async fn database_exists(name: &str) -> bool {
    let pool = mysql_async::Pool::new(server_url().unwrap().as_str());
    let mut conn = pool.get_conn().await.unwrap();
    let found: Option<String> = conn
        .exec_first("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", (name,))
        .await
        .unwrap();
    drop(conn);
    pool.disconnect().await.unwrap();
    found.is_some()
}

#[tokio::test]
async fn a_passing_tests_database_is_dropped() {
    let db = TestDatabase::named("harness_passing").await.unwrap();
    let name = db.name().to_string();
    assert!(database_exists(&name).await);
    drop(db);
    assert!(!database_exists(&name).await);
}

#[tokio::test]
async fn a_failing_tests_database_is_kept_for_inspection() {
    let failed = std::thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let _db = TestDatabase::named("harness_failing").await.unwrap();
            panic!("this test fails on purpose");
        })
    })
    .join();
    assert!(failed.is_err());
    assert!(database_exists("sktest_harness_failing").await);
    drop(TestDatabase::named("harness_failing").await.unwrap()); // replaced, then dropped: clean up
    assert!(!database_exists("sktest_harness_failing").await);
}

#[tokio::test]
async fn databases_are_named_after_their_test() {
    let db = TestDatabase::new().await.unwrap();
    assert_eq!(db.name(), "sktest_test_databases__databases_are_named_after_their_test");
}
