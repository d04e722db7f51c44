//! `seckill expose` and `seckill execute`: one user's view of a sale, from the shell.

use clap::Args;
use seckill::seckill::{Exposure, Outcome, Phone, Seckill};
use serde_json::json;

use super::signing_args::SigningArgs;
use super::{DatabaseTarget, Failure};

/// Exit code of `execute` when the seckill ran but did not succeed (sold out, repeat, ...).
const REFUSED: u8 = 4;

#[derive(Debug, Args)]
pub(crate) struct ExposeArgs {
    /// The item's id.
    seckill_id: i64,
    /// The buyer's phone, 11 digits.
    #[arg(long)]
    phone: Phone,
    #[command(flatten)]
    signing: SigningArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ExecuteArgs {
    /// The item's id.
    seckill_id: i64,
    /// The buyer's phone, 11 digits.
    #[arg(long)]
    phone: Phone,
    /// The signature from `seckill expose`.
    #[arg(long)]
    md5: String,
    #[command(flatten)]
    signing: SigningArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn expose(target: &DatabaseTarget, args: ExposeArgs) -> Result<(), Failure> {
    let service = Seckill::new(target.connect().await?, args.signing.signer()?);
    let exposure = service.expose(args.seckill_id, args.phone).await?;
    let (line, value) = match &exposure {
        Exposure::Open { token, .. } => (format!("open: {token}"), json!({"exposed": true, "md5": token})),
        Exposure::Closed { now, start, end } => (
            format!("not open: now {}, sale {} .. {}", now.to_rfc3339(), start.to_rfc3339(), end.to_rfc3339()),
            json!({"exposed": false, "now": now.timestamp_millis(), "start": start.timestamp_millis(), "end": end.timestamp_millis()}),
        ),
        Exposure::NotFound { .. } => return Err(Failure::new(format!("no seckill item with id {}", args.seckill_id))),
    };
    if args.json {
        let mut value = value;
        value["seckillId"] = json!(args.seckill_id);
        println!("{value}");
    } else {
        println!("{line}");
    }
    Ok(())
}

pub(crate) async fn execute(target: &DatabaseTarget, args: ExecuteArgs) -> Result<(), Failure> {
    let signer = args.signing.signer()?;
    signer.check_form(&args.md5).map_err(|_| {
        Failure::new(format!("invalid --md5 {:?}: expected {}", shorten(&args.md5), signer.form_description()))
    })?;
    let service = Seckill::new(target.connect().await?, signer);
    let outcome = service.execute(args.seckill_id, args.phone, &args.md5).await;
    if outcome == Outcome::NotFound {
        return Err(Failure::new(format!("no seckill item with id {}", args.seckill_id)));
    }
    if let Outcome::InnerError(error) = &outcome {
        return Err(Failure::new(format!("the seckill failed and was rolled back: {}", error.detail)));
    }
    if args.json {
        let kill = match &outcome {
            Outcome::Success(kill) => serde_json::to_value(kill)?,
            _ => serde_json::Value::Null,
        };
        let value = json!({"seckillId": args.seckill_id, "state": outcome.state(), "stateInfo": outcome.state_info(), "reason": outcome.reason(), "successKilled": kill});
        println!("{value}");
    } else {
        println!("{} ({}, state {})", outcome.state_info(), outcome.reason(), outcome.state());
    }
    if outcome.is_success() { Ok(()) } else { Err(Failure::quiet(REFUSED)) }
}

fn shorten(text: &str) -> String {
    text.chars().take(48).collect()
}
