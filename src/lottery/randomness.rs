//! The numbers draws are decided with: a campaign's secret seed, and every draw's number derived from it.
//!
//! `r = the first 32 bits of SHA-256("<seed>:<campaign_id>:<user_id>:<draw_no>")`, the seed written as 64 lowercase
//! hex digits and the numbers in decimal: an integer in [0, 2^32) that depends only on the seed and the draw, never
//! on arrival order or on the instance that took the request. The draw procedures compute it themselves from the
//! seed they hold (`sql/procedures/lottery/draw_lottery_batch.sql`); this copy lets an instance tell in advance
//! where a draw lands, and lets `seckill lottery verify` recompute every draw once the seed is revealed
//! (`docs/lottery-verification.md`). SHA-256 with the secret in front rather than HMAC: the message has a fixed
//! shape and only 32 bits of the digest are ever shown, so length extension gives an attacker nothing, and the
//! database computes plain SHA-256 in one call.

use std::fmt;

use sha2::{Digest, Sha256};

/// A campaign's secret seed: 32 bytes from the operating system's CSPRNG, kept as the 64 lowercase hex digits
/// every derivation hashes.
#[derive(Clone, PartialEq, Eq)]
pub struct CampaignSeed(String);

impl fmt::Debug for CampaignSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Shown before the reveal, a seed would make every draw predictable.
        f.write_str("CampaignSeed(..)")
    }
}

impl CampaignSeed {
    /// A new seed from the operating system's CSPRNG.
    ///
    /// # Errors
    /// When the operating system gives no randomness (a message naming the cause).
    pub fn generate() -> Result<Self, String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|error| format!("the operating system gave no random bytes: {error}"))?;
        Ok(CampaignSeed(hex::encode(bytes)))
    }

    /// The seed written as 64 lowercase hex digits, or `None` for anything else.
    pub fn from_hex(text: &str) -> Option<Self> {
        let hex = text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        hex.then(|| CampaignSeed(text.to_string()))
    }

    /// The seed as 64 lowercase hex digits: how it is stored, committed to and revealed.
    pub fn to_hex(&self) -> String {
        self.0.clone()
    }

    /// The number in [0, 2^32) that decides `user_id`'s draw number `draw_no` in `campaign_id`.
    pub fn draw_number(&self, campaign_id: i64, user_id: i64, draw_no: i64) -> u32 {
        draw_number(&self.0, campaign_id, user_id, draw_no)
    }
}

/// `r` for a draw, from the seed as hex (as a verifier reads it from a log).
pub fn draw_number(seed_hex: &str, campaign_id: i64, user_id: i64, draw_no: i64) -> u32 {
    let digest = Sha256::digest(format!("{seed_hex}:{campaign_id}:{user_id}:{draw_no}"));
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// SHA-256 of `text`, as 64 lowercase hex digits.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draw_number_is_the_first_32_bits_of_the_sha256_of_its_inputs() {
        // sha256("00…00:1:7:1") computed by `printf %s '<64 zeros>:1:7:1' | sha256sum`.
        let zeros = "0".repeat(64);
        let expected = 0x5a97_bd04;
        assert_eq!(draw_number(&zeros, 1, 7, 1), expected);
        assert_eq!(&sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let seed = CampaignSeed::from_hex(&zeros).unwrap();
        assert_eq!(seed.draw_number(1, 7, 1), expected);
        assert_ne!(seed.draw_number(1, 7, 1), seed.draw_number(1, 7, 2));
        assert_ne!(seed.draw_number(1, 7, 1), seed.draw_number(1, 8, 1));
        assert_ne!(seed.draw_number(1, 7, 1), seed.draw_number(2, 7, 1));
    }

    #[test]
    fn seeds_are_random_hidden_from_debug_and_read_back_from_hex() {
        let seed = CampaignSeed::generate().unwrap();
        assert_ne!(seed, CampaignSeed::generate().unwrap());
        assert_eq!(format!("{seed:?}"), "CampaignSeed(..)");
        assert_eq!(CampaignSeed::from_hex(&seed.to_hex()), Some(seed.clone()));
        assert_eq!(CampaignSeed::from_hex(&seed.to_hex().to_uppercase()), None, "lowercase only");
        assert_eq!(CampaignSeed::from_hex("abc"), None);
    }
}
