//! The hot layer: a per-process LRU of decoded chunks, bounded in bytes, in front of the
//! store. A repeated read decompresses nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use moka::sync::Cache;

use crate::error::StoreError;
use crate::store::catalog::{FieldEntry, TableEntry};
use crate::store::codec;
use crate::store::{ChunkKind, Store};
use crate::types::Day;

/// A decoded chunk.
#[derive(Clone)]
pub enum Decoded {
    /// A row chunk: sorted symbol ids.
    Rows(Arc<[u32]>),
    /// A value chunk.
    Values(ArrayRef),
}

impl Decoded {
    fn bytes(&self) -> u32 {
        let bytes = match self {
            Decoded::Rows(ids) => ids.len() * 4,
            Decoded::Values(array) => array.get_array_memory_size(),
        };
        u32::try_from(bytes + 64).unwrap_or(u32::MAX)
    }
}

type ChunkId = (ChunkKind, u32, Day);

/// Decoded chunks of one store, shared by every query of a process.
pub struct HotChunks {
    cache: Cache<ChunkId, Decoded>,
    decoded: AtomicU64,
}

impl HotChunks {
    /// A cache holding at most about `bytes` of decoded chunks.
    pub fn new(bytes: u64) -> Self {
        let cache = Cache::builder().max_capacity(bytes).weigher(|_, chunk: &Decoded| chunk.bytes()).build();
        Self { cache, decoded: AtomicU64::new(0) }
    }

    /// The row chunks (sorted symbol ids) of `table` on `days`, `None` where the table has no row that day.
    ///
    /// # Errors
    /// [`StoreError`], naming the table and day of a chunk that fails to decode.
    pub fn rows(&self, store: &Store, table: &TableEntry, days: &[Day]) -> Result<Vec<Option<Arc<[u32]>>>, StoreError> {
        let chunks = self.get(store, ChunkKind::Rows, table.id, days, |day, bytes| {
            codec::decode_rows(bytes).map(Decoded::Rows).map_err(|e| store.corrupt_chunk(&table.name, None, day, e))
        })?;
        Ok(chunks
            .into_iter()
            .map(|c| match c {
                Some(Decoded::Rows(ids)) => Some(ids),
                _ => None,
            })
            .collect())
    }

    /// The value chunks of `field` on `days`, `None` where it has none.
    ///
    /// # Errors
    /// [`StoreError`], naming the field and day of a chunk that fails to decode.
    pub fn values(
        &self,
        store: &Store,
        table: &TableEntry,
        field: &FieldEntry,
        days: &[Day],
    ) -> Result<Vec<Option<ArrayRef>>, StoreError> {
        let chunks = self.get(store, ChunkKind::Values, field.id, days, |day, bytes| {
            codec::decode_values(bytes, field.dtype)
                .map(Decoded::Values)
                .map_err(|e| store.corrupt_chunk(&table.name, Some(&field.name), day, e))
        })?;
        Ok(chunks
            .into_iter()
            .map(|c| match c {
                Some(Decoded::Values(array)) => Some(array),
                _ => None,
            })
            .collect())
    }

    /// Drops what is cached of `table` on `day`: it was rewritten or deleted.
    pub fn evict(&self, table: &TableEntry, day: Day) {
        self.cache.invalidate(&(ChunkKind::Rows, table.id, day));
        for field in &table.fields {
            self.cache.invalidate(&(ChunkKind::Values, field.id, day));
        }
    }

    /// Drops everything.
    pub fn clear(&self) {
        self.cache.invalidate_all();
    }

    /// Chunks decompressed so far: the misses.
    #[cfg(test)]
    pub fn decoded(&self) -> u64 {
        self.decoded.load(Ordering::Relaxed)
    }

    /// Bytes of decoded chunks held now.
    #[cfg(test)]
    pub fn weighted_bytes(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.weighted_size()
    }

    fn get(
        &self,
        store: &Store,
        kind: ChunkKind,
        id: u32,
        days: &[Day],
        decode: impl Fn(Day, &[u8]) -> Result<Decoded, StoreError> + Sync,
    ) -> Result<Vec<Option<Decoded>>, StoreError> {
        let mut found: Vec<Option<Decoded>> = days.iter().map(|&day| self.cache.get(&(kind, id, day))).collect();
        let missing: Vec<usize> = (0..days.len()).filter(|&i| found[i].is_none()).collect();
        if missing.is_empty() {
            return Ok(found);
        }
        let ids: Vec<(u32, Day)> = missing.iter().map(|&i| (id, days[i])).collect();
        let read = store.read_chunks(kind, &ids, |j, bytes| decode(ids[j].1, bytes))?;
        self.decoded.fetch_add(read.iter().flatten().count() as u64, Ordering::Relaxed);
        for (i, chunk) in missing.into_iter().zip(read) {
            if let Some(chunk) = &chunk {
                self.cache.insert((kind, id, days[i]), chunk.clone());
            }
            found[i] = chunk;
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::catalog::Catalog;
    use crate::store::codec::{encode_rows, encode_values};
    use crate::types::ValueType;
    use arrow::array::Float64Array;

    /// A store with one table of `days` days of 1,000 rows and one float field.
    fn store(dir: &std::path::Path, days: i32) -> (Store, TableEntry) {
        let store = Store::open_writer(dir, 1).unwrap();
        let field = FieldEntry { id: 2, name: "close".into(), dtype: ValueType::Float64, complete: true };
        let table = TableEntry {
            id: 1,
            name: "bar".into(),
            kind: crate::types::TableKind::Daily,
            fingerprint: Default::default(),
            fields: vec![field],
        };
        let ids: Vec<u32> = (0..1000).collect();
        for day in 0..days {
            let values = Float64Array::from_iter_values((0..1000).map(|i| f64::from(i + day)));
            let mut batch = store.batch();
            batch.put_day(1, day, ids.len(), encode_rows(&ids, 1));
            batch.put_values(1, &table.fields[0], day, encode_values(&values, ValueType::Float64, 1));
            store.write(batch).unwrap();
        }
        let mut batch = store.batch();
        batch.put_catalog(&Catalog { next_id: 3, tables: vec![table.clone()] });
        store.write(batch).unwrap();
        (store, table)
    }

    #[test]
    fn a_repeated_read_decompresses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (store, table) = store(dir.path(), 20);
        let hot = HotChunks::new(64 << 20);
        let days: Vec<Day> = (0..20).collect();
        let first = hot.values(&store, &table, &table.fields[0], &days).unwrap();
        hot.rows(&store, &table, &days).unwrap();
        assert_eq!(hot.decoded(), 40);
        let again = hot.values(&store, &table, &table.fields[0], &days).unwrap();
        hot.rows(&store, &table, &days).unwrap();
        assert_eq!(hot.decoded(), 40, "served from memory");
        assert_eq!(first[7].as_ref().unwrap().as_ref(), again[7].as_ref().unwrap().as_ref());

        hot.evict(&table, 7);
        hot.values(&store, &table, &table.fields[0], &days).unwrap();
        assert_eq!(hot.decoded(), 41, "only the invalidated day is read again");
    }

    #[test]
    fn the_byte_bound_is_honoured() {
        let dir = tempfile::tempdir().unwrap();
        let (store, table) = store(dir.path(), 200);
        // Each decoded chunk holds 8,000 bytes of floats; room for about 25 of 200.
        let bound = 200_000;
        let hot = HotChunks::new(bound);
        let days: Vec<Day> = (0..200).collect();
        for window in days.chunks(10) {
            hot.values(&store, &table, &table.fields[0], window).unwrap();
            assert!(hot.weighted_bytes() <= bound, "{} > {bound}", hot.weighted_bytes());
        }
        assert!(hot.weighted_bytes() > bound / 2, "the cache is used: {}", hot.weighted_bytes());
    }
}
