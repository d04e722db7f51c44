//! The exposer's answer: the signed token when the sale is open, or the clock and window for a countdown.

use chrono::{DateTime, Utc};

/// What the exposer tells a page about an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exposure {
    /// The sale is open: here is the token for the execution URL.
    Open { token: String, now: DateTime<Utc>, start: DateTime<Utc>, end: DateTime<Utc> },
    /// Not open (not started or ended): the database's clock and the window, so the page can count down.
    Closed { now: DateTime<Utc>, start: DateTime<Utc>, end: DateTime<Utc> },
    /// No item has this id.
    NotFound { now: DateTime<Utc> },
}
