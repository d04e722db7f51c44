//! Migrations and the repeatable-procedure applier, against a real server.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use seckill::migrate::{MigrateError, MigrationState, Migrator, ProcedureState, SqlSource, sql_script};
use seckill::testing::TestDatabase;

use crate::common::seckill_command;

const EXTRA_PROCEDURE: &str = "-- a user's own procedure\nDROP PROCEDURE IF EXISTS add_one;\nDELIMITER $$\nCREATE PROCEDURE add_one(IN a INT)\nBEGIN\n    SELECT a + 1 AS b;\nEND $$\nDELIMITER ;\n";

fn embedded_with(
    extra_migrations: &[(&'static str, &'static str)],
    procedures: &[(&'static str, &'static str)],
) -> Migrator {
    let source = SqlSource::embedded().unwrap();
    let migrations: Vec<(String, String)> = source
        .migrations()
        .iter()
        .map(|m| (m.file_name.clone(), m.migration.sql().unwrap_or_default().to_string()))
        .chain(extra_migrations.iter().map(|(n, t)| (n.to_string(), t.to_string())))
        .collect();
    let source =
        SqlSource::from_texts(migrations.iter().map(|(n, t)| (n.as_str(), t.as_str())), procedures.iter().copied())
            .unwrap();
    Migrator::new(source)
}

/// `V{n}__{name}` of every migration the toolkit ships, in order.
fn embedded_migration_names() -> Vec<String> {
    let source = SqlSource::embedded().unwrap();
    source.migrations().iter().map(|m| format!("V{}__{}", m.migration.version(), m.migration.name())).collect()
}

async fn query_i64(db: &TestDatabase, sql: &str) -> i64 {
    db.pool().get_conn().await.unwrap().query_first(sql).await.unwrap().unwrap_or(0)
}

#[tokio::test]
async fn migrations_apply_on_an_empty_database_and_a_second_run_does_nothing() {
    let db = TestDatabase::new().await.unwrap();
    let migrator = Migrator::embedded().unwrap();
    assert!(!migrator.status(db.pool()).await.unwrap().is_in_sync());

    let first = migrator.run(db.pool()).await.unwrap();
    assert_eq!(first.migrations, embedded_migration_names());
    assert!(first.procedures.contains(&"execute_seckill".to_string()));
    assert!(migrator.status(db.pool()).await.unwrap().is_in_sync());

    let second = migrator.run(db.pool()).await.unwrap();
    assert!(second.migrations.is_empty() && second.procedures.is_empty(), "{second:?}");
    assert_eq!(
        query_i64(&db, "SELECT COUNT(*) FROM refinery_schema_history").await,
        embedded_migration_names().len() as i64
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_migrate_processes_apply_each_migration_once() {
    let db = TestDatabase::new().await.unwrap();
    let spawn = || seckill_command(db.url()).arg("migrate").output();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let outputs = format!("{}{}", String::from_utf8_lossy(&a.stdout), String::from_utf8_lossy(&b.stdout));
    assert_eq!(outputs.matches("applied migration V1__seckill_schema").count(), 1, "{outputs}");
    assert_eq!(outputs.matches("applied procedure execute_seckill\n").count(), 1, "{outputs}");
    assert_eq!(outputs.matches("nothing to do").count(), 1, "{outputs}");
    assert_eq!(
        query_i64(&db, "SELECT COUNT(*) FROM refinery_schema_history").await,
        embedded_migration_names().len() as i64
    );
}

#[tokio::test]
async fn a_changed_procedure_file_is_reapplied() {
    let db = TestDatabase::new().await.unwrap();
    embedded_with(&[], &[("add_one.sql", EXTRA_PROCEDURE)]).run(db.pool()).await.unwrap();

    let changed = EXTRA_PROCEDURE.replace("a + 1", "a + 2");
    let migrator = embedded_with(&[], &[("add_one.sql", Box::leak(changed.into_boxed_str()))]);
    let status = migrator.status(db.pool()).await.unwrap();
    assert_eq!(status.procedures_in(ProcedureState::FileChanged), vec!["add_one"]);

    let report = migrator.run(db.pool()).await.unwrap();
    assert_eq!(report.procedures, vec!["add_one"]);
    assert_eq!(query_i64(&db, "CALL add_one(1)").await, 3);
    assert!(migrator.status(db.pool()).await.unwrap().is_in_sync());
}

#[tokio::test]
async fn a_procedure_changed_by_hand_is_reported_and_only_overwritten_when_asked() {
    let db = TestDatabase::migrated().await.unwrap();
    let mut conn = db.pool().get_conn().await.unwrap();
    conn.query_drop("DROP PROCEDURE execute_seckill").await.unwrap();
    conn.query_drop(
        "CREATE PROCEDURE execute_seckill(IN a BIGINT, IN b BIGINT, IN c DATETIME(3), OUT r INT) SET r = 1",
    )
    .await
    .unwrap();
    drop(conn);

    let migrator = Migrator::embedded().unwrap();
    let status = migrator.status(db.pool()).await.unwrap();
    assert_eq!(status.procedures_in(ProcedureState::EditedInServer), vec!["execute_seckill"]);

    let cli = seckill_command(db.url()).arg("status").output().unwrap();
    assert_eq!(cli.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&cli.stdout)
            .contains("execute_seckill                          changed in the server by hand")
    );

    let refused = migrator.run(db.pool()).await.unwrap_err();
    assert!(matches!(&refused, MigrateError::HandEdited { names } if names == &["execute_seckill"]), "{refused}");
    let still_hand_made = migrator.status(db.pool()).await.unwrap();
    assert_eq!(still_hand_made.procedures_in(ProcedureState::EditedInServer), vec!["execute_seckill"]);

    let overwrite = seckill_command(db.url()).args(["migrate", "--overwrite-hand-edits"]).output().unwrap();
    assert!(overwrite.status.success(), "{}", String::from_utf8_lossy(&overwrite.stderr));
    assert!(migrator.status(db.pool()).await.unwrap().is_in_sync());
}

#[tokio::test]
async fn a_dropped_procedure_is_reported_missing_and_restored_by_migrate() {
    let db = TestDatabase::migrated().await.unwrap();
    db.pool().get_conn().await.unwrap().query_drop("DROP PROCEDURE execute_seckill_detailed").await.unwrap();

    let status = seckill_command(db.url()).arg("status").output().unwrap();
    assert_eq!(status.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&status.stdout).contains("dropped since it was applied"));

    let migrate = seckill_command(db.url()).arg("migrate").output().unwrap();
    assert!(migrate.status.success());
    assert_eq!(String::from_utf8_lossy(&migrate.stdout).trim(), "applied procedure execute_seckill_detailed");
    let status = seckill_command(db.url()).arg("status").output().unwrap();
    assert_eq!(status.status.code(), Some(0), "{}", String::from_utf8_lossy(&status.stdout));
}

/// Feeds `script` to the stock `mariadb` client on `db`, as a DBA would with `mariadb db < file.sql`.
fn mariadb_client(db: &TestDatabase, script: &str) -> Output {
    let opts = mysql_async::Opts::from_url(db.url()).unwrap();
    let mut command = Command::new("mariadb");
    command
        .arg("--protocol=TCP")
        .arg(format!("--host={}", opts.ip_or_hostname()))
        .arg(format!("--port={}", opts.tcp_port()))
        .arg(format!("--user={}", opts.user().unwrap_or("root")))
        .arg(db.name())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(password) = opts.pass() {
        command.env("MYSQL_PWD", password);
    }
    let mut child = command.spawn().unwrap();
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// What `SHOW CREATE PROCEDURE` says, fingerprinted: comments, white space and definer aside.
async fn definition(db: &TestDatabase, name: &str) -> String {
    let mut conn = db.pool().get_conn().await.unwrap();
    let row: mysql_async::Row = conn.query_first(format!("SHOW CREATE PROCEDURE {name}")).await.unwrap().unwrap();
    let text: String = row.get(2).unwrap();
    sql_script::definition_fingerprint(&text)
}

#[tokio::test]
async fn every_procedure_file_loads_with_the_mariadb_client_as_with_the_applier() {
    let by_applier = TestDatabase::named("procedure_files_by_applier").await.unwrap();
    Migrator::embedded().unwrap().run(by_applier.pool()).await.unwrap();
    let by_client = TestDatabase::named("procedure_files_by_client").await.unwrap();
    let client = |file: &str| mariadb_client(&by_client, &std::fs::read_to_string(file).unwrap());
    let files = SqlSource::embedded().unwrap();
    for migration in files.migrations() {
        let schema = client(&format!("sql/migrations/{}", migration.file_name));
        assert!(schema.status.success(), "{}: {}", migration.file_name, String::from_utf8_lossy(&schema.stderr));
    }
    assert!(files.procedures().len() >= 2);
    for procedure in files.procedures() {
        let loaded = client(&format!("sql/procedures/{}", procedure.file_name));
        assert!(loaded.status.success(), "{}: {}", procedure.file_name, String::from_utf8_lossy(&loaded.stderr));
        assert_eq!(
            definition(&by_client, &procedure.name).await,
            definition(&by_applier, &procedure.name).await,
            "{} differs between the client and the applier",
            procedure.file_name
        );
    }
}

#[tokio::test]
async fn a_broken_migration_names_its_file_quotes_the_server_and_keeps_the_history_honest() {
    let db = TestDatabase::new().await.unwrap();
    let broken = "CREATE TABLE first_half (id INT);\nCREATE TABLE second_half (id INT,);\n";
    let migrator = embedded_with(&[("V99__broken.sql", broken)], &[]);
    let error = migrator.run(db.pool()).await.unwrap_err();
    let message = error.to_string();
    assert!(message.starts_with("migration V99__broken.sql failed: "), "{message}");
    assert!(message.contains("1064") && message.contains("syntax"), "{message}");

    let status = migrator.status(db.pool()).await.unwrap();
    let states: Vec<_> = status.migrations.iter().map(|m| (m.name.as_str(), m.state)).collect();
    let names = embedded_migration_names();
    let mut expected: Vec<_> = names.iter().map(|name| (name.as_str(), MigrationState::Applied)).collect();
    expected.push(("V99__broken", MigrationState::Pending));
    assert_eq!(states, expected);
}

#[tokio::test]
async fn the_cli_names_the_broken_migration_file() {
    let db = TestDatabase::new().await.unwrap();
    let dir = std::env::temp_dir().join(format!("seckill-broken-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("migrations")).unwrap();
    std::fs::create_dir_all(dir.join("procedures")).unwrap();
    std::fs::write(dir.join("migrations/V1__broken.sql"), "CREATE TABLE t (id INT,);").unwrap();
    let output = seckill_command(db.url()).args(["migrate", "--sql-dir"]).arg(&dir).output().unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("seckill: error: migration V1__broken.sql failed: the database server answered error 1064"),
        "{stderr}"
    );
}

/// A column named like the client's `DELIMITER` command, at the start of a line of a procedure body: the
/// statement (`CREATE PROCEDURE ...`) has begun, so the client reads the line as SQL.
const DELIMITER_COLUMN_PROCEDURE: &str = concat!(
    "-- a column called delimiter\n",
    "DROP PROCEDURE IF EXISTS delimiter_column;\n",
    "DELIMITER $$\n",
    "CREATE PROCEDURE delimiter_column(IN a INT)\n",
    "BEGIN\n",
    "    SELECT a + 1 AS\n",
    "    delimiter FROM DUAL;\n",
    "END $$\n",
    "DELIMITER ;\n",
);

/// A string with a line that looks like a `DELIMITER` command, and an alias `delimiter` after a string that
/// ends on a new line: neither begins a statement, so the client reads both as SQL.
const DELIMITER_STRING_PROCEDURE: &str = concat!(
    "DROP PROCEDURE IF EXISTS delimiter_string;\n",
    "DELIMITER $$\n",
    "CREATE PROCEDURE delimiter_string()\n",
    "BEGIN\n",
    "    SELECT 'one\n",
    "DELIMITER ;\n",
    "two' AS s, 'three\n",
    "'   delimiter FROM DUAL;\n",
    "END $$\n",
    "DELIMITER ;\n",
);

#[tokio::test]
async fn a_body_line_starting_with_delimiter_is_sql_for_the_applier_as_for_the_client() {
    let files =
        [("delimiter_column.sql", DELIMITER_COLUMN_PROCEDURE), ("delimiter_string.sql", DELIMITER_STRING_PROCEDURE)];
    let by_applier = TestDatabase::named("delimiter_words_by_applier").await.unwrap();
    let report = embedded_with(&[], &files).run(by_applier.pool()).await.unwrap();
    assert!(report.procedures.contains(&"delimiter_column".to_string()), "{report:?}");
    assert!(report.procedures.contains(&"delimiter_string".to_string()), "{report:?}");

    let by_client = TestDatabase::named("delimiter_words_by_client").await.unwrap();
    for (file_name, text) in files {
        let loaded = mariadb_client(&by_client, text);
        assert!(loaded.status.success(), "{file_name}: {}", String::from_utf8_lossy(&loaded.stderr));
        let name = file_name.trim_end_matches(".sql");
        assert_eq!(definition(&by_client, name).await, definition(&by_applier, name).await, "{file_name}");
    }

    for db in [&by_applier, &by_client] {
        let mut conn = db.pool().get_conn().await.unwrap();
        let column: Option<i64> = conn.query_first("CALL delimiter_column(41)").await.unwrap();
        assert_eq!(column, Some(42));
        let strings: Option<(String, String)> = conn.query_first("CALL delimiter_string()").await.unwrap();
        assert_eq!(strings, Some(("one\nDELIMITER ;\ntwo".to_string(), "three\n".to_string())));
    }
}

/// What one task calling `add_one(1)` in a loop saw.
#[derive(Debug, Default)]
struct Calls {
    /// How many calls answered 2 (`a + 1`) and 3 (`a + 2`).
    answered: [usize; 2],
    /// The server's errors, as (code, message).
    failed: Vec<(u16, String)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reapplying_a_procedure_never_fails_the_calls_running_meanwhile() {
    const CALLERS: usize = 8;
    const MIN_REAPPLIES: usize = 20;
    const MIN_DURATION: Duration = Duration::from_millis(1500);
    // Bounds, whatever the machine's speed.
    const MAX_REAPPLIES: usize = 500;
    const MAX_CALLS_PER_CALLER: usize = 200_000;

    let db = TestDatabase::new().await.unwrap();
    let plus_two: &'static str = Box::leak(EXTRA_PROCEDURE.replace("a + 1", "a + 2").into_boxed_str());
    let versions =
        [embedded_with(&[], &[("add_one.sql", EXTRA_PROCEDURE)]), embedded_with(&[], &[("add_one.sql", plus_two)])];
    versions[0].run(db.pool()).await.unwrap();

    // The callers' own pool, so that the migrator never waits for one of their connections.
    let callers_pool = seckill::database::connect(db.url()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut callers = Vec::new();
    for _ in 0..CALLERS {
        let (pool, stop) = (callers_pool.clone(), stop.clone());
        callers.push(tokio::spawn(async move {
            let mut conn = pool.get_conn().await.unwrap();
            let mut calls = Calls::default();
            for _ in 0..MAX_CALLS_PER_CALLER {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match conn.query_first::<i64, _>("CALL add_one(1)").await {
                    Ok(Some(answer @ (2 | 3))) => calls.answered[(answer - 2) as usize] += 1,
                    Ok(other) => panic!("add_one(1) answered {other:?}"),
                    Err(mysql_async::Error::Server(e)) => calls.failed.push((e.code, e.message)),
                    Err(other) => panic!("{other}"),
                }
            }
            calls
        }));
    }

    let started = Instant::now();
    let mut reapplied = 0;
    while reapplied < MAX_REAPPLIES && (reapplied < MIN_REAPPLIES || started.elapsed() < MIN_DURATION) {
        let report = versions[(reapplied + 1) % 2].run(db.pool()).await.unwrap();
        assert_eq!(report.procedures, vec!["add_one"]);
        reapplied += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let mut answered = [0; 2];
    let mut failed = Vec::new();
    for caller in callers {
        let calls = caller.await.unwrap();
        answered = [answered[0] + calls.answered[0], answered[1] + calls.answered[1]];
        failed.extend(calls.failed);
    }
    callers_pool.disconnect().await.unwrap();

    let missing = failed.iter().filter(|(code, _)| *code == seckill::database::error::ROUTINE_DOES_NOT_EXIST).count();
    let calls = answered[0] + answered[1] + failed.len();
    assert_eq!(missing, 0, "{missing} of {calls} calls found no procedure while it was re-applied {reapplied} times");
    assert!(failed.is_empty(), "calls failed while the procedure was re-applied: {failed:?}");
    // The calls ran while the definition changed: both versions answered.
    assert!(answered[0] > 0 && answered[1] > 0, "answers (2, 3): {answered:?}");
}

#[tokio::test]
async fn a_decision_whose_procedure_is_missing_is_not_done_never_in_doubt() {
    use seckill::exchange::{Exchange, ExchangeOutcome, NewGift};
    use seckill::lottery::{DrawOutcome, Lottery};

    let db = TestDatabase::migrated().await.unwrap();
    let exchange = Exchange::new(db.pool().clone());
    exchange.grant(1, 100, "test").await.unwrap();
    let gift = exchange.create_gift(&NewGift { name: "mug".into(), cost: 10, stock: 5 }).await.unwrap();
    let lottery = Lottery::new(db.pool().clone());
    let campaign = crate::common::open_campaign(&lottery, "mug", 5).await;
    // A schema behind the code: the server refuses the CALL itself (1305), before anything could run.
    let mut conn = db.pool().get_conn().await.unwrap();
    conn.query_drop("DROP PROCEDURE exchange_credit_batch").await.unwrap();
    conn.query_drop("DROP PROCEDURE draw_lottery_batch").await.unwrap();

    match exchange.exchange(1, gift.gift_id, "first-try").await.unwrap() {
        ExchangeOutcome::InnerError(error) => assert!(!error.in_doubt, "nothing ran: {error:?}"),
        other => panic!("an exchange without its procedure: {other:?}"),
    }
    match lottery.draw(campaign, 1).await.unwrap() {
        DrawOutcome::InnerError(error) => assert!(!error.in_doubt, "nothing ran: {error:?}"),
        other => panic!("a draw without its procedure: {other:?}"),
    }
    assert_eq!(query_i64(&db, "SELECT COUNT(*) FROM exchange_request").await, 0);
    assert_eq!(query_i64(&db, "SELECT COUNT(*) FROM lottery_draw").await, 0);
}
