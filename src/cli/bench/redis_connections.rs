//! The connections the bench's Redis baselines (the hot item's seckill, the lottery's draw) give their callers:
//! multiplexed, each answer bounded in time.

use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;

/// Longest wait for one Redis answer: no caller waits forever.
pub(crate) const REDIS_ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// `count` (at least one) multiplexed connections to the Redis at `url`.
///
/// # Errors
/// A message naming what failed: the URL or the connecting.
pub(crate) async fn open(url: &str, count: usize) -> Result<Vec<MultiplexedConnection>, String> {
    let client = redis::Client::open(url).map_err(|error| format!("Redis baseline, its URL: {error}"))?;
    let config = AsyncConnectionConfig::new()
        .set_response_timeout(REDIS_ANSWER_TIMEOUT)
        .set_connection_timeout(REDIS_ANSWER_TIMEOUT);
    let mut opened = Vec::with_capacity(count.max(1));
    for _ in 0..count.max(1) {
        let connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|error| format!("Redis baseline, connecting: {error}"))?;
        opened.push(connection);
    }
    Ok(opened)
}
