//! `seckill user token`: the signed `seckillUser` cookie of a user, for scripts and curl, as the development
//! sign-in page (`seckill serve --dev-sign-in`) sets it.

use clap::{Args, Subcommand};
use seckill::http::{SignedUserCookie, USER_COOKIE};

use super::Failure;

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Print the `seckillUser` cookie that signs USER_ID in, as `seckillUser=<value>` (signed with
    /// SECKILL_SECRET, as `seckill serve` checks it), e.g. `curl -b "$(seckill user token 7)" …`.
    Token(TokenArgs),
}

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// The user to sign in (a positive integer).
    #[arg(value_parser = clap::value_parser!(i64).range(1..))]
    user_id: i64,
    /// The HMAC key the server signs with, at least 16 bytes.
    #[arg(long, env = "SECKILL_SECRET", hide_env_values = true)]
    secret: Option<String>,
}

pub(crate) fn run(command: UserCommand) -> Result<(), Failure> {
    match command {
        UserCommand::Token(TokenArgs { user_id, secret }) => {
            let secret = secret.ok_or_else(|| {
                Failure::new("a user's cookie is signed with the server's secret")
                    .hint("set SECKILL_SECRET (or pass --secret) to the secret `seckill serve` runs with")
            })?;
            let cookie = SignedUserCookie::new(secret)?;
            outln!("{USER_COOKIE}={}", cookie.cookie_value(user_id));
            Ok(())
        }
    }
}
