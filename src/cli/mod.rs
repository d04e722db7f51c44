//! The command line: parsing (clap), the database to work on, and one-line errors with non-zero exits.
//!
//! Each subcommand lives in a file of its own; this one only dispatches. Errors are printed once, as one line
//! behind the tool's name, with a hint on a second line when there is a fix.

/// `println!` for a command's output: a closed stdout (`seckill item list | head -n 1`) never panics, as it would
/// with `println!`; the rest of the output is dropped and the command goes on to its end, so that what it started
/// (a throwaway server, a crowd) is stopped and removed as usual.
macro_rules! outln {
    () => {
        $crate::cli::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod attempt;
pub(crate) mod bench;
mod cluster;
mod config_file;
mod database_target;
mod demo;
mod exchange;
mod gift;
mod http_client;
mod item;
mod latencies;
mod lottery;
mod messaging;
mod migrate;
mod serve;
mod signing_args;
mod time_arg;
mod user;

use std::process::ExitCode;

/// What a command's exit code says, the same for every command (clap's usage errors exit 2). Scripts branch on
/// these; `docs/operations.md` lists them.
pub(crate) mod exit_code {
    /// It could not be done: a bad option or value, a database that cannot be reached, a server error.
    pub(crate) const FAILED: u8 = 1;
    /// The database's schema is not this build's: `status` found it, or `serve` refused to start on it.
    pub(crate) const NOT_IN_SYNC: u8 = 3;
    /// The command ran and the answer is no: a seckill, exchange or draw refused (sold out, repeat, not enough
    /// points, all drawn), or an item not open to `expose`.
    pub(crate) const REFUSED: u8 = 4;
    /// The command ran and found nothing: no seckill record, no points account, no such campaign.
    pub(crate) const NOT_FOUND: u8 = 4;
    /// The outcome is unknown: the call was sent and may have committed; the message says how to find out.
    pub(crate) const IN_DOUBT: u8 = 5;
}

use clap::{CommandFactory, Parser, Subcommand};

pub(crate) use database_target::DatabaseTarget;

/// Flash sales (秒杀) on MySQL/MariaDB stored procedures.
#[derive(Debug, Parser)]
#[command(name = "seckill", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// Database to work on, mysql://user:password@host:port/database. Without it, `migrate` and `status` use a
    /// private throwaway MariaDB that is removed on exit.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true, help_heading = GLOBAL)]
    database_url: Option<String>,

    /// A replica of that database to read from (repeatable; the environment variable takes a comma-separated
    /// list), mysql://user:password@host:port/database (the primary's database when none is named). `serve` sends
    /// reads that tolerate staleness there and reads the user's own writes there once it has applied them.
    #[arg(
        long = "replica-url",
        env = "SECKILL_REPLICA_URLS",
        value_delimiter = ',',
        global = true,
        hide_env_values = true,
        help_heading = GLOBAL
    )]
    replica_urls: Vec<String>,

    /// A settings file (TOML) beneath the environment and the command line; without it, `seckill.toml` in the
    /// current directory when there is one. See docs/operations.md.
    #[arg(long, env = "SECKILL_CONFIG", global = true, hide_env_values = true, help_heading = GLOBAL)]
    config: Option<std::path::PathBuf>,

    /// How logs are written to stderr: text (coloured only on a terminal) or json (one object per line, for log
    /// shippers). RUST_LOG filters them.
    #[arg(
        long,
        env = "SECKILL_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true,
        hide_env_values = true,
        help_heading = GLOBAL
    )]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

/// The heading the options every command takes are listed under, apart from the command's own.
const GLOBAL: &str = "Global options";

/// How logs are written.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply pending migrations and (re)create changed stored procedures.
    Migrate(migrate::MigrateArgs),
    /// Show which migrations and procedures are applied, pending or drifted; exits 3 when not in sync.
    Status(migrate::StatusArgs),
    /// Create and list seckill items.
    #[command(subcommand)]
    Item(item::ItemCommand),
    /// Ask the exposer for a user's signed seckill token (or the countdown when the sale is not open).
    Expose(attempt::ExposeArgs),
    /// Run one seckill with a signed token; exits 0 on success, 4 when refused (sold out, repeat, ...), 1 when
    /// it failed and was rolled back, 5 when its outcome is unknown (check with `seckill result`).
    Execute(attempt::ExecuteArgs),
    /// Whether a buyer's seckill of an item went through; exits 0 if it did, 4 if not.
    Result(attempt::ResultArgs),
    /// Users' points for the points exchange: grant, balance, ledger, exchange history.
    #[command(subcommand)]
    Credit(exchange::CreditCommand),
    /// The points exchange's gift catalogue: create and list gifts.
    #[command(subcommand)]
    Gift(exchange::GiftCommand),
    /// Exchange a user's points for a gift; exits 0 when exchanged, 4 when refused, 1 when it failed and was
    /// rolled back, 5 when its outcome is unknown (retry with the same request id: it answers the first outcome).
    Exchange(exchange::ExchangeArgs),
    /// The lottery: create a campaign of prize tiers, draw for a user, show a campaign.
    #[command(subcommand)]
    Lottery(lottery::LotteryCommand),
    /// Users: the signed cookie that signs a user in, for scripts.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Compare strategies on one hot item (naive client transaction, one CALL per seckill, batched) and check
    /// the books after every run; exits non-zero if they do not balance.
    Bench(bench::BenchArgs),
    /// Serve the classic HTTP API and the sale page.
    Serve(serve::ServeArgs),
    /// Start the whole topology here: the database (a private primary + replica pair unless --database-url), a
    /// Redis, N `serve` instances and an nginx load balancer in front that answers closed items itself; print
    /// what runs where; stop it all on Ctrl-C or SIGTERM.
    Cluster(cluster::ClusterArgs),
    /// Relay the outbox to RabbitMQ (the reliable message service), until Ctrl-C or SIGTERM.
    Relay(messaging::RelayArgs),
    /// Consume shipment requests into the warehouse's own database, until Ctrl-C or SIGTERM.
    Warehouse(messaging::WarehouseArgs),
    /// Deliver lottery wins through the gift service, paced and once in effect, until Ctrl-C or SIGTERM.
    GiftWorker(gift::GiftWorkerArgs),
    /// Serve a local gift-service stub (idempotent, failing a chosen share of calls) for demos and trials.
    GiftStub(gift::GiftStubArgs),
    /// The outbox for operators: counts by state, dead messages, retries.
    #[command(subcommand)]
    Messages(messaging::MessagesCommand),
    /// The whole thing at once, act by act (a flash sale, a points exchange, a lottery): migrate, release a
    /// crowd, check the books against the database; exits non-zero if they do not balance.
    Demo(demo::DemoArgs),
}

/// A failed command: what to print, and how to exit.
#[derive(Debug)]
pub(crate) struct Failure {
    message: Option<String>,
    hint: Option<String>,
    exit_code: u8,
}

impl Failure {
    /// A failure with exit code 1.
    pub(crate) fn new(message: impl ToString) -> Self {
        Failure { message: Some(message.to_string()), hint: None, exit_code: exit_code::FAILED }
    }

    /// A non-zero exit with nothing more to say: the command already printed its answer.
    pub(crate) fn quiet(exit_code: u8) -> Self {
        Failure { message: None, hint: None, exit_code }
    }

    /// Adds a second line that says how to fix it.
    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Exits with `code` instead of 1.
    pub(crate) fn exit_code(mut self, code: u8) -> Self {
        self.exit_code = code;
        self
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure::new(error)
    }
}

/// Parses the arguments, runs the command, and turns the outcome into an exit code.
pub(crate) fn main() -> ExitCode {
    let args = match config_file::command_line(&Cli::command(), std::env::args_os().collect()) {
        Ok(args) => args,
        Err(failure) => return report(failure),
    };
    let cli = Cli::parse_from(args);
    // Logs go to stderr, filtered by RUST_LOG; by default warnings, plus request logs for `serve` (the demo
    // serves thousands of requests and would drown its own report).
    let default_filter = match cli.command {
        Command::Serve(_) => "warn,tower_http=info",
        // lapin logs a broken connection at error level from several places; the relay and consumers report
        // each one once, as a warning, and reconnect.
        Command::Relay(_) | Command::Warehouse(_) | Command::GiftWorker(_) => "warn,lapin=off",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // Colour codes only for a person at a terminal: in a file or a pipe they are noise to every tool that reads it.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            return report(Failure::new(format!("cannot start the async runtime: {error}")));
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report(failure),
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let target = DatabaseTarget::new(cli.database_url).with_replicas(cli.replica_urls);
    match cli.command {
        Command::Migrate(args) => migrate::migrate(&target, args).await,
        Command::Status(args) => migrate::status(&target, args).await,
        Command::Item(command) => item::run(&target, command).await,
        Command::Expose(args) => attempt::expose(&target, args).await,
        Command::Execute(args) => attempt::execute(&target, args).await,
        Command::Result(args) => attempt::result(&target, args).await,
        Command::Credit(command) => exchange::credit(&target, command).await,
        Command::Gift(command) => exchange::gift(&target, command).await,
        Command::Exchange(args) => exchange::exchange(&target, args).await,
        Command::Lottery(command) => lottery::run(&target, command).await,
        Command::User(command) => user::run(command),
        Command::Bench(args) => bench::run(&target, args).await,
        Command::Serve(args) => serve::run(&target, args).await,
        Command::Cluster(args) => cluster::run(&target, args).await,
        Command::Demo(args) => demo::run(&target, args).await,
        Command::Relay(args) => messaging::relay(&target, args).await,
        Command::Warehouse(args) => messaging::warehouse(args).await,
        Command::GiftWorker(args) => gift::gift_worker(args).await,
        Command::GiftStub(args) => gift::gift_stub(args).await,
        Command::Messages(command) => messaging::messages(&target, command).await,
    }
}

/// Set once stdout cannot be written to: whoever read the output has gone.
static OUTPUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes a command's output to stdout (see [`outln`]), or nothing once stdout is closed. A failure other than
/// a closed pipe (a full disk under a redirect) is said once on stderr.
pub(crate) fn write_out(output: std::fmt::Arguments<'_>) {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    if OUTPUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(output).and_then(|()| stdout.flush()) {
        OUTPUT_CLOSED.store(true, Ordering::Relaxed);
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("seckill: warning: the output is lost: {error}");
        }
    }
}

fn report(failure: Failure) -> ExitCode {
    // One line: the first line of the message, so a multi-line server error never floods the terminal.
    if let Some(message) = failure.message {
        eprintln!("seckill: error: {}", message.lines().collect::<Vec<_>>().join(" "));
    }
    if let Some(hint) = failure.hint {
        eprintln!("hint: {hint}");
    }
    ExitCode::from(failure.exit_code)
}
