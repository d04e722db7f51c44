//! An item's shared closed state in the cluster's Redis (`{prefix}item:{seckill_id}:state`, `sold_out` or
//! `ended`), the key the balancer answers closed items from: where the bench, the demo and the tests learn that
//! it is published.
//!
//! The instance whose batch learns that an item closed publishes the key itself ([`crate::seckill::closed`]);
//! [`Cluster::item_state_published`] waits for it, so every caller proves that the instances publish it.

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

use super::{Cluster, ClusterError};

/// How long an instance may take to publish a state its batch learnt (it republishes after a failed attempt).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one look at Redis may take.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

impl Cluster {
    /// The key of an item's shared closed state.
    pub fn item_state_key(&self, seckill_id: i64) -> String {
        format!("{}item:{seckill_id}:state", self.key_prefix())
    }

    /// What the item's shared closed state holds now (`None`: no key, so ask the app).
    ///
    /// # Errors
    /// [`ClusterError::SharedState`] when Redis could not be read within 2 s.
    pub async fn item_state(&self, seckill_id: i64) -> Result<Option<String>, ClusterError> {
        self.read_item_state(&mut None, seckill_id).await
    }

    /// As [`Cluster::item_state`], on `connection` (opened when it is `None`, and kept for the next read; dropped
    /// after a failure, so that the next read opens a new one).
    async fn read_item_state(
        &self,
        connection: &mut Option<MultiplexedConnection>,
        seckill_id: i64,
    ) -> Result<Option<String>, ClusterError> {
        let key = self.item_state_key(seckill_id);
        let look = async {
            let open = match connection.take() {
                Some(open) => open,
                None => redis::Client::open(self.redis_url())?.get_multiplexed_async_connection().await?,
            };
            let value = open.clone().get::<_, Option<String>>(&key).await?;
            *connection = Some(open);
            Ok::<_, redis::RedisError>(value)
        };
        let failed = |detail: String| ClusterError::SharedState { key: key.clone(), detail };
        tokio::time::timeout(REDIS_TIMEOUT, look)
            .await
            .map_err(|_| failed(format!("no answer from Redis in {} s", REDIS_TIMEOUT.as_secs())))?
            .map_err(|e| failed(e.to_string()))
    }

    /// Returns once the item's closed state (`sold_out` or `ended`) is published in the cluster's Redis by an
    /// instance whose batch learnt it, waiting up to 10 s.
    ///
    /// # Errors
    /// [`ClusterError::SharedState`] when the key does not hold `state` within 10 s, or Redis could not be read.
    pub async fn item_state_published(&self, seckill_id: i64, state: &str) -> Result<(), ClusterError> {
        let deadline = Instant::now() + PUBLISH_TIMEOUT;
        // One connection for every look, every 20 ms.
        let mut connection = None;
        loop {
            let last = match self.read_item_state(&mut connection, seckill_id).await {
                Ok(value) if value.as_deref() == Some(state) => return Ok(()),
                Ok(value) => format!("it holds {value:?}"),
                Err(error) => error.to_string(),
            };
            if Instant::now() > deadline {
                return Err(ClusterError::SharedState {
                    key: self.item_state_key(seckill_id),
                    detail: format!("no instance published {state} within {} s ({last})", PUBLISH_TIMEOUT.as_secs()),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
