//! What a load balancer in front of several instances may answer for the seckill itself: an execution of an
//! item whose closed state (`sold_out` or `ended`, see [`crate::seckill::closed`]) is in the shared Redis, with
//! the bytes [`Execution`](super::Execution) writes for state 0 (秒杀结束), so that a client cannot tell who answered.
//!
//! Only requests the app would decide from the closed state alone: a path whose id and signature segment the
//! app reads as they are, and a `killPhone` cookie of 11 digits (the last one sent, as [`super::extract`] reads
//! it). Anything else passes through, and the app answers it. The balancer checks shapes, not signatures: a
//! forged token for a closed item hears state 0 rather than -3, and a winner who asks again once the item is
//! closed hears state 0 rather than -1 (重复秒杀). Neither decides anything, and state 0 (秒杀结束) says the sale
//! is over, nothing about the buyer: `GET /seckill/{id}/result` tells the winner what they hold, and the sale
//! page asks it whenever it hears state 0.

use super::extract::{MAX_SEGMENT, PHONE_COOKIE};
use super::views::Execution;
use crate::http::{ClosedAnswer, CookieShape, Envelope, Interception, JSON_UTF8, Shape};
use crate::seckill::closed::KEY_KIND;
use crate::seckill::{ItemState, Outcome};
use crate::shared_state::ClosedFact;

/// The interception of [`EXECUTION_ROUTE`](super::EXECUTION_ROUTE) for items sold out or ended.
pub fn balancer_interception() -> Interception {
    // An id no real item has, written in place of the item's id and then cut out: the digits of `i64::MAX`
    // appear nowhere else in the answer.
    let written = serde_json::to_string(&Envelope::ok(Execution::new(i64::MAX, &Outcome::SoldOut, None)));
    // The envelope holds only strings, numbers, booleans and nulls: serializing it cannot fail, and the id is
    // written exactly once (the answer's tests say so).
    let answer = written
        .ok()
        .and_then(|written| ClosedAnswer::around_id(&written, i64::MAX))
        .unwrap_or(ClosedAnswer::Fixed(String::new()));
    Interception {
        name: "seckill_execution".into(),
        path: "^/seckill/(%d+)/([^/]+)/execution$".into(),
        token: Some(Shape { pattern: "^[%w%-%._~]+$".into(), max_len: MAX_SEGMENT }),
        cookie: Some(CookieShape {
            name: PHONE_COOKIE.into(),
            pattern: format!("^{}$", "%d".repeat(11)),
            last_only: true,
        }),
        refuses_cross_site: false,
        key: KEY_KIND.into(),
        closing_values: [ItemState::SoldOut, ItemState::Ended].map(|state| state.value().to_string()).into(),
        answer,
        content_type: JSON_UTF8.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seckill::http::EXECUTION_ROUTE;

    #[test]
    fn the_answer_is_the_apps_state_0_envelope_for_any_id() {
        let interception = balancer_interception();
        for id in [1, 1000, 987_654_321_012] {
            for outcome in [Outcome::SoldOut, Outcome::Ended, Outcome::NotFound] {
                let app = serde_json::to_string(&Envelope::ok(Execution::new(id, &outcome, None))).unwrap();
                assert_eq!(interception.answer.for_id(id), app);
            }
        }
        assert_eq!(
            interception.answer.for_id(7),
            r#"{"success":true,"data":{"seckillId":7,"state":0,"stateInfo":"秒杀结束","successKilled":null},"error":null}"#
        );
        assert_eq!(interception.content_type, "application/json; charset=utf-8");
        assert_eq!(interception.closing_values, ["sold_out", "ended"]);
        assert!(EXECUTION_ROUTE.starts_with("/seckill/{id}/") && interception.path.starts_with("^/seckill/(%d+)/"));
    }
}
