//! The JSON shapes of the exchange's API, inside the shared `{success, data, error}` envelope: camelCase names
//! and epoch-millisecond times, like the seckill API's.

use serde::Serialize;

use crate::exchange::{ExchangeOutcome, ExchangeRecord, Gift, LedgerEntry, LedgerReason};
use crate::messaging::MessageState;

/// One gift of the catalogue.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GiftView {
    pub gift_id: i64,
    pub name: String,
    /// Points per unit.
    pub cost: i64,
    /// Units left.
    pub stock: i32,
    /// Units ever put in stock.
    pub stocked: i32,
    pub created_at: i64,
}

impl From<Gift> for GiftView {
    fn from(gift: Gift) -> Self {
        GiftView {
            gift_id: gift.gift_id,
            name: gift.name,
            cost: gift.cost,
            stock: gift.stock,
            stocked: gift.stocked,
            created_at: gift.created_at.timestamp_millis(),
        }
    }
}

/// A user's balance: `null` for a user who was never granted points (whose exchanges answer `unknown_user`),
/// which is not the same as 0 (granted once, all spent).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BalanceView {
    pub user_id: i64,
    pub balance: Option<i64>,
}

/// One exchange that went through, with where its shipment stands.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExchangeView {
    pub exchange_id: i64,
    pub gift_id: i64,
    /// Points paid.
    pub points: i64,
    /// The `Idempotency-Key` it was made with.
    pub request_id: String,
    pub created_at: Option<i64>,
    /// The shipment message: `pending` (not yet sent to the warehouse), `sent` (the warehouse has not answered
    /// yet), `consumed` (the warehouse recorded the shipment request), `dead` (delivery gave up; an operator
    /// looks), or `null` if its row was removed by hand.
    #[schema(value_type = Option<String>)]
    pub shipment: Option<MessageState>,
}

impl From<ExchangeRecord> for ExchangeView {
    fn from(record: ExchangeRecord) -> Self {
        ExchangeView {
            exchange_id: record.exchange_id,
            gift_id: record.gift_id,
            points: record.exchanged_credit,
            request_id: record.request_id,
            created_at: record.created_at.map(|at| at.timestamp_millis()),
            shipment: record.shipment,
        }
    }
}

/// One change of the balance.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerView {
    pub id: i64,
    /// Positive for a grant, negative for an exchange.
    pub delta: i64,
    pub balance_after: i64,
    /// `grant` or `exchange`.
    #[schema(value_type = String)]
    pub reason: LedgerReason,
    /// The exchange id for an exchange, the note for a grant.
    pub reference: String,
    pub created_at: Option<i64>,
}

impl From<LedgerEntry> for LedgerView {
    fn from(entry: LedgerEntry) -> Self {
        LedgerView {
            id: entry.id,
            delta: entry.delta,
            balance_after: entry.balance_after,
            reason: entry.reason,
            reference: entry.reference,
            created_at: entry.created_at.map(|at| at.timestamp_millis()),
        }
    }
}

/// The user's page data: balance, exchanges and recent ledger entries, newest first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ExchangeMine)]
pub struct MineView {
    pub user_id: i64,
    /// As in [`BalanceView`]: `null` when never granted.
    pub balance: Option<i64>,
    pub exchanges: Vec<ExchangeView>,
    pub ledger: Vec<LedgerView>,
}

/// A decided exchange of gift `giftId`: `outcome` is `exchanged`, `not_enough_points`, `out_of_stock`,
/// `unknown_user` or `unknown_gift`; `exchangeId` and `balanceAfter` are set only for `exchanged`; `repeat` says
/// this is the first answer to the same `Idempotency-Key`, given again.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExchangeAnswer {
    pub outcome: &'static str,
    pub gift_id: i64,
    pub exchange_id: Option<i64>,
    pub balance_after: Option<i64>,
    pub repeat: bool,
}

impl ExchangeAnswer {
    /// The answer for a decided outcome of an exchange of `gift_id`; `None` for what decided nothing (an inner
    /// error) and for a request id reused for another gift, which is refused as an error.
    pub fn decided(gift_id: i64, outcome: &ExchangeOutcome) -> Option<Self> {
        let (exchange_id, balance_after) = match outcome {
            ExchangeOutcome::InnerError(_) | ExchangeOutcome::KeyReused { .. } => return None,
            ExchangeOutcome::Exchanged { exchange_id, balance_after, .. } => (Some(*exchange_id), Some(*balance_after)),
            _ => (None, None),
        };
        let repeat = outcome.is_repeat();
        Some(ExchangeAnswer { outcome: outcome.reason(), gift_id, exchange_id, balance_after, repeat })
    }
}
