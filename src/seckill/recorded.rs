//! Who bought an item, as this instance knows it: so that while the item is closed (sold out or ended) a buyer
//! who already bought hears "repeat" (-1), as the database would answer them, and nobody else hears anything but
//! the closed answer, mostly without the database.
//!
//! An item's winners cannot change while it is closed: its stock is out, or its window is over, and only
//! [`super::Seckill::add_stock`], which reopens it, lets more in. So when a batch finds the item closed, its
//! success rows are counted once; if this instance has seen each of them decided (they all went through its
//! lanes), it knows them all and answers every buyer from memory. Otherwise (another instance sold some, a
//! batch's answer was lost, this instance started since) a buyer it does not know costs one point read of
//! `success_killed` by its primary key.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use mysql_async::Pool;
use mysql_async::prelude::Queryable;

use super::outcome::Outcome;
use super::phone::Phone;
use crate::database::acquire;
use crate::database::gtid::{Gtid, WithGtid};
use crate::group_commit::Decided;

/// The most items known at once; beyond it (a flood of item ids) the memory starts again.
const MOST_ITEMS: usize = 10_000;

/// The most winners known of one item; an item with more is answered by point reads once closed.
const MOST_WINNERS: usize = 1_000_000;

/// One item's winners, as far as this instance knows them.
#[derive(Debug)]
struct ItemWinners {
    /// Each winner, with the GTID of the commit of their win when this instance saw it.
    phones: HashMap<Phone, Option<Gtid>, foldhash::fast::RandomState>,
    /// A batch has found the item closed since it was last reopened.
    closed: bool,
    /// `phones` holds every success row of the item (checked while it is closed).
    complete: bool,
    /// Which life of the item's memory this is (a new one begins when it is reopened, or forgotten and learnt
    /// again): a count taken in one says nothing of another.
    life: u64,
}

impl Default for ItemWinners {
    fn default() -> Self {
        ItemWinners { phones: HashMap::default(), closed: false, complete: false, life: new_life() }
    }
}

/// A number no memory of an item had before in this process.
fn new_life() -> u64 {
    static LIVES: AtomicU64 = AtomicU64::new(0);
    LIVES.fetch_add(1, Ordering::Relaxed)
}

/// The winners of the items this instance sells.
#[derive(Debug)]
pub(crate) struct Winners {
    pool: Pool,
    items: Mutex<HashMap<i64, ItemWinners, foldhash::fast::RandomState>>,
}

impl Winners {
    pub(crate) fn new(pool: Pool) -> Self {
        Winners { pool, items: Mutex::default() }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i64, ItemWinners, foldhash::fast::RandomState>> {
        // Nothing that can panic runs under this lock; a poisoned map is consistent.
        self.items.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Learns the winners of a batch of `phones`; once the item is found closed, checks whether the winners
    /// known are all its winners (again after each batch until they are: a batch that committed before the
    /// closing one may still be on its way back).
    pub(crate) async fn learn(&self, seckill_id: i64, phones: &[Phone], decided: &Decided<WithGtid<Outcome>>) {
        let (known, life, check) = {
            let mut items = self.lock();
            if items.len() >= MOST_ITEMS && !items.contains_key(&seckill_id) {
                items.clear();
            }
            let item = items.entry(seckill_id).or_default();
            for (phone, decided) in phones.iter().zip(&decided.outcomes) {
                if item.phones.len() >= MOST_WINNERS {
                    break;
                }
                match decided.outcome {
                    Outcome::Success(_) => {
                        item.phones.insert(*phone, decided.gtid);
                    }
                    // A repeat is a winner too, decided earlier (here or elsewhere).
                    Outcome::RepeatKill => {
                        item.phones.entry(*phone).or_insert(None);
                    }
                    _ => {}
                }
            }
            item.closed |= decided.closed.is_some();
            (item.phones.len(), item.life, item.closed && !item.complete && item.phones.len() < MOST_WINNERS)
        };
        if !check {
            return;
        }
        if let Ok(rows) = self.count(seckill_id).await {
            let mut items = self.lock();
            if let Some(item) = items.get_mut(&seckill_id)
                && item.closed
                && item.life == life
            {
                // Rows counted after the batch's commit: every winner the count includes had committed, and
                // `known` of them were known here when it was taken. A count that falls short of complete says
                // nothing: another batch's check, answered in between, may have found it complete.
                item.complete |= u64::try_from(known).is_ok_and(|known| known == rows);
            }
        }
    }

    /// The success rows of an item.
    async fn count(&self, seckill_id: i64) -> Result<u64, String> {
        let mut conn = acquire(&self.pool).await.map_err(|error| error.to_string())?;
        let count: Option<u64> = conn
            .exec_first("SELECT COUNT(*) FROM success_killed WHERE seckill_id = ?", (seckill_id,))
            .await
            .map_err(|error| error.to_string())?;
        Ok(count.unwrap_or(0))
    }

    /// The answer for `phone` while the item is closed with `closed`, when this instance knows it: "repeat" for
    /// a winner, `closed` for anyone else once every winner is known.
    pub(crate) fn answer(
        &self,
        seckill_id: i64,
        phone: Phone,
        closed: &WithGtid<Outcome>,
    ) -> Option<WithGtid<Outcome>> {
        let items = self.lock();
        let item = items.get(&seckill_id)?;
        match item.phones.get(&phone) {
            Some(gtid) => Some(WithGtid { outcome: Outcome::RepeatKill, gtid: *gtid }),
            None => item.complete.then(|| closed.clone()),
        }
    }

    /// Whether `phone` bought the item, by a point read of its row on the primary: "repeat" when it did.
    pub(crate) async fn recorded(&self, seckill_id: i64, phone: Phone) -> Result<Option<WithGtid<Outcome>>, String> {
        let mut conn = acquire(&self.pool).await.map_err(|error| error.to_string())?;
        let found: Option<u8> = conn
            .exec_first(
                "SELECT 1 FROM success_killed WHERE seckill_id = ? AND user_phone = ?",
                (seckill_id, phone.get()),
            )
            .await
            .map_err(|error| error.to_string())?;
        if found.is_none() {
            return Ok(None);
        }
        if let Some(item) = self.lock().get_mut(&seckill_id)
            && item.phones.len() < MOST_WINNERS
        {
            item.phones.entry(phone).or_insert(None);
        }
        Ok(Some(WithGtid::without_gtid(Outcome::RepeatKill)))
    }

    /// Stock was added: the item may sell again, so its winners known are no longer all of them.
    pub(crate) fn reopened(&self, seckill_id: i64) {
        if let Some(item) = self.lock().get_mut(&seckill_id) {
            item.closed = false;
            item.complete = false;
            item.life = new_life();
        }
    }
}
