//! `seckill lottery create|draw|status|export|verify`: the lottery from the shell.
//!
//! Input is checked before anything connects, so a bad argument is one line on stderr, a non-zero exit, and
//! nothing changed. `seckill lottery draw` exits 0 for a recorded draw (won or no prize, also a repeat), 4 when
//! refused (all drawn, not started, ended, unknown campaign), 1 when it failed and nothing was written, and 5
//! when its outcome is unknown: drawing again is safe and answers what the database holds. `seckill lottery
//! verify` needs no database: it checks an audit log as anyone would (`docs/lottery-verification.md`).

use clap::{Args, Subcommand};
use std::path::PathBuf;

use seckill::lottery::audit::{self, AuditLog};
use seckill::lottery::{
    CampaignPhase, CampaignStatus, DEFAULT_MAX_PRIZE_FEN, DrawOutcome, DrawOutcomeView, Lottery, LotteryError,
    NewCampaign, NewTier, yuan,
};
use serde_json::json;

use super::exit_code::{IN_DOUBT, NOT_FOUND, REFUSED};
use super::time_arg::parse_time;
use super::{DatabaseTarget, Failure};

#[derive(Debug, Subcommand)]
pub(crate) enum LotteryCommand {
    /// Create a campaign with its prize tiers, in wheel order.
    Create(CreateArgs),
    /// Draw for a user; exits 0 for a recorded draw (won or not), 4 when refused (all drawn, not started, ended,
    /// unknown campaign), 1 when it failed and nothing was written, 5 when its outcome is unknown.
    Draw(DrawArgs),
    /// A campaign now: its window, the prizes left per tier, draws and wins, its commitment (and its seed once
    /// it is over); exits 4 for an unknown campaign.
    Status(StatusArgs),
    /// Write a campaign's audit log (commitment, revealed seed, rules, every draw in commit order) once it is
    /// over; exits 4 for an unknown campaign or one not over yet.
    Export(ExportArgs),
    /// Check an audit log without the database: the commitment, every draw, the stock; exits 1 at the first
    /// mismatch, which it names.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The campaign's name (at most 120 characters).
    #[arg(long)]
    name: String,
    /// When draws open: RFC 3339, `now`, or an offset such as +5m (as `item create --start`).
    #[arg(long, alias = "starts", allow_hyphen_values = true)]
    start: String,
    /// When draws close (the first instant refused).
    #[arg(long, alias = "ends", allow_hyphen_values = true)]
    end: String,
    /// A prize tier as NAME:STOCK:WEIGHT or NAME:STOCK:WEIGHT@YUAN, the prize's value (e.g. "Gold mug:10:1@199");
    /// repeat for each tier, in wheel order.
    #[arg(long = "tier", required = true)]
    tiers: Vec<String>,
    /// The highest value of a prize, in yuan: a campaign offering more is refused (the law caps a lottery's top
    /// prize at 50,000 yuan).
    #[arg(long, env = "SECKILL_MAX_PRIZE_YUAN", default_value_t = DEFAULT_MAX_PRIZE_FEN / 100)]
    max_prize_yuan: u64,
    /// Draws per user.
    #[arg(long, default_value_t = 1)]
    draws_per_user: u32,
    /// The wheel's "no prize" share, even while stock remains.
    #[arg(long, default_value_t = 0)]
    blank_weight: u32,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DrawArgs {
    /// The campaign's id.
    #[arg(allow_negative_numbers = true)]
    campaign: i64,
    /// The user's id (positive).
    #[arg(long, allow_negative_numbers = true)]
    user: i64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The campaign's id (or `--campaign`).
    #[arg(value_name = "CAMPAIGN", allow_negative_numbers = true, required_unless_present = "campaign_flag")]
    campaign: Option<i64>,
    /// The campaign's id as a flag.
    #[arg(long = "campaign", id = "campaign_flag", allow_negative_numbers = true, conflicts_with = "campaign")]
    campaign_flag: Option<i64>,
    /// Write the log to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The audit log, as `seckill lottery export` writes it (or `GET /lottery/{campaign}/audit.json` in its
    /// envelope).
    file: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The campaign's id.
    #[arg(allow_negative_numbers = true)]
    campaign: i64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(target: &DatabaseTarget, command: LotteryCommand) -> Result<(), Failure> {
    match command {
        LotteryCommand::Create(args) => create(target, args).await,
        LotteryCommand::Draw(args) => draw(target, args).await,
        LotteryCommand::Status(args) => status(target, args).await,
        LotteryCommand::Export(args) => export(target, args).await,
        LotteryCommand::Verify(args) => verify(&args),
    }
}

async fn service(target: &DatabaseTarget) -> Result<Lottery, Failure> {
    Ok(Lottery::new(target.connect().await?))
}

/// `NAME:STOCK:WEIGHT[@YUAN]`; the name may itself hold colons (the last two fields are the numbers).
fn parse_tier(text: &str) -> Result<NewTier, Failure> {
    let invalid = |why: &str| {
        Failure::new(format!("invalid --tier {text:?}: {why}"))
            .hint("use NAME:STOCK:WEIGHT or NAME:STOCK:WEIGHT@YUAN, e.g. \"Gold mug:10:1@199\"")
    };
    let mut fields = text.rsplitn(3, ':');
    let (Some(weight), Some(stock), Some(name)) = (fields.next(), fields.next(), fields.next()) else {
        return Err(invalid("expected NAME:STOCK:WEIGHT"));
    };
    let (weight, value) = match weight.split_once('@') {
        Some((weight, value)) => (weight, Some(value)),
        None => (weight, None),
    };
    let stock = stock.trim().parse().map_err(|_| invalid("the stock must be a whole number, 0 or more"))?;
    let weight = weight.trim().parse().map_err(|_| invalid("the weight must be a positive whole number"))?;
    let value_fen = match value {
        Some(value) => {
            parse_yuan(value.trim()).ok_or_else(|| invalid("the value must be yuan, such as 199 or 19.90"))?
        }
        None => 0,
    };
    Ok(NewTier { name: name.trim().to_string(), stock, weight, value_fen })
}

/// An amount of yuan with at most two decimals, in fen.
fn parse_yuan(text: &str) -> Option<u64> {
    let (whole, cents) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !(cents.is_empty() || (digits(cents) && cents.len() <= 2)) || text.ends_with('.') {
        return None;
    }
    let cents = format!("{cents:0<2}").parse::<u64>().ok()?;
    whole.parse::<u64>().ok()?.checked_mul(100)?.checked_add(cents)
}

async fn create(target: &DatabaseTarget, args: CreateArgs) -> Result<(), Failure> {
    let now = chrono::Utc::now();
    let start_time = parse_time(&args.start, now).map_err(|error| Failure::new(format!("--start: {error}")))?;
    let end_time = parse_time(&args.end, now).map_err(|error| Failure::new(format!("--end: {error}")))?;
    let tiers = args.tiers.iter().map(|tier| parse_tier(tier)).collect::<Result<Vec<_>, _>>()?;
    let new_campaign = NewCampaign {
        name: args.name,
        start_time,
        end_time,
        draws_per_user: args.draws_per_user,
        blank_weight: args.blank_weight,
        tiers,
    };
    let max_prize_fen = args.max_prize_yuan.saturating_mul(100);
    if let Err(error) = new_campaign.validate(max_prize_fen) {
        let over_cap = new_campaign.tiers.iter().any(|tier| tier.value_fen > max_prize_fen);
        let failure = Failure::from(error);
        return Err(if over_cap {
            failure.hint("the cap is --max-prize-yuan (SECKILL_MAX_PRIZE_YUAN)")
        } else {
            failure
        });
    }
    let lottery = service(target).await?.with_max_prize_fen(max_prize_fen);
    let campaign = lottery.create_campaign(&new_campaign).await?;
    if args.json {
        outln!("{}", serde_json::to_string(&campaign)?);
    } else {
        outln!(
            "created campaign {} {:?}: {} prizes in {} tiers, {} to {}",
            campaign.campaign_id,
            campaign.name,
            campaign.prizes_left(),
            campaign.tiers.len(),
            campaign.start_time.to_rfc3339(),
            campaign.end_time.to_rfc3339()
        );
        outln!("commitment {}", campaign.commitment.as_deref().unwrap_or("none"));
    }
    Ok(())
}

fn check_ids(campaign: i64, user: Option<i64>) -> Result<(), Failure> {
    if campaign <= 0 {
        return Err(Failure::new(format!("invalid campaign id {campaign}: campaign ids are positive")));
    }
    match user {
        Some(user) if user <= 0 => Err(Failure::new(format!("invalid --user {user}: user ids are positive"))),
        _ => Ok(()),
    }
}

async fn draw(target: &DatabaseTarget, args: DrawArgs) -> Result<(), Failure> {
    check_ids(args.campaign, Some(args.user))?;
    let outcome = service(target).await?.draw(args.campaign, args.user).await?;
    if let DrawOutcome::InnerError(error) = &outcome {
        let failure = Failure::new(format!("the draw failed: {}", error.detail));
        return Err(if error.in_doubt {
            failure
                .hint(format!(
                    "its outcome is unknown; drawing again is safe and answers what the database holds \
                     (`seckill lottery draw {} --user {}`)",
                    args.campaign, args.user
                ))
                .exit_code(IN_DOUBT)
        } else {
            failure.hint("nothing was written; try again")
        });
    }
    if args.json {
        outln!("{}", serde_json::to_string(&DrawOutcomeView::from(&outcome))?);
    } else {
        outln!("{}", describe_outcome(&outcome, args.user));
    }
    if outcome.draw_id().is_some() { Ok(()) } else { Err(Failure::quiet(REFUSED)) }
}

fn describe_outcome(outcome: &DrawOutcome, user: i64) -> String {
    let again = if outcome.is_repeat() { " (already drawn: the user's last result)" } else { "" };
    match outcome {
        DrawOutcome::Won { draw_id, prize, .. } => format!("user {user} won {prize:?} (draw {draw_id}){again}"),
        DrawOutcome::NoPrize { draw_id, .. } => format!("user {user} won nothing (draw {draw_id}){again}"),
        DrawOutcome::AllDrawn => "all drawn: every prize has been won".into(),
        DrawOutcome::NotStarted => "the campaign has not started".into(),
        DrawOutcome::Ended => "the campaign has ended".into(),
        DrawOutcome::UnknownCampaign => "no such campaign".into(),
        DrawOutcome::InnerError(error) => format!("failed: {}", error.detail),
    }
}

async fn status(target: &DatabaseTarget, args: StatusArgs) -> Result<(), Failure> {
    check_ids(args.campaign, None)?;
    let Some(status) = service(target).await?.status(args.campaign).await? else {
        if args.json {
            outln!("{}", json!(null));
        } else {
            outln!("no campaign {}", args.campaign);
        }
        return Err(Failure::quiet(NOT_FOUND));
    };
    if args.json {
        outln!("{}", serde_json::to_string(&status)?);
    } else {
        super::write_out(format_args!("{}", describe_status(&status)));
    }
    Ok(())
}

fn describe_status(status: &CampaignStatus) -> String {
    let campaign = &status.campaign;
    let phase = match (status.phase, status.is_all_drawn()) {
        (CampaignPhase::NotStarted, _) => "not started",
        (CampaignPhase::Ended, _) => "ended",
        (CampaignPhase::Open, true) => "open, all drawn",
        (CampaignPhase::Open, false) => "open",
    };
    let mut text = format!(
        "campaign {} {:?}: {phase}; {} to {}; {} draws per user, blank weight {}\n",
        campaign.campaign_id,
        campaign.name,
        campaign.start_time.to_rfc3339(),
        campaign.end_time.to_rfc3339(),
        campaign.draws_per_user,
        campaign.blank_weight
    );
    let total_weight: i64 =
        i64::from(campaign.blank_weight) + campaign.tiers.iter().map(|tier| i64::from(tier.weight)).sum::<i64>();
    for tier in &campaign.tiers {
        text.push_str(&format!(
            "  tier {} {:?}: worth {} yuan, weight {} ({:.4}% of the wheel), {} of {} left\n",
            tier.tier_id,
            tier.name,
            yuan(u64::try_from(tier.value_fen).unwrap_or(0)),
            tier.weight,
            100.0 * f64::from(tier.weight) / total_weight.max(1) as f64,
            tier.stock,
            tier.stocked
        ));
    }
    text.push_str(&format!(
        "  commitment {}\n",
        campaign.commitment.as_deref().unwrap_or("none (created before commitments)")
    ));
    match &status.revealed_seed {
        Some(seed) => text
            .push_str(&format!("  seed {seed} (revealed: `seckill lottery export` and `verify` check every draw)\n")),
        None => text.push_str("  seed revealed when the campaign is over\n"),
    }
    let all_drawn = if status.is_all_drawn() { " (all drawn)" } else { "" };
    text.push_str(&format!(
        "  {} prizes left{all_drawn}; {} draws recorded, {} won\n",
        status.prizes_left, status.draws, status.wins
    ));
    text
}

async fn export(target: &DatabaseTarget, args: ExportArgs) -> Result<(), Failure> {
    let campaign = args.campaign.or(args.campaign_flag).unwrap_or(0);
    check_ids(campaign, None)?;
    let log = match service(target).await?.export(campaign).await {
        Ok(Some(log)) => log,
        Ok(None) => return Err(Failure::new(format!("no campaign {campaign}")).exit_code(NOT_FOUND)),
        Err(error @ (LotteryError::NotRevealed { .. } | LotteryError::Unverifiable(_))) => {
            return Err(Failure::new(error.to_string()).exit_code(NOT_FOUND));
        }
        Err(error) => return Err(error.into()),
    };
    let text = serde_json::to_string(&log)?;
    match args.output {
        Some(path) => {
            std::fs::write(&path, format!("{text}\n"))
                .map_err(|error| Failure::new(format!("cannot write {}: {error}", path.display())))?;
        }
        None => outln!("{text}"),
    }
    Ok(())
}

fn verify(args: &VerifyArgs) -> Result<(), Failure> {
    let path = args.file.display();
    let text =
        std::fs::read_to_string(&args.file).map_err(|error| Failure::new(format!("cannot read {path}: {error}")))?;
    let not_a_log = |error: serde_json::Error| Failure::new(format!("{path} is not an audit log: {error}"));
    let mut value: serde_json::Value = serde_json::from_str(&text).map_err(not_a_log)?;
    // As the API serves it, in its envelope, or bare, as `export` writes it.
    if value.get("success").is_some() {
        value = value["data"].take();
    }
    let log: AuditLog = serde_json::from_value(value).map_err(not_a_log)?;
    match audit::verify(&log) {
        Ok(verified) => {
            if args.json {
                outln!("{}", json!({"verified": true, "summary": verified}));
            } else {
                outln!(
                    "verified campaign {}: commitment, {} draws by {} users in {} batches, {} wins, stock left",
                    log.rules.campaign_id,
                    verified.draws,
                    verified.users,
                    verified.batches,
                    verified.wins
                );
            }
            Ok(())
        }
        Err(mismatch) => {
            if args.json {
                outln!("{}", json!({"verified": false, "mismatch": mismatch.what, "why": mismatch.why}));
            }
            Err(Failure::new(format!("{path} does not verify: {mismatch}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_are_name_stock_weight_and_names_may_hold_colons() {
        assert_eq!(
            parse_tier("Gold mug:10:1").unwrap(),
            NewTier { name: "Gold mug".into(), stock: 10, weight: 1, value_fen: 0 }
        );
        assert_eq!(parse_tier("a:b:2:3").unwrap().name, "a:b");
        assert_eq!(parse_tier("mug:2:3@19.9").unwrap().value_fen, 1990);
        assert_eq!(parse_tier("mug:2:3@50000").unwrap().value_fen, 5_000_000);
        for bad in [
            "mug",
            "mug:1",
            "mug:ten:1",
            "mug:1:-2",
            "mug:-1:1",
            "mug:1:1@",
            "mug:1:1@1.234",
            "mug:1:1@-1",
            "mug:1:1@1.",
        ] {
            assert!(parse_tier(bad).is_err(), "{bad}");
        }
    }
}
