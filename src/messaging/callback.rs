//! What a consumer answers the relay about the messages it handled, on the callback queue: done, not done for now
//! ("later": say its own database is down), or refused as poison; and how an answer travels.
//!
//! The answers are what lets the relay tell an outage from poison. Only a refusal counts toward a message's death;
//! "later", like a send nobody answered, only makes it late: the relay sends it again after its wait.
//!
//! A callback's body is a comma-separated list of tokens, all of one verdict: `17` (consumed: the form consumers
//! have always sent), `later:17`, `poison:17`. A callback of `later` or `poison` tokens carries one reason for
//! all of them in its [`REASON_HEADER`]. A relay that predates `later` and `poison` reads only the tokens that
//! are ids, so it can never take a refusal for a consumption.

use std::collections::BTreeMap;

/// The header that carries the reason of a callback's `later` or `poison` answers.
pub const REASON_HEADER: &str = "reason";

/// The longest reason kept: the outbox's `last_error` column.
const REASON_CHARS: usize = 255;

/// What a consumer says of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Its effect is committed: the message is consumed.
    Consumed,
    /// Not done for now, and not poison: sent again after the relay's wait, never counted toward death.
    Later,
    /// It can never be handled: one refusal counted; at the relay's limit the message is dead.
    Poison,
}

impl Verdict {
    fn prefix(self) -> &'static str {
        match self {
            Verdict::Consumed => "",
            Verdict::Later => "later:",
            Verdict::Poison => "poison:",
        }
    }
}

/// One callback to publish: the messages of one verdict (and one reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    pub verdict: Verdict,
    /// Why, for `Later` and `Poison` (cut to 255 characters); `None` for `Consumed`.
    pub reason: Option<String>,
    pub message_ids: Vec<i64>,
}

impl Callback {
    /// The callbacks that carry `answers` (message id, verdict, reason), grouped: all the consumed ones in one,
    /// then one per verdict and reason.
    pub fn grouped<'a>(answers: impl IntoIterator<Item = (i64, Verdict, &'a str)>) -> Vec<Callback> {
        let mut groups: BTreeMap<(Verdict, String), Vec<i64>> = BTreeMap::new();
        for (message_id, verdict, reason) in answers {
            let reason = match verdict {
                Verdict::Consumed => String::new(),
                Verdict::Later | Verdict::Poison => reason.chars().take(REASON_CHARS).collect(),
            };
            groups.entry((verdict, reason)).or_default().push(message_id);
        }
        groups
            .into_iter()
            .map(|((verdict, reason), message_ids)| Callback {
                verdict,
                reason: (verdict != Verdict::Consumed).then_some(reason),
                message_ids,
            })
            .collect()
    }

    /// The body: its tokens, comma-separated.
    pub fn body(&self) -> String {
        let prefix = self.verdict.prefix();
        self.message_ids.iter().map(|id| format!("{prefix}{id}")).collect::<Vec<_>>().join(",")
    }
}

/// What the relay read from a run of callbacks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Answers {
    pub consumed: Vec<i64>,
    /// Reason to the messages answered "later" for it.
    pub later: BTreeMap<String, Vec<i64>>,
    /// Reason to the messages refused for it.
    pub refused: BTreeMap<String, Vec<i64>>,
}

impl Answers {
    /// Adds one callback's answers: its body, and its reason header if any. Tokens that are none of the three
    /// forms are skipped (nothing a relay does can come of them).
    pub fn read(&mut self, body: &[u8], reason: Option<&str>) {
        let Ok(text) = std::str::from_utf8(body) else { return };
        let reason: String = reason.unwrap_or("no reason given").chars().take(REASON_CHARS).collect();
        for token in text.split(',').map(str::trim) {
            if let Some(id) = token.strip_prefix(Verdict::Later.prefix()).and_then(|id| id.parse().ok()) {
                self.later.entry(reason.clone()).or_default().push(id);
            } else if let Some(id) = token.strip_prefix(Verdict::Poison.prefix()).and_then(|id| id.parse().ok()) {
                self.refused.entry(reason.clone()).or_default().push(id);
            } else if let Ok(id) = token.parse() {
                self.consumed.push(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_travel_grouped_and_come_back_as_they_were_sent() {
        let callbacks = Callback::grouped([
            (1, Verdict::Consumed, ""),
            (2, Verdict::Later, "database down"),
            (3, Verdict::Consumed, "ignored"),
            (4, Verdict::Poison, "not a shipment"),
            (5, Verdict::Later, "database down"),
            (6, Verdict::Later, "gift service busy"),
        ]);
        let bodies: Vec<(String, Option<&str>)> =
            callbacks.iter().map(|callback| (callback.body(), callback.reason.as_deref())).collect();
        assert_eq!(
            bodies,
            [
                ("1,3".to_string(), None),
                ("later:2,later:5".to_string(), Some("database down")),
                ("later:6".to_string(), Some("gift service busy")),
                ("poison:4".to_string(), Some("not a shipment")),
            ]
        );
        let mut answers = Answers::default();
        for (body, reason) in &bodies {
            answers.read(body.as_bytes(), *reason);
        }
        assert_eq!(answers.consumed, [1, 3]);
        assert_eq!(answers.later.get("database down"), Some(&vec![2, 5]));
        assert_eq!(answers.later.get("gift service busy"), Some(&vec![6]));
        assert_eq!(answers.refused.get("not a shipment"), Some(&vec![4]));
    }

    #[test]
    fn a_relay_reading_only_ids_never_takes_a_refusal_or_a_later_for_a_consumption() {
        // What a relay that predates `later` and `poison` does with a body: it keeps the tokens that are ids.
        let earlier_relay =
            |body: &str| -> Vec<i64> { body.split(',').filter_map(|t| t.trim().parse().ok()).collect() };
        for callback in Callback::grouped([(7, Verdict::Poison, "x, 12"), (8, Verdict::Later, "13")]) {
            assert!(earlier_relay(&callback.body()).is_empty(), "{callback:?}");
        }
    }

    #[test]
    fn garbage_and_long_reasons_are_harmless() {
        let mut answers = Answers::default();
        answers.read(b"poison:,later:x,,12a, 9 ,", None);
        answers.read(&[0xff, 0xfe], Some("x"));
        assert_eq!(answers, Answers { consumed: vec![9], ..Answers::default() });
        let long = "r".repeat(1000);
        let callbacks = Callback::grouped([(1, Verdict::Poison, long.as_str())]);
        assert_eq!(callbacks[0].reason.as_ref().map(String::len), Some(255));
    }
}
