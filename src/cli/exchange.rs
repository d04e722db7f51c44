//! `seckill credit grant|balance|ledger|history`, `seckill gift create|list` and `seckill exchange`: the points
//! exchange from the shell.
//!
//! Input is checked before anything connects, so a bad argument is one line on stderr, a non-zero exit, and
//! nothing changed. `seckill exchange` exits 0 when exchanged (also a repeat of an exchange), 4 when refused, 1
//! when it failed and was rolled back (or never sent), and 5 when its outcome is unknown: retrying with the same
//! request id is safe and answers the first outcome.

use clap::{Args, Subcommand};
use seckill::exchange::{
    Exchange, ExchangeError, ExchangeOutcome, ExchangeRecord, Gift, LedgerEntry, NewGift, RequestId,
};
use serde_json::json;

use super::exit_code::{IN_DOUBT, NOT_FOUND, REFUSED};
use super::{DatabaseTarget, Failure};

#[derive(Debug, Subcommand)]
pub(crate) enum CreditCommand {
    /// Grant points to a user (creating the user's balance on the first grant).
    Grant(GrantArgs),
    /// A user's balance; exits 4 for a user who was never granted points.
    Balance(UserArgs),
    /// A user's ledger: every change of the balance, newest first.
    Ledger(ListUserArgs),
    /// A user's exchanges, newest first, with where each shipment stands (pending, sent, consumed, dead).
    History(ListUserArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum GiftCommand {
    /// Add a gift to the catalogue.
    Create(CreateGiftArgs),
    /// The catalogue, in id order.
    List(JsonArg),
}

#[derive(Debug, Args)]
pub(crate) struct GrantArgs {
    /// The user's id (positive).
    #[arg(long, allow_negative_numbers = true)]
    user: i64,
    /// Points to add (positive).
    #[arg(long, allow_negative_numbers = true)]
    amount: i64,
    /// A note for the ledger (at most 255 characters).
    #[arg(long, default_value = "")]
    note: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct UserArgs {
    /// The user's id (positive).
    #[arg(long, allow_negative_numbers = true)]
    user: i64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ListUserArgs {
    /// The user's id (positive).
    #[arg(long, allow_negative_numbers = true)]
    user: i64,
    /// At most this many entries.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CreateGiftArgs {
    /// The gift's name (at most 120 characters).
    #[arg(long)]
    name: String,
    /// Points per unit (positive).
    #[arg(long, allow_negative_numbers = true)]
    cost: i64,
    /// Units for exchange (0 or more).
    #[arg(long, allow_negative_numbers = true)]
    stock: i64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct JsonArg {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ExchangeArgs {
    /// The user's id (positive).
    #[arg(long, allow_negative_numbers = true)]
    user: i64,
    /// The gift's id, first as the item's and the campaign's are in their commands (or `--gift`).
    #[arg(value_name = "GIFT", allow_negative_numbers = true, required_unless_present = "gift_flag")]
    gift: Option<i64>,
    /// The gift's id as a flag, as earlier versions took it.
    #[arg(long = "gift", id = "gift_flag", allow_negative_numbers = true, conflicts_with = "gift", hide = true)]
    gift_flag: Option<i64>,
    /// Your id for this exchange (1 to 64 of A-Z a-z 0-9 . _ : -): a new one per exchange, the same one to retry.
    #[arg(long, allow_hyphen_values = true)]
    request_id: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn credit(target: &DatabaseTarget, command: CreditCommand) -> Result<(), Failure> {
    match command {
        CreditCommand::Grant(args) => grant(target, args).await,
        CreditCommand::Balance(args) => balance(target, args).await,
        CreditCommand::Ledger(args) => ledger(target, args).await,
        CreditCommand::History(args) => history(target, args).await,
    }
}

pub(crate) async fn gift(target: &DatabaseTarget, command: GiftCommand) -> Result<(), Failure> {
    match command {
        GiftCommand::Create(args) => create_gift(target, args).await,
        GiftCommand::List(args) => list_gifts(target, args).await,
    }
}

async fn service(target: &DatabaseTarget) -> Result<Exchange, Failure> {
    Ok(Exchange::new(target.connect().await?))
}

fn check_user(user: i64) -> Result<(), Failure> {
    if user <= 0 { Err(ExchangeError::InvalidUser(user).into()) } else { Ok(()) }
}

async fn grant(target: &DatabaseTarget, args: GrantArgs) -> Result<(), Failure> {
    check_user(args.user)?;
    if args.amount <= 0 {
        return Err(Failure::new(format!("invalid --amount {}: expected a positive number of points", args.amount)));
    }
    if args.note.chars().count() > seckill::exchange::MAX_NOTE_CHARS {
        return Err(Failure::new("invalid --note: at most 255 characters"));
    }
    let balance = match service(target).await?.grant(args.user, args.amount, &args.note).await {
        Ok(balance) => balance,
        Err(error) if error.is_in_doubt() => {
            return Err(Failure::new(error)
                .hint(format!(
                    "a grant is not idempotent: check `seckill credit ledger --user {}` before granting again",
                    args.user
                ))
                .exit_code(IN_DOUBT));
        }
        Err(error) => return Err(error.into()),
    };
    if args.json {
        outln!("{}", json!({"user_id": args.user, "granted": args.amount, "balance": balance}));
    } else {
        outln!("granted {} points to user {}: balance {balance}", args.amount, args.user);
    }
    Ok(())
}

async fn balance(target: &DatabaseTarget, args: UserArgs) -> Result<(), Failure> {
    check_user(args.user)?;
    let balance = service(target).await?.balance(args.user).await?;
    match (balance, args.json) {
        (_, true) => outln!("{}", json!({"user_id": args.user, "balance": balance})),
        (Some(balance), false) => outln!("user {} has {balance} points", args.user),
        (None, false) => outln!("user {} has never been granted points", args.user),
    }
    if balance.is_some() { Ok(()) } else { Err(Failure::quiet(NOT_FOUND)) }
}

async fn ledger(target: &DatabaseTarget, args: ListUserArgs) -> Result<(), Failure> {
    check_user(args.user)?;
    let entries = service(target).await?.ledger(args.user, args.limit).await?;
    if args.json {
        outln!("{}", serde_json::to_string(&entries)?);
    } else if entries.is_empty() {
        outln!("no ledger entries for user {}", args.user);
    } else {
        entries.iter().for_each(|entry| outln!("{}", describe_entry(entry)));
    }
    Ok(())
}

fn describe_entry(entry: &LedgerEntry) -> String {
    format!(
        "{}  {}  {:+}  balance {}  {:?}  {}",
        entry.id,
        entry.reason.as_str(),
        entry.delta,
        entry.balance_after,
        entry.reference,
        entry.created_at.map_or_else(|| "-".to_string(), |at| at.to_rfc3339())
    )
}

async fn history(target: &DatabaseTarget, args: ListUserArgs) -> Result<(), Failure> {
    check_user(args.user)?;
    let records = service(target).await?.history(args.user, args.limit).await?;
    if args.json {
        outln!("{}", serde_json::to_string(&records)?);
    } else if records.is_empty() {
        outln!("no exchanges for user {}", args.user);
    } else {
        records.iter().for_each(|record| outln!("{}", describe_record(record)));
    }
    Ok(())
}

fn describe_record(record: &ExchangeRecord) -> String {
    format!(
        "{}  gift {}  {} points  request {}  shipment {}",
        record.exchange_id,
        record.gift_id,
        record.exchanged_credit,
        record.request_id,
        record.shipment.map_or("missing", |state| state.as_str())
    )
}

async fn create_gift(target: &DatabaseTarget, args: CreateGiftArgs) -> Result<(), Failure> {
    let stock = i32::try_from(args.stock)
        .ok()
        .filter(|stock| *stock >= 0)
        .ok_or_else(|| Failure::new(format!("invalid --stock {}: expected 0 to {}", args.stock, i32::MAX)))?;
    let new_gift = NewGift { name: args.name, cost: args.cost, stock };
    new_gift.validate()?;
    let gift = service(target).await?.create_gift(&new_gift).await?;
    if args.json {
        outln!("{}", serde_json::to_string(&gift)?);
    } else {
        outln!("created gift {}", describe_gift(&gift));
    }
    Ok(())
}

async fn list_gifts(target: &DatabaseTarget, args: JsonArg) -> Result<(), Failure> {
    let gifts = service(target).await?.gifts().await?;
    if args.json {
        outln!("{}", serde_json::to_string(&gifts)?);
    } else if gifts.is_empty() {
        outln!("no gifts");
    } else {
        gifts.iter().for_each(|gift| outln!("{}", describe_gift(gift)));
    }
    Ok(())
}

fn describe_gift(gift: &Gift) -> String {
    format!("{}  {:?}  cost {}  stock {} of {}", gift.gift_id, gift.name, gift.cost, gift.stock, gift.stocked)
}

pub(crate) async fn exchange(target: &DatabaseTarget, args: ExchangeArgs) -> Result<(), Failure> {
    check_user(args.user)?;
    let gift = args.gift.or(args.gift_flag).ok_or_else(|| Failure::new("which gift? give its id (GIFT)"))?;
    if gift <= 0 {
        return Err(ExchangeError::InvalidGiftId(gift).into());
    }
    let request_id = RequestId::new(args.request_id.as_str())?;
    let service = service(target).await?;
    let outcome = service.exchange(args.user, gift, request_id.as_str()).await?;
    if let ExchangeOutcome::InnerError(error) = &outcome {
        let retry = format!("seckill exchange {gift} --user {} --request-id {request_id}", args.user);
        if error.in_doubt {
            return Err(Failure::new(format!(
                "the outcome is unknown: the exchange was sent but no trustworthy answer came back ({})",
                error.detail
            ))
            .hint(format!("retrying with the same request id is safe and answers the first outcome: `{retry}`"))
            .exit_code(IN_DOUBT));
        }
        if error.unavailable {
            return Err(Failure::new(format!("the database could not be reached, nothing was sent: {}", error.detail))
                .hint(format!("try again later: `{retry}`")));
        }
        return Err(Failure::new(format!(
            "the exchange failed and was rolled back, nothing written: {}",
            error.detail
        ))
        .hint(format!("it may succeed if tried again: `{retry}`")));
    }
    if args.json {
        let (exchange_id, balance_after) = match &outcome {
            ExchangeOutcome::Exchanged { exchange_id, balance_after, .. } => (Some(*exchange_id), Some(*balance_after)),
            _ => (None, None),
        };
        let value = json!({
            "user_id": args.user,
            "gift_id": gift,
            "request_id": request_id.as_str(),
            "outcome": outcome.reason(),
            "repeat": outcome.is_repeat(),
            "exchange_id": exchange_id,
            "balance_after": balance_after,
        });
        outln!("{value}");
    } else {
        outln!("{}", describe_outcome(&outcome, args.user, gift, &request_id));
    }
    if outcome.is_exchanged() { Ok(()) } else { Err(Failure::quiet(REFUSED)) }
}

fn describe_outcome(outcome: &ExchangeOutcome, user: i64, gift: i64, request_id: &RequestId) -> String {
    let what = match outcome {
        ExchangeOutcome::Exchanged { exchange_id, balance_after, .. } => {
            format!("exchanged: exchange {exchange_id}, balance {balance_after}")
        }
        ExchangeOutcome::NotEnoughPoints { .. } => format!("refused: not_enough_points (user {user} has too few)"),
        ExchangeOutcome::OutOfStock { .. } => format!("refused: out_of_stock (gift {gift} has none left)"),
        ExchangeOutcome::UnknownUser { .. } => format!("refused: unknown_user (user {user} was never granted points)"),
        ExchangeOutcome::UnknownGift { .. } => format!("refused: unknown_gift (no gift with id {gift})"),
        ExchangeOutcome::KeyReused { first_gift_id } => {
            return format!(
                "refused: key_reused (request {request_id} was first used for gift {first_gift_id}, not gift {gift}; \
                 nothing done: use a new request id for a new exchange)"
            );
        }
        ExchangeOutcome::InnerError(error) => format!("failed: {}", error.detail),
    };
    if outcome.is_repeat() {
        format!(
            "{what}; the first answer to request {request_id}, nothing done again (use a new request id to try again)"
        )
    } else {
        what
    }
}
