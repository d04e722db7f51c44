//! A user's draws in a campaign: what they are shown, and how an in-doubt draw is settled.

use chrono::{DateTime, Utc};
use mysql_async::{Conn, Value};
use serde::Serialize;

use super::error::LotteryError;
use crate::database::rows::{exec_all, required_instant};

/// One recorded draw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrawRecord {
    pub draw_id: i64,
    pub campaign_id: i64,
    pub user_id: i64,
    /// The user's draws in the campaign, from 1.
    pub draw_no: i32,
    /// The tier won, `None` for no prize.
    pub tier_id: Option<i64>,
    /// The tier's name, for a win.
    pub prize: Option<String>,
    /// The random number the draw was decided with.
    pub r: i64,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub created_at: DateTime<Utc>,
}

type DrawRow = (i64, i64, i64, i32, Option<i64>, Option<String>, i64, Value);

/// A user's draws in a campaign, in draw order.
pub(crate) async fn my_draws(conn: &mut Conn, campaign_id: i64, user_id: i64) -> Result<Vec<DrawRecord>, LotteryError> {
    let rows: Vec<DrawRow> = exec_all(
        conn,
        "SELECT d.draw_id, d.campaign_id, d.user_id, d.draw_no, d.tier_id, t.name, d.r, d.created_at \
         FROM lottery_draw d LEFT JOIN lottery_tier t ON t.tier_id = d.tier_id \
         WHERE d.campaign_id = ? AND d.user_id = ? ORDER BY d.draw_no",
        (campaign_id, user_id),
        "a lottery draw",
    )
    .await?;
    rows.into_iter()
        .map(|(draw_id, campaign_id, user_id, draw_no, tier_id, prize, r, created)| {
            let created_at = required_instant(created, &format!("lottery draw {draw_id}"))?;
            Ok(DrawRecord { draw_id, campaign_id, user_id, draw_no, tier_id, prize, r, created_at })
        })
        .collect()
}
