//! The bytes the load balancer answers for a closed state, made by the app's own serializers, so that a client
//! cannot tell whether the balancer or an app instance answered.
//!
//! - A seckill execution of a sold-out or ended item: HTTP 200, the classic envelope with state 0 (秒杀结束),
//!   as [`crate::http::Execution`] writes it. Its only part that varies is the item id, so the answer is kept as
//!   the bytes before and after it.
//! - A draw in an all-drawn campaign: HTTP 200, the lottery's `all_drawn` answer, as
//!   [`crate::lottery::http::DrawAnswer`] writes it; the same bytes for every campaign.
//!
//! Both are JSON with the content type every router sends ([`crate::http::charset::JSON_UTF8`]). So is what
//! nginx answers when no instance did (502, 504: [`gateway_error`]), in the envelope of the app's errors,
//! so that a client reading JSON never meets an HTML error page.

use crate::http::charset::JSON_UTF8;
use crate::http::{Envelope, Execution};
use crate::lottery::DrawOutcome;
use crate::lottery::http::DrawAnswer;
use crate::seckill::Outcome;

/// An id no real item has, written in place of the item's id and then cut out: the digits of `i64::MAX` appear
/// nowhere else in the answer.
const ID_PLACEHOLDER: i64 = i64::MAX;

/// What the balancer answers for closed states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedAnswers {
    /// The execution answer for a closed item, up to its id.
    pub execution_before_id: String,
    /// The execution answer for a closed item, after its id.
    pub execution_after_id: String,
    /// The answer for a draw in an all-drawn campaign.
    pub lottery_all_drawn: String,
    /// The content type of both.
    pub content_type: &'static str,
}

impl ClosedAnswers {
    /// The answers as the app writes them today.
    pub fn from_app() -> Self {
        let execution = json(&Envelope::ok(Execution::new(ID_PLACEHOLDER, &Outcome::SoldOut, None)));
        let placeholder = ID_PLACEHOLDER.to_string();
        // The placeholder is written exactly once, as the `seckillId` number; anything else would be a change of
        // the envelope this module must follow, caught by its tests.
        let (before, after) = execution.split_once(&placeholder).unwrap_or((&execution, ""));
        let all_drawn = DrawAnswer::decided(&DrawOutcome::AllDrawn).map(Envelope::ok);
        ClosedAnswers {
            execution_before_id: before.to_string(),
            execution_after_id: after.to_string(),
            lottery_all_drawn: all_drawn.as_ref().map(json).unwrap_or_default(),
            content_type: JSON_UTF8,
        }
    }

    /// The execution answer for a closed item `seckill_id`.
    pub fn execution(&self, seckill_id: i64) -> String {
        format!("{}{seckill_id}{}", self.execution_before_id, self.execution_after_id)
    }
}

/// What the balancer answers when the instance it chose gave no answer (it died holding the request, or none is
/// left): the app's error envelope, saying that the outcome is unknown and where a seckill's is told.
pub(crate) fn gateway_error() -> String {
    let message = "no answer from the app: the outcome is unknown (a seckill's is at GET /seckill/{id}/result)";
    json(&Envelope::<()> { success: false, data: None, error: Some(message.to_string()) })
}

/// The JSON axum's `Json` writes for `value` (serde_json's compact form).
fn json(value: &impl serde::Serialize) -> String {
    // The envelopes hold only strings, numbers, booleans and nulls: serializing them cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_execution_answer_is_the_apps_state_0_envelope_for_any_id() {
        let answers = ClosedAnswers::from_app();
        for id in [1, 1000, 987_654_321_012] {
            for outcome in [Outcome::SoldOut, Outcome::Ended, Outcome::NotFound] {
                let app = serde_json::to_string(&Envelope::ok(Execution::new(id, &outcome, None))).unwrap();
                assert_eq!(answers.execution(id), app);
            }
        }
        assert_eq!(
            answers.execution(7),
            r#"{"success":true,"data":{"seckillId":7,"state":0,"stateInfo":"秒杀结束","successKilled":null},"error":null}"#
        );
    }

    #[test]
    fn the_draw_answer_is_the_apps_all_drawn_answer() {
        let answers = ClosedAnswers::from_app();
        let app = Envelope::ok(DrawAnswer::decided(&DrawOutcome::AllDrawn).unwrap());
        assert_eq!(answers.lottery_all_drawn, serde_json::to_string(&app).unwrap());
        assert!(answers.lottery_all_drawn.contains(r#""outcome":"all_drawn""#), "{}", answers.lottery_all_drawn);
        assert_eq!(answers.content_type, "application/json; charset=utf-8");
    }

    #[test]
    fn a_gateway_error_is_the_apps_error_envelope() {
        let error: serde_json::Value = serde_json::from_str(&gateway_error()).unwrap();
        assert_eq!((error["success"].as_bool(), error["data"].is_null()), (Some(false), true));
        assert!(error["error"].as_str().unwrap().contains("/seckill/{id}/result"));
    }
}
