//! `seckill bench` end to end: every strategy runs, and the books check passes on real runs.

use mysql_async::prelude::Queryable;
use seckill::local::rabbitmq::rabbitmq_url;

use crate::common::{migrated_db, seckill_command};

#[tokio::test]
async fn every_strategy_runs_and_balances_its_books() {
    let db = migrated_db().await;
    let output = seckill_command(db.url())
        .args(["bench", "--workload", "hot", "--concurrency", "8", "--duration", "300ms", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&output.stdout).lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let (reports, baselines): (Vec<_>, Vec<_>) = lines.into_iter().partition(|line| line["strategy"].is_string());
    let strategies: Vec<_> = reports.iter().map(|r| r["strategy"].as_str().unwrap()).collect();
    assert_eq!(strategies, ["naive", "procedure", "batched"]);
    // The field's Redis Lua seckill beside them, at its best (4 shared connections) and a connection per caller,
    // its books checked, with the batched rate of the same run read against it.
    let connections: Vec<_> = baselines.iter().map(|b| b["run"]["connections"].as_u64().unwrap()).collect();
    assert_eq!(connections, [4, 8], "{baselines:?}");
    for baseline in &baselines {
        assert_eq!(baseline["run"]["baseline"], "redis_lua");
        assert!(baseline["run"]["seckills"].as_u64().unwrap() > 0 && baseline["run"]["errors"] == 0, "{baseline}");
        let ratio = baseline["batched_over_redis"].as_f64().unwrap();
        let expected =
            reports[2]["seckills_per_s"].as_f64().unwrap() / baseline["run"]["seckills_per_s"].as_f64().unwrap();
        assert!((ratio - expected).abs() < 1e-9, "{baseline}");
    }
    for report in &reports {
        assert!(report["seckills"].as_u64().unwrap() > 0, "{report}");
        assert_eq!(report["errors"], 0, "{report}");
    }
    let trips = |i: usize| reports[i]["round_trips_per_attempt"].as_f64().unwrap();
    assert!(trips(0) >= 4.0, "naive: BEGIN, UPDATE, INSERT, COMMIT");
    assert!(trips(1) < trips(0));
}

#[tokio::test]
async fn bad_bench_arguments_are_refused() {
    let db = migrated_db().await;
    let cases = [
        ["--concurrency", "0"],
        ["--concurrency", "5000"],
        ["--duration", "soon"],
        ["--rtt", "-1ms"],
        ["--instances", "0"],
    ];
    for args in cases {
        let output = seckill_command(db.url()).arg("bench").args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
    }
}

/// The exchange workload end to end, small: all four phases run (a private broker is killed and restarted)
/// and the books of both databases balance, or the command fails.
#[tokio::test(flavor = "multi_thread")]
async fn the_exchange_workload_runs_its_phases_and_balances_both_databases() {
    let db = migrated_db().await;
    let output = seckill_command(db.url())
        .env_remove("RABBITMQ_URL")
        .env_remove("AMQP_URL")
        .args(["bench", "--workload", "exchange", "--duration", "500ms", "--users", "300", "--rate", "200"])
        .args(["--concurrency", "32", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(report["exchanges"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["exchange_errors"], 0, "{report}");
    assert!(report["messages_per_s"].as_f64().unwrap() > 0.0, "{report}");
    assert!(report["messages_consumed_per_s"].as_f64().unwrap() > 0.0, "{report}");
    assert!(report["drain_after_broker_restart_ms"].as_f64().is_some(), "the broker-restart phase ran: {report}");
}

/// The lottery workload end to end, tiny, on a private database server (started by the command), so the
/// server's counters are the bench's own: both designs draw every prize with balanced books (the command fails
/// otherwise), and the burst after all drawn reaches neither the database nor the lanes, while every latecomer
/// of the Redis design runs the script. Then the durable draw's wins go through the message service to a gift
/// service that fails some calls: each is delivered once in effect (the command fails otherwise).
#[test]
fn the_lottery_workload_draws_every_prize_and_answers_latecomers_without_the_database() {
    let output = seckill_command("")
        .env_remove("DATABASE_URL")
        .env("RABBITMQ_URL", rabbitmq_url().unwrap())
        .args(["bench", "--workload", "lottery", "--users", "2000", "--prizes", "300", "--after-burst", "300ms"])
        .args(["--concurrency", "32", "--win-share", "1,0.25", "--gift-rate", "1000", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let reports: Vec<serde_json::Value> = output
        .stdout
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect();
    assert_eq!(reports.len(), 2, "one run per win share");
    for (report, (share, blank)) in reports.iter().zip([(1.0, 0), (0.25, 300)]) {
        assert_eq!(report["tiers"], serde_json::json!([3, 27, 90, 180]), "{report}");
        assert_eq!((report["win_share"].as_f64(), report["blank_weight"].as_u64()), (Some(share), Some(blank)));
        for design in ["durable", "redis"] {
            let r = &report[design];
            assert_eq!(r["wins"], 300, "{design}: every prize drawn: {r}");
            assert_eq!(r["errors"], 0, "{design}: {r}");
            assert!(r["burst_rejections"].as_u64().unwrap() > 0, "{design}: the burst ran: {r}");
            // Losers too at one in four: about four draws a prize until all drawn.
            let draws = r["draws"].as_u64().unwrap();
            let expected = if blank == 0 { 300..=400 } else { 900..=1800 };
            assert!(expected.contains(&draws), "{design}: {draws} draws at a win share of {share}: {r}");
        }
        let durable = &report["durable"];
        assert_eq!(durable["burst_database_queries"], 0, "no statement reached the server in the burst: {durable}");
        assert_eq!(durable["burst_procedure_calls"], 0, "{durable}");
        assert_eq!(durable["burst_batches"], 0, "{durable}");
        let redis = &report["redis"];
        assert_eq!(redis["burst_redis_calls"], redis["burst_rejections"], "each latecomer ran the script: {redis}");
        assert_eq!(redis["burst_database_queries"], 0, "{redis}");
        let delivery = &report["delivery"];
        assert_eq!(delivery["wins"], 300, "every win delivered: {delivery}");
        assert!(delivery["calls"].as_u64().unwrap() > 300, "failed calls were retried: {delivery}");
    }
}

#[tokio::test]
async fn a_lottery_crowd_smaller_than_its_prizes_is_refused() {
    let db = migrated_db().await;
    let output = seckill_command(db.url())
        .args(["bench", "--workload", "lottery", "--users", "10", "--prizes", "300"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("at least as many users as prizes"), "{stderr}");
}

/// The cluster workload end to end, tiny, on two instances behind the real balancer: buyers are sold to
/// through instance 1 directly and through the balancer (the command fails unless each phase's books
/// balance), the balancer spreads them over both instances, and the burst for the sold-out item is answered
/// with the closed answer at the balancer while the instances' own request counts show none of it.
#[tokio::test(flavor = "multi_thread")]
async fn the_cluster_workload_sells_through_the_balancer_and_its_closed_burst_reaches_no_instance() {
    let db = migrated_db().await;
    let output = seckill_command(db.url())
        .env_remove("REDIS_URL")
        .args(["bench", "--workload", "cluster", "--instances", "2", "--concurrency", "8", "--duration", "300ms"])
        .arg("--json")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(report["generator_ceiling_per_s"].as_f64().unwrap() > 0.0, "{report}");
    let mut conn = db.pool().get_conn().await.unwrap();
    for (phase, by_instance_nonzero) in [("direct", [true, false]), ("balanced", [true, true])] {
        let r = &report[phase];
        let seckills = r["seckills"].as_u64().unwrap();
        assert!(seckills > 0, "{phase}: {r}");
        assert_eq!(
            (r["errors"].as_u64(), r["in_doubt"].as_u64(), r["rejections"].as_u64()),
            (Some(0), Some(0), Some(0))
        );
        // Every buyer executed once, and each execution was answered by an instance.
        let by_instance: Vec<u64> =
            r["executions_by_instance"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).collect();
        assert_eq!(by_instance.iter().sum::<u64>(), seckills, "{phase}: {r}");
        assert_eq!(by_instance.iter().map(|n| *n > 0).collect::<Vec<_>>(), by_instance_nonzero, "{phase}: {r}");
        let rows: i64 = conn
            .exec_first("SELECT COUNT(*) FROM success_killed WHERE seckill_id = ?", (r["seckill_id"].as_i64(),))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rows as u64, seckills, "{phase}: the database holds what the buyers were told");
    }
    let closed = &report["closed"];
    assert_eq!(closed["sold"], 100, "{closed}");
    assert!(closed["requests"].as_u64().unwrap() > 0, "the burst ran: {closed}");
    assert_eq!(closed["unexpected"], 0, "every latecomer heard the closed answer: {closed}");
    assert_eq!(closed["app_execution_requests"], 0, "no latecomer reached an instance: {closed}");
    let (rows, stock): (i64, i64) = conn
        .exec_first(
            "SELECT (SELECT COUNT(*) FROM success_killed WHERE seckill_id = s.seckill_id), s.number \
               FROM seckill s WHERE s.seckill_id = ?",
            (closed["seckill_id"].as_i64(),),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((rows, stock), (100, 0), "sold out, nothing more sold in the burst");
}
