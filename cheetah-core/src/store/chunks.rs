//! The day index and the chunks: which days a table holds, and reading chunks by (id, day).

use std::sync::Arc;

use rocksdb::{Direction, IteratorMode};

use super::catalog::TableEntry;
use super::keys::{chunk_key, meta, parse_chunk_key, parse_day};
use super::{codec, ChunkKind, ChunkSpan, Store, CF_META, CF_ROWS, CF_VALUES};
use crate::error::StoreError;
use crate::types::Day;

impl Store {
    /// Whether table `table_id` has a cached day `day`.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn has_day(&self, table_id: u32, day: Day) -> Result<bool, StoreError> {
        Ok(self.get(CF_META, &meta::day(table_id, day))?.is_some())
    }

    /// The days in `from..=to` on which table `table_id` has a row chunk, ascending.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn days(&self, table_id: u32, from: Day, to: Day) -> Result<Vec<Day>, StoreError> {
        Ok(self.day_rows(table_id, from, to)?.into_iter().map(|(day, _)| day).collect())
    }

    /// Every cached day of table `table_id` with its row count, ascending.
    ///
    /// # Errors
    /// [`StoreError::Rocks`] or [`StoreError::Corrupt`].
    pub fn day_index(&self, table_id: u32) -> Result<Vec<(Day, u32)>, StoreError> {
        self.day_rows(table_id, Day::MIN, Day::MAX)
    }

    /// The cached days of table `table_id` in `from..=to` with their row counts, ascending;
    /// the index is read from `from` on, not from its start.
    ///
    /// # Errors
    /// [`StoreError::Rocks`] or [`StoreError::Corrupt`].
    pub fn day_rows(&self, table_id: u32, from: Day, to: Day) -> Result<Vec<(Day, u32)>, StoreError> {
        let prefix = meta::with_id(meta::DAY, table_id);
        let start = meta::day(table_id, from);
        let mut days = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_META), IteratorMode::From(&start, Direction::Forward)) {
            let (key, value) = item.map_err(|e| self.rocks(e))?;
            let Some(day) = key.strip_prefix(prefix.as_slice()) else { break };
            let day = parse_day(day).ok_or_else(|| self.corrupt("day index", "bad key"))?;
            if day > to {
                break;
            }
            let rows = <[u8; 4]>::try_from(&*value).map_err(|_| self.corrupt("day index", "bad row count"))?;
            days.push((day, u32::from_be_bytes(rows)));
        }
        Ok(days)
    }

    /// The `n`-th most recent day at or before `day` with a row chunk of table `table_id`
    /// (`n = 1` is the latest), or the earliest one if fewer exist.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn nth_latest_day(&self, table_id: u32, day: Day, n: u32) -> Result<Option<Day>, StoreError> {
        let start = chunk_key(table_id, day);
        let mut found = None;
        let mut seen = 0;
        for item in self.db.iterator_cf(self.cf(CF_ROWS), IteratorMode::From(&start, Direction::Reverse)) {
            let (key, _) = item.map_err(|e| self.rocks(e))?;
            match parse_chunk_key(&key) {
                Some((id, d)) if id == table_id => {
                    found = Some(d);
                    seen += 1;
                    if seen >= n {
                        break;
                    }
                }
                _ => break,
            }
        }
        Ok(found)
    }

    /// The symbol ids of table `table_id` on `day`.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] naming the table and date.
    pub fn rows(&self, table: &TableEntry, day: Day) -> Result<Option<Arc<[u32]>>, StoreError> {
        self.get(CF_ROWS, &chunk_key(table.id, day))?
            .map(|bytes| codec::decode_rows(&bytes).map_err(|e| self.corrupt_chunk(&table.name, None, day, e)))
            .transpose()
    }

    /// Reads and decodes many chunks of one kind at once, in parallel. `ids` must be sorted;
    /// the result is in the same order.
    ///
    /// # Errors
    /// The first [`StoreError`] met; a chunk that fails to decode names its field and date.
    pub fn read_chunks<T: Send>(
        &self,
        kind: ChunkKind,
        ids: &[(u32, Day)],
        decode: impl Fn(usize, &[u8]) -> Result<T, StoreError> + Sync,
    ) -> Result<Vec<Option<T>>, StoreError> {
        use rayon::prelude::*;
        const GROUP: usize = 64;
        // Column family handles are not Sync: each task looks its own up.
        let cf_name = match kind {
            ChunkKind::Rows => CF_ROWS,
            ChunkKind::Values => CF_VALUES,
        };
        let groups: Vec<Vec<Option<T>>> = ids
            .par_chunks(GROUP)
            .enumerate()
            .map(|(g, group)| {
                let keys = group.iter().map(|&(id, day)| chunk_key(id, day));
                let found = self.db.batched_multi_get_cf(self.cf(cf_name), keys, true);
                found
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| match item.map_err(|e| self.rocks(e))? {
                        Some(bytes) => decode(g * GROUP + i, &bytes).map(Some),
                        None => Ok(None),
                    })
                    .collect::<Result<Vec<_>, StoreError>>()
            })
            .collect::<Result<_, _>>()?;
        Ok(groups.into_iter().flatten().collect())
    }

    /// Reads every chunk of `id` over `from..=to` without decoding it, so the OS page cache holds
    /// them for every process's next read. Returns the chunks and bytes read.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn warm_chunks(&self, kind: ChunkKind, id: u32, from: Day, to: Day) -> Result<(usize, u64), StoreError> {
        let cf = match kind {
            ChunkKind::Rows => CF_ROWS,
            ChunkKind::Values => CF_VALUES,
        };
        let (mut chunks, mut bytes) = (0, 0);
        self.scan(cf, id, from, |day, value| {
            if day > to {
                return false;
            }
            chunks += 1;
            bytes += value.len() as u64;
            true
        })?;
        Ok((chunks, bytes))
    }

    /// Counts the row chunks of a table, with their rows and bytes.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn table_span(&self, table_id: u32) -> Result<ChunkSpan, StoreError> {
        self.span(CF_ROWS, table_id)
    }

    /// Counts the value chunks of a field, with their rows and bytes.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn field_span(&self, field_id: u32) -> Result<ChunkSpan, StoreError> {
        self.span(CF_VALUES, field_id)
    }

    fn span(&self, cf: &str, id: u32) -> Result<ChunkSpan, StoreError> {
        let mut span = ChunkSpan::default();
        self.scan(cf, id, Day::MIN, |day, value| {
            span.chunks += 1;
            span.first.get_or_insert(day);
            span.last = Some(day);
            span.bytes += value.len() as u64;
            span.rows += codec::chunk_rows(value).unwrap_or(0) as u64;
            true
        })?;
        Ok(span)
    }

    /// Calls `visit(day, chunk)` for the chunks of `id` from `from` on while it returns true.
    fn scan(&self, cf: &str, id: u32, from: Day, mut visit: impl FnMut(Day, &[u8]) -> bool) -> Result<(), StoreError> {
        let start = chunk_key(id, from);
        for item in self.db.iterator_cf(self.cf(cf), IteratorMode::From(&start, Direction::Forward)) {
            let (key, value) = item.map_err(|e| self.rocks(e))?;
            match parse_chunk_key(&key) {
                Some((chunk_id, day)) if chunk_id == id => {
                    if !visit(day, &value) {
                        break;
                    }
                }
                _ => break,
            }
        }
        Ok(())
    }
}
