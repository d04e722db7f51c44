//! What a cluster is made of: how many instances of which binary, with which options, behind a balancer on
//! which address, over which database and Redis.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::database::ClusterDatabase;
use crate::local::balancer::{DEFAULT_KEY_PREFIX, Interception};

/// The log filter of the instances: warnings, and a line for every request (to follow a request through the
/// cluster; counts come from the instances' metrics listeners).
pub const DEFAULT_INSTANCE_LOG_FILTER: &str = "warn,tower_http=info";

/// The most instances one cluster starts: each is a process with its own pools on a machine of few cores.
pub const MAX_INSTANCES: usize = 32;

/// Which Redis the instances and the balancer share.
#[derive(Debug, Clone)]
pub enum ClusterRedis {
    /// A private throwaway Redis started for the cluster and removed with it.
    Private,
    /// A Redis of yours, `redis://host:port/db`.
    Url(String),
}

/// What the cluster needs to know of the app its instances serve, as the app describes itself
/// ([`crate::app::served`]): the cluster and its balancer know no route of their own.
#[derive(Debug, Clone)]
pub struct ServedApp {
    /// The `seckill` binary whose `serve` the instances run (`std::env::current_exe()` for the CLI itself).
    pub binary: PathBuf,
    /// A `GET` path that answers 200 once an instance serves and reaches its database.
    pub ready_path: String,
    /// The page a person opens first, shown in [`super::Cluster::describe`].
    pub front_page: String,
    /// What the balancer answers itself from the shared state in Redis.
    pub interceptions: Vec<Interception>,
    /// The balancer's JSON answer when no instance answered (502, 504).
    pub gateway_error: String,
    /// Paths the balancer answers with [`Self::not_found`] itself and never passes on: operational endpoints.
    pub internal_paths: Vec<String>,
    /// The app's JSON answer for a route it does not have (404).
    pub not_found: String,
}

/// A cluster to start: [`super::Cluster::start`].
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The app the instances serve.
    pub app: ServedApp,
    /// How many instances (1 to [`MAX_INSTANCES`]).
    pub instances: usize,
    /// Where the balancer listens; `None` for a free loopback port.
    pub balancer_listen: Option<SocketAddr>,
    /// The database.
    pub database: ClusterDatabase,
    /// The Redis.
    pub redis: ClusterRedis,
    /// The prefix of the shared-state keys the balancer reads.
    pub key_prefix: String,
    /// More `seckill serve` options for every instance (rate limits, ...).
    pub serve_args: Vec<String>,
    /// Environment for every instance: set (`Some`) or removed (`None`); the signing secrets go here, not on
    /// the command line, where any user of the machine could read them.
    pub instance_env: Vec<(String, Option<String>)>,
    /// The instances' `RUST_LOG`.
    pub instance_log_filter: String,
}

impl ClusterOptions {
    /// Two instances of `app` on a private database and Redis, the balancer on a free loopback port.
    pub fn new(app: ServedApp) -> Self {
        ClusterOptions {
            app,
            instances: 2,
            balancer_listen: None,
            database: ClusterDatabase::Private,
            redis: ClusterRedis::Private,
            key_prefix: DEFAULT_KEY_PREFIX.to_string(),
            serve_args: Vec::new(),
            instance_env: Vec::new(),
            instance_log_filter: DEFAULT_INSTANCE_LOG_FILTER.to_string(),
        }
    }

    /// `count` instances.
    pub fn instances(mut self, count: usize) -> Self {
        self.instances = count;
        self
    }

    /// The balancer on `address`.
    pub fn balancer_listen(mut self, address: SocketAddr) -> Self {
        self.balancer_listen = Some(address);
        self
    }

    /// The instances on this database.
    pub fn database(mut self, database: ClusterDatabase) -> Self {
        self.database = database;
        self
    }

    /// The instances and the balancer on this Redis.
    pub fn redis(mut self, redis: ClusterRedis) -> Self {
        self.redis = redis;
        self
    }

    /// Another `seckill serve` option for every instance.
    pub fn serve_arg(mut self, arg: impl Into<String>) -> Self {
        self.serve_args.push(arg.into());
        self
    }

    /// An environment variable for every instance.
    pub fn instance_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.instance_env.push((name.into(), Some(value.into())));
        self
    }

    /// Every instance signs and checks seckill URLs (and user cookies) by HMAC under `secret`, and under no other
    /// key, whatever this process's environment says.
    pub fn hmac_secret(self, secret: impl Into<String>) -> Self {
        self.instance_env("SECKILL_SIGNING", "hmac")
            .instance_env("SECKILL_SECRET", secret)
            .instance_env_remove("SECKILL_PREVIOUS_SECRET")
    }

    /// An environment variable removed from every instance's environment.
    pub fn instance_env_remove(mut self, name: impl Into<String>) -> Self {
        self.instance_env.push((name.into(), None));
        self
    }
}
