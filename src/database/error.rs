//! What went wrong talking to the server, told in words a user can act on.
//!
//! Every `mysql_async::Error` the toolkit meets is turned into a [`DatabaseError`] here, and only here, so the
//! server's error codes are interpreted in one place. Codes are MariaDB's and MySQL's own (they agree on all
//! of these): <https://mariadb.com/kb/en/mariadb-error-code-reference/>.

use std::time::Duration;

use thiserror::Error;

/// ER_LOCK_WAIT_TIMEOUT: a row lock was not granted within `innodb_lock_wait_timeout`.
pub const LOCK_WAIT_TIMEOUT: u16 = 1205;
/// ER_LOCK_DEADLOCK: InnoDB rolled the whole transaction back to break a deadlock.
pub const DEADLOCK: u16 = 1213;
/// ER_ACCESS_DENIED_ERROR: wrong user name or password.
pub const ACCESS_DENIED: u16 = 1045;
/// ER_ACCESS_DENIED_NO_PASSWORD_ERROR: MariaDB's answer when the account exists only for another plugin.
pub const ACCESS_DENIED_NO_PASSWORD: u16 = 1698;
/// ER_BAD_DB_ERROR: the URL names a database that does not exist.
pub const UNKNOWN_DATABASE: u16 = 1049;
/// ER_SP_DOES_NOT_EXIST: no such procedure or function.
pub const ROUTINE_DOES_NOT_EXIST: u16 = 1305;
/// ER_SP_WRONG_NO_OF_ARGS: a procedure called with another number of arguments than it takes.
pub const WRONG_ARGUMENT_COUNT: u16 = 1318;

/// A failure to talk to the database, or an error the server answered with.
#[derive(Debug, Error)]
pub enum DatabaseError {
    /// The URL could not be parsed.
    #[error("invalid database URL: {0} (expected mysql://user:password@host:port/database)")]
    InvalidUrl(#[source] mysql_async::UrlError),

    /// The server could not be reached, or the connection broke.
    #[error("cannot talk to the database server: {0}")]
    Unreachable(String),

    /// The server rejected the user name or password.
    #[error("the database server refused the login: {0}")]
    AccessDenied(String),

    /// The database named in the URL does not exist.
    #[error("{0} (create it first, or name another database in the URL)")]
    UnknownDatabase(String),

    /// `innodb_lock_wait_timeout` expired while waiting for a row lock.
    #[error("lock wait timeout (server error 1205): {0}")]
    LockWaitTimeout(String),

    /// InnoDB chose this transaction as the victim of a deadlock and rolled it back.
    #[error("deadlock (server error 1213): {0}")]
    Deadlock(String),

    /// No connection became free in the pool in time.
    #[error("no database connection became free within {0:?}; the pool is exhausted or the server is down")]
    PoolTimeout(Duration),

    /// Work bounded on the client side got no answer in time (see [`super::bounded`]): its connection was closed,
    /// and the next try takes a new one.
    #[error(
        "the database did not answer {work} within {bound:?}: its connection was closed and the next try takes a \
         new one (a frozen server, or a network path that drops packets without closing the connection)"
    )]
    NoAnswer { work: &'static str, bound: Duration },

    /// Any other error the server answered with.
    #[error("the database server answered error {code}: {message}")]
    Server { code: u16, message: String },

    /// The server's answer did not have the shape the toolkit expects (a schema or procedure out of date).
    #[error("unexpected answer from the database: {0}")]
    UnexpectedAnswer(String),

    /// An error inside the client library.
    #[error("database client error: {0}")]
    Client(String),
}

impl DatabaseError {
    /// True when the server may be fine but could not be reached or answer: retrying later can help.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, DatabaseError::Unreachable(_) | DatabaseError::PoolTimeout(_) | DatabaseError::NoAnswer { .. })
    }
}

impl From<mysql_async::Error> for DatabaseError {
    fn from(error: mysql_async::Error) -> Self {
        match error {
            mysql_async::Error::Server(server) => match server.code {
                LOCK_WAIT_TIMEOUT => DatabaseError::LockWaitTimeout(server.message),
                DEADLOCK => DatabaseError::Deadlock(server.message),
                ACCESS_DENIED | ACCESS_DENIED_NO_PASSWORD => DatabaseError::AccessDenied(server.message),
                UNKNOWN_DATABASE => DatabaseError::UnknownDatabase(server.message),
                code => DatabaseError::Server { code, message: server.message },
            },
            mysql_async::Error::Url(url) => DatabaseError::InvalidUrl(url),
            mysql_async::Error::Io(io) => DatabaseError::Unreachable(io.to_string()),
            mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed) => {
                DatabaseError::Unreachable("the connection was closed".into())
            }
            mysql_async::Error::Driver(driver) => DatabaseError::Client(driver.to_string()),
            other => DatabaseError::Client(other.to_string()),
        }
    }
}
