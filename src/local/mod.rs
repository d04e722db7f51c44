//! Throwaway servers, started from the binaries on this machine (Debian's packages) in temporary folders on
//! free loopback ports, and removed when this process exits, however it exits: what the tests, the demo, the
//! benchmarks and `seckill cluster` run on when no server of yours is named.
//!
//! - [`mariadb`]: a private MariaDB ([`LocalMariaDb`]), and [`replication`]: a primary + replica pair with
//!   GTID replication ([`LocalReplicaPair`]).
//! - [`redis`]: a private Redis ([`LocalRedis`]); [`rabbitmq`]: a private RabbitMQ node ([`LocalRabbitMq`]).
//! - [`balancer`]: nginx with Lua in front of app instances, answering what the app tells it to from the shared
//!   state in Redis ([`LocalBalancer`]); [`cluster`]: the whole topology, N `seckill serve` instances behind
//!   the balancer over a database and a Redis ([`Cluster`]).
//! - [`tcp_proxy`]: a loopback proxy that adds latency and cuts connections ([`TcpProxy`]), and
//!   [`gift_service`]: a real gift service on loopback that fails on purpose ([`GiftServiceStub`]).
//!
//! They share one piece of scaffolding (a scratch folder with its clean-up guardian, binaries, free ports, the
//! supervised process), and none of them knows a domain: what a balancer answers for the app is given to it
//! as bytes by the app ([`crate::app`]).

pub mod balancer;
pub mod cluster;
pub mod gift_service;
pub mod mariadb;
pub mod rabbitmq;
pub mod redis;
pub mod replication;
mod scratch;
pub mod tcp_proxy;

use thiserror::Error;

pub use balancer::LocalBalancer;
pub use cluster::Cluster;
pub use gift_service::GiftServiceStub;
pub use mariadb::LocalMariaDb;
pub use rabbitmq::LocalRabbitMq;
pub use redis::LocalRedis;
pub use replication::LocalReplicaPair;
pub use tcp_proxy::TcpProxy;

/// Why a private server could not be started.
#[derive(Debug, Error)]
pub enum LocalServerError {
    /// MariaDB's server binaries are not installed (the other servers say what is missing in `StartFailed`).
    #[error(
        "no MariaDB server binaries found (looked for mariadbd and mariadb-install-db on PATH, in /usr/sbin and \
         /usr/bin); install them with `sudo apt-get install mariadb-server` (or run .ci/install), or set \
         DATABASE_URL to a server of your own"
    )]
    NotInstalled,
    /// A step of starting the server failed.
    #[error("starting a private server failed ({step}): {detail}")]
    StartFailed { step: &'static str, detail: String },
}
