//! A server-wide named lock (`GET_LOCK`), so that two processes migrating one database at once take turns.
//!
//! refinery has no lock of its own: two processes starting together would both see a migration as pending and
//! both apply it. The lock is tied to one session, so it lives on a connection of its own that is held for the
//! whole run; that connection is marked to be reset when it goes back to the pool, which releases the lock
//! even if the run is cancelled half-way.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool};

use super::error::MigrateError;
use super::sql_script::md5_hex;
use crate::database::acquire;
use crate::database::error::DatabaseError;
use crate::database::rows::exec_first;

/// A held named lock; give it back with [`NamedLock::release`].
pub(crate) struct NamedLock {
    conn: Conn,
    name: String,
}

impl NamedLock {
    /// Waits up to `timeout` for the migration lock of the pool's current database.
    pub(crate) async fn acquire_for_database(pool: &Pool, timeout: Duration) -> Result<Self, MigrateError> {
        let mut conn = acquire(pool).await?;
        conn.reset_connection(true);
        let database: Option<(Option<String>,)> =
            exec_first(&mut conn, "SELECT DATABASE()", (), "the current database").await?;
        let database = database.and_then(|(name,)| name).ok_or(MigrateError::NoDatabaseSelected)?;
        // Lock names are server-wide and at most 64 characters.
        let name = format!("seckill.migrate.{}", md5_hex(database.as_bytes()));
        let lock = "SELECT GET_LOCK(?, ?)";
        let granted: Option<(Option<i64>,)> =
            exec_first(&mut conn, lock, (&name, timeout.as_secs_f64()), "the migration lock").await?;
        match granted.and_then(|(granted,)| granted) {
            Some(1) => Ok(NamedLock { conn, name }),
            _ => Err(MigrateError::LockTimeout { lock: format!("{name} (database {database})"), waited: timeout }),
        }
    }

    /// Releases the lock and returns the connection to the pool.
    pub(crate) async fn release(mut self) -> Result<(), MigrateError> {
        self.conn.exec_drop("DO RELEASE_LOCK(?)", (&self.name,)).await.map_err(DatabaseError::from)?;
        Ok(())
    }
}
