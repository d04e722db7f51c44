//! Signed seckill URLs: the token the exposer hands out and the execution endpoint checks.
//!
//! Two modes:
//!
//! - **HMAC** (default): `HMAC-MD5(key, "{seckill_id}:{phone}:{expires}")`, sent as `{expires}-{hex}` where
//!   `expires` is a Unix time in seconds. The token is bound to one item, one user and a deadline, and checked
//!   in constant time against the current key and, during a rotation, the previous one.
//!   *Protects against*: guessing or forging a URL without the key, one user's URL being used by another,
//!   links that keep working after they expire, scripts that compute URLs before the sale opens (the key never
//!   leaves the server).
//!   *Does not protect against*: a user who is sent a valid token and replays it before it expires (the
//!   database's one-row-per-user rule stops the second purchase, not the request), a bot that drives a real
//!   browser, or a leaked key. MD5 is used because the classic design does and HMAC does not rely on MD5's
//!   broken collision resistance; it is not a reason to use MD5 elsewhere.
//!
//! - **Classic**: lowercase hex `md5("{seckill_id}/{salt}")`, byte for byte what the classic course computes
//!   (UTF-8 bytes of the salt), so existing front ends and links keep working. *Protects against*: a URL for an
//!   item id typed by hand before the exposer opens. *Does not protect against* anything else: the same value
//!   for every user, forever, and anyone who learns the salt can mint them. Obfuscation, not signing.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use thiserror::Error;

use super::Phone;

type HmacMd5 = Hmac<Md5>;

/// Keys shorter than this are refused: an HMAC key is only as strong as it is long. The same bound as a user
/// cookie's secret, since `seckill serve` signs both with one secret.
pub const MIN_KEY_LEN: usize = crate::http::MIN_SECRET_LEN;

/// How long an HMAC token stays valid by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);

/// A signing configuration that cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SigningError {
    /// The key is too short to be a secret.
    #[error(
        "the signing key must be at least {MIN_KEY_LEN} bytes long (got {0}); generate one with `openssl rand -hex 32`"
    )]
    KeyTooShort(usize),
    /// The classic salt is empty.
    #[error("the classic signing salt must not be empty")]
    EmptySalt,
}

/// Why a token was refused. All of them mean "data rewrite" (-3) to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Rejection {
    /// Not of the mode's form at all.
    #[error("malformed signature")]
    Malformed,
    /// Well-formed and genuine, but past its deadline.
    #[error("expired signature")]
    Expired,
    /// Not made with our key for this item and user.
    #[error("signature does not match")]
    Mismatch,
}

/// Signs and checks seckill tokens.
#[derive(Clone)]
pub struct Signer {
    mode: Mode,
}

#[derive(Clone)]
enum Mode {
    Hmac { current: Vec<u8>, previous: Option<Vec<u8>>, ttl: Duration },
    Classic { salt: String },
}

impl fmt::Debug for Signer {
    // Never print keys or salts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.mode {
            Mode::Hmac { previous, ttl, .. } => f
                .debug_struct("Signer::Hmac")
                .field("has_previous_key", &previous.is_some())
                .field("ttl", ttl)
                .finish_non_exhaustive(),
            Mode::Classic { .. } => f.debug_struct("Signer::Classic").finish_non_exhaustive(),
        }
    }
}

impl Signer {
    /// HMAC-MD5 signing with `key` as the current key.
    ///
    /// # Errors
    /// [`SigningError::KeyTooShort`] for a key under [`MIN_KEY_LEN`] bytes.
    pub fn hmac(key: impl AsRef<[u8]>) -> Result<Self, SigningError> {
        let current = checked_key(key.as_ref())?;
        Ok(Signer { mode: Mode::Hmac { current, previous: None, ttl: DEFAULT_TTL } })
    }

    /// Also accepts tokens made with `key`, the key being rotated out. New tokens use the current key.
    ///
    /// # Errors
    /// [`SigningError::KeyTooShort`]. In classic mode the previous key is ignored.
    pub fn with_previous_key(mut self, key: impl AsRef<[u8]>) -> Result<Self, SigningError> {
        let key = checked_key(key.as_ref())?;
        if let Mode::Hmac { previous, .. } = &mut self.mode {
            *previous = Some(key);
        }
        Ok(self)
    }

    /// How long new HMAC tokens stay valid (default 10 minutes).
    pub fn with_ttl(mut self, new_ttl: Duration) -> Self {
        if let Mode::Hmac { ttl, .. } = &mut self.mode {
            *ttl = new_ttl;
        }
        self
    }

    /// The classic course's md5 of `"{seckill_id}/{salt}"`.
    ///
    /// # Errors
    /// [`SigningError::EmptySalt`].
    pub fn classic(salt: impl Into<String>) -> Result<Self, SigningError> {
        let salt = salt.into();
        if salt.is_empty() {
            return Err(SigningError::EmptySalt);
        }
        Ok(Signer { mode: Mode::Classic { salt } })
    }

    /// The token for `phone` to seckill `seckill_id`, as of `now`.
    pub fn sign(&self, seckill_id: i64, phone: Phone, now: DateTime<Utc>) -> String {
        match &self.mode {
            Mode::Hmac { current, ttl, .. } => {
                let expires = now.timestamp().saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
                let tag = hmac_tag(current, seckill_id, phone, expires).finalize().into_bytes();
                format!("{expires}-{}", hex::encode(tag))
            }
            Mode::Classic { salt } => classic_md5(seckill_id, salt),
        }
    }

    /// Checks a token presented by `phone` for `seckill_id` at `now`.
    ///
    /// # Errors
    /// The [`Rejection`]: malformed, expired or not matching.
    pub fn verify(&self, seckill_id: i64, phone: Phone, token: &str, now: DateTime<Utc>) -> Result<(), Rejection> {
        match &self.mode {
            Mode::Hmac { current, previous, .. } => {
                let (expires, tag) = parse_hmac_token(token)?;
                let genuine = std::iter::once(current)
                    .chain(previous)
                    .any(|key| hmac_tag(key, seckill_id, phone, expires).verify_slice(&tag).is_ok());
                match (genuine, expires > now.timestamp()) {
                    (false, _) => Err(Rejection::Mismatch),
                    (true, false) => Err(Rejection::Expired),
                    (true, true) => Ok(()),
                }
            }
            Mode::Classic { salt } => {
                let tag = parse_hex_md5(token)?;
                let expected = Md5::digest(classic_base(seckill_id, salt).as_bytes());
                if constant_time_eq(&tag, &expected) { Ok(()) } else { Err(Rejection::Mismatch) }
            }
        }
    }

    /// Whether `token` has the form of this mode's tokens, without checking it: for refusing garbage early.
    ///
    /// # Errors
    /// [`Rejection::Malformed`].
    pub fn check_form(&self, token: &str) -> Result<(), Rejection> {
        match self.mode {
            Mode::Hmac { .. } => parse_hmac_token(token).map(drop),
            Mode::Classic { .. } => parse_hex_md5(token).map(drop),
        }
    }

    /// Whether tokens are bound to one user (HMAC) or the same for everyone (classic): a classic exposer needs
    /// no user at all.
    pub fn binds_user(&self) -> bool {
        matches!(self.mode, Mode::Hmac { .. })
    }

    /// A description of the token form, for error messages.
    pub fn form_description(&self) -> &'static str {
        match self.mode {
            Mode::Hmac { .. } => "<expiry seconds>-<32 hex digits>",
            Mode::Classic { .. } => "32 lowercase hex digits",
        }
    }
}

fn checked_key(key: &[u8]) -> Result<Vec<u8>, SigningError> {
    if key.len() < MIN_KEY_LEN { Err(SigningError::KeyTooShort(key.len())) } else { Ok(key.to_vec()) }
}

fn hmac_tag(key: &[u8], seckill_id: i64, phone: Phone, expires: i64) -> HmacMd5 {
    // HMAC takes keys of any length; new_from_slice only fails for fixed-size MACs, so this never falls back.
    let mut mac = HmacMd5::new_from_slice(key).unwrap_or_else(|_| HmacMd5::new(&Default::default()));
    mac.update(format!("{seckill_id}:{}:{expires}", phone.get()).as_bytes());
    mac
}

fn classic_base(seckill_id: i64, salt: &str) -> String {
    format!("{seckill_id}/{salt}")
}

/// The classic course's `DigestUtils.md5DigestAsHex((seckillId + "/" + salt).getBytes())`.
pub fn classic_md5(seckill_id: i64, salt: &str) -> String {
    hex::encode(Md5::digest(classic_base(seckill_id, salt).as_bytes()))
}

fn parse_hmac_token(token: &str) -> Result<(i64, [u8; 16]), Rejection> {
    let (expires, tag) = token.split_once('-').ok_or(Rejection::Malformed)?;
    if expires.is_empty() || expires.len() > 19 || !expires.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::Malformed);
    }
    let expires = expires.parse().map_err(|_| Rejection::Malformed)?;
    Ok((expires, parse_hex_md5(tag)?))
}

fn parse_hex_md5(text: &str) -> Result<[u8; 16], Rejection> {
    let mut bytes = [0u8; 16];
    if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(Rejection::Malformed);
    }
    hex::decode_to_slice(text, &mut bytes).map_err(|_| Rejection::Malformed)?;
    Ok(bytes)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(n: i64) -> Phone {
        Phone::new(n).unwrap()
    }

    #[test]
    fn hmac_token_is_bound_to_item_user_and_time() {
        let signer = Signer::hmac("0123456789abcdef0123").unwrap();
        let now = Utc::now();
        let token = signer.sign(1000, phone(13800000000), now);
        assert_eq!(signer.verify(1000, phone(13800000000), &token, now), Ok(()));
        assert_eq!(signer.verify(1001, phone(13800000000), &token, now), Err(Rejection::Mismatch));
        assert_eq!(signer.verify(1000, phone(13800000001), &token, now), Err(Rejection::Mismatch));
        let later = now + chrono::Duration::seconds(601);
        assert_eq!(signer.verify(1000, phone(13800000000), &token, later), Err(Rejection::Expired));
    }

    #[test]
    fn previous_key_still_verifies_during_rotation() {
        let old = Signer::hmac("old-key-old-key-old").unwrap();
        let now = Utc::now();
        let token = old.sign(7, phone(13900000000), now);
        let rotated = Signer::hmac("new-key-new-key-new").unwrap().with_previous_key("old-key-old-key-old").unwrap();
        assert_eq!(rotated.verify(7, phone(13900000000), &token, now), Ok(()));
        let forgotten = Signer::hmac("new-key-new-key-new").unwrap();
        assert_eq!(forgotten.verify(7, phone(13900000000), &token, now), Err(Rejection::Mismatch));
    }

    #[test]
    fn garbage_is_malformed_not_mismatch() {
        let signer = Signer::hmac("0123456789abcdef").unwrap();
        for garbage in [
            "",
            "-",
            "12-",
            "x-0123",
            "99999999999999999999-00000000000000000000000000000000",
            "1-ABCDEF0123456789ABCDEF0123456789",
        ] {
            assert_eq!(
                signer.verify(1, phone(13800000000), garbage, Utc::now()),
                Err(Rejection::Malformed),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(Signer::hmac("short").unwrap_err(), SigningError::KeyTooShort(5));
    }
}
