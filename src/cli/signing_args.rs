//! How the CLI signs and checks seckill URLs: the same settings a server would use, from flags or env.

use clap::{Args, ValueEnum};
use seckill::seckill::signing::Signer;

use super::Failure;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum SigningMode {
    /// HMAC-MD5 bound to item, user and expiry (needs --secret).
    Hmac,
    /// The classic course's md5("{id}/{salt}") (needs --salt).
    Classic,
}

#[derive(Debug, Args)]
pub(crate) struct SigningArgs {
    /// How seckill URLs are signed.
    #[arg(long, env = "SECKILL_SIGNING", hide_env_values = true, value_enum, default_value = "hmac")]
    signing: SigningMode,
    /// The HMAC key, at least 16 bytes (hmac mode).
    #[arg(long, env = "SECKILL_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// The key being rotated out: tokens made with it are still accepted (hmac mode).
    #[arg(long, env = "SECKILL_PREVIOUS_SECRET", hide_env_values = true)]
    previous_secret: Option<String>,
    /// The salt of the classic md5 (classic mode).
    #[arg(long, env = "SECKILL_SALT", hide_env_values = true)]
    salt: Option<String>,
}

impl SigningArgs {
    /// The HMAC secret in hmac mode, for what else the server signs with it (the exchange's user cookie);
    /// `None` in classic mode, which has none.
    pub(crate) fn hmac_secret(&self) -> Option<&str> {
        match self.signing {
            SigningMode::Hmac => self.secret.as_deref(),
            SigningMode::Classic => None,
        }
    }

    /// These settings as the environment of another `seckill` process (set, or removed when absent), so that
    /// it signs and checks exactly as this one; secrets stay off command lines, which every user can read.
    pub(crate) fn environment(&self) -> Vec<(String, Option<String>)> {
        let mode = match self.signing {
            SigningMode::Hmac => "hmac",
            SigningMode::Classic => "classic",
        };
        vec![
            ("SECKILL_SIGNING".into(), Some(mode.into())),
            ("SECKILL_SECRET".into(), self.secret.clone()),
            ("SECKILL_PREVIOUS_SECRET".into(), self.previous_secret.clone()),
            ("SECKILL_SALT".into(), self.salt.clone()),
        ]
    }

    pub(crate) fn signer(&self) -> Result<Signer, Failure> {
        match self.signing {
            SigningMode::Hmac => {
                let secret = self.secret.as_deref().ok_or_else(|| {
                    Failure::new("hmac signing needs a secret")
                        .hint("set SECKILL_SECRET (e.g. `openssl rand -hex 32`) or pass --secret")
                })?;
                let signer = Signer::hmac(secret)?;
                match &self.previous_secret {
                    Some(previous) => Ok(signer.with_previous_key(previous)?),
                    None => Ok(signer),
                }
            }
            SigningMode::Classic => {
                let salt = self.salt.as_deref().ok_or_else(|| {
                    Failure::new("classic signing needs a salt").hint("set SECKILL_SALT or pass --salt")
                })?;
                Ok(Signer::classic(salt)?)
            }
        }
    }
}

/// A fresh HMAC key for one run of the demo or the bench (256 bits from the system's generator, as hex).
pub(crate) fn random_secret() -> Result<String, Failure> {
    let mut bytes = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    Ok(hex::encode(bytes))
}
