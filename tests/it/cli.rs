//! The `seckill` command: bad input gets one line and a non-zero exit, and changes nothing.

use std::process::Output;

use chrono::Utc;

use crate::common::{migrated_db, phone, seckill_command, signer, success_rows};

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn connection_problems_are_one_line_errors_that_name_the_server() {
    let cases = [
        ("not a url", "invalid database URL", None),
        (
            "mysql://root:secret@127.0.0.1:1/x",
            "cannot use the database at 127.0.0.1:1: cannot talk to the database server",
            Some("hint: check that the server runs and listens on that host and port"),
        ),
    ];
    for (url, expected, hint) in cases {
        let output = seckill_command(url).arg("status").output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{url}");
        let err = stderr(&output);
        let lines: Vec<&str> = err.lines().collect();
        assert!(lines[0].starts_with(&format!("seckill: error: {expected}")), "{url}: {err}");
        assert_eq!(lines.get(1).copied(), hint, "{err}");
        assert_eq!(lines.len(), 1 + usize::from(hint.is_some()), "{err}");
        assert!(!err.contains("secret"), "a password is never shown: {err}");
    }
}

#[tokio::test]
async fn a_closed_stdout_never_makes_a_command_panic_or_fail() {
    let db = migrated_db().await;
    for args in [&["status"][..], &["item", "list"][..]] {
        let mut child = seckill_command(db.url())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before the command has connected, so its first line meets a closed pipe.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}: {}", stderr(&output));
        assert_eq!(stderr(&output), "", "{args:?}");
    }
}

/// `seckill item create` of one unit of `name` sold in [start, end), as it prints it with `--json`.
fn create_item(url: &str, name: &str, start: &str, end: &str) -> serde_json::Value {
    let created = seckill_command(url)
        .args(["item", "create", "--name", name, "--stock", "1", "--start", start, "--end", end, "--json"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", stderr(&created));
    serde_json::from_str(&stdout(&created)).unwrap()
}

#[tokio::test]
async fn expose_of_an_item_not_open_prints_why_and_exits_4() {
    let db = migrated_db().await;
    let item = create_item(db.url(), "later", "+1h", "+2h");
    let id = item["seckillId"].as_i64().unwrap().to_string();
    let exposed = seckill_command(db.url()).args(["expose", &id, "--phone", "13800000001"]).output().unwrap();
    assert_eq!(exposed.status.code(), Some(4), "{}", stderr(&exposed));
    assert!(stdout(&exposed).starts_with("not open: "), "{}", stdout(&exposed));
}

#[tokio::test]
async fn wrong_credentials_are_a_one_line_error() {
    let db = migrated_db().await;
    let opts = mysql_async::Opts::from_url(db.url()).unwrap();
    let url = format!("mysql://no_such_user:wrong@{}:{}/{}", opts.ip_or_hostname(), opts.tcp_port(), db.name());
    let output = seckill_command(&url).arg("status").output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    let server = format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port());
    assert!(
        err.starts_with(&format!(
            "seckill: error: cannot use the database at {server}: the database server refused the login"
        )),
        "{err}"
    );
    assert!(err.ends_with("hint: check the user name and password in the URL\n"), "{err}");
    assert!(!err.contains("wrong"), "the password is never shown: {err}");
}

#[tokio::test]
async fn item_expose_and_execute_from_the_shell() {
    let db = migrated_db().await;
    let item = create_item(db.url(), "phone", "-1m", "+1h");
    let id = item["seckillId"].as_i64().unwrap();
    assert_eq!(item["number"], 1);

    let list = seckill_command(db.url()).args(["item", "list"]).output().unwrap();
    assert!(stdout(&list).contains(&format!("{id}  \"phone\"  stock 1")), "{}", stdout(&list));

    let exposed = seckill_command(db.url())
        .args(["expose", &id.to_string(), "--phone", "13800000001", "--json"])
        .output()
        .unwrap();
    let exposer: serde_json::Value = serde_json::from_str(&stdout(&exposed)).unwrap();
    assert_eq!(exposer["exposed"], true);
    let token = exposer["md5"].as_str().unwrap().to_string();

    let execute = |phone: &str| {
        seckill_command(db.url())
            .args(["execute", &id.to_string(), "--phone", phone, "--md5", &token, "--json"])
            .output()
            .unwrap()
    };
    let won = execute("13800000001");
    assert_eq!(won.status.code(), Some(0), "{}", stderr(&won));
    let answer: serde_json::Value = serde_json::from_str(&stdout(&won)).unwrap();
    assert_eq!((answer["state"].as_i64(), answer["stateInfo"].as_str()), (Some(1), Some("秒杀成功")));
    let again = execute("13800000001");
    assert_eq!(again.status.code(), Some(4));
    assert!(stdout(&again).contains("\"state\":-1"));
    let other_user = execute("13800000002");
    assert_eq!(other_user.status.code(), Some(4));
    assert!(stdout(&other_user).contains("\"state\":-3"));
    assert_eq!(success_rows(db.pool(), id).await, 1);
}

#[tokio::test]
async fn bad_arguments_get_one_line_and_change_nothing() {
    let db = migrated_db().await;
    let unknown_item_token = signer().sign(424242, phone(1), Utc::now());
    let unknown_phone = phone(1).to_string();
    let cases: &[&[&str]] = &[
        &["item", "create", "--name", "x", "--stock", "-5", "--start", "now", "--end", "+1h"],
        &["item", "create", "--name", "x", "--stock", "5", "--start", "+2h", "--end", "+1h"],
        &["item", "create", "--name", "x", "--stock", "5", "--start", "yesterday", "--end", "+1h"],
        &["item", "create", "--name", "", "--stock", "5", "--start", "now", "--end", "+1h"],
        &["execute", "1000", "--phone", "13800000001", "--md5", "garbage"],
        &["execute", "424242", "--phone", &unknown_phone, "--md5", &unknown_item_token],
        &["expose", "424242", "--phone", "13800000001"],
    ];
    for args in cases {
        let output = seckill_command(db.url()).args(*args).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}: {}", stderr(&output));
        let err = stderr(&output);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("seckill: error: "), "{args:?}: {err}");
    }
    let bad_phone = seckill_command(db.url()).args(["expose", "1000", "--phone", "12345"]).output().unwrap();
    assert_eq!(bad_phone.status.code(), Some(2));
    assert!(stderr(&bad_phone).lines().next().unwrap().contains("invalid phone"));
    let items = seckill_command(db.url()).args(["item", "list"]).output().unwrap();
    assert_eq!(stdout(&items).trim(), "no items");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_logs_requests_answers_unknown_routes_in_json_and_stops_on_sigterm() {
    let db = migrated_db().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = seckill_command(db.url())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let client = crate::common::http::serve(axum::Router::new()).await; // only for its HTTP client
    let base = format!("127.0.0.1:{port}");
    assert!(when_up(&base).await, "the server came up");
    let answer = client.request_to(&base, hyper::Method::GET, "/seckill/time/now", None, Vec::new()).await;
    assert_eq!(answer.status, hyper::StatusCode::OK);
    let unknown = client.request_to(&base, hyper::Method::GET, "/seckill/no/such/route", None, Vec::new()).await;
    assert_eq!((unknown.status, unknown.json["success"].as_bool()), (hyper::StatusCode::NOT_FOUND, Some(false)));
    let wrong_method = client.request_to(&base, hyper::Method::DELETE, "/seckill/time/now", None, Vec::new()).await;
    assert_eq!(wrong_method.status, hyper::StatusCode::METHOD_NOT_ALLOWED);
    // The lottery's routes are merged: its own answers, not the fallback's.
    let campaign = client.request_to(&base, hyper::Method::GET, "/lottery/999999/status.json", None, Vec::new()).await;
    assert_eq!(
        (campaign.status, campaign.json["error"].as_str()),
        (hyper::StatusCode::NOT_FOUND, Some("no campaign with id 999999"))
    );
    let draw = client.request_to(&base, hyper::Method::POST, "/lottery/1/draw", None, Vec::new()).await;
    assert_eq!(draw.status, hyper::StatusCode::UNAUTHORIZED, "{}", draw.text);

    let output = terminate(server).await;
    assert!(output.0.success(), "{}", output.1);
    assert!(output.1.contains("/seckill/time/now"), "request logs: {}", output.1);
    assert!(output.1.contains("seckill: stopped"), "{}", output.1);
}

#[tokio::test]
async fn serve_refuses_a_database_never_migrated_and_says_how_to_fix_it() {
    let db = seckill::testing::TestDatabase::new().await.unwrap();
    let output = seckill_command(db.url()).args(["serve", "--listen", "127.0.0.1:0"]).output().unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let err = stderr(&output);
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines[0].starts_with("seckill: error: the database's schema is not this seckill's: "), "{err}");
    assert!(lines[0].contains("migrations pending"), "{err}");
    assert!(lines[1].starts_with("hint: run `seckill migrate`") && lines[1].contains("--migrate"), "{err}");
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(db.url()).unwrap()).await.unwrap();
    let tables: Option<i64> = mysql_async::prelude::Queryable::query_first(
        &mut conn,
        format!("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{}'", db.name()),
    )
    .await
    .unwrap();
    assert_eq!(tables, Some(0), "nothing was created");
}

/// Stops a server this test started (SIGTERM, by pid) and waits for it: how it ended, and its stderr.
async fn terminate(mut server: std::process::Child) -> (std::process::ExitStatus, String) {
    let terminated = std::process::Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(terminated.success());
    tokio::task::spawn_blocking(move || {
        let status = server.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(server.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        (status, stderr)
    })
    .await
    .unwrap()
}

/// Whether a server starting at `address` accepts connections within 10 s.
async fn when_up(address: &str) -> bool {
    for _ in 0..200 {
        if std::net::TcpStream::connect(address).is_ok() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_migrates_when_asked_answers_its_probes_and_logs_json_without_colour() {
    let db = seckill::testing::TestDatabase::new().await.unwrap();
    let (port, management) = (free_port(), free_port());
    let server = seckill_command(db.url())
        .args(["serve", "--migrate", "--log-format", "json"])
        .args(["--listen", &format!("localhost:{port}"), "--metrics-listen", &format!("localhost:{management}")])
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let client = crate::common::http::serve(axum::Router::new()).await; // only for its HTTP client
    let (base, probes) = (format!("127.0.0.1:{port}"), format!("127.0.0.1:{management}"));
    assert!(when_up(&base).await, "the server came up on localhost");
    let ready = client.request_to(&probes, hyper::Method::GET, "/readyz", None, Vec::new()).await;
    assert_eq!(ready.status, hyper::StatusCode::OK, "{}", ready.text);
    assert_eq!(ready.json["checks"]["database"], "ok", "{}", ready.text);
    assert_eq!(ready.json["checks"]["schema"], "in sync", "{}", ready.text);
    assert_eq!(ready.json["checks"]["redis"], "not configured", "{}", ready.text);
    let health = client.request_to(&probes, hyper::Method::GET, "/healthz", None, Vec::new()).await;
    assert_eq!((health.status, health.json["status"].as_str()), (hyper::StatusCode::OK, Some("up")));
    let public = client.request_to(&base, hyper::Method::GET, "/readyz", None, Vec::new()).await;
    assert_eq!(public.status, hyper::StatusCode::NOT_FOUND, "the probes are not on the public listener");
    let answer = client.request_to(&base, hyper::Method::GET, "/seckill/time/now", None, Vec::new()).await;
    assert_eq!(answer.status, hyper::StatusCode::OK);
    let landing = client.request_to(&base, hyper::Method::GET, "/", None, Vec::new()).await;
    assert_eq!(landing.status, hyper::StatusCode::OK, "a landing page at /");
    assert!(landing.text.contains("/exchange") && !landing.text.contains("signin"), "{}", landing.text);
    let sign_in = client.request_to(&base, hyper::Method::GET, "/signin", None, Vec::new()).await;
    assert_eq!(sign_in.status, hyper::StatusCode::NOT_FOUND, "no development sign-in unless asked for");
    let openapi = client.request_to(&base, hyper::Method::GET, "/openapi.json", None, Vec::new()).await;
    assert_eq!((openapi.status, openapi.json["openapi"].as_str()), (hyper::StatusCode::OK, Some("3.1.0")));

    // A procedure dropped by hand: the instance is no longer ready, and says why.
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(db.url()).unwrap()).await.unwrap();
    mysql_async::prelude::Queryable::query_drop(&mut conn, "DROP PROCEDURE execute_seckill_batch").await.unwrap();
    let unready = client.request_to(&probes, hyper::Method::GET, "/readyz", None, Vec::new()).await;
    assert_eq!(unready.status, hyper::StatusCode::SERVICE_UNAVAILABLE, "{}", unready.text);
    assert_eq!(unready.json["ready"], false);
    let schema = unready.json["checks"]["schema"].as_str().unwrap_or_default();
    assert!(schema.starts_with("not in sync: procedure execute_seckill_batch"), "{schema}");

    let (status, logs) = terminate(server).await;
    assert!(status.success(), "{logs}");
    assert!(!logs.contains('\u{1b}'), "no colour codes in a pipe: {logs}");
    // The tool's own lines say `seckill: …`; every log line is one JSON object, the request's among them.
    let json: Vec<serde_json::Value> = logs
        .lines()
        .filter(|line| !line.starts_with("seckill: "))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(json.iter().any(|line| line.to_string().contains("/seckill/time/now")), "{logs}");
}

#[test]
fn user_token_prints_the_cookie_serve_checks() {
    let output = seckill_command("mysql://unused@127.0.0.1:1/x").args(["user", "token", "7"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let line = stdout(&output);
    let value = line.trim().strip_prefix("seckillUser=").unwrap_or_default();
    assert_eq!(crate::common::http::user_cookies().verify(value), Some(7), "{line}");
    let no_secret = seckill_command("mysql://unused@127.0.0.1:1/x")
        .args(["user", "token", "7"])
        .env_remove("SECKILL_SECRET")
        .output()
        .unwrap();
    assert_eq!(no_secret.status.code(), Some(1));
    assert!(stderr(&no_secret).contains("SECKILL_SECRET"), "{}", stderr(&no_secret));
    let bad = seckill_command("mysql://unused@127.0.0.1:1/x").args(["user", "token", "0"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[tokio::test]
async fn a_settings_file_lies_beneath_the_environment_and_the_command_line() {
    let db = migrated_db().await;
    let dir = std::env::temp_dir().join(format!("seckill-settings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("seckill.toml"), format!("database_url = \"{}\"\n\n[serve]\nuser_rate = 2.5\n", db.url()))
        .unwrap();
    let in_dir = |args: &[&str]| {
        let mut command = seckill_command("unused");
        command.env_remove("DATABASE_URL").current_dir(&dir).args(args);
        command
    };
    // The file alone: found in the current directory, for a command and for a command of commands.
    let status = in_dir(&["status"]).output().unwrap();
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    assert!(stdout(&status).ends_with("in sync\n"), "{}", stdout(&status));
    let items = in_dir(&["item", "list"]).output().unwrap();
    assert_eq!(stdout(&items).trim(), "no items", "{}", stderr(&items));
    // The environment overrides the file, and the command line both.
    let by_env = in_dir(&["status"]).env("DATABASE_URL", "mysql://root@127.0.0.1:1/x").output().unwrap();
    assert!(
        stderr(&by_env).starts_with("seckill: error: cannot use the database at 127.0.0.1:1:"),
        "{}",
        stderr(&by_env)
    );
    let by_flag = in_dir(&["status", "--database-url", "mysql://root@127.0.0.1:2/x"])
        .env("DATABASE_URL", "mysql://root@127.0.0.1:1/x")
        .output()
        .unwrap();
    assert!(
        stderr(&by_flag).starts_with("seckill: error: cannot use the database at 127.0.0.1:2:"),
        "{}",
        stderr(&by_flag)
    );
    // A key that names no option is an error naming it, and a value the option refuses is the option's error.
    std::fs::write(dir.join("typo.toml"), "databse_url = \"x\"\n").unwrap();
    let typo = in_dir(&["--config", "typo.toml", "status"]).output().unwrap();
    assert_eq!(typo.status.code(), Some(1));
    assert_eq!(stderr(&typo), "seckill: error: typo.toml: `databse_url` is not an option of `seckill`\n");
    std::fs::write(dir.join("bad.toml"), "[serve]\nlisten = 5\n").unwrap();
    let bad = in_dir(&["--config", "bad.toml", "serve"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("invalid value '5' for '--listen"), "{}", stderr(&bad));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_annotated_settings_file_holds_only_options_their_commands_take() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/seckill.toml");
    // Each table with its command: clap checks every value once the file is read, before any work starts; the
    // unreachable database given on the command line then ends each run.
    for command in [&["serve"][..], &["cluster"][..], &["relay"][..], &["status"][..]] {
        let output = seckill_command("unused")
            .env_remove("DATABASE_URL")
            .args(["--config", example])
            .args(command)
            .args(["--database-url", "mysql://root@127.0.0.1:1/x"])
            .env("SECKILL_SECRET", crate::common::SECRET)
            .output()
            .unwrap();
        let err = stderr(&output);
        assert!(!err.contains("is not an option") && !err.contains("invalid value"), "{command:?}: {err}");
        assert_ne!(output.status.code(), Some(0), "{command:?}: {err}");
    }
}
