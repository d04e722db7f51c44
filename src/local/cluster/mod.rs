//! The whole topology on one machine, started by one call and torn down by one drop: the database (migrated
//! once), a Redis for the shared state, N `seckill serve` instances of the same binary on free loopback ports,
//! and a real load balancer in front ([`crate::local::balancer`]: nginx, which answers closed things itself
//! from Redis, as the app describes them). `seckill cluster` runs it until Ctrl-C; tests use it as a library:
//!
//! ```no_run
//! use seckill::local::cluster::{Cluster, ClusterOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let app = seckill::app::served("target/debug/seckill");
//! let options = ClusterOptions::new(app).instances(3).hmac_secret("a secret of 16+ bytes");
//! let cluster = Cluster::start(options).await?;
//! println!("{}", cluster.describe());
//! // Requests go to cluster.balancer_url(); a fault test kills an instance by its pid:
//! cluster.instances()[0].kill()?;
//! drop(cluster); // the balancer, the instances, Redis and the database stop; their folders are removed
//! # Ok(())
//! # }
//! ```
//!
//! Every process is a child of this one, in its own process group (a Ctrl-C is the cluster's to handle), and
//! is stopped by its pid, the balancer first so that no request reaches an instance that is going away. Each has
//! a pid file in a scratch folder watched by a guardian ([`crate::local`]), so that even a SIGKILL of this
//! process leaves nothing running.
//!
//! The instances share the HMAC secret and everything else given in [`ClusterOptions::instance_env`], read the
//! database from `DATABASE_URL` (and replicas from `SECKILL_REPLICA_URLS`), and Redis from `REDIS_URL`: every
//! URL that may hold a password in their environment, none on a command line. They log every
//! request to `instance-N.log` in the cluster's folder, and serve their metrics on a loopback listener of their
//! own ([`AppInstance::metrics_address`]), which the balancer never passes requests to.

mod app_requests;
mod database;
mod error;
mod instance;
mod options;
mod probe;
mod shared_state;

use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant};

pub use database::{ClusterDatabase, PRIVATE_DATABASE, RunningDatabase};
pub use error::ClusterError;
pub use instance::AppInstance;
pub use options::{ClusterOptions, ClusterRedis, DEFAULT_INSTANCE_LOG_FILTER, MAX_INSTANCES, ServedApp};

use crate::database::url_without_password as without_password;
use crate::local::balancer::{BalancerConfig, ClosedStateConfig, LocalBalancer};
use crate::local::redis::LocalRedis;
use crate::local::scratch::ScratchDir;
use error::local;
use instance::InstanceSetting;

/// A running cluster; dropping it tears everything down.
#[derive(Debug)]
pub struct Cluster {
    // Dropped in this order: the balancer, the instances, Redis, the database, and last the folder's guardian.
    balancer: LocalBalancer,
    instances: Vec<AppInstance>,
    redis_url: String,
    redis: Option<LocalRedis>,
    database: RunningDatabase,
    key_prefix: String,
    app: ServedApp,
    dir: ScratchDir,
}

impl Cluster {
    /// Starts the database (and migrates it), Redis, the instances (waiting until each answers) and the
    /// balancer (waiting until a request through it is answered).
    ///
    /// # Errors
    /// [`ClusterError`] saying which part did not start; what had started is stopped again.
    pub async fn start(options: ClusterOptions) -> Result<Cluster, ClusterError> {
        if !(1..=MAX_INSTANCES).contains(&options.instances) {
            return Err(ClusterError::InvalidOptions(format!(
                "--instances must be between 1 and {MAX_INSTANCES}, not {}",
                options.instances
            )));
        }
        let dir = ScratchDir::create("cluster")
            .map_err(|e| ClusterError::Local { step: "its folder", detail: e.to_string() })?;
        if let ClusterDatabase::Given { replica_urls, .. } = &options.database
            && let Some(at) = replica_urls.iter().position(|url| url.contains(','))
        {
            // They reach the instances as one comma-separated list.
            return Err(ClusterError::InvalidOptions(format!(
                "replica URL {} holds a comma; write it percent-encoded (%2C)",
                at + 1
            )));
        }
        let database = options.database.start().await?;
        let (redis_url, redis) = match &options.redis {
            ClusterRedis::Url(url) => (url.clone(), None),
            ClusterRedis::Private => {
                let redis = tokio::task::spawn_blocking(LocalRedis::start)
                    .await
                    .map_err(|e| local("starting Redis")(std::io::Error::other(e)))?
                    .map_err(ClusterError::Redis)?;
                (redis.url(), Some(redis))
            }
        };
        let setting = InstanceSetting {
            primary_url: database.primary_url(),
            replica_urls: database.replica_urls(),
            redis_url: &redis_url,
        };
        let mut instances = Vec::with_capacity(options.instances);
        for number in 1..=options.instances {
            instances.push(AppInstance::start(number, &options, &setting, dir.path()).await?);
        }
        let mut closed_state = ClosedStateConfig::new(redis_url.clone(), options.app.interceptions.clone());
        closed_state.key_prefix = options.key_prefix.clone();
        let mut config = BalancerConfig::new(instances.iter().map(AppInstance::address).collect());
        config.listen = options.balancer_listen;
        config.closed_state = Some(closed_state);
        config.gateway_error = options.app.gateway_error.clone();
        config.internal_paths = options.app.internal_paths.clone();
        config.not_found = options.app.not_found.clone();
        let balancer = tokio::task::spawn_blocking(move || LocalBalancer::start(&config))
            .await
            .map_err(|e| local("starting the balancer")(std::io::Error::other(e)))??;
        let cluster = Cluster {
            balancer,
            instances,
            redis_url,
            redis,
            database,
            key_prefix: options.key_prefix,
            app: options.app,
            dir,
        };
        cluster.wait_for_balancer().await?;
        Ok(cluster)
    }

    async fn wait_for_balancer(&self) -> Result<(), ClusterError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while probe::status_of(self.balancer.address(), &self.app.ready_path, Duration::from_secs(2)).await != Some(200)
        {
            if Instant::now() > deadline {
                return Err(ClusterError::Local {
                    step: "a first request through the balancer",
                    detail: format!("no answer after 20 s; see {}", self.balancer.error_log().display()),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// `http://ADDRESS` of the balancer, where clients go.
    pub fn balancer_url(&self) -> String {
        self.balancer.url()
    }

    /// The balancer.
    pub fn balancer(&self) -> &LocalBalancer {
        &self.balancer
    }

    /// The instances, in order (number 1 first).
    pub fn instances(&self) -> &[AppInstance] {
        &self.instances
    }

    /// The Redis the instances and the balancer share.
    pub fn redis_url(&self) -> &str {
        &self.redis_url
    }

    /// The private Redis, when the cluster started one (to kill or pause it in a fault test).
    pub fn local_redis(&self) -> Option<&LocalRedis> {
        self.redis.as_ref()
    }

    /// The prefix of the shared-state keys.
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// The database.
    pub fn database(&self) -> &RunningDatabase {
        &self.database
    }

    /// The cluster's folder: the instances' logs and pid files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What runs where, one line each, passwords hidden.
    pub fn describe(&self) -> String {
        let mut text = String::new();
        let balancer_pid = self.balancer.pid().map_or_else(|| "stopped".to_string(), |pid| pid.to_string());
        let _ = writeln!(
            text,
            "balancer    {}{}   nginx pid {balancer_pid}, config {}",
            self.balancer.url(),
            self.app.front_page,
            self.balancer.config_path().display()
        );
        for instance in &self.instances {
            let _ = writeln!(
                text,
                "instance {}  {}   pid {}, metrics http://{}/metrics, log {}",
                instance.number(),
                instance.url(),
                instance.pid(),
                instance.metrics_address(),
                instance.log_path().display()
            );
        }
        let redis_owner = match &self.redis {
            Some(redis) => format!("private, pid {}", redis.pid().map_or_else(|| "none".into(), |pid| pid.to_string())),
            None => "given".to_string(),
        };
        let keys: Vec<String> =
            self.app.interceptions.iter().map(|rule| format!("{}{}{{id}}:state", self.key_prefix, rule.key)).collect();
        let _ = writeln!(
            text,
            "redis       {}   {redis_owner}; closed-state keys {}",
            without_password(&self.redis_url),
            keys.join(", ")
        );
        let (database_owner, replica_owner) = match (self.database.local_server(), self.database.local_pair()) {
            (Some(server), _) => (format!("private MariaDB on port {}", server.port()), String::new()),
            (None, Some(pair)) => (
                format!("private, binary log and GTIDs on, port {}", pair.primary().port()),
                format!("   private, read_only, replicating by GTID, pid {}", pair.replica_pid().unwrap_or(0)),
            ),
            (None, None) => ("given".to_string(), String::new()),
        };
        let _ =
            writeln!(text, "database    {}   primary, {database_owner}", without_password(self.database.primary_url()));
        for replica in self.database.replica_urls() {
            let _ = writeln!(text, "replica     {}{replica_owner}", without_password(replica));
        }
        let _ = write!(text, "folder      {} (removed on exit)", self.dir.path().display());
        text
    }
}

impl Cluster {
    /// Stops everything and removes its folders, as dropping it does, on a blocking thread: stopping waits for
    /// the processes to end, which must not hold up the async threads.
    ///
    /// # Errors
    /// [`ClusterError::Local`] when the stopping task itself failed (it panicked).
    pub async fn stop(self) -> Result<(), ClusterError> {
        tokio::task::spawn_blocking(move || drop(self))
            .await
            .map_err(|e| ClusterError::Local { step: "stopping the cluster", detail: e.to_string() })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The balancer first: no request may reach an instance that is going away.
        let _ = self.balancer.stop();
        for instance in &self.instances {
            let _ = instance.stop();
        }
    }
}
