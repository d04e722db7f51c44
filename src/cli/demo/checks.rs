//! An act's reconciliation table: each check a line, `ok` or `FAIL`, and a failed check a non-zero exit.

use super::super::Failure;

/// One line of the table.
#[derive(Debug)]
pub(super) struct Check {
    pub(super) what: String,
    pub(super) passed: bool,
}

impl Check {
    pub(super) fn new(passed: bool, what: impl Into<String>) -> Self {
        Check { what: what.into(), passed }
    }
}

/// Prints the table under `heading`.
pub(super) fn print(heading: &str, checks: &[Check]) {
    outln!("\n  {heading}");
    for check in checks {
        outln!("  {:<4} {}", if check.passed { "ok" } else { "FAIL" }, check.what);
    }
    outln!();
}

/// Every check passed, or a failure naming those that did not, whose books they are (`whose`: "the exchange's").
pub(super) fn all_passed(whose: &str, checks: &[Check]) -> Result<(), Failure> {
    let failed: Vec<&str> = checks.iter().filter(|check| !check.passed).map(|check| check.what.as_str()).collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(format!("{whose} books do NOT balance: {}", failed.join("; "))))
    }
}
