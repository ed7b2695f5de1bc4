//! Sweeping: deleting the chunks and marks of ids the catalog dropped, and reclaiming their space.

use rocksdb::{Direction, IteratorMode, WriteBatch};

use super::catalog::Catalog;
use super::keys::{id_prefix, meta, parse_chunk_key};
use super::{Store, CF_META, CF_ROWS, CF_VALUES};
use crate::error::StoreError;

impl Store {
    /// Whether the catalog dropped ids whose chunks [`Store::sweep`] has not deleted yet.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn sweep_pending(&self) -> Result<bool, StoreError> {
        Ok(self.get(CF_META, meta::SWEEP_PENDING)?.is_some())
    }

    /// Deletes the chunks of every id the catalog no longer holds and compacts their ranges,
    /// so the space is reclaimed, then clears [`Store::sweep_pending`]. Returns the ids swept.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn sweep(&self, catalog: &Catalog) -> Result<Vec<u32>, StoreError> {
        let live = catalog.live_ids();
        let mut swept = Vec::new();
        for cf_name in [CF_ROWS, CF_VALUES] {
            let cf = self.cf(cf_name);
            let mut next = 0u32;
            loop {
                let start = id_prefix(next);
                let first = self.db.iterator_cf(cf, IteratorMode::From(&start, Direction::Forward)).next();
                let Some(item) = first else { break };
                let (key, _) = item.map_err(|e| self.rocks(e))?;
                let Some((id, _)) = parse_chunk_key(&key) else {
                    break;
                };
                if live.binary_search(&id).is_err() {
                    let end = id.checked_add(1).map_or([0xff; 4], id_prefix);
                    self.db.delete_range_cf(cf, id_prefix(id), end).map_err(|e| self.rocks(e))?;
                    self.db.compact_range_cf(cf, Some(id_prefix(id)), Some(end));
                    swept.push(id);
                }
                match id.checked_add(1) {
                    Some(n) => next = n,
                    None => break,
                }
            }
        }
        let mut orphan_marks = WriteBatch::default();
        for (prefix, id) in self.meta_ids(meta::FIELDMARK)?.into_iter().chain(self.meta_ids(meta::WATERMARK)?) {
            if live.binary_search(&id).is_err() {
                orphan_marks.delete_cf(self.cf(CF_META), meta::with_id(prefix, id));
            }
        }
        for id in self.day_index_ids()? {
            if live.binary_search(&id).is_err() {
                let end = id.checked_add(1).map_or_else(|| meta::DAY.to_vec(), |n| meta::with_id(meta::DAY, n));
                orphan_marks.delete_range_cf(self.cf(CF_META), meta::with_id(meta::DAY, id), end);
            }
        }
        swept.sort_unstable();
        swept.dedup();
        // A dropped field's history goes with its chunks: no read can name it any more.
        self.delete_history_of(&swept)?;
        orphan_marks.delete_cf(self.cf(CF_META), meta::SWEEP_PENDING);
        self.db.write(orphan_marks).map_err(|e| self.rocks(e))?;
        Ok(swept)
    }

    /// The table ids that have day index entries.
    fn day_index_ids(&self) -> Result<Vec<u32>, StoreError> {
        let mut ids = Vec::new();
        let mut seek = meta::DAY.to_vec();
        loop {
            let next = self.db.iterator_cf(self.cf(CF_META), IteratorMode::From(&seek, Direction::Forward)).next();
            let Some(item) = next else { break };
            let (key, _) = item.map_err(|e| self.rocks(e))?;
            let Some(rest) = key.strip_prefix(meta::DAY) else { break };
            let Ok(id) = <[u8; 4]>::try_from(&rest[..rest.len().min(4)]).map(u32::from_be_bytes) else { break };
            ids.push(id);
            match id.checked_add(1) {
                Some(n) => seek = meta::with_id(meta::DAY, n),
                None => break,
            }
        }
        Ok(ids)
    }

    fn meta_ids(&self, prefix: &'static [u8]) -> Result<Vec<(&'static [u8], u32)>, StoreError> {
        let mut ids = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_META), IteratorMode::From(prefix, Direction::Forward)) {
            let (key, _) = item.map_err(|e| self.rocks(e))?;
            let Some(id) = key.strip_prefix(prefix) else {
                break;
            };
            if let Ok(id) = <[u8; 4]>::try_from(id) {
                ids.push((prefix, u32::from_be_bytes(id)));
            }
        }
        Ok(ids)
    }
}
