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
fn connection_problems_are_one_line_errors() {
    let cases =
        [("not a url", "invalid database URL"), ("mysql://root@127.0.0.1:1/x", "cannot talk to the database server")];
    for (url, expected) in cases {
        let output = seckill_command(url).arg("status").output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{url}");
        let err = stderr(&output);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with(&format!("seckill: error: {expected}")), "{url}: {err}");
    }
}

#[tokio::test]
async fn wrong_credentials_are_a_one_line_error() {
    let db = migrated_db().await;
    let opts = mysql_async::Opts::from_url(db.url()).unwrap();
    let url = format!("mysql://no_such_user:wrong@{}:{}/{}", opts.ip_or_hostname(), opts.tcp_port(), db.name());
    let output = seckill_command(&url).arg("status").output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("seckill: error: the database server refused the login"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn item_expose_and_execute_from_the_shell() {
    let db = migrated_db().await;
    let created = seckill_command(db.url())
        .args(["item", "create", "--name", "phone", "--stock", "1", "--start", "-1m", "--end", "+1h", "--json"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", stderr(&created));
    let item: serde_json::Value = serde_json::from_str(&stdout(&created)).unwrap();
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
    let mut server = seckill_command(db.url())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let client = crate::common::http::serve(axum::Router::new()).await; // only for its HTTP client
    let base = format!("127.0.0.1:{port}");
    let mut answer = None;
    for _ in 0..100 {
        if std::net::TcpStream::connect(&base).is_ok() {
            answer = Some(client.request_to(&base, hyper::Method::GET, "/seckill/time/now", None, Vec::new()).await);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let answer = answer.expect("the server came up");
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

    let terminated = std::process::Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(terminated.success());
    let output = tokio::task::spawn_blocking(move || {
        let status = server.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(server.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        (status, stderr)
    })
    .await
    .unwrap();
    assert!(output.0.success(), "{}", output.1);
    assert!(output.1.contains("/seckill/time/now"), "request logs: {}", output.1);
    assert!(output.1.contains("seckill: stopped"), "{}", output.1);
}
