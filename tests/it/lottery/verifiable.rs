//! A lottery anyone can verify, against real servers: a crowd draws through two `seckill serve` processes; until
//! the campaign is over nothing anyone sees holds its seed (answers, pages, metrics, logs); afterwards the audit log
//! verifies with `seckill lottery verify` and with a script written from `docs/lottery-verification.md` alone, and
//! a tampered log is refused by both, naming the same first mismatch. The rules cannot be changed once committed,
//! by hand-written SQL either, and a prize over the legal cap is refused at creation.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use hyper::{Method, StatusCode};
use mysql_async::prelude::Queryable;
use seckill::lottery::audit::AuditLog;
use seckill::lottery::{Lottery, LotteryBooks, NewCampaign, NewTier};

use crate::common::http::{call, signed_in};
use crate::common::{migrated_db, seckill_command};

/// A `seckill serve` this test started, killed (by pid) when dropped; its stderr goes to a file, read at the end.
struct Served {
    child: Child,
    address: SocketAddr,
    metrics: SocketAddr,
    log: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

async fn start_serve(url: &str, dir: &Path, name: &str) -> Served {
    let (address, metrics) = (free_address(), free_address());
    let log = dir.join(format!("{name}.log"));
    let child = seckill_command(url)
        .args(["serve", "--listen", &address.to_string(), "--metrics-listen", &metrics.to_string()])
        .env("RUST_LOG", "debug")
        .stderr(std::fs::File::create(&log).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let served = Served { child, address, metrics, log };
    for _ in 0..200 {
        if std::net::TcpStream::connect(address).is_ok() {
            return served;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("seckill serve did not come up on {address}");
}

fn tier(name: &str, stock: u32, weight: u32, yuan: u64) -> NewTier {
    NewTier { name: name.into(), stock, weight, value_fen: yuan * 100 }
}

/// A campaign open for an hour.
fn campaign(draws_per_user: u32, blank_weight: u32, tiers: Vec<NewTier>) -> NewCampaign {
    let now = Utc::now();
    let mut new =
        NewCampaign::new("公平抽奖", now - chrono::Duration::minutes(1), now + chrono::Duration::hours(1), tiers);
    new.draws_per_user = draws_per_user;
    new.blank_weight = blank_weight;
    new
}

/// Every user draws `draws` times, through the two servers in turn, 32 at a time; each answer's (user, draw id,
/// won) when it names a recorded draw, and every answer's text.
async fn crowd(
    servers: [SocketAddr; 2],
    campaign: i64,
    users: i64,
    draws: u32,
) -> (Vec<(i64, i64, bool)>, Vec<String>) {
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = Vec::new();
    for user in 1..=users {
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let cookie = signed_in(user);
            let mut told = Vec::new();
            for n in 0..draws {
                let server = servers[(user as usize + n as usize) % 2];
                let path = format!("/lottery/{campaign}/draw");
                let answer = call(server, Method::POST, &path, &[("Cookie", cookie.as_str())], Vec::new()).await;
                assert_eq!(answer.status, StatusCode::OK, "user {user}: {}", answer.text);
                told.push((user, answer.json["data"].clone(), answer.text));
            }
            told
        }));
    }
    let (mut recorded, mut texts) = (Vec::new(), Vec::new());
    for task in tasks {
        for (user, data, text) in task.await.unwrap() {
            if let Some(draw_id) = data["drawId"].as_i64() {
                recorded.push((user, draw_id, data["outcome"] == "won"));
            }
            texts.push(text);
        }
    }
    (recorded, texts)
}

/// What the independent script says of a log: its exit code and output.
fn python_verify(file: &Path) -> (Option<i32>, String) {
    let output = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/verify_lottery_log.py"))
        .arg(file)
        .output()
        .expect("python3 runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code(), text)
}

/// What `seckill lottery verify` says of a log: its exit code and output.
fn seckill_verify(file: &Path) -> (Option<i32>, String) {
    let output =
        seckill_command("mysql://unused@127.0.0.1:1/x").args(["lottery", "verify"]).arg(file).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code(), text)
}

/// The mismatch a verifier named: what follows "does not verify: ", up to the next colon.
fn named(output: &str) -> &str {
    output.split("does not verify: ").nth(1).and_then(|rest| rest.split(':').next()).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crowd_on_two_instances_is_verified_by_us_and_by_an_independent_script_and_tampering_is_named() {
    let db = migrated_db().await;
    let dir = std::env::temp_dir().join(format!("seckill-verifiable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lottery = Lottery::new(db.pool().clone());
    // One draw each with a blank share (blanks decided apart, beside the batches), and three draws each.
    let one = lottery
        .create_campaign(&campaign(
            1,
            30,
            vec![tier("金 Gold", 4, 1, 50_000), tier("Pen", 20, 3, 10), tier("Mug", 40, 6, 30)],
        ))
        .await
        .unwrap();
    let three =
        lottery.create_campaign(&campaign(3, 10, vec![tier("Cup", 10, 1, 20), tier("Bag", 30, 4, 50)])).await.unwrap();
    let servers = [start_serve(db.url(), &dir, "a").await, start_serve(db.url(), &dir, "b").await];
    let addresses = [servers[0].address, servers[1].address];

    let (crowd_one, crowd_three) =
        tokio::join!(crowd(addresses, one.campaign_id, 500, 1), crowd(addresses, three.campaign_id, 120, 3));
    let mut seen: Vec<String> = crowd_one.1.iter().chain(&crowd_three.1).cloned().collect();

    let mut logs = HashMap::new();
    for (campaign, told) in [(&one, &crowd_one.0), (&three, &crowd_three.0)] {
        let id = campaign.campaign_id;
        LotteryBooks::check(db.pool(), id).await.expect("the books balance");
        let status = lottery.status(id).await.unwrap().unwrap();
        assert!(status.is_all_drawn(), "campaign {id} drawn out: {status:?}");
        let seed = status.revealed_seed.clone().expect("revealed once all drawn");
        let cli = seckill_command(db.url()).args(["lottery", "status", &id.to_string()]).output().unwrap();
        assert!(String::from_utf8_lossy(&cli.stdout).contains(&seed), "the CLI shows the revealed seed");

        // The audit log, written by the CLI and served by either instance: the same.
        let file = dir.join(format!("campaign-{id}.json"));
        let export =
            seckill_command(db.url()).args(["lottery", "export", &id.to_string(), "-o"]).arg(&file).output().unwrap();
        assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
        let log: AuditLog = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let served = call(addresses[1], Method::GET, &format!("/lottery/{id}/audit.json"), &[], Vec::new()).await;
        assert_eq!(serde_json::from_value::<AuditLog>(served.json["data"].clone()).unwrap(), log);
        assert_eq!(
            (log.seed.as_str(), log.commitment.as_str()),
            (seed.as_str(), campaign.commitment.as_deref().unwrap())
        );

        // Every caller told of a recorded draw finds it in the log as told.
        let by_id: HashMap<i64, _> = log.draws.iter().map(|draw| (draw.draw_id, draw)).collect();
        assert_eq!(
            by_id.len(),
            told.iter().map(|(_, draw_id, _)| draw_id).collect::<std::collections::HashSet<_>>().len()
        );
        for (user, draw_id, won) in told {
            let draw = by_id.get(draw_id).unwrap_or_else(|| panic!("draw {draw_id} of user {user} is in the log"));
            assert_eq!((draw.user, draw.tier.is_some()), (*user, *won), "draw {draw_id}");
        }
        assert!(log.draws.iter().any(|draw| draw.tier.is_none()) && log.draws.iter().any(|draw| draw.tier.is_some()));
        if campaign.draws_per_user == 1 {
            assert!(log.draws.iter().any(|draw| draw.batch.is_none()), "some blanks decided apart");
        } else {
            assert!(log.draws.iter().any(|draw| draw.draw_no == 3), "later draws recorded");
        }
        assert!(log.draws.iter().filter_map(|draw| draw.batch).max() > Some(1), "several batches");

        let (code, text) = seckill_verify(&file);
        assert_eq!(code, Some(0), "seckill lottery verify: {text}");
        let (code, text) = python_verify(&file);
        assert_eq!(code, Some(0), "the independent script: {text}");
        logs.insert(id, log);
    }

    // Tampered logs: both verifiers refuse each, naming the same first mismatch.
    let log = &logs[&one.campaign_id];
    let won = log.draws.iter().position(|draw| draw.tier.is_some()).unwrap();
    let lost = log.draws.iter().position(|draw| draw.tier.is_none()).unwrap();
    type Tampering = (&'static str, Box<dyn Fn(&mut AuditLog)>, String);
    let tampered: [Tampering; 4] = [
        ("a result", Box::new(move |log: &mut AuditLog| log.draws[lost].tier = Some(1)), format!("draw {}", lost + 1)),
        ("a user", Box::new(move |log: &mut AuditLog| log.draws[won].user = 100_000), format!("draw {}", won + 1)),
        ("the seed", Box::new(|log: &mut AuditLog| log.seed = "0".repeat(64)), "commitment".to_string()),
        ("a weight", Box::new(|log: &mut AuditLog| log.rules.tiers[0].weight += 1), "commitment".to_string()),
    ];
    for (what, change, expected) in tampered {
        let mut bad = log.clone();
        change(&mut bad);
        let file = dir.join("tampered.json");
        std::fs::write(&file, serde_json::to_string(&bad).unwrap()).unwrap();
        let (ours, ours_text) = seckill_verify(&file);
        let (script, script_text) = python_verify(&file);
        assert_eq!((ours, script), (Some(1), Some(1)), "{what} changed: {ours_text} / {script_text}");
        assert_eq!(named(&ours_text), expected, "{what} changed: {ours_text}");
        assert_eq!(named(&script_text), expected, "{what} changed, the script: {script_text}");
    }

    // Nothing anyone could see before the reveal held a seed: the answers, the pages, the metrics, the logs.
    let fresh = lottery.create_campaign(&campaign(1, 0, vec![tier("Pen", 5, 1, 10)])).await.unwrap();
    let fresh_seed = seed_of(db.pool(), fresh.campaign_id).await;
    let cookie = signed_in(9);
    for path in ["status.json", "mine.json", "audit.json", "", "draw"] {
        let method = if path == "draw" { Method::POST } else { Method::GET };
        let path = format!("/lottery/{}/{path}", fresh.campaign_id);
        let answer = call(addresses[0], method, &path, &[("Cookie", cookie.as_str())], Vec::new()).await;
        if path.ends_with("audit.json") {
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "no audit log before the reveal: {}", answer.text);
        }
        seen.push(answer.text);
    }
    for asset in ["app.js", "style.css"] {
        seen.push(call(addresses[0], Method::GET, &format!("/lottery/assets/{asset}"), &[], Vec::new()).await.text);
    }
    let status =
        call(addresses[0], Method::GET, &format!("/lottery/{}/status.json", fresh.campaign_id), &[], Vec::new()).await;
    assert_eq!(status.json["data"]["commitment"], fresh.commitment.clone().unwrap(), "the commitment is public");
    assert!(status.json["data"]["seed"].is_null(), "{}", status.text);
    let cli = seckill_command(db.url())
        .args(["lottery", "status", &fresh.campaign_id.to_string(), "--json"])
        .output()
        .unwrap();
    seen.push(String::from_utf8_lossy(&cli.stdout).into_owned());
    for server in &servers {
        seen.push(call(server.metrics, Method::GET, "/metrics", &[], Vec::new()).await.text);
    }
    let log_files: Vec<PathBuf> = servers.iter().map(|server| server.log.clone()).collect();
    drop(servers);
    for file in log_files {
        seen.push(std::fs::read_to_string(file).unwrap());
    }
    let seen = seen.join("\n");
    assert!(seen.len() > 10_000, "a real amount of text was looked at: {} bytes", seen.len());
    assert!(seen.contains(fresh.commitment.as_deref().unwrap()));
    for seed in [fresh_seed.clone(), fresh_seed.to_uppercase(), fresh_seed[..16].to_string()] {
        assert!(!seen.contains(&seed), "the seed, or a part of it, was visible before the reveal");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A campaign's seed, read from its table (as only the app's account may).
async fn seed_of(pool: &mysql_async::Pool, campaign_id: i64) -> String {
    let mut conn = pool.get_conn().await.unwrap();
    conn.exec_first("SELECT seed FROM lottery_campaign_seed WHERE campaign_id = ?", (campaign_id,))
        .await
        .unwrap()
        .unwrap()
}

/// Statements that would change a campaign's rules, by hand.
fn rule_changes(id: i64) -> Vec<String> {
    [
        "UPDATE lottery_tier SET weight = weight + 1 WHERE campaign_id = {id}",
        "UPDATE lottery_tier SET value_fen = value_fen + 100 WHERE campaign_id = {id}",
        "UPDATE lottery_tier SET stock = stock + 1, stocked = stocked + 1 WHERE campaign_id = {id}",
        "UPDATE lottery_tier SET stock = stock + 1 WHERE campaign_id = {id} AND stock < stocked",
        "UPDATE lottery_tier SET name = 'something else' WHERE campaign_id = {id}",
        "INSERT INTO lottery_tier (campaign_id, name, position, weight, stock, stocked) VALUES ({id}, 'x', 9, 1, 1, 1)",
        "DELETE FROM lottery_tier WHERE campaign_id = {id} AND position = 2",
        "UPDATE lottery_campaign SET end_time = end_time + INTERVAL 1 DAY WHERE campaign_id = {id}",
        "UPDATE lottery_campaign SET blank_weight = blank_weight + 1 WHERE campaign_id = {id}",
        "UPDATE lottery_campaign SET draws_per_user = 2 WHERE campaign_id = {id}",
        "UPDATE lottery_campaign_seed SET seed = REPEAT('0', 64) WHERE campaign_id = {id}",
        "DELETE FROM lottery_campaign_seed WHERE campaign_id = {id}",
        "DELETE FROM lottery_campaign WHERE campaign_id = {id}",
        // Last: on a campaign without one, setting a commitment is how creation freezes it.
        "UPDATE lottery_campaign SET commitment = REPEAT('0', 64) WHERE campaign_id = {id}",
    ]
    .iter()
    .map(|statement| statement.replace("{id}", &id.to_string()))
    .collect()
}

/// Everything of a campaign's rules as stored, for before/after comparisons.
async fn rules_of(conn: &mut mysql_async::Conn, id: i64) -> String {
    let row: Option<String> = conn
        .exec_first(
            "SELECT CONCAT_WS('|', c.name, c.start_time, c.end_time, c.draws_per_user, c.blank_weight, c.commitment, s.seed, \
                    (SELECT GROUP_CONCAT(CONCAT_WS(',', t.name, t.position, t.weight, t.value_fen, t.stock, t.stocked) \
                                         ORDER BY t.position SEPARATOR ';') FROM lottery_tier t WHERE t.campaign_id = c.campaign_id)) \
             FROM lottery_campaign c LEFT JOIN lottery_campaign_seed s ON s.campaign_id = c.campaign_id \
             WHERE c.campaign_id = ?",
            (id,),
        )
        .await
        .unwrap();
    row.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rules_cannot_change_once_committed_through_the_api_the_cli_or_plain_sql() {
    let db = migrated_db().await;
    let lottery = Lottery::new(db.pool().clone());
    let tiers = || vec![tier("Gold", 2, 1, 100), tier("Pen", 5, 2, 10)];
    let committed = lottery.create_campaign(&campaign(1, 0, tiers())).await.unwrap().campaign_id;
    // The same rules written by hand, without a commitment (as before commitments): the statements below are
    // valid and change it, so what refuses them for the committed campaign is the commitment.
    let mut conn = db.pool().get_conn().await.unwrap();
    conn.query_drop(format!(
        "INSERT INTO lottery_campaign (name, start_time, end_time, draws_per_user, blank_weight) \
         SELECT name, start_time, end_time, draws_per_user, blank_weight FROM lottery_campaign WHERE campaign_id = {committed}"
    ))
    .await
    .unwrap();
    let uncommitted = i64::try_from(conn.last_insert_id().unwrap()).unwrap();
    conn.query_drop(format!(
        "INSERT INTO lottery_tier (campaign_id, name, position, weight, value_fen, stock, stocked) \
         SELECT {uncommitted}, name, position, weight, value_fen, stock, stocked FROM lottery_tier WHERE campaign_id = {committed}"
    ))
    .await
    .unwrap();
    conn.query_drop(format!("INSERT INTO lottery_campaign_seed VALUES ({uncommitted}, REPEAT('a', 64))"))
        .await
        .unwrap();
    // A draw that took a unit (no blank share: every draw wins), so that "stock + 1" is within what was stocked.
    assert!(lottery.draw(committed, 1).await.unwrap().is_win());
    conn.query_drop(format!(
        "UPDATE lottery_tier SET stock = stock - 1 WHERE campaign_id = {uncommitted} AND position = 1"
    ))
    .await
    .unwrap();

    let before = rules_of(&mut conn, committed).await;
    for statement in rule_changes(committed) {
        let error = conn.query_drop(&statement).await.expect_err(&statement);
        assert!(error.to_string().contains("lottery rules are frozen"), "{statement}: {error}");
    }
    assert_eq!(rules_of(&mut conn, committed).await, before, "nothing changed");
    for statement in rule_changes(uncommitted) {
        let changed = conn.query_drop(&statement).await;
        // A seed never changes and stays while its campaign does, committed or not; everything else of an
        // uncommitted campaign may change.
        if statement.contains("lottery_campaign_seed") {
            assert!(changed.is_err(), "{statement}");
        } else {
            changed.unwrap_or_else(|error| panic!("{statement}: {error}"));
        }
    }
    // Draws still take units: the triggers let stock go down.
    assert!(lottery.draw(committed, 2).await.unwrap().draw_id().is_some());
    LotteryBooks::check(db.pool(), committed).await.expect("the books balance");

    // The API has no route that changes a campaign, and the CLI no command.
    let app = seckill::lottery::http::router(lottery.clone(), crate::common::http::user_cookies());
    let served = crate::common::http::serve(app).await;
    for method in [Method::PUT, Method::PATCH, Method::DELETE, Method::POST] {
        for path in [format!("/lottery/{committed}"), format!("/lottery/{committed}/status.json")] {
            let answer = call(served.address, method.clone(), &path, &[("Cookie", &signed_in(3))], Vec::new()).await;
            assert!(answer.status.is_client_error(), "{method} {path}: {}", answer.status);
        }
    }
    for command in ["update", "edit", "set"] {
        let output = seckill_command(db.url()).args(["lottery", command, &committed.to_string()]).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "seckill lottery {command}");
    }
    let after_draws = rules_of(&mut conn, committed).await;
    assert_eq!(after_draws.split('|').take(7).collect::<Vec<_>>(), before.split('|').take(7).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn units_taken_by_hand_and_prizes_over_the_cap_are_caught() {
    let db = migrated_db().await;
    let lottery = Lottery::new(db.pool().clone());
    // Over the cap: refused before anything is written, through the library and the CLI.
    let car = campaign(1, 0, vec![tier("Car", 1, 1, 60_000)]);
    let error = lottery.create_campaign(&car).await.unwrap_err().to_string();
    assert!(error.contains("60000.00 yuan") && error.contains("cap"), "{error}");
    let create = |cap: Option<&str>| {
        let mut command = seckill_command(db.url());
        command.args([
            "lottery",
            "create",
            "--name",
            "car",
            "--start",
            "now",
            "--end",
            "+1h",
            "--tier",
            "Car:1:1@60000",
        ]);
        if let Some(cap) = cap {
            command.args(["--max-prize-yuan", cap]);
        }
        command.output().unwrap()
    };
    let refused = create(None);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("cap") && stderr.trim().lines().count() <= 2, "{stderr}");
    let mut conn = db.pool().get_conn().await.unwrap();
    let campaigns: Option<i64> = conn.query_first("SELECT COUNT(*) FROM lottery_campaign").await.unwrap();
    assert_eq!(campaigns, Some(0), "nothing written");
    assert!(create(Some("100000")).status.success(), "a higher cap, set by the operator, takes it");

    // A unit taken out by hand (the triggers let stock go down, as draws do) is caught by the audit log's books.
    let now = Utc::now();
    let short = NewCampaign::new(
        "short",
        now - chrono::Duration::seconds(1),
        now + chrono::Duration::seconds(2),
        vec![tier("Pen", 3, 1, 10)],
    );
    let short = lottery.create_campaign(&short).await.unwrap().campaign_id;
    assert!(lottery.draw(short, 1).await.unwrap().is_win());
    assert!(matches!(lottery.export(short).await, Err(seckill::lottery::LotteryError::NotRevealed { .. })));
    conn.query_drop(format!("UPDATE lottery_tier SET stock = stock - 1 WHERE campaign_id = {short}")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let log = lottery.export(short).await.unwrap().unwrap();
    let mismatch = seckill::lottery::audit::verify(&log).unwrap_err();
    assert_eq!(mismatch.what, "tier 1", "{mismatch}");
}
