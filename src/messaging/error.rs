//! What can stop the message service, in words an operator can act on.

use thiserror::Error;

use crate::database::error::DatabaseError;

/// A failure of the relay or a consumer.
#[derive(Debug, Error)]
pub enum MessagingError {
    /// The database holding the outbox (or the consumer's own database) failed.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// The broker could not be reached, or a channel or connection broke.
    #[error("RabbitMQ: {0}")]
    Broker(#[from] lapin::Error),
    /// The broker did not confirm a publish in time.
    #[error("RabbitMQ did not confirm a publish within {0:?}")]
    ConfirmTimeout(std::time::Duration),
    /// The broker did not answer an operation in time (a connection cut half-way can leave one hanging).
    #[error("RabbitMQ did not answer within {0:?}")]
    NoAnswer(std::time::Duration),
    /// A consumer's handler failed for a whole batch (e.g. its database is down): the batch is redelivered.
    #[error("the handler failed: {0}")]
    Handler(String),
}

/// How long any one broker operation may take before the connection is given up and made again.
pub(crate) const BROKER_ANSWER: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs a broker operation within [`BROKER_ANSWER`]: a cut connection must end in a reconnect, never a hang.
pub(crate) async fn bounded<T>(operation: impl Future<Output = Result<T, lapin::Error>>) -> Result<T, MessagingError> {
    match tokio::time::timeout(BROKER_ANSWER, operation).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(MessagingError::NoAnswer(BROKER_ANSWER)),
    }
}
