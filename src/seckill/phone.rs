//! A buyer's phone number, the classic design's user id.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};
use thiserror::Error;

/// The smallest valid phone, `00000000000`: the classic page accepts any 11 digits, so the toolkit does too.
pub const MIN_PHONE: i64 = 0;
/// The largest valid phone, `99999999999`.
pub const MAX_PHONE: i64 = 99_999_999_999;

/// A phone number that is not one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid phone {0:?}: expected 11 digits")]
pub struct InvalidPhone(pub String);

/// A buyer, identified as in the classic schema by an 11-digit phone number (`success_killed.user_phone`).
/// Any 11 digits, as the classic page accepts them; shown with its leading zeros, stored as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Phone(i64);

impl Phone {
    /// Checks that `number` has at most 11 digits (shown with leading zeros).
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

    /// The `n`-th mobile-style phone (11 digits starting with 1), wrapping around after ten billion: every `n`
    /// gives a valid phone. For generated buyers (benchmarks, demos, tests).
    pub fn nth(n: u64) -> Phone {
        const FIRST: i64 = 10_000_000_000;
        Phone(FIRST + (n % FIRST as u64) as i64)
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
        write!(f, "{:011}", self.0)
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
    fn accepts_any_eleven_digits_as_the_classic_page_does() {
        assert_eq!("13800138000".parse::<Phone>().map(Phone::get), Ok(13_800_138_000));
        assert_eq!("23800138000".parse::<Phone>().map(Phone::get), Ok(23_800_138_000));
        assert_eq!("01234567890".parse::<Phone>().map(|p| p.to_string()), Ok("01234567890".to_string()));
        for bad in ["", "1380013800", "138001380000", "1380013800x", "+3800138000", " 13800138000", "-1234567890"] {
            assert!(bad.parse::<Phone>().is_err(), "{bad:?}");
        }
        assert!(Phone::new(-1).is_err() && Phone::new(100_000_000_000).is_err() && Phone::new(i64::MAX).is_err());
    }
}
