//! The classic JSON shapes of the seckill API inside the shared envelope: the exposer and the execution, with the
//! classic field names and epoch-millisecond times, so existing front ends read them unchanged.

use serde::Serialize;

use crate::seckill::{Exposure, Item, Outcome, SuccessKilled};

/// The exposer's answer (`Exposer`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Exposer {
    pub exposed: bool,
    pub md5: Option<String>,
    pub seckill_id: i64,
    /// The database's clock, epoch ms.
    pub now: i64,
    pub start: i64,
    pub end: i64,
}

impl Exposer {
    /// The classic shape of an [`Exposure`] (not found is answered before this, as a 404).
    pub fn from_exposure(seckill_id: i64, exposure: Exposure) -> Self {
        let (md5, now, start, end) = match exposure {
            Exposure::Open { token, now, start, end } => (Some(token), now, start, end),
            Exposure::Closed { now, start, end } => (None, now, start, end),
            Exposure::NotFound { now } => (None, now, now, now),
        };
        Exposer {
            exposed: md5.is_some(),
            md5,
            seckill_id,
            now: now.timestamp_millis(),
            start: start.timestamp_millis(),
            end: end.timestamp_millis(),
        }
    }
}

/// A success record with its item, as the classic `SuccessKilled` carries it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuccessKilledView {
    #[serde(flatten)]
    pub kill: SuccessKilled,
    pub seckill: Option<Item>,
}

/// The execution's answer (`SeckillExecution`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub seckill_id: i64,
    pub state: i32,
    pub state_info: &'static str,
    pub success_killed: Option<SuccessKilledView>,
}

impl Execution {
    pub fn new(seckill_id: i64, outcome: &Outcome, item: Option<Item>) -> Self {
        let success_killed = match outcome {
            Outcome::Success(kill) => Some(SuccessKilledView { kill: kill.clone(), seckill: item }),
            _ => None,
        };
        Execution { seckill_id, state: outcome.state(), state_info: outcome.state_info(), success_killed }
    }
}
