//! Errors of the lottery outside `draw` itself (which answers with a [`super::DrawOutcome`]): campaigns, reads,
//! and input refused before anything is sent.

use thiserror::Error;

use crate::database::error::DatabaseError;

/// A failed campaign or read operation, or input refused before anything was sent.
#[derive(Debug, Error)]
pub enum LotteryError {
    /// The database failed (nothing was written by a failed creation: it is one transaction).
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// User ids are positive.
    #[error("invalid user id {0}: user ids are positive")]
    InvalidUser(i64),
    /// Campaign ids are positive.
    #[error("invalid campaign id {0}: campaign ids are positive")]
    InvalidCampaignId(i64),
    /// A campaign that cannot be created as given.
    #[error("invalid campaign: {0}")]
    InvalidCampaign(String),
    /// A campaign's seed is revealed once it is over, not before.
    #[error(
        "campaign {campaign_id} is not over: its seed is revealed when it ends ({}) or every prize is drawn",
        end_time.to_rfc3339()
    )]
    NotRevealed { campaign_id: i64, end_time: chrono::DateTime<chrono::Utc> },
    /// A campaign created before commitments has none to check against.
    #[error("campaign {0} was created before lottery commitments existed: it cannot be verified")]
    Unverifiable(i64),
    /// A campaign's books do not balance: a bug or a hand edit, to investigate before anything else.
    #[error("the lottery's books do not balance: {0}")]
    Unbalanced(String),
}

impl From<mysql_async::Error> for LotteryError {
    fn from(error: mysql_async::Error) -> Self {
        LotteryError::Database(error.into())
    }
}
