//! An item's shared closed state in the cluster's Redis (`{prefix}item:{seckill_id}:state`, `sold_out` or
//! `ended`), the key the balancer answers closed items from: where the bench, the demo and the tests learn that
//! it is published.
//!
//! Instances do not publish the key yet, so for now [`Cluster::item_state_published`] writes it exactly as they
//! will (plain string, no expiry). Once the instance whose batch learns the state publishes it, this becomes a
//! bounded wait until the key holds the state, and every caller then proves that the instances publish it.

use std::time::Duration;

use redis::AsyncCommands;

use super::{Cluster, ClusterError};

/// How long a step with the cluster's Redis may take.
const REDIS_TIMEOUT: Duration = Duration::from_secs(10);

impl Cluster {
    /// The key of an item's shared closed state.
    pub fn item_state_key(&self, seckill_id: i64) -> String {
        format!("{}item:{seckill_id}:state", self.key_prefix())
    }

    /// Returns once the item's closed state (`sold_out` or `ended`) is published in the cluster's Redis, after
    /// an instance's batch learnt it. For now it writes the key itself (see the module's doc).
    ///
    /// # Errors
    /// [`ClusterError::SharedState`] when Redis could not be reached or written within 10 s.
    pub async fn item_state_published(&self, seckill_id: i64, state: &str) -> Result<(), ClusterError> {
        let key = self.item_state_key(seckill_id);
        let write = async {
            let client = redis::Client::open(self.redis_url())?;
            let mut connection = client.get_multiplexed_async_connection().await?;
            connection.set::<_, _, ()>(&key, state).await
        };
        let failed = |detail: String| ClusterError::SharedState { key: key.clone(), detail };
        tokio::time::timeout(REDIS_TIMEOUT, write)
            .await
            .map_err(|_| failed(format!("no answer from Redis in {} s", REDIS_TIMEOUT.as_secs())))?
            .map_err(|e| failed(e.to_string()))
    }
}
