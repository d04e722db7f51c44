//! What a load balancer in front of several instances may answer for the lottery itself: a draw in a campaign
//! whose "all drawn" flag (see [`crate::lottery::closed`]) is in the shared Redis, with the bytes [`DrawAnswer`]
//! writes for `all_drawn`, the same for every campaign.
//!
//! Only requests the app would decide from the flag alone: a canonical campaign id, no `Sec-Fetch-Site:
//! cross-site` label (the router refuses those), and a `seckillUser` cookie of the shape the app mints
//! (`<id>.<32 lowercase hex>`, any of those sent). The balancer checks the cookie's shape, not its signature: a
//! forged cookie for an all-drawn campaign hears `all_drawn` rather than 401, which decides nothing and tells
//! nothing the campaign's status does not.

use super::views::DrawAnswer;
use crate::http::{ClosedAnswer, CookieShape, Envelope, Interception, JSON_UTF8, USER_COOKIE};
use crate::lottery::DrawOutcome;
use crate::lottery::closed::{ALL_DRAWN_VALUE, KEY_KIND};

/// The interception of `POST /lottery/{campaign}/draw` for campaigns all drawn.
pub fn balancer_interception() -> Interception {
    let answer = DrawAnswer::decided(&DrawOutcome::AllDrawn).map(Envelope::ok);
    // The answer holds only strings, numbers, booleans and nulls: serializing it cannot fail.
    let answer = answer.and_then(|answer| serde_json::to_string(&answer).ok()).unwrap_or_default();
    // The cookie the app mints: a user id of at most 18 digits (no leading zero), a dot, 32 lowercase hex.
    let user_cookie = format!("^[1-9]{}%.{}$", "%d?".repeat(17), "[0-9a-f]".repeat(32));
    Interception {
        name: "lottery_draw".into(),
        path: "^/lottery/(%d+)/draw$".into(),
        token: None,
        cookie: Some(CookieShape { name: USER_COOKIE.into(), pattern: user_cookie, last_only: false }),
        refuses_cross_site: true,
        key: KEY_KIND.into(),
        closing_values: vec![ALL_DRAWN_VALUE.to_string()],
        answer: ClosedAnswer::Fixed(answer),
        content_type: JSON_UTF8.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_the_apps_all_drawn_answer() {
        let interception = balancer_interception();
        let app = Envelope::ok(DrawAnswer::decided(&DrawOutcome::AllDrawn).unwrap());
        assert_eq!(interception.answer.for_id(3), serde_json::to_string(&app).unwrap());
        assert!(interception.answer.for_id(3).contains(r#""outcome":"all_drawn""#));
        assert_eq!(interception.content_type, "application/json; charset=utf-8");
    }
}
