//! Errors of the seckill service outside `execute` (which answers with an [`super::Outcome`] instead).

use thiserror::Error;

use super::phone::InvalidPhone;
use crate::database::error::DatabaseError;

/// A failed item or exposer operation.
#[derive(Debug, Error)]
pub enum SeckillError {
    /// The database failed.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// No item has this id.
    #[error("no seckill item with id {0}")]
    NotFound(i64),
    /// An item that cannot be created as given.
    #[error("invalid item: {0}")]
    InvalidItem(String),
    /// A phone number that is not one.
    #[error(transparent)]
    InvalidPhone(#[from] InvalidPhone),
}

impl From<mysql_async::Error> for SeckillError {
    fn from(error: mysql_async::Error) -> Self {
        SeckillError::Database(error.into())
    }
}
