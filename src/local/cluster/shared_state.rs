//! The shared state in the cluster's Redis, the keys the balancer answers closed things from: where the bench,
//! the demo and the tests learn that a fact is published.
//!
//! The instance whose batch learns that something closed publishes its key itself (see
//! [`crate::shared_state::closed`]); [`Cluster::state_published`] waits for it, so every caller proves that the
//! instances publish it. The keys are the app's: `{prefix}{kind}{id}:state`, with the kinds its interceptions
//! name ([`Cluster::state_key`]).

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

use super::{Cluster, ClusterError};

/// How long an instance may take to publish a state its batch learnt (it republishes after a failed attempt).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one look at Redis may take.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

impl Cluster {
    /// The key of the shared state of thing `id` of `kind` (an interception's key, such as `item:`):
    /// `{prefix}{kind}{id}:state`.
    pub fn state_key(&self, kind: &str, id: i64) -> String {
        format!("{}{kind}{id}:state", self.key_prefix())
    }

    /// What `key` holds now in the cluster's Redis (`None`: no key, so ask the app).
    ///
    /// # Errors
    /// [`ClusterError::SharedState`] when Redis could not be read within 2 s.
    pub async fn shared_state(&self, key: &str) -> Result<Option<String>, ClusterError> {
        self.read_state(&mut None, key).await
    }

    /// As [`Cluster::shared_state`], on `connection` (opened when it is `None`, and kept for the next read;
    /// dropped after a failure, so that the next read opens a new one).
    async fn read_state(
        &self,
        connection: &mut Option<MultiplexedConnection>,
        key: &str,
    ) -> Result<Option<String>, ClusterError> {
        let look = async {
            let open = match connection.take() {
                Some(open) => open,
                None => redis::Client::open(self.redis_url())?.get_multiplexed_async_connection().await?,
            };
            let value = open.clone().get::<_, Option<String>>(key).await?;
            *connection = Some(open);
            Ok::<_, redis::RedisError>(value)
        };
        let failed = |detail: String| ClusterError::SharedState { key: key.to_string(), detail };
        tokio::time::timeout(REDIS_TIMEOUT, look)
            .await
            .map_err(|_| failed(format!("no answer from Redis in {} s", REDIS_TIMEOUT.as_secs())))?
            .map_err(|e| failed(e.to_string()))
    }

    /// Returns once `key` holds `state` in the cluster's Redis, published by an instance whose batch learnt it,
    /// waiting up to 10 s.
    ///
    /// # Errors
    /// [`ClusterError::SharedState`] when the key does not hold `state` within 10 s, or Redis could not be read.
    pub async fn state_published(&self, key: &str, state: &str) -> Result<(), ClusterError> {
        let deadline = Instant::now() + PUBLISH_TIMEOUT;
        // One connection for every look, every 20 ms.
        let mut connection = None;
        loop {
            let last = match self.read_state(&mut connection, key).await {
                Ok(value) if value.as_deref() == Some(state) => return Ok(()),
                Ok(value) => format!("it holds {value:?}"),
                Err(error) => error.to_string(),
            };
            if Instant::now() > deadline {
                return Err(ClusterError::SharedState {
                    key: key.to_string(),
                    detail: format!("no instance published {state} within {} s ({last})", PUBLISH_TIMEOUT.as_secs()),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
