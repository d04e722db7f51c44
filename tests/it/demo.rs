//! `seckill demo`: each act's crowd goes through the real HTTP API (the lottery's through the library service)
//! and its books balance against the database (the demo exits non-zero on any unexpected answer or failed
//! check); `seckill demo ACT` runs only that act.

use std::process::Output;

use mysql_async::prelude::Queryable;
use seckill::local::redis::redis_url;

use crate::common::messaging::{broker, sides};
use crate::common::{migrated_db, seckill_command};

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The number at the end of the crowd table's line that starts with `label`.
fn tallied(out: &str, label: &str) -> i64 {
    let line =
        out.lines().find(|line| line.trim_start().starts_with(label)).unwrap_or_else(|| panic!("{label}: {out}"));
    line.split_whitespace().last().unwrap().parse().unwrap_or_else(|_| panic!("{line}"))
}

/// The reconciliation's lines: (passed, what).
fn checks(out: &str) -> Vec<(bool, String)> {
    out.lines()
        .filter_map(|line| {
            let line = line.trim_start();
            line.strip_prefix("ok   ")
                .map(|what| (true, what.to_string()))
                .or_else(|| line.strip_prefix("FAIL ").map(|what| (false, what.to_string())))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seckill_act_sells_its_stock_and_balances_its_books() {
    let db = migrated_db().await;
    let output = seckill_command(db.url())
        .args(["demo", "seckill", "--buyers", "300", "--stock", "25", "--opens-in", "1s", "--concurrency", "64"])
        .output()
        .unwrap();
    let out = stdout(&output);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    assert!(out.contains("books balance: 25 sold = 25 success rows"), "{out}");
    assert!(out.contains("数据篡改"), "tampered URLs are counted: {out}");
    assert!(!out.contains("exchange act"), "only the act named runs: {out}");
}

/// The exchange act's table says what the database holds: its count of exchanges is the shop's rows and the
/// warehouse's shipment requests, the hot gift sold exactly its stock, and every check passed.
#[tokio::test(flavor = "multi_thread")]
async fn the_exchange_act_ships_every_exchange_once_and_reconciles_both_databases() {
    let sides = sides().await;
    let output = seckill_command(sides.shop.url())
        .args(["demo", "exchange", "--users", "120", "--hot-stock", "7", "--concurrency", "48"])
        .args(["--warehouse-database-url", sides.warehouse.url()])
        .env("RABBITMQ_URL", broker())
        .output()
        .unwrap();
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}{}", stderr(&output));

    let exchanged = tallied(&out, "exchanged (兑换成功)");
    let mut shop = sides.shop.pool().get_conn().await.unwrap();
    let rows: i64 = shop.query_first("SELECT COUNT(*) FROM credit_exchange").await.unwrap().unwrap();
    let mut warehouse = sides.warehouse.pool().get_conn().await.unwrap();
    let shipped: (i64, i64) = warehouse
        .query_first("SELECT COUNT(*), COUNT(DISTINCT credit_exchange_id) FROM shipment_request")
        .await
        .unwrap()
        .unwrap();
    assert!(exchanged > 7, "{out}");
    assert_eq!((rows, shipped), (exchanged, (exchanged, exchanged)), "{out}");
    let hot: (i64, i64) = shop
        .query_first(
            "SELECT g.stock, (SELECT COUNT(*) FROM credit_exchange ce WHERE ce.product_id = g.gift_id) \
               FROM exchange_gift g WHERE g.name = '限量 hot gift'",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hot, (0, 7), "the hot gift sold exactly its stock: {out}");
    let paid: i64 =
        shop.query_first("SELECT CAST(SUM(exchanged_credit) AS SIGNED) FROM credit_exchange").await.unwrap().unwrap();
    let spent: i64 = shop
        .query_first("SELECT CAST(SUM(250 - credit) AS SIGNED) FROM credit WHERE user_id % 10 <> 0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(paid, spent, "the points paid are the points gone from the balances");

    assert!(tallied(&out, "not enough points") > 0, "some users had too few points: {out}");
    assert!(tallied(&out, "resends answered with the first outcome") > 0, "some users sent again: {out}");
    let checks = checks(&out);
    assert!(checks.len() >= 10, "the reconciliation table: {out}");
    assert!(checks.iter().all(|(passed, _)| *passed), "{out}");
    assert!(
        checks
            .iter()
            .any(|(_, what)| what.contains(&format!("exactly one shipment_request: {exchanged} of {exchanged}"))),
        "{out}"
    );
    assert!(
        checks
            .iter()
            .any(|(_, what)| what.contains(&format!("messages: {exchanged} consumed, 0 pending, 0 sent, 0 dead"))),
        "{out}"
    );
    assert!(out.contains(&format!("exchange books balance: {exchanged} exchanged")), "{out}");
}

/// The lottery act's table says what the database holds: its winners are the prizes taken, its draws the rows
/// recorded, every prize message consumed, every check passed; and a bad setting is a usage error that creates
/// nothing.
#[tokio::test(flavor = "multi_thread")]
async fn the_lottery_act_draws_every_prize_once_and_delivers_each_win_once_in_effect() {
    let db = migrated_db().await;
    let output = seckill_command(db.url())
        .args(["demo", "lottery", "--lottery-users", "1500", "--prizes", "60", "--concurrency", "64"])
        .args(["--gift-rate", "150", "--gift-fail-share", "0.3"])
        .env("RABBITMQ_URL", broker())
        .env("REDIS_URL", redis_url().unwrap())
        .output()
        .unwrap();
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}{}", stderr(&output));

    let (won, no_prize) = (tallied(&out, "won (中奖)"), tallied(&out, "no prize (未中奖)"));
    assert_eq!(won, 60, "1500 users winning one time in five take every prize: {out}");
    assert!(tallied(&out, "all drawn (奖品已抽完)") > 0, "the rest of the crowd was turned away: {out}");
    assert!(tallied(&out, "repeats answered with the first result") > 0, "double clicks were repeats: {out}");
    let mut conn = db.pool().get_conn().await.unwrap();
    let (draws, wins, users): (i64, i64, i64) = conn
        .query_first("SELECT COUNT(*), COUNT(tier_id), COUNT(DISTINCT user_id) FROM lottery_draw")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((draws, wins, users), (won + no_prize, 60, won + no_prize), "{out}");
    let left: i64 = conn.query_first("SELECT CAST(SUM(stock) AS SIGNED) FROM lottery_tier").await.unwrap().unwrap();
    assert_eq!(left, 0, "every prize drawn, none twice");
    let consumed: i64 = conn
        .query_first("SELECT COUNT(*) FROM message_outbox WHERE topic = 'lottery.prize' AND state = 'consumed'")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(consumed, 60, "every win's message was consumed");

    let checks = checks(&out);
    assert!(checks.len() >= 11, "the reconciliation table: {out}");
    assert!(checks.iter().all(|(passed, _)| *passed), "{out}");
    assert!(checks.iter().any(|(_, what)| what.contains("60 of 60 wins one gift, 0 none, 0 more")), "{out}");
    assert!(checks.iter().any(|(_, what)| what.contains("prize messages: 60 consumed, 0 pending")), "{out}");
    assert!(checks.iter().any(|(_, what)| what.starts_with("gift worker: ")), "the rate is reported: {out}");
    assert!(out.contains(&format!("lottery books balance: {draws} draws recorded = {draws} users told, 60 won")));

    let refused = seckill_command(db.url()).args(["demo", "lottery", "--gift-fail-share", "1.5"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2), "a share above 1 is a usage error: {}", stderr(&refused));
    assert!(stderr(&refused).contains("not a share"), "{}", stderr(&refused));
    let campaigns: i64 = conn.query_first("SELECT COUNT(*) FROM lottery_campaign").await.unwrap().unwrap();
    assert_eq!(campaigns, 1, "the refused run created nothing");
}

/// `seckill demo` with no act named runs them all, in order, on one server.
#[tokio::test(flavor = "multi_thread")]
async fn the_demo_runs_every_act_in_turn() {
    let sides = sides().await;
    let output = seckill_command(sides.shop.url())
        .args(["demo", "--buyers", "60", "--stock", "5", "--opens-in", "1s", "--users", "40", "--hot-stock", "3"])
        .args(["--lottery-users", "300", "--prizes", "20"])
        .args(["--warehouse-database-url", sides.warehouse.url()])
        .env("RABBITMQ_URL", broker())
        .env("REDIS_URL", redis_url().unwrap())
        .output()
        .unwrap();
    let out = stdout(&output);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    let seckill = out.find("books balance: 5 sold").expect("the seckill act balanced");
    let exchange = out.find("exchange books balance:").expect("the exchange act balanced");
    let lottery = out.find("lottery books balance:").expect("the lottery act balanced");
    assert!(seckill < exchange && exchange < lottery, "the acts run in order: {out}");
    let verdict = out.lines().last().unwrap_or_default();
    assert_eq!(verdict, "demo: seckill, exchange, lottery played; every answer was expected and every book balances");

    let unknown = seckill_command(sides.shop.url()).args(["demo", "lottery-draw"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(2), "an unknown act is a usage error: {}", stderr(&unknown));
}

/// `--cluster 2`: the seckill act's crowd goes through nginx in front of two `seckill serve` instances. What
/// runs where is printed; both instances answered executions, every sale among them; an instance published
/// that the item sold out, after which the balancer answered the rest itself (the instances' own counts and
/// the balancer's add up to the crowd's requests); the books balance against the database; and the cluster's
/// folder is gone once the act is done.
#[tokio::test(flavor = "multi_thread")]
async fn the_seckill_act_through_a_cluster_spreads_its_crowd_over_the_instances_and_balances_its_books() {
    let db = migrated_db().await;
    let output = seckill_command(db.url())
        .env_remove("REDIS_URL")
        .args(["demo", "seckill", "--cluster", "2", "--buyers", "300", "--stock", "25", "--opens-in", "1s"])
        .args(["--concurrency", "64"])
        .output()
        .unwrap();
    let out = stdout(&output);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    assert!(out.contains("balancer    http://127.0.0.1:"), "{out}");
    assert_eq!(out.lines().filter(|line| line.starts_with("instance ")).count(), 2, "{out}");
    let folder = out.lines().find_map(|line| line.strip_prefix("folder")).unwrap().trim().split(' ').next().unwrap();

    // execution requests answered: instance 1: A, instance 2: B; the balancer itself: C (of the crowd's N; KEY = S)
    let line = out.lines().find_map(|line| line.strip_prefix("execution requests answered: "));
    let line = line.unwrap_or_else(|| panic!("{out}"));
    let (instances, rest) = line.split_once("; the balancer itself: ").unwrap();
    let per_instance: Vec<u64> =
        instances.split(", ").map(|part| part.rsplit(": ").next().unwrap().parse().unwrap()).collect();
    let (by_balancer, rest) = rest.split_once(" (of the crowd's ").unwrap();
    let by_balancer: u64 = by_balancer.parse().unwrap();
    let (crowd, state) = rest.split_once("; ").unwrap();
    let crowd: u64 = crowd.parse().unwrap();
    let requests_line = out.lines().find(|line| line.trim_start().starts_with("300 buyers, ")).unwrap();
    let tallied_requests: u64 = requests_line.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert_eq!(crowd, tallied_requests, "{out}");
    assert_eq!(per_instance.len(), 2, "{out}");
    assert!(per_instance.iter().all(|n| *n > 0), "both instances served: {out}");
    assert!(per_instance.iter().sum::<u64>() >= 25, "every sale was decided by an instance: {out}");
    assert_eq!(per_instance.iter().sum::<u64>() + by_balancer, crowd, "{out}");
    assert!(state.ends_with(":state = sold_out)"), "an instance published the sell-out: {out}");

    assert!(out.contains("books balance: 25 sold = 25 success rows"), "{out}");
    let mut conn = db.pool().get_conn().await.unwrap();
    let (rows, buyers): (i64, i64) =
        conn.query_first("SELECT COUNT(*), COUNT(DISTINCT user_phone) FROM success_killed").await.unwrap().unwrap();
    assert_eq!((rows, buyers), (25, 25), "{out}");
    assert_eq!(tallied(&out, "sold (秒杀成功)"), 25, "{out}");
    assert!(out.contains("the cluster is stopped and removed"), "{out}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while std::path::Path::new(folder).exists() {
        assert!(std::time::Instant::now() < deadline, "{folder} is still there");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
