//! The message the lottery produces: one `lottery.prize` per win, written by the draw procedure into the outbox
//! in the same transaction as the draw, and delivered by [`super::delivery`] to a gift service, which is sent the
//! payload as it is. The procedure writes the topic as a literal (SQL cannot read this constant); a test below
//! holds the two ends together.

use serde::{Deserialize, Serialize};

/// The topic the lottery writes wins to; the draw procedure uses the same string in SQL.
pub const PRIZE_TOPIC: &str = "lottery.prize";

/// One win to deliver: the message's payload, and the JSON body sent to the gift service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrizeMessage {
    /// The draw that won; the message's business key, as decimal text.
    pub draw_id: i64,
    pub campaign_id: i64,
    pub user_id: i64,
    pub tier_id: i64,
    /// The prize tier's name.
    pub prize: String,
}

impl PrizeMessage {
    /// Reads a message's payload, or says why it is no win to deliver.
    ///
    /// # Errors
    /// A one-line reason: the payload is not the contract's JSON, or names no draw.
    pub fn parse(payload: &str) -> Result<Self, String> {
        let prize: PrizeMessage =
            serde_json::from_str(payload).map_err(|error| format!("payload is not a lottery prize: {error}"))?;
        if prize.draw_id <= 0 {
            return Err(format!("lottery prize without a draw (draw_id {})", prize.draw_id));
        }
        Ok(prize)
    }

    /// The `Idempotency-Key` header for this win: the same on every attempt and every re-send, so that the
    /// gift service delivers it once however often it is asked.
    pub fn idempotency_key(&self) -> String {
        idempotency_key(self.draw_id)
    }
}

/// The `Idempotency-Key` of draw `draw_id`'s delivery: `lottery-draw-{draw_id}`.
pub fn idempotency_key(draw_id: i64) -> String {
    format!("lottery-draw-{draw_id}")
}

/// How a gift service reads a call of the worker's: the draw its body names and the key the call must carry.
/// A gift service stub is given this ([`crate::local::gift_service::StubConfig::new`]), so that it checks the
/// calls as the contract has them.
///
/// # Errors
/// A one-line reason when the body is no prize.
pub fn read_gift_call(body: &[u8]) -> Result<(i64, String), String> {
    let prize = std::str::from_utf8(body).map_err(|error| error.to_string()).and_then(PrizeMessage::parse)?;
    Ok((prize.draw_id, prize.idempotency_key()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::SqlSource;

    #[test]
    fn the_draw_procedure_writes_this_topic() {
        let source = SqlSource::embedded().unwrap();
        let procedure = source.procedures.iter().find(|p| p.name == "draw_lottery_batch").unwrap();
        assert!(procedure.statements.iter().any(|sql| sql.contains(&format!("'{PRIZE_TOPIC}'"))));
    }

    #[test]
    fn a_gift_call_is_read_as_its_draw_and_the_key_it_must_carry() {
        let body = br#"{"draw_id": 17, "campaign_id": 3, "user_id": 42, "tier_id": 5, "prize": "Gold mug"}"#;
        assert_eq!(read_gift_call(body), Ok((17, "lottery-draw-17".to_string())));
        assert!(read_gift_call(b"\xff").is_err());
    }

    #[test]
    fn the_contract_payload_parses_and_names_its_key() {
        let payload = r#"{"draw_id": 17, "campaign_id": 3, "user_id": 42, "tier_id": 5, "prize": "Gold mug"}"#;
        let prize = PrizeMessage::parse(payload).unwrap();
        assert_eq!(prize.draw_id, 17);
        assert_eq!(prize.prize, "Gold mug");
        assert_eq!(prize.idempotency_key(), "lottery-draw-17");
    }

    #[test]
    fn payloads_that_are_no_win_are_refused_with_a_reason() {
        for payload in [
            "",
            "{}",
            r#"{"draw_id": "17"}"#,
            r#"{"draw_id": 0, "campaign_id": 3, "user_id": 42,
            "tier_id": 5, "prize": "x"}"#,
        ] {
            assert!(PrizeMessage::parse(payload).is_err(), "{payload}");
        }
    }
}
