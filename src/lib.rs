//! # seckill
//!
//! Flash sales (秒杀), lotteries (抽奖) and points exchanges (积分兑换) on MySQL/MariaDB stored procedures.
//!
//! Each decision that matters (take a unit and record the buyer, draw a prize, exchange points for a gift) runs
//! inside the database, in one stored procedure call: the hot row's lock is held for one statement and a
//! commit, never across a network round trip, and concurrent decisions on one hot row are merged into one
//! transaction per batch. What must reach another service (a shipment, a prize) is written to an outbox in the
//! same transaction and delivered at least once, with effects that happen once. This crate is the thin layer
//! around those procedures: it migrates them, signs URLs, batches and calls the procedures, relays the
//! messages, measures, and tests it all on real servers.
//!
//! ## Map
//! - [`migrate`]: schema migrations and repeatable stored procedures ([`migrate::Migrator`]).
//! - [`shared_state`]: closed facts (sold out, ended, all drawn) shared through Redis
//!   ([`shared_state::ClosedState`]) over a bounded Redis connection ([`shared_state::BoundedRedis`]).
//! - [`cluster`]: the whole topology on one machine (database, Redis, N `seckill serve` instances, the load
//!   balancer in front), started and torn down as one ([`cluster::Cluster`]).
//! - [`database`]: a pool with the session settings the procedures rely on ([`database::ConnectOptions`]),
//!   procedure calls that tell "rolled back" from "in doubt" ([`database::call`]), and rows read without
//!   panicking ([`database::rows`]); the read/write split over a primary and replicas, with read-your-writes by
//!   GTID ([`database::ReadWriteSplit`], [`database::gtid`]).
//! - [`exchange`]: the points exchange: balances, gifts, exchanges that request a shipment, and their books
//!   ([`exchange::Exchange`], [`exchange::ExchangeOutcome`]).
//! - [`gift_delivery`]: the lottery's wins delivered through a gift service, paced and once in effect
//!   ([`gift_delivery::GiftWorker`]), and a real gift-service stub ([`gift_delivery::GiftServiceStub`]).
//! - [`group_commit`]: per-key lanes that merge concurrent requests for a hot row into one transaction
//!   ([`group_commit::GroupCommit`]), shared by every domain.
//! - [`http`]: the classic HTTP API and the sale page as an axum router ([`http::router`]), and what every
//!   router shares: the envelope, errors, and the user seam ([`http::RequestUser`], [`http::SignedUserCookie`]).
//! - [`local_balancer`]: a real load balancer (nginx with Lua) in front of app instances, answering closed items
//!   and finished lotteries itself from the shared state in Redis ([`local_balancer::LocalBalancer`]).
//! - [`local_rabbitmq`]: a private, throwaway RabbitMQ node ([`local_rabbitmq::LocalRabbitMq`]).
//! - [`local_redis`]: a private, throwaway Redis ([`local_redis::LocalRedis`]).
//! - [`local_replication`]: a private primary + replica pair with GTID replication
//!   ([`local_replication::LocalReplicaPair`]).
//! - [`local_server`]: a private, throwaway MariaDB ([`local_server::LocalServer`]).
//! - [`lottery`]: the lottery: campaigns of weighted prize tiers, durable batched draws, "all drawn" shared
//!   through Redis, and the books ([`lottery::Lottery`], [`lottery::DrawOutcome`]); its API and page as an axum
//!   router ([`lottery::http::router`]).
//! - [`messaging`]: the reliable message service: outbox, relay to RabbitMQ, consumers that call back
//!   ([`messaging::Relay`], [`messaging::consume`]).
//! - [`prometheus`]: Prometheus metrics: the recorder, `GET /metrics`, and every metric's name
//!   ([`prometheus::install`], [`prometheus::router`]).
//! - [`seckill`]: items, the exposer and execution ([`seckill::Seckill`], [`seckill::Outcome`]).
//! - [`signing`]: signed seckill URLs, HMAC-MD5 or the classic md5 ([`signing::Signer`]).
//! - [`bench`]: `seckill bench`, the strategies side by side with the books checked.
//! - [`tcp_proxy`]: a loopback proxy that adds latency and cuts connections, for benchmarks and fault tests.
//! - [`warehouse`]: the warehouse's own database and its idempotent shipment consumer
//!   ([`warehouse::ShipmentHandler`]).
//! - `testing` (feature `testing`): a fresh migrated database per test ([`testing::TestDatabase`]), also on a
//!   primary + replica pair ([`testing::ReplicatedTestDatabase`]).

pub mod bench;
pub mod cluster;
pub mod database;
pub mod exchange;
pub mod gift_delivery;
pub mod group_commit;
pub mod http;
pub mod local_balancer;
pub mod local_rabbitmq;
pub mod local_redis;
pub mod local_replication;
pub mod local_server;
pub mod lottery;
pub mod messaging;
pub mod migrate;
pub mod prometheus;
pub mod seckill;
pub mod shared_state;
pub mod signing;
pub mod tcp_proxy;
#[cfg(feature = "testing")]
pub mod testing;
pub mod warehouse;
