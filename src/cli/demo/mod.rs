//! `seckill demo`, the main job: the toolkit's domains one act after another, each a crowd (through the real HTTP
//! API where the domain has one) followed by a reconciliation against the database, exiting non-zero if any
//! check fails.
//!
//! `seckill demo` runs every act in order; `seckill demo exchange` (or several names) runs only those. An act
//! is a file with its own flags (under its own heading in `--help`) and a `run` that takes the shared
//! [`Context`] and answers what it serves, for `--serve`; adding one is a variant of [`Act`] and a line in
//! [`run`].

mod checks;
mod exchange_act;
mod exchange_crowd;
mod exchange_reconciliation;
mod lottery_act;
mod lottery_crowd;
mod lottery_reconciliation;
mod message_service;
mod seckill_act;
mod stage;

use std::net::SocketAddr;

use axum::Router;
use clap::{Args, ValueEnum};
use seckill::http::SignedUserCookie;
use seckill::messaging::Running;

use super::signing_args::random_secret;
use super::{DatabaseTarget, Failure};
use message_service::MessageService;
use stage::Stage;

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// The acts to run, in the order given (default: all, in this order).
    #[arg(value_enum)]
    acts: Vec<Act>,
    /// Requests in flight at once, in every act (the lottery's: draws).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=4096))]
    concurrency: u32,
    /// Address for the HTTP server (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0", value_parser = super::serve::listen_address)]
    listen: SocketAddr,
    /// Keep serving every act's API and pages after the last act, until Ctrl-C.
    #[arg(long)]
    serve: bool,
    #[command(flatten)]
    seckill: seckill_act::SeckillActArgs,
    #[command(flatten)]
    exchange: exchange_act::ExchangeActArgs,
    #[command(flatten)]
    lottery: lottery_act::LotteryActArgs,
}

/// The acts, in the order `seckill demo` runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Act {
    /// A flash sale: a crowd counts down, asks the exposer and buys; some retry, some tamper with the URL.
    Seckill,
    /// A points exchange: a crowd exchanges points for gifts; the warehouse ships them through RabbitMQ.
    Exchange,
    /// A lottery: a crowd draws at once, far more users than prizes; a gift worker delivers the wins.
    Lottery,
}

/// What every act gets.
struct Context<'a> {
    /// The shop's database.
    target: &'a DatabaseTarget,
    /// Where acts serve their API to their crowd.
    stage: &'a Stage,
    /// Requests in flight at once.
    concurrency: u32,
    /// This run's HMAC key (seckill URLs, the exchange's user cookie).
    secret: &'a str,
    /// The relay of every act's messages, started by the first act that has some.
    messages: MessageService,
}

/// An act whose books balanced: what it serves, for `--serve`.
struct Finished {
    /// Its routes, without the host's fallbacks and logs (the stage adds them once).
    routes: Router,
    /// What to tell someone who opens a browser on the stage: lines with `{base}` for the stage's URL.
    pages: Vec<String>,
    /// What must keep running while the routes are served (a relay, a consumer).
    keep_running: Vec<Running>,
}

pub(crate) async fn run(target: &DatabaseTarget, args: DemoArgs) -> Result<(), Failure> {
    let acts = if args.acts.is_empty() { Act::value_variants().to_vec() } else { args.acts.clone() };
    let stage = Stage::bind(args.listen).await?;
    let secret = random_secret()?;
    let context =
        Context { target, stage: &stage, concurrency: args.concurrency, secret: &secret, messages: Default::default() };
    let mut finished = Vec::new();
    let names: Vec<&str> = acts.iter().map(|act| act.name()).collect();
    for act in acts {
        let gap = if finished.is_empty() { "" } else { "\n" };
        outln!("{gap}== {} act ==", act.name());
        finished.push(match act {
            Act::Seckill => seckill_act::run(&context, &args.seckill).await?,
            Act::Exchange => exchange_act::run(&context, &args.exchange).await?,
            Act::Lottery => lottery_act::run(&context, &args.lottery).await?,
        });
    }
    // An act that meets an unexpected answer or a check that fails has ended the demo with an error already.
    outln!("\ndemo: {} played; every answer was expected and every book balances", names.join(", "));
    // Stopped after the acts' consumers, so that their last callbacks are still marked consumed; with `--serve`,
    // kept until serving ends.
    let relay = context.messages.into_relay();
    if !args.serve {
        for act in finished {
            for running in act.keep_running {
                running.stop().await;
            }
        }
        if let Some(relay) = relay {
            relay.stop().await;
        }
        return Ok(());
    }
    let base = stage.base_url();
    // Pages you can sign in to: anyone as anyone, as a demo should.
    let mut routes = seckill::app::front_door().development_sign_in(SignedUserCookie::new(&secret)?).router();
    outln!("sign in as any user at {base}/signin, or start at {base}/");
    for act in &finished {
        routes = routes.merge(act.routes.clone());
        act.pages.iter().for_each(|page| outln!("{}", page.replace("{base}", &base)));
    }
    stage.serve_until_signal(routes).await
}

impl Act {
    fn name(self) -> &'static str {
        match self {
            Act::Seckill => "seckill",
            Act::Exchange => "exchange",
            Act::Lottery => "lottery",
        }
    }
}
