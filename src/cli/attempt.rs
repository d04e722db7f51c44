//! `seckill expose`, `seckill execute` and `seckill result`: one user's view of a sale, from the shell.

use clap::Args;
use seckill::seckill::{Exposure, Outcome, Phone, Seckill};
use serde_json::json;

use super::exit_code::{IN_DOUBT, NOT_FOUND, REFUSED};
use super::signing_args::SigningArgs;
use super::{DatabaseTarget, Failure};

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

#[derive(Debug, Args)]
pub(crate) struct ResultArgs {
    /// The item's id.
    seckill_id: i64,
    /// The buyer's phone, 11 digits.
    #[arg(long)]
    phone: Phone,
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
        outln!("{value}");
    } else {
        outln!("{line}");
    }
    // A script asking for the URL must not take "not open" for one.
    if matches!(exposure, Exposure::Open { .. }) { Ok(()) } else { Err(Failure::quiet(REFUSED)) }
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
        if error.in_doubt {
            return Err(Failure::new(format!(
                "the outcome is unknown: the seckill was sent but no trustworthy answer came back ({})",
                error.detail
            ))
            .hint(format!(
                "check whether it went through with `seckill result {} --phone {}`",
                args.seckill_id, args.phone
            ))
            .exit_code(IN_DOUBT));
        }
        return Err(Failure::new(format!("the seckill failed and was rolled back, nothing written: {}", error.detail)));
    }
    if args.json {
        let kill = match &outcome {
            Outcome::Success(kill) => serde_json::to_value(kill)?,
            _ => serde_json::Value::Null,
        };
        let value = json!({"seckillId": args.seckill_id, "state": outcome.state(), "stateInfo": outcome.state_info(), "reason": outcome.reason(), "successKilled": kill});
        outln!("{value}");
    } else {
        outln!("{} ({}, state {})", outcome.state_info(), outcome.reason(), outcome.state());
    }
    if outcome.is_success() { Ok(()) } else { Err(Failure::quiet(REFUSED)) }
}

fn shorten(text: &str) -> String {
    text.chars().take(48).collect()
}

pub(crate) async fn result(target: &DatabaseTarget, args: ResultArgs) -> Result<(), Failure> {
    // Reading a record needs no signing; any signer will do for the service.
    let service =
        Seckill::new(target.connect().await?, seckill::seckill::signing::Signer::classic("unused-by-result")?);
    let record = service.kill_record(args.seckill_id, args.phone).await?;
    match (&record, args.json) {
        (_, true) => outln!("{}", serde_json::to_string(&record)?),
        (Some(kill), false) => outln!(
            "{} has item {} (state {}, at {})",
            args.phone,
            args.seckill_id,
            kill.state,
            kill.create_time.map_or_else(|| "an unknown time".to_string(), |at| at.to_rfc3339())
        ),
        (None, false) => outln!("{} has no seckill of item {}", args.phone, args.seckill_id),
    }
    if record.is_some() { Ok(()) } else { Err(Failure::quiet(NOT_FOUND)) }
}
