//! A buyer's phone number, the classic design's user id.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};
use thiserror::Error;

/// The smallest valid phone: 11 digits starting with 1, as mainland China mobile numbers are.
pub const MIN_PHONE: i64 = 10_000_000_000;
/// The largest valid phone.
pub const MAX_PHONE: i64 = 19_999_999_999;

/// A phone number that is not one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid phone {0:?}: expected 11 digits starting with 1")]
pub struct InvalidPhone(pub String);

/// A buyer, identified as in the classic schema by an 11-digit phone number (`success_killed.user_phone`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Phone(i64);

impl Phone {
    /// Checks that `number` is an 11-digit number starting with 1.
    ///
    /// # Errors
    /// [`InvalidPhone`] otherwise.
    pub fn new(number: i64) -> Result<Self, InvalidPhone> {
        if (MIN_PHONE..=MAX_PHONE).contains(&number) {
            Ok(Phone(number))
        } else {
            Err(InvalidPhone(number.to_string()))
        }
    }

    /// The `n`-th valid phone counting from [`MIN_PHONE`], wrapping around after [`MAX_PHONE`]: every `n` gives
    /// a valid phone, distinct for the first ten billion. For generated buyers (benchmarks, demos, tests).
    pub fn nth(n: u64) -> Phone {
        let span = (MAX_PHONE - MIN_PHONE + 1) as u64;
        Phone(MIN_PHONE + (n % span) as i64)
    }

    /// The number.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl FromStr for Phone {
    type Err = InvalidPhone;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidPhone(text.chars().take(32).collect());
        if text.len() != 11 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        text.parse().ok().and_then(|n| Phone::new(n).ok()).ok_or_else(invalid)
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Phone {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_eleven_digits_starting_with_one() {
        assert_eq!("13800138000".parse::<Phone>().map(Phone::get), Ok(13_800_138_000));
        for bad in ["", "1380013800", "138001380000", "23800138000", "1380013800x", "+3800138000", " 13800138000"] {
            assert!(bad.parse::<Phone>().is_err(), "{bad:?}");
        }
        assert!(Phone::new(-1).is_err() && Phone::new(i64::MAX).is_err());
    }
}
