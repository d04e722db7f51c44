//! Errors of the points exchange outside `exchange` itself (which answers with an
//! [`super::ExchangeOutcome`]): grants, the catalogue, reads, and input refused before anything is sent.

use thiserror::Error;

use super::request::InvalidRequestId;
use crate::database::call::CallFailure;
use crate::database::error::DatabaseError;

/// A failed grant, catalogue or read operation, or input refused before anything was sent.
#[derive(Debug, Error)]
pub enum ExchangeError {
    /// The database failed before anything was written (or during a read).
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// A procedure failed and rolled its transaction back, proven by the server: nothing was written.
    #[error("{procedure} failed and was rolled back, nothing written: {error}")]
    RolledBack { procedure: &'static str, error: DatabaseError },
    /// A procedure was sent and no trustworthy answer came back: it may or may not have committed.
    #[error("{procedure} was sent but no trustworthy answer came back; it may or may not have committed: {error}")]
    InDoubt { procedure: &'static str, error: DatabaseError },
    /// User ids are positive.
    #[error("invalid user id {0}: user ids are positive")]
    InvalidUser(i64),
    /// Gift ids are positive.
    #[error("invalid gift id {0}: gift ids are positive")]
    InvalidGiftId(i64),
    /// A request id outside the allowed form.
    #[error(transparent)]
    InvalidRequestId(#[from] InvalidRequestId),
    /// A grant that cannot be made as given.
    #[error("invalid grant: {0}")]
    InvalidGrant(String),
    /// A gift that cannot be created as given.
    #[error("invalid gift: {0}")]
    InvalidGift(String),
}

impl ExchangeError {
    /// The error for a failed call of `procedure`, saying whether it may have written anything.
    pub(crate) fn call(procedure: &'static str, failure: CallFailure) -> Self {
        match failure {
            CallFailure::NotSent(error) => ExchangeError::Database(error),
            CallFailure::RolledBack(error) => ExchangeError::RolledBack { procedure, error },
            CallFailure::InDoubt(error) => ExchangeError::InDoubt { procedure, error },
        }
    }

    /// True when the operation may have committed: look before doing it again.
    pub fn is_in_doubt(&self) -> bool {
        matches!(self, ExchangeError::InDoubt { .. })
    }
}

impl From<mysql_async::Error> for ExchangeError {
    fn from(error: mysql_async::Error) -> Self {
        ExchangeError::Database(error.into())
    }
}
