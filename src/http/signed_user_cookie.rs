//! The provided identity: a signed cookie, `seckillUser=<user id>.<tag>`, for hosts without their own
//! sessions (and for `seckill serve` and the tests). One cookie signs a user in for every router: the points
//! exchange and the lottery read the same one.
//!
//! The tag is the lowercase hex of `HMAC-MD5(secret, "seckillUser:<user id>")`. The host mints the value when
//! it signs a user in ([`SignedUserCookie::cookie_value`]) and sets the cookie; the routers check it on every
//! request, in constant time. The `seckillUser:` prefix keeps the tag apart from anything else the same
//! secret signs (seckill URLs, `"{id}:{phone}:{expires}"`), so `seckill serve` can use one secret for both.
//!
//! *Protects against*: a client that names another user's id, or makes up a value, without the secret.
//! *Does not protect against*: a stolen cookie (it never expires; set it `HttpOnly` and `Secure` over HTTPS, and
//! rotate the secret to revoke every cookie at once) or a leaked secret. MD5 is used for the same reason as in
//! [`crate::seckill::signing`]: HMAC does not rely on its broken collision resistance.

use std::fmt;

use axum::http::request::Parts;
use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use thiserror::Error;

use super::ApiError;
use super::cookies::cookie_values;
use super::user::RequestUser;

type HmacMd5 = Hmac<Md5>;

/// The cookie's name.
pub const USER_COOKIE: &str = "seckillUser";

/// Secrets shorter than this are refused: an HMAC key is only as strong as it is long.
pub const MIN_SECRET_LEN: usize = 16;

/// A secret too short to sign cookies with.
#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "the signing secret must be at least {MIN_SECRET_LEN} bytes long (got {0}); generate one with `openssl rand -hex 32`"
)]
pub struct SecretTooShort(pub usize);

/// The longest user id in decimal (`i64::MAX`).
const MAX_ID_DIGITS: usize = 19;

/// Hex digits of an MD5 tag.
const TAG_HEX_DIGITS: usize = 32;

/// Signs and checks the `seckillUser` cookie; a [`RequestUser`] that reads the user from it. A missing,
/// malformed or forged cookie is a 401.
#[derive(Clone)]
pub struct SignedUserCookie {
    key: Vec<u8>,
}

impl fmt::Debug for SignedUserCookie {
    // Never print the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedUserCookie").finish_non_exhaustive()
    }
}

impl SignedUserCookie {
    /// Cookies signed with `secret`.
    ///
    /// # Errors
    /// [`SecretTooShort`] for a secret under [`MIN_SECRET_LEN`] bytes.
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, SecretTooShort> {
        let key = secret.as_ref();
        if key.len() < MIN_SECRET_LEN {
            return Err(SecretTooShort(key.len()));
        }
        Ok(SignedUserCookie { key: key.to_vec() })
    }

    /// The cookie's value for `user_id`, `<id>.<tag>`, for the host to set when the user signs in (for example
    /// `Set-Cookie: seckillUser=<value>; Path=/; HttpOnly; SameSite=Lax`). User ids are positive: the value for
    /// any other id is refused like a forged one.
    pub fn cookie_value(&self, user_id: i64) -> String {
        format!("{user_id}.{}", hex::encode(self.mac(&user_id.to_string()).finalize().into_bytes()))
    }

    /// The user a cookie value names, if it is one this key signed.
    pub fn verify(&self, value: &str) -> Option<i64> {
        let (id, tag) = value.split_once('.')?;
        // Only the canonical form we mint: no sign, no leading zero, lowercase hex.
        let canonical_id = !id.is_empty()
            && id.len() <= MAX_ID_DIGITS
            && !id.starts_with('0')
            && id.bytes().all(|b| b.is_ascii_digit());
        let canonical_tag =
            tag.len() == TAG_HEX_DIGITS && tag.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !canonical_id || !canonical_tag {
            return None;
        }
        let user_id = id.parse::<i64>().ok()?;
        let mut tag_bytes = [0u8; TAG_HEX_DIGITS / 2];
        hex::decode_to_slice(tag, &mut tag_bytes).ok()?;
        // `verify_slice` compares in constant time: timing tells a forger nothing about the right tag.
        self.mac(id).verify_slice(&tag_bytes).ok()?;
        Some(user_id)
    }

    fn mac(&self, id: &str) -> HmacMd5 {
        // HMAC takes keys of any length; new_from_slice only fails for fixed-size MACs, so this never falls back.
        let mut mac = HmacMd5::new_from_slice(&self.key).unwrap_or_else(|_| HmacMd5::new(&Default::default()));
        mac.update(format!("{USER_COOKIE}:{id}").as_bytes());
        mac
    }
}

impl RequestUser for SignedUserCookie {
    /// The first `seckillUser` cookie that verifies (a browser may send one per path).
    fn user_id(&self, parts: &Parts) -> Result<i64, ApiError> {
        let mut seen = false;
        // A header that is not text holds no cookie of ours.
        let values = cookie_values(&parts.headers, USER_COOKIE).flatten();
        for value in values {
            seen = true;
            if let Some(user_id) = self.verify(value) {
                return Ok(user_id);
            }
        }
        Err(ApiError::Unauthorized(if seen {
            format!("invalid {USER_COOKIE} cookie: sign in again")
        } else {
            format!("no {USER_COOKIE} cookie: sign in first")
        }))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Request;
    use axum::http::header::COOKIE;

    use super::*;

    const SECRET: &str = "0123456789abcdef-test";

    fn parts(cookies: &[&str]) -> Parts {
        let mut request = Request::builder();
        for cookie in cookies {
            request = request.header(COOKIE, *cookie);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_minted_value_names_its_user_and_nothing_else_does() {
        let signer = SignedUserCookie::new(SECRET).unwrap();
        let value = signer.cookie_value(42);
        assert_eq!(signer.verify(&value), Some(42));
        let (_, tag) = value.split_once('.').unwrap();
        assert_eq!(signer.verify(&format!("43.{tag}")), None, "another user with this tag");
        assert_eq!(signer.verify(&format!("042.{tag}")), None, "not canonical");
        assert_eq!(signer.verify(&format!("42.{}", tag.to_uppercase())), None, "not canonical");
        let other = SignedUserCookie::new("another-secret-0123456").unwrap();
        assert_eq!(other.verify(&value), None, "another key");
        for garbage in ["", ".", "42", "42.", "-42.00", "x.y", &format!("42.{tag}0"), &format!("+42.{tag}")] {
            assert_eq!(signer.verify(garbage), None, "{garbage:?}");
        }
        assert_eq!(signer.verify(&signer.cookie_value(0)), None, "user ids are positive");
        assert_eq!(signer.verify(&signer.cookie_value(-5)), None, "user ids are positive");
    }

    #[test]
    fn the_tag_is_hmac_md5_of_the_prefixed_id() {
        // Pinned, so hosts in other languages can mint the same value: hex(HMAC-MD5(key, "seckillUser:42")).
        let signer = SignedUserCookie::new("key-key-key-key-key").unwrap();
        let mut mac = HmacMd5::new_from_slice(b"key-key-key-key-key").unwrap();
        mac.update(b"seckillUser:42");
        assert_eq!(signer.cookie_value(42), format!("42.{}", hex::encode(mac.finalize().into_bytes())));
    }

    #[test]
    fn the_cookie_header_is_read_like_a_browser_sends_it() {
        let signer = SignedUserCookie::new(SECRET).unwrap();
        let good = signer.cookie_value(7);
        assert_eq!(signer.user_id(&parts(&[&format!("a=1; seckillUser={good}; b=2")])).unwrap(), 7);
        assert_eq!(signer.user_id(&parts(&["a=1", &format!("seckillUser=\"{good}\"")])).unwrap(), 7);
        let shadowed = format!("seckillUser=1.00000000000000000000000000000000; seckillUser={good}");
        assert_eq!(signer.user_id(&parts(&[&shadowed])).unwrap(), 7, "the one that verifies");

        let missing = signer.user_id(&parts(&["a=1"])).unwrap_err();
        assert!(matches!(&missing, ApiError::Unauthorized(message) if message.contains("sign in first")));
        let forged = signer.user_id(&parts(&["seckillUser=7.00000000000000000000000000000000"])).unwrap_err();
        assert!(matches!(&forged, ApiError::Unauthorized(message) if message.contains("invalid")));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(SignedUserCookie::new("short").unwrap_err(), SecretTooShort(5));
    }
}
