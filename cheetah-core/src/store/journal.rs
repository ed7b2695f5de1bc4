//! The change journal: every day written or deleted, in commit order, so readers drop exactly
//! what they cached of it.

use std::sync::atomic::Ordering;

use rocksdb::{Direction, IteratorMode, WriteBatch};

use super::keys::{meta, parse_day};
use super::{JournalTail, Store, CF_META};
use crate::error::StoreError;

/// Journal entries kept after an update; a reader further behind reloads everything.
const JOURNAL_KEEP: u64 = 1_000_000;

impl Store {
    /// The days written or deleted since journal sequence `since`.
    ///
    /// # Errors
    /// [`StoreError::Rocks`] or [`StoreError::Corrupt`].
    pub fn journal_since(&self, since: u64) -> Result<JournalTail, StoreError> {
        let floor = self
            .get(CF_META, meta::JOURNAL_FLOOR)?
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map_or(0, u64::from_be_bytes);
        let mut tail = JournalTail { fell_behind: since < floor, next_seq: since, days: Vec::new() };
        let start = meta::journal(since);
        for item in self.db.iterator_cf(self.cf(CF_META), IteratorMode::From(&start, Direction::Forward)) {
            let (key, value) = item.map_err(|e| self.rocks(e))?;
            let Some(seq) = key.strip_prefix(meta::JOURNAL) else { break };
            let seq = <[u8; 8]>::try_from(seq).map_err(|_| self.corrupt("journal", "bad key"))?;
            let (table, day) = value.split_at_checked(4).ok_or_else(|| self.corrupt("journal", "short entry"))?;
            let table = u32::from_be_bytes(table.try_into().map_err(|_| self.corrupt("journal", "bad table"))?);
            let day = parse_day(day).ok_or_else(|| self.corrupt("journal", "bad day"))?;
            tail.days.push((table, day));
            tail.next_seq = u64::from_be_bytes(seq) + 1;
        }
        Ok(tail)
    }

    /// The sequence number the next journal entry will have; readers start from it.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn journal_end(&self) -> Result<u64, StoreError> {
        Ok(self.last_journal_seq()?.map_or(1, |s| s + 1))
    }

    fn last_journal_seq(&self) -> Result<Option<u64>, StoreError> {
        let end = meta::journal(u64::MAX);
        let last = self.db.iterator_cf(self.cf(CF_META), IteratorMode::From(&end, Direction::Reverse)).next();
        match last {
            Some(item) => {
                let (key, _) = item.map_err(|e| self.rocks(e))?;
                Ok(key.strip_prefix(meta::JOURNAL).and_then(|s| <[u8; 8]>::try_from(s).ok()).map(u64::from_be_bytes))
            }
            None => Ok(None),
        }
    }

    /// Drops journal entries beyond the newest [`JOURNAL_KEEP`].
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn prune_journal(&self) -> Result<(), StoreError> {
        let next = self.next_seq.load(Ordering::Relaxed);
        if next <= JOURNAL_KEEP {
            return Ok(());
        }
        let floor = next - JOURNAL_KEEP;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(self.cf(CF_META), meta::journal(0), meta::journal(floor));
        batch.put_cf(self.cf(CF_META), meta::JOURNAL_FLOOR, floor.to_be_bytes());
        self.db.write(batch).map_err(|e| self.rocks(e))
    }
}
