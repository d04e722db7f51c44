//! Why a cluster could not be started, or a step on a running one failed.

use thiserror::Error;

use crate::database::error::DatabaseError;
use crate::local::LocalServerError;
use crate::local::balancer::LocalBalancerError;
use crate::migrate::MigrateError;

/// Why a cluster could not be started (everything started before the failure is stopped again), or a step on
/// a running one failed.
#[derive(Debug, Error)]
pub enum ClusterError {
    /// The options ask for something that cannot run.
    #[error("invalid cluster options: {0}")]
    InvalidOptions(String),
    /// The private database server did not start.
    #[error(transparent)]
    DatabaseServer(LocalServerError),
    /// The private Redis did not start.
    #[error("the cluster's Redis: {0}")]
    Redis(LocalServerError),
    /// The database refused or could not be reached.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// The migrations did not apply.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    /// An app instance did not come up.
    #[error("app instance {number} did not start ({detail}); its log is {log}")]
    Instance { number: usize, detail: String, log: String },
    /// The load balancer did not start.
    #[error(transparent)]
    Balancer(#[from] LocalBalancerError),
    /// An instance's Prometheus metrics could not be read.
    #[error("the metrics of app instance {number} (GET /metrics on its metrics listener): {detail}")]
    Metrics { number: usize, detail: String },
    /// The shared state in the cluster's Redis could not be read or written.
    #[error("the cluster's shared state ({key}) in Redis: {detail}")]
    SharedState { key: String, detail: String },
    /// A step on this machine failed (a folder, a file, a task).
    #[error("starting the cluster failed ({step}): {detail}")]
    Local { step: &'static str, detail: String },
}

pub(crate) fn local(step: &'static str) -> impl Fn(std::io::Error) -> ClusterError {
    move |e| ClusterError::Local { step, detail: e.to_string() }
}

impl From<std::io::Error> for ClusterError {
    fn from(error: std::io::Error) -> Self {
        local("a file in the cluster's folder")(error)
    }
}
