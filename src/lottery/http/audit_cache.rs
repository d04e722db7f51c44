//! `audit.json` for anyone who asks: a revealed campaign's audit log read and written out once by this instance,
//! then served from memory.
//!
//! The log is every draw of the campaign, read from the primary: a full scan that a public URL must not let a
//! crowd (or one client in a loop) repeat. Once the seed is revealed the log never changes (no draw is recorded
//! after the end or after the last prize), so the answer is kept as it was sent. Concurrent first requests share
//! one read; a read that fails (not revealed yet, the database away) is not kept, and the next request tries again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use tokio::sync::OnceCell;

use crate::http::Envelope;
use crate::lottery::{Lottery, LotteryError};

/// Campaigns whose answers are kept; past it (requests for many campaigns) the memory starts again.
const CAMPAIGNS_KEPT: usize = 64;

/// One campaign's answer once read: the envelope with its log, as JSON (shared, never copied).
type Kept = Arc<OnceCell<Bytes>>;

/// Why a read was not kept: nothing to keep for a campaign that does not exist (yet: its id may be taken later).
enum NotKept {
    Unknown,
    Failed(LotteryError),
}

#[derive(Debug, Default)]
pub(crate) struct AuditCache {
    kept: Mutex<HashMap<i64, Kept>>,
}

impl AuditCache {
    fn lock(&self) -> MutexGuard<'_, HashMap<i64, Kept>> {
        // Nothing that can panic runs under this lock; a poisoned map is consistent.
        self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The campaign's `audit.json` answer (the envelope with its log), `None` for an unknown campaign.
    pub(crate) async fn answer(&self, service: &Lottery, campaign_id: i64) -> Result<Option<Bytes>, LotteryError> {
        let cell = {
            let mut kept = self.lock();
            if kept.len() >= CAMPAIGNS_KEPT && !kept.contains_key(&campaign_id) {
                kept.clear();
            }
            kept.entry(campaign_id).or_default().clone()
        };
        let read = cell.get_or_try_init(|| async {
            match service.export(campaign_id).await {
                // Serialising strings and integers cannot fail.
                Ok(Some(log)) => Ok(Bytes::from(serde_json::to_vec(&Envelope::ok(log)).unwrap_or_default())),
                Ok(None) => Err(NotKept::Unknown),
                Err(error) => Err(NotKept::Failed(error)),
            }
        });
        match read.await {
            Ok(answer) => Ok(Some(answer.clone())),
            Err(NotKept::Unknown) => Ok(None),
            Err(NotKept::Failed(error)) => Err(error),
        }
    }
}
