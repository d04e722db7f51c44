//! What a draw came to.

use serde::Serialize;

pub use crate::database::call::InnerError;

/// The outcome of one draw request, in the procedure's order of precedence (see
/// `sql/procedures/lottery/draw_lottery_batch.sql`).
///
/// `repeat` is true when the user had already used all their draws: the outcome is then the result of their last
/// allowed draw (with one draw per user, their only one), and nothing was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrawOutcome {
    /// The draw won a unit of a prize tier; the draw and its prize message are committed.
    Won {
        draw_id: i64,
        tier_id: i64,
        /// The tier's name.
        prize: String,
        repeat: bool,
    },
    /// The draw is recorded and won nothing (the wheel landed on the blank share, or every unit went to draws
    /// ahead of it in its batch).
    NoPrize { draw_id: i64, repeat: bool },
    /// Every prize had been drawn: nothing was recorded, the user keeps the draw.
    AllDrawn,
    /// The campaign has not started.
    NotStarted,
    /// The campaign has ended.
    Ended,
    /// No campaign has this id.
    UnknownCampaign,
    /// The draw failed: not sent, rolled back (nothing written), or in doubt (it may have committed: the user's
    /// draws tell, see [`super::Lottery::my_draws`]).
    InnerError(InnerError),
}

impl DrawOutcome {
    /// The inner error for a draw that was never sent.
    pub fn not_sent(detail: impl ToString) -> Self {
        DrawOutcome::InnerError(InnerError { detail: detail.to_string(), unavailable: false, in_doubt: false })
    }

    /// The inner error for a draw that may or may not have committed.
    pub fn in_doubt(detail: impl ToString) -> Self {
        DrawOutcome::InnerError(InnerError { detail: detail.to_string(), unavailable: false, in_doubt: true })
    }

    /// The outcome for the procedure's name of it (`won` needs its draw, tier and prize; `no_prize` its draw).
    pub(crate) fn decided(
        outcome: &str,
        repeat: bool,
        draw_id: Option<i64>,
        tier_id: Option<i64>,
        prize: Option<String>,
    ) -> Option<Self> {
        Some(match outcome {
            "won" => DrawOutcome::Won { draw_id: draw_id?, tier_id: tier_id?, prize: prize?, repeat },
            "no_prize" => DrawOutcome::NoPrize { draw_id: draw_id?, repeat },
            "all_drawn" => DrawOutcome::AllDrawn,
            "not_started" => DrawOutcome::NotStarted,
            "ended" => DrawOutcome::Ended,
            "unknown_campaign" => DrawOutcome::UnknownCampaign,
            _ => return None,
        })
    }

    /// A stable machine name: `won`, `no_prize`, `all_drawn`, `not_started`, `ended`, `unknown_campaign`,
    /// `inner_error` (the procedure's names).
    pub fn reason(&self) -> &'static str {
        match self {
            DrawOutcome::Won { .. } => "won",
            DrawOutcome::NoPrize { .. } => "no_prize",
            DrawOutcome::AllDrawn => "all_drawn",
            DrawOutcome::NotStarted => "not_started",
            DrawOutcome::Ended => "ended",
            DrawOutcome::UnknownCampaign => "unknown_campaign",
            DrawOutcome::InnerError(_) => "inner_error",
        }
    }

    /// True for [`DrawOutcome::Won`], first time or repeat.
    pub fn is_win(&self) -> bool {
        matches!(self, DrawOutcome::Won { .. })
    }

    /// True when this answers a draw decided earlier.
    pub fn is_repeat(&self) -> bool {
        matches!(self, DrawOutcome::Won { repeat: true, .. } | DrawOutcome::NoPrize { repeat: true, .. })
    }

    /// The recorded draw this outcome tells about, if any.
    pub fn draw_id(&self) -> Option<i64> {
        match self {
            DrawOutcome::Won { draw_id, .. } | DrawOutcome::NoPrize { draw_id, .. } => Some(*draw_id),
            _ => None,
        }
    }
}

/// How an outcome reads in JSON (for the HTTP API and the CLI): `{"outcome": "won", "repeat": false,
/// "draw_id": 17, "tier_id": 5, "prize": "Gold mug"}`; absent fields are left out.
#[derive(Debug, Clone, Serialize)]
pub struct DrawOutcomeView {
    pub outcome: &'static str,
    pub repeat: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draw_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prize: Option<String>,
}

impl From<&DrawOutcome> for DrawOutcomeView {
    fn from(outcome: &DrawOutcome) -> Self {
        let (tier_id, prize) = match outcome {
            DrawOutcome::Won { tier_id, prize, .. } => (Some(*tier_id), Some(prize.clone())),
            _ => (None, None),
        };
        DrawOutcomeView {
            outcome: outcome.reason(),
            repeat: outcome.is_repeat(),
            draw_id: outcome.draw_id(),
            tier_id,
            prize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_procedures_names_map_to_outcomes() {
        assert_eq!(DrawOutcome::decided("won", false, Some(1), None, Some("mug".into())), None, "needs its tier");
        assert_eq!(DrawOutcome::decided("no_prize", false, None, None, None), None, "needs its draw");
        let won = DrawOutcome::decided("won", true, Some(1), Some(2), Some("mug".into())).unwrap();
        assert!(won.is_win() && won.is_repeat());
        for name in ["no_prize", "all_drawn", "not_started", "ended", "unknown_campaign"] {
            assert_eq!(DrawOutcome::decided(name, false, Some(1), None, None).unwrap().reason(), name);
        }
        assert_eq!(DrawOutcome::decided("sold_out", false, None, None, None), None);
    }

    #[test]
    fn outcomes_read_in_json_without_absent_fields() {
        let view =
            DrawOutcomeView::from(&DrawOutcome::Won { draw_id: 1, tier_id: 2, prize: "mug".into(), repeat: false });
        assert_eq!(
            serde_json::to_string(&view).unwrap(),
            r#"{"outcome":"won","repeat":false,"draw_id":1,"tier_id":2,"prize":"mug"}"#
        );
    }
}
