//! `seckill migrate` and `seckill status`.

use std::path::PathBuf;

use clap::Args;
use seckill::migrate::{MigrateError, Migrator, SqlSource};

use super::exit_code::NOT_IN_SYNC;
use super::{DatabaseTarget, Failure};

/// Which SQL to apply.
#[derive(Debug, Args)]
pub(crate) struct SqlArgs {
    /// Use DIR/migrations and DIR/procedures instead of seckill's own embedded SQL.
    #[arg(long, value_name = "DIR")]
    sql_dir: Option<PathBuf>,
}

impl SqlArgs {
    fn migrator(&self) -> Result<Migrator, Failure> {
        Ok(match &self.sql_dir {
            Some(dir) => Migrator::new(SqlSource::from_dirs(&dir.join("migrations"), &dir.join("procedures"))?),
            None => Migrator::embedded()?,
        })
    }
}

#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    #[command(flatten)]
    sql: SqlArgs,
    /// Also replace procedures that were changed in the server by hand (or not created by seckill) with the
    /// files. Without it they are reported and left alone.
    #[arg(long)]
    overwrite_hand_edits: bool,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    sql: SqlArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn migrate(target: &DatabaseTarget, args: MigrateArgs) -> Result<(), Failure> {
    let pool = target.connect_or_throwaway("seckill").await?;
    let migrator = args.sql.migrator()?.overwrite_hand_edits(args.overwrite_hand_edits);
    let report = migrator.run(&pool).await.map_err(|error| match error {
        MigrateError::HandEdited { .. } => {
            Failure::new(error).hint("compare with `seckill status`; the files are the source of truth")
        }
        other => Failure::new(other),
    })?;
    if report.migrations.is_empty() && report.procedures.is_empty() {
        outln!("nothing to do: the database is up to date");
    }
    for name in &report.migrations {
        outln!("applied migration {name}");
    }
    for name in &report.procedures {
        outln!("applied procedure {name}");
    }
    Ok(())
}

pub(crate) async fn status(target: &DatabaseTarget, args: StatusArgs) -> Result<(), Failure> {
    let pool = target.connect_or_throwaway("seckill").await?;
    let status = args.sql.migrator()?.status(&pool).await?;
    if args.json {
        outln!("{}", serde_json::to_string(&status)?);
    } else {
        outln!("{status}");
    }
    if status.is_in_sync() {
        Ok(())
    } else {
        Err(Failure::new("the database is not in sync with the files")
            .hint("run `seckill migrate`")
            .exit_code(NOT_IN_SYNC))
    }
}
