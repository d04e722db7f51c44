//! # seckill
//!
//! Flash sales (秒杀), lotteries (抽奖) and points exchanges (积分兑换) on MySQL/MariaDB stored procedures.
//!
//! Each decision that matters (take a unit and record the buyer, draw a prize, exchange points for a gift) runs
//! inside the database, in one stored procedure call: the hot row's lock is held for one statement and a
//! commit, never across a network round trip, and concurrent decisions on one hot row are merged into one
//! transaction per batch. What must reach another service (a shipment, a prize) is written to an outbox in the
//! same transaction and delivered at least once, with effects that happen once. A caller is told "success" only
//! for what committed, "rolled back" only when the server proved it, and otherwise "in doubt", with a way to
//! ask later. This crate is the thin layer around those procedures: it migrates them, signs URLs, batches and
//! calls the procedures, relays the messages, measures, and tests it all on real servers.
//!
//! ```no_run
//! use seckill::database::ConnectOptions;
//! use seckill::seckill::Seckill;
//! use seckill::seckill::signing::Signer;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = ConnectOptions::new("mysql://shop:secret@127.0.0.1:3306/shop").build_pool()?;
//! seckill::migrate::Migrator::embedded()?.run(&pool).await?;
//! let service = Seckill::new(pool, Signer::hmac(std::env::var("SECKILL_SECRET")?)?);
//! let app = axum::Router::new().merge(seckill::seckill::http::router(service));
//! axum::serve(tokio::net::TcpListener::bind("127.0.0.1:8080").await?, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Map
//!
//! Domains, each with its procedures' calls, lanes, outcomes, books, the messages it produces, its HTTP router
//! and page, and its consumers:
//! - [`seckill`]: flash sales: items, signed URLs, the one-round-trip execution ([`seckill::Seckill`],
//!   [`seckill::Outcome`]; HTTP: [`seckill::http::router`]).
//! - [`exchange`]: the points exchange: balances, gifts, exchanges that request a shipment, and the warehouse
//!   that consumes them ([`exchange::Exchange`], [`exchange::warehouse::ShipmentHandler`]; HTTP:
//!   [`exchange::http::router`]).
//! - [`lottery`]: campaigns of weighted prize tiers, batched draws, prizes delivered through a gift service
//!   ([`lottery::Lottery`], [`lottery::delivery::GiftWorker`]; HTTP: [`lottery::http::router`]).
//!
//! Shared machinery, which knows no domain:
//! - [`database`]: pools, procedure calls that tell "rolled back" from "in doubt", server errors in words,
//!   the read/write split ([`database::ConnectOptions`], [`database::ReadWriteSplit`]).
//! - [`group_commit`]: per-key lanes that merge concurrent requests for a hot row into one transaction
//!   ([`group_commit::GroupCommit`]).
//! - [`messaging`]: the reliable message service: outbox, relay to RabbitMQ, consumers that call back
//!   ([`messaging::Relay`], [`messaging::consume`]).
//! - [`shared_state`]: closed facts shared through Redis over a bounded connection
//!   ([`shared_state::ClosedState`], [`shared_state::BoundedRedis`]).
//! - [`migrate`]: versioned migrations and repeatable stored procedures ([`migrate::Migrator`]).
//! - [`http`]: what every router shares: the envelope, errors, the user seam, layers
//!   ([`http::ApiError`], [`http::RequestUser`], [`http::SignedUserCookie`]).
//! - [`prometheus`]: the metrics recorder, `GET /metrics` for a listener of its own, and every metric's name
//!   ([`prometheus::install`]).
//!
//! The whole app, the one module that knows every domain: [`app`], the three together as `seckill serve` runs
//! them, and what a balancer in front may answer for them ([`app::served`]).
//!
//! Local servers and testing:
//! - [`local`]: throwaway MariaDB, replica pair, Redis, RabbitMQ, nginx balancer, gift service stub, TCP proxy,
//!   and the whole cluster ([`local::LocalMariaDb`], [`local::Cluster`]).
//! - [`testing`] (feature `testing`): a fresh migrated database per test ([`testing::TestDatabase`]), also on
//!   a primary + replica pair ([`testing::ReplicatedTestDatabase`]).

// Domains.
pub mod exchange;
pub mod lottery;
pub mod seckill;

// The whole app.
pub mod app;

// Shared machinery.
pub mod database;
pub mod group_commit;
pub mod http;
pub mod messaging;
pub mod migrate;
pub mod prometheus;
pub mod shared_state;

// Local servers and testing. The harness is a feature for users' own tests; documented either way.
pub mod local;
#[cfg(any(feature = "testing", doc))]
pub mod testing;
