//! What the bench measures besides outcomes and latencies (`crate::cli::latencies`): the server's statement
//! counter, CPU time and peak memory.

use mysql_async::Pool;

use seckill::database::acquire;
use seckill::database::error::DatabaseError;
use seckill::database::rows::query_all;

/// The server's count of statements received from clients (all sessions), for round trips per seckill.
/// On a shared server other clients' statements count too.
pub(crate) async fn server_questions(pool: &Pool) -> Result<u64, DatabaseError> {
    let mut conn = acquire(pool).await?;
    let rows: Vec<(String, u64)> =
        query_all(&mut conn, "SHOW GLOBAL STATUS LIKE 'Questions'", "the Questions counter").await?;
    Ok(rows.first().map_or(0, |(_, n)| *n))
}

/// The server's counters of statements received and procedures called (all sessions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ServerCounters {
    pub(crate) questions: u64,
    pub(crate) procedure_calls: u64,
}

impl ServerCounters {
    /// What happened between `before` and this reading, less the reading itself (one statement: reading the
    /// counters counts in `Questions`).
    pub(crate) fn since(self, before: ServerCounters) -> ServerCounters {
        ServerCounters {
            questions: self.questions.saturating_sub(before.questions + 1),
            procedure_calls: self.procedure_calls.saturating_sub(before.procedure_calls),
        }
    }
}

/// Reads `Questions` and `Com_call_procedure`, in one statement. On a shared server other clients count too.
pub(crate) async fn server_counters(pool: &Pool) -> Result<ServerCounters, DatabaseError> {
    let mut conn = acquire(pool).await?;
    let rows: Vec<(String, u64)> = query_all(
        &mut conn,
        "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Com_call_procedure')",
        "the server's statement counters",
    )
    .await?;
    let value = |name: &str| rows.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map_or(0, |(_, v)| *v);
    Ok(ServerCounters { questions: value("Questions"), procedure_calls: value("Com_call_procedure") })
}

/// The CPU time this process has used so far, all threads, user and system, in seconds (Linux), or `None` when
/// unknown. It tells what a phase cost the machine whatever else runs on it, which a rate on a shared machine
/// cannot; its resolution is the kernel's clock tick (10 ms).
pub(crate) fn process_cpu_seconds() -> Option<f64> {
    // The kernel reports these in USER_HZ ticks, 100 per second on every Linux ABI.
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: state is field 3, utime 14.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
    let ticks = |field: usize| fields.get(field - 3)?.parse::<f64>().ok();
    Some((ticks(14)? + ticks(15)?) / TICKS_PER_SECOND)
}

/// This process's peak resident memory so far, in MiB (Linux), or 0 when unknown.
pub(crate) fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let kib = line.strip_prefix("VmHWM:")?.trim().strip_suffix("kB")?.trim().parse::<f64>().ok()?;
                Some(kib / 1024.0)
            })
        })
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn cpu_time_grows_with_work() {
        let before = process_cpu_seconds().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut x = 0u64;
        // Busy until the clock moved by a few ticks (a loaded machine may give this thread little of a core).
        while process_cpu_seconds().unwrap() < before + 0.03 && std::time::Instant::now() < deadline {
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        assert!(process_cpu_seconds().unwrap() >= before + 0.03, "the CPU time never grew from {before}");
    }
}
