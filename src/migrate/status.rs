//! What `seckill status` reports: each migration and each procedure, and whether the database is in sync.

use std::fmt;

use serde::Serialize;

pub use super::procedures::{ProcedureState, ProcedureStatus};

/// Where one versioned migration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MigrationState {
    /// Recorded in refinery's history with the same checksum as the file.
    Applied,
    /// Not applied yet.
    Pending,
    /// Applied, but the file has changed since: refinery refuses to go on until this is resolved.
    Divergent,
    /// In the history, but no longer among the files.
    FileMissing,
}

/// One migration's line of the status.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationStatus {
    /// `V{version}__{name}`.
    pub name: String,
    /// Where it stands.
    pub state: MigrationState,
}

/// The whole status of a database against the files.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub migrations: Vec<MigrationStatus>,
    pub procedures: Vec<ProcedureStatus>,
}

impl Status {
    /// True when nothing is pending and nothing has drifted: `migrate` would do nothing.
    pub fn is_in_sync(&self) -> bool {
        self.migrations.iter().all(|m| m.state == MigrationState::Applied)
            && self.procedures.iter().all(|p| matches!(p.state, ProcedureState::UpToDate | ProcedureState::FileRemoved))
    }

    /// What is out of sync, in one line: how many migrations are pending or differ, and which procedures are
    /// not up to date. Empty when in sync.
    pub fn summary(&self) -> String {
        let migrations = |state: MigrationState| self.migrations.iter().filter(|m| m.state == state).count();
        let mut parts = Vec::new();
        for (state, what) in [
            (MigrationState::Pending, "pending"),
            (MigrationState::Divergent, "changed since applied"),
            (MigrationState::FileMissing, "applied but unknown to this build"),
        ] {
            match migrations(state) {
                0 => {}
                1 => parts.push(format!("1 migration {what}")),
                n => parts.push(format!("{n} migrations {what}")),
            }
        }
        let mut behind = self
            .procedures
            .iter()
            .filter(|p| !matches!(p.state, ProcedureState::UpToDate | ProcedureState::FileRemoved));
        if let Some(first) = behind.next() {
            let first = format!("{} {}", first.name, first.state.describe());
            match behind.count() {
                0 => parts.push(format!("procedure {first}")),
                more => parts.push(format!("{} procedures not up to date ({first}, …)", more + 1)),
            }
        }
        parts.join("; ")
    }

    /// The procedures whose state is `state`.
    pub fn procedures_in(&self, state: ProcedureState) -> Vec<&str> {
        self.procedures.iter().filter(|p| p.state == state).map(|p| p.name.as_str()).collect()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "migrations:")?;
        for migration in &self.migrations {
            let state = match migration.state {
                MigrationState::Applied => "applied",
                MigrationState::Pending => "pending",
                MigrationState::Divergent => "DIVERGENT: the file changed after it was applied",
                MigrationState::FileMissing => "applied, but its file is missing",
            };
            writeln!(f, "  {:<40} {state}", migration.name)?;
        }
        writeln!(f, "procedures:")?;
        for procedure in &self.procedures {
            writeln!(f, "  {:<40} {}", procedure.name, procedure.state.describe())?;
        }
        write!(f, "{}", if self.is_in_sync() { "in sync" } else { "NOT in sync: run `seckill migrate`" })
    }
}
