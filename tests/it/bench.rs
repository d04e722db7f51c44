//! `seckill bench` end to end: every strategy runs, and the books check passes on real runs.

use crate::common::{migrated_db, seckill_command};

#[tokio::test]
async fn every_strategy_runs_and_balances_its_books() {
    let db = migrated_db().await;
    let output = seckill_command(db.url())
        .args(["bench", "--workload", "hot", "--concurrency", "8", "--duration", "300ms", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let reports: Vec<serde_json::Value> =
        String::from_utf8_lossy(&output.stdout).lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let strategies: Vec<_> = reports.iter().map(|r| r["strategy"].as_str().unwrap()).collect();
    assert_eq!(strategies, ["naive", "procedure", "batched"]);
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
    for args in [["--concurrency", "0"], ["--concurrency", "5000"], ["--duration", "soon"], ["--rtt", "-1ms"]] {
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
    assert!(report["drain_after_broker_restart_ms"].as_f64().is_some(), "the broker-restart phase ran: {report}");
}
