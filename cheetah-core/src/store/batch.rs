//! [`StoreBatch`]: everything written for one day, committed atomically.

use std::sync::atomic::Ordering;

use rocksdb::WriteBatch;

use super::catalog::{Catalog, TableEntry};
use super::keys::{self, chunk_key, meta};
use super::symbols::SymbolDictionary;
use super::{Store, CF_META, CF_ROWS, CF_VALUES};
use crate::error::StoreError;
use crate::types::Day;
use crate::universe::Universe;

impl Store {
    /// A new empty batch.
    pub fn batch(&self) -> StoreBatch<'_> {
        StoreBatch { store: self, batch: WriteBatch::default() }
    }

    /// Commits a batch atomically.
    ///
    /// # Errors
    /// [`StoreError::Rocks`], for example when the disk is full; nothing of the batch is then
    /// visible.
    pub fn write(&self, batch: StoreBatch<'_>) -> Result<(), StoreError> {
        self.db.write(batch.batch).map_err(|e| self.rocks(e))
    }
}

/// Writes for one atomic commit.
pub struct StoreBatch<'a> {
    store: &'a Store,
    batch: WriteBatch,
}

impl StoreBatch<'_> {
    /// Puts the row chunk of `table_id` on `day`, with its day index entry and a journal
    /// entry: the day is (re)written.
    pub fn put_day(&mut self, table_id: u32, day: Day, rows: usize, chunk: &[u8]) {
        self.batch.put_cf(self.store.cf(CF_ROWS), chunk_key(table_id, day), chunk);
        self.put_meta(meta::day(table_id, day), (rows as u32).to_be_bytes().to_vec());
        self.journal_day(table_id, day);
    }

    /// Records in the journal that the chunks of `table_id` on `day` changed, so readers drop
    /// what they cached of that day.
    pub fn journal_day(&mut self, table_id: u32, day: Day) {
        let seq = self.store.next_seq.fetch_add(1, Ordering::Relaxed);
        let mut entry = table_id.to_be_bytes().to_vec();
        entry.extend_from_slice(&keys::day_bytes(day));
        self.put_meta(meta::journal(seq), entry);
    }

    /// Puts the value chunk of `field_id` on `day`.
    pub fn put_values(&mut self, field_id: u32, day: Day, chunk: &[u8]) {
        self.batch.put_cf(self.store.cf(CF_VALUES), chunk_key(field_id, day), chunk);
    }

    /// Deletes everything a table holds for `day`.
    pub fn delete_day(&mut self, table: &TableEntry, day: Day) {
        self.batch.delete_cf(self.store.cf(CF_ROWS), chunk_key(table.id, day));
        self.batch.delete_cf(self.store.cf(CF_META), meta::day(table.id, day));
        for field in &table.fields {
            self.batch.delete_cf(self.store.cf(CF_VALUES), chunk_key(field.id, day));
        }
        self.journal_day(table.id, day);
    }

    /// Sets a table's watermark.
    pub fn put_watermark(&mut self, table_id: u32, day: Day) {
        self.put_meta(meta::with_id(meta::WATERMARK, table_id), keys::day_bytes(day).to_vec());
    }

    /// Records when a table last finished an update.
    pub fn put_updated(&mut self, table_id: u32, unix_seconds: i64) {
        self.put_meta(meta::with_id(meta::UPDATED, table_id), unix_seconds.to_be_bytes().to_vec());
    }

    /// Sets a new field's backfill progress.
    pub fn put_fieldmark(&mut self, field_id: u32, day: Day) {
        self.put_meta(meta::with_id(meta::FIELDMARK, field_id), keys::day_bytes(day).to_vec());
    }

    /// Clears a field's backfill progress.
    pub fn delete_fieldmark(&mut self, field_id: u32) {
        self.batch.delete_cf(self.store.cf(CF_META), meta::with_id(meta::FIELDMARK, field_id));
    }

    /// Marks that the catalog written with this batch dropped ids: the next update sweeps them.
    pub fn mark_sweep_pending(&mut self) {
        self.put_meta(meta::SWEEP_PENDING.to_vec(), Vec::new());
    }

    /// Replaces the catalog.
    pub fn put_catalog(&mut self, catalog: &Catalog) {
        let bytes = postcard::to_stdvec(catalog).expect("the catalog serializes");
        self.put_meta(meta::CATALOG.to_vec(), bytes);
        let version = self.store.next_seq.fetch_add(1, Ordering::Relaxed);
        self.put_meta(meta::CATALOG_VERSION.to_vec(), version.to_be_bytes().to_vec());
    }

    /// Persists the symbols `dictionary` assigned since it was last persisted. Call
    /// [`SymbolDictionary::mark_persisted`] once the batch is written.
    pub fn put_new_symbols(&mut self, dictionary: &SymbolDictionary) {
        for (id, name) in dictionary.unpersisted() {
            self.put_meta(meta::with_id(meta::SYMBOL, id), name.as_bytes().to_vec());
        }
    }

    /// Replaces the universe `name`.
    pub fn put_universe(&mut self, name: &str, universe: &Universe) {
        let bytes = postcard::to_stdvec(universe).expect("a universe serializes");
        self.put_meta(meta::universe(name), bytes);
    }

    /// Deletes the universe `name`.
    pub fn delete_universe(&mut self, name: &str) {
        self.batch.delete_cf(self.store.cf(CF_META), meta::universe(name));
    }

    fn put_meta(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.batch.put_cf(self.store.cf(CF_META), key, value);
    }
}
