//! What a seckill attempt came to, and its classic state code and text.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::phone::Phone;
pub use crate::database::call::InnerError;
use crate::database::error::DatabaseError;

/// The record of a successful seckill: a row of `success_killed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuccessKilled {
    pub seckill_id: i64,
    #[schema(value_type = i64)]
    pub user_phone: Phone,
    /// The classic row state: 0 success (later 1 paid, 2 shipped).
    pub state: i8,
    /// When the seckill was decided, by the database's clock (`None` for a row written by hand with the zero
    /// date).
    #[serde(with = "chrono::serde::ts_milliseconds_option")]
    #[schema(value_type = Option<i64>)]
    pub create_time: Option<DateTime<Utc>>,
}

/// The outcome of one seckill attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The user got one unit; the row is committed.
    Success(SuccessKilled),
    /// The sale is open but the stock is gone.
    SoldOut,
    /// The sale has not opened yet.
    NotStarted,
    /// The sale has closed.
    Ended,
    /// The user already has this item; the earlier record is kept.
    RepeatKill,
    /// A bad, expired or another user's signature: nothing was tried.
    Tampered,
    /// No item has this id.
    NotFound,
    /// The attempt failed: rolled back (e.g. a lock wait timeout), or in doubt (e.g. a lost connection).
    InnerError(InnerError),
}

impl Outcome {
    /// The inner error for `detail`.
    pub fn inner_error(detail: impl ToString) -> Self {
        Outcome::InnerError(InnerError { detail: detail.to_string(), unavailable: false, in_doubt: false })
    }

    /// The inner error for a database failure before anything was sent, noting whether the database was
    /// unreachable.
    pub fn database_error(error: DatabaseError) -> Self {
        Outcome::InnerError(error.into())
    }

    /// The inner error for an attempt that may or may not have committed.
    pub fn in_doubt(detail: impl ToString) -> Self {
        Outcome::InnerError(InnerError { detail: detail.to_string(), unavailable: false, in_doubt: true })
    }

    /// The classic state code: 1 success, 0 end, -1 repeat, -2 inner error, -3 data rewrite.
    pub fn state(&self) -> i32 {
        match self {
            Outcome::Success(_) => 1,
            Outcome::SoldOut | Outcome::NotStarted | Outcome::Ended | Outcome::NotFound => 0,
            Outcome::RepeatKill => -1,
            Outcome::InnerError(_) => -2,
            Outcome::Tampered => -3,
        }
    }

    /// The classic state text.
    pub fn state_info(&self) -> &'static str {
        match self.state() {
            1 => "秒杀成功",
            0 => "秒杀结束",
            -1 => "重复秒杀",
            -2 => "系统异常",
            _ => "数据篡改",
        }
    }

    /// A stable machine name, finer than the classic code: `success`, `sold_out`, `not_started`, `ended`,
    /// `repeat`, `tampered`, `not_found`, `inner_error`.
    pub fn reason(&self) -> &'static str {
        match self {
            Outcome::Success(_) => "success",
            Outcome::SoldOut => "sold_out",
            Outcome::NotStarted => "not_started",
            Outcome::Ended => "ended",
            Outcome::RepeatKill => "repeat",
            Outcome::Tampered => "tampered",
            Outcome::NotFound => "not_found",
            Outcome::InnerError(_) => "inner_error",
        }
    }

    /// True for [`Outcome::Success`].
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Success(_))
    }
}
