//! A campaign's rules as they are committed to: one canonical text, and the commitment over it and the seed.
//!
//! The canonical text is the rules as compact JSON with every object's keys in lexicographic order and no
//! spaces, UTF-8, integers only (`docs/lottery-verification.md`): what Python's
//! `json.dumps(rules, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` writes, so that a verifier in any
//! language rebuilds it from the parsed rules. The commitment is `SHA-256("<seed hex>:<canonical rules>")` as 64
//! lowercase hex digits: it binds the seed and the rules together, and reveals neither the seed nor which rules
//! could be swapped in (the seed's 256 random bits hide it).

use serde::{Deserialize, Serialize};

use super::randomness::sha256_hex;

/// The version of the draw algorithm (the derivation of each draw's number, the wheel, the two rounds of a
/// batch), committed to with the rules: a change of any of them is a new version.
pub const ALGORITHM: &str = "seckill-lottery/1";

/// A campaign's rules, as committed to. Fields in lexicographic order: serde writes them in this order, which
/// is the canonical order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignRules {
    /// [`ALGORITHM`].
    pub algorithm: String,
    /// The wheel's "no prize" share.
    pub blank_weight: i64,
    pub campaign_id: i64,
    pub draws_per_user: i64,
    /// The first instant draws are refused, epoch milliseconds.
    pub end_ms: i64,
    pub name: String,
    /// The first instant draws are taken, epoch milliseconds.
    pub start_ms: i64,
    /// In wheel order.
    pub tiers: Vec<TierRules>,
}

/// One prize tier's rules. Fields in lexicographic order, as [`CampaignRules`]'.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierRules {
    /// The prize.
    pub name: String,
    /// Wheel order, from 1.
    pub position: i64,
    /// Units put in stock at creation.
    pub stock: i64,
    /// The prize's value in fen (1/100 yuan).
    pub value_fen: i64,
    /// Share of the wheel.
    pub weight: i64,
}

impl CampaignRules {
    /// The canonical text.
    pub fn canonical(&self) -> String {
        // Serialising integers and strings into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The commitment to these rules with `seed_hex`.
    pub fn commitment(&self, seed_hex: &str) -> String {
        sha256_hex(&format!("{seed_hex}:{}", self.canonical()))
    }

    /// The wheel's total: the tiers' weights and the blank share.
    pub fn total_weight(&self) -> i64 {
        self.blank_weight + self.tiers.iter().map(|tier| tier.weight).sum::<i64>()
    }

    /// The tier (index into `tiers`) a draw's number lands on, `None` for the blank share: slot
    /// `r * total DIV 2^32`, the tiers' slots first in wheel order.
    pub fn landed(&self, r: u32) -> Option<usize> {
        let slot = (i128::from(r) * i128::from(self.total_weight())) >> 32;
        let mut upper = 0i128;
        self.tiers.iter().position(|tier| {
            upper += i128::from(tier.weight);
            slot < upper
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> CampaignRules {
        let tier =
            |name: &str, position, weight| TierRules { name: name.into(), position, stock: 5, value_fen: 100, weight };
        CampaignRules {
            algorithm: ALGORITHM.into(),
            blank_weight: 2,
            campaign_id: 3,
            draws_per_user: 1,
            end_ms: 2000,
            name: "春季 \"抽奖\"\n".into(),
            start_ms: 1000,
            tiers: vec![tier("mug", 1, 1), tier("pen", 2, 1)],
        }
    }

    #[test]
    fn the_canonical_text_has_sorted_keys_no_spaces_and_raw_utf8() {
        let canonical = rules().canonical();
        assert!(canonical.starts_with(r#"{"algorithm":"seckill-lottery/1","blank_weight":2,"campaign_id":3,"#));
        assert!(canonical.contains(r#""name":"春季 \"抽奖\"\n","start_ms":1000,"tiers":[{"name":"mug","position":1,"stock":5,"value_fen":100,"weight":1}"#), "{canonical}");
        let parsed: serde_json::Value = serde_json::from_str(&canonical).unwrap();
        let mut keys: Vec<_> = parsed.as_object().unwrap().keys().cloned().collect();
        let written = keys.clone();
        keys.sort();
        assert_eq!(keys, written);
        let back: CampaignRules = serde_json::from_str(&canonical).unwrap();
        assert_eq!(back, rules());
    }

    #[test]
    fn the_wheel_puts_the_tiers_first_and_the_blank_share_last() {
        // Total 4: slots 0 (mug), 1 (pen), 2 and 3 (blank).
        let rules = rules();
        assert_eq!(rules.landed(0), Some(0));
        assert_eq!(rules.landed((1 << 30) - 1), Some(0));
        assert_eq!(rules.landed(1 << 30), Some(1));
        assert_eq!(rules.landed(1 << 31), None);
        assert_eq!(rules.landed(u32::MAX), None);
    }

    #[test]
    fn the_commitment_binds_the_seed_and_every_rule() {
        let seed = "0".repeat(64);
        let committed = rules().commitment(&seed);
        assert_eq!(committed.len(), 64);
        assert_ne!(committed, rules().commitment(&"1".repeat(64)));
        let mut heavier = rules();
        heavier.tiers[1].weight = 2;
        assert_ne!(committed, heavier.commitment(&seed));
    }
}
