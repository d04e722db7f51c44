//! What a load balancer in front of the app may answer itself: requests the app describes, each with the key in
//! Redis whose value closes them and the exact bytes the app would answer. The balancer
//! ([`crate::local::balancer`]) knows no route, cookie or answer of its own; each domain's router describes its
//! own (such as [`crate::seckill::http::balancer_interception`]) and the balancer matches and answers.
//!
//! An interception's answer must be true of every request it takes, whoever sends it: the balancer cannot tell
//! a user who already has an outcome from one who has none, so a closed answer that speaks of the user's own
//! request (as the lottery's "all drawn, nothing recorded for you" does) is never an interception.
//!
//! Matching is deliberately conservative: a request is answered here only when the app would look at the
//! closed state before anything else, so a request the app would refuse for its shape (a malformed id or
//! token, a missing or malformed cookie, a request from another site's page) passes through and the app
//! answers it. Patterns are Lua patterns, since the balancer's matching runs in nginx's Lua.

/// A `POST` the balancer answers itself while `{prefix}{key}{id}:state` holds one of the closing values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interception {
    /// A name for the generated settings and logs (`seckill_execution`).
    pub name: String,
    /// The request's path, as a Lua pattern: its first capture is the id (digits, read as the app reads them),
    /// its optional second capture a token segment checked by [`Interception::token`].
    pub path: String,
    /// The shape the second capture must have, when the path has one: a Lua pattern and a length bound.
    pub token: Option<Shape>,
    /// A cookie the request must carry in a shape the app accepts; without it the app answers 400 or 401.
    pub cookie: Option<CookieShape>,
    /// Whether a request a browser labels `Sec-Fetch-Site: cross-site` passes through (the app refuses it).
    pub refuses_cross_site: bool,
    /// The key under the balancer's prefix, before the id: `item:` makes `{prefix}item:{id}:state`.
    pub key: String,
    /// The values of the key that close the request; any other value, or no key, means "ask the app".
    pub closing_values: Vec<String>,
    /// What to answer: HTTP 200 with these bytes.
    pub answer: ClosedAnswer,
    /// The answer's `Content-Type`.
    pub content_type: String,
}

/// A Lua pattern a text must match, and the most bytes it may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub pattern: String,
    pub max_len: usize,
}

/// A cookie a request must carry, and which of its values the app reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieShape {
    pub name: String,
    /// A Lua pattern the value must match (after the app's trimming of white space and double quotes).
    pub pattern: String,
    /// Whether the app reads the last value sent (`true`) or takes any value that matches.
    pub last_only: bool,
}

/// The bytes of a closed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClosedAnswer {
    /// The same bytes whatever the id.
    Fixed(String),
    /// The bytes before the id, then the id in decimal, then the bytes after it.
    AroundId { before: String, after: String },
}

impl ClosedAnswer {
    /// The answer for `id`.
    pub fn for_id(&self, id: i64) -> String {
        match self {
            ClosedAnswer::Fixed(bytes) => bytes.clone(),
            ClosedAnswer::AroundId { before, after } => format!("{before}{id}{after}"),
        }
    }

    /// An answer written for `id`, cut around it: `written` must hold `id`'s digits exactly once. Pick an id
    /// whose digits appear nowhere else (`i64::MAX`); `None` when they do not appear exactly once.
    pub fn around_id(written: &str, id: i64) -> Option<ClosedAnswer> {
        let digits = id.to_string();
        let (before, after) = written.split_once(&digits)?;
        (!after.contains(&digits))
            .then(|| ClosedAnswer::AroundId { before: before.to_string(), after: after.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_around_an_id_is_cut_at_its_one_occurrence() {
        let answer = ClosedAnswer::around_id(r#"{"id":9223372036854775807,"state":0}"#, i64::MAX).unwrap();
        assert_eq!(answer.for_id(7), r#"{"id":7,"state":0}"#);
        assert_eq!(ClosedAnswer::around_id(r#"{"a":12,"b":12}"#, 12), None);
        assert_eq!(ClosedAnswer::around_id(r#"{"a":1}"#, 12), None);
        assert_eq!(ClosedAnswer::Fixed("x".into()).for_id(3), "x");
    }
}
