//! `seckill item create` and `seckill item list`.

use chrono::Utc;
use clap::{Args, Subcommand};
use seckill::seckill::signing::Signer;
use seckill::seckill::{Item, NewItem, Seckill};

use super::time_arg::parse_time;
use super::{DatabaseTarget, Failure};

#[derive(Debug, Subcommand)]
pub(crate) enum ItemCommand {
    /// Create an item with stock and a sale window [start, end).
    Create(CreateArgs),
    /// List items, newest first.
    List(ListArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The item's name (at most 120 characters).
    #[arg(long)]
    name: String,
    /// Units for sale (0 or more).
    #[arg(long, allow_negative_numbers = true)]
    stock: i64,
    /// When the sale opens: RFC 3339, `now`, or an offset like +5m.
    #[arg(long, allow_hyphen_values = true)]
    start: String,
    /// When the sale closes (exclusive): RFC 3339, `now`, or an offset like +1h.
    #[arg(long, allow_hyphen_values = true)]
    end: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// At most this many items.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(target: &DatabaseTarget, command: ItemCommand) -> Result<(), Failure> {
    match command {
        ItemCommand::Create(args) => create(target, args).await,
        ItemCommand::List(args) => list(target, args).await,
    }
}

/// Items need no signing; any signer will do for the service.
async fn service(target: &DatabaseTarget) -> Result<Seckill, Failure> {
    let signer = Signer::classic("unused-by-item-commands")?;
    Ok(Seckill::new(target.connect().await?, signer))
}

async fn create(target: &DatabaseTarget, args: CreateArgs) -> Result<(), Failure> {
    let now = Utc::now();
    let stock = i32::try_from(args.stock)
        .ok()
        .filter(|s| *s >= 0)
        .ok_or_else(|| Failure::new(format!("invalid --stock {}: expected 0 to {}", args.stock, i32::MAX)))?;
    let new_item = NewItem {
        name: args.name,
        stock,
        start_time: parse_time(&args.start, now).map_err(|e| Failure::new(format!("--start: {e}")))?,
        end_time: parse_time(&args.end, now).map_err(|e| Failure::new(format!("--end: {e}")))?,
    };
    new_item.validate()?;
    let item = service(target).await?.create(&new_item).await?;
    if args.json {
        outln!("{}", serde_json::to_string(&item)?);
    } else {
        outln!("created item {}", describe(&item));
    }
    Ok(())
}

async fn list(target: &DatabaseTarget, args: ListArgs) -> Result<(), Failure> {
    let items = service(target).await?.list(args.limit).await?;
    if args.json {
        outln!("{}", serde_json::to_string(&items)?);
    } else if items.is_empty() {
        outln!("no items");
    } else {
        for item in &items {
            outln!("{}", describe(item));
        }
    }
    Ok(())
}

fn describe(item: &Item) -> String {
    format!(
        "{}  {:?}  stock {}  {} .. {}",
        item.seckill_id,
        item.name,
        item.number,
        item.start_time.to_rfc3339(),
        item.end_time.to_rfc3339()
    )
}
