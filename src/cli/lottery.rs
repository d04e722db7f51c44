//! `seckill lottery create|draw|status`: the lottery from the shell.
//!
//! Input is checked before anything connects, so a bad argument is one line on stderr, a non-zero exit, and
//! nothing changed. `seckill lottery draw` exits 0 for a recorded draw (won or no prize, also a repeat), 4 when
//! refused (all drawn, not started, ended, unknown campaign), 1 when it failed and nothing was written, and 5
//! when its outcome is unknown: drawing again is safe and answers what the database holds.

use clap::{Args, Subcommand};
use seckill::lottery::{CampaignPhase, CampaignStatus, DrawOutcome, DrawOutcomeView, Lottery, NewCampaign, NewTier};
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
    /// A campaign now: its window, the prizes left per tier, draws and wins; exits 4 for an unknown campaign.
    Status(StatusArgs),
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
    /// A prize tier as NAME:STOCK:WEIGHT (e.g. "Gold mug:10:1"); repeat for each tier, in wheel order.
    #[arg(long = "tier", required = true)]
    tiers: Vec<String>,
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
    }
}

async fn service(target: &DatabaseTarget) -> Result<Lottery, Failure> {
    Ok(Lottery::new(target.connect().await?))
}

/// `NAME:STOCK:WEIGHT`; the name may itself hold colons (the last two fields are the numbers).
fn parse_tier(text: &str) -> Result<NewTier, Failure> {
    let invalid = |why: &str| {
        Failure::new(format!("invalid --tier {text:?}: {why}")).hint("use NAME:STOCK:WEIGHT, e.g. \"Gold mug:10:1\"")
    };
    let mut fields = text.rsplitn(3, ':');
    let (Some(weight), Some(stock), Some(name)) = (fields.next(), fields.next(), fields.next()) else {
        return Err(invalid("expected NAME:STOCK:WEIGHT"));
    };
    let stock = stock.trim().parse().map_err(|_| invalid("the stock must be a whole number, 0 or more"))?;
    let weight = weight.trim().parse().map_err(|_| invalid("the weight must be a positive whole number"))?;
    Ok(NewTier { name: name.trim().to_string(), stock, weight })
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
    new_campaign.validate()?;
    let campaign = service(target).await?.create_campaign(&new_campaign).await?;
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
    for tier in &campaign.tiers {
        text.push_str(&format!(
            "  tier {} {:?}: weight {}, {} of {} left\n",
            tier.tier_id, tier.name, tier.weight, tier.stock, tier.stocked
        ));
    }
    let all_drawn = if status.is_all_drawn() { " (all drawn)" } else { "" };
    text.push_str(&format!(
        "  {} prizes left{all_drawn}; {} draws recorded, {} won\n",
        status.prizes_left, status.draws, status.wins
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_are_name_stock_weight_and_names_may_hold_colons() {
        assert_eq!(parse_tier("Gold mug:10:1").unwrap(), NewTier { name: "Gold mug".into(), stock: 10, weight: 1 });
        assert_eq!(parse_tier("a:b:2:3").unwrap().name, "a:b");
        for bad in ["mug", "mug:1", "mug:ten:1", "mug:1:-2", "mug:-1:1"] {
            assert!(parse_tier(bad).is_err(), "{bad}");
        }
    }
}
