//! `status.json` for a crowd: a campaign's status read at most once per max age by this instance, however many
//! pages ask. Reading it counts the campaign's draws, which a million users refreshing a page must not do each.
//!
//! Concurrent misses are served by one read: the others wait for it and take its answer. Failed reads are not
//! remembered, so the next request tries again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::views::StatusView;
use crate::lottery::{Lottery, LotteryError};

/// How old a `status.json` answer may be by default.
pub const DEFAULT_STATUS_MAX_AGE: Duration = Duration::from_secs(1);

/// Campaign statuses as lately read: `None` for a campaign that does not exist.
type Remembered = HashMap<i64, (Instant, Option<Arc<StatusView>>)>;

#[derive(Debug)]
pub(crate) struct StatusCache {
    max_age: Duration,
    remembered: Mutex<Remembered>,
    /// Held by the one request reading from the database.
    reading: tokio::sync::Mutex<()>,
}

impl StatusCache {
    pub(crate) fn new(max_age: Duration) -> Self {
        StatusCache { max_age, remembered: Mutex::default(), reading: tokio::sync::Mutex::new(()) }
    }

    fn lock(&self) -> MutexGuard<'_, Remembered> {
        // Nothing that can panic runs under this lock; a poisoned map is consistent.
        self.remembered.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn fresh(&self, campaign_id: i64) -> Option<Option<Arc<StatusView>>> {
        let remembered = self.lock();
        let (at, status) = remembered.get(&campaign_id)?;
        (at.elapsed() < self.max_age).then(|| status.clone())
    }

    /// The campaign's status no older than the max age, `None` for an unknown campaign.
    pub(crate) async fn status(
        &self,
        service: &Lottery,
        campaign_id: i64,
    ) -> Result<Option<Arc<StatusView>>, LotteryError> {
        if self.max_age.is_zero() {
            return Ok(service.status(campaign_id).await?.map(|status| Arc::new(status.into())));
        }
        if let Some(status) = self.fresh(campaign_id) {
            return Ok(status);
        }
        let _reading = self.reading.lock().await;
        // Another request may have read it while this one waited.
        if let Some(status) = self.fresh(campaign_id) {
            return Ok(status);
        }
        let status = service.status(campaign_id).await?.map(|status| Arc::new(StatusView::from(status)));
        let mut remembered = self.lock();
        remembered.retain(|_, (at, _)| at.elapsed() < self.max_age);
        remembered.insert(campaign_id, (Instant::now(), status.clone()));
        Ok(status)
    }
}
