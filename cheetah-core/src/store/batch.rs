//! [`StoreBatch`]: everything written for one commit, applied atomically as one store version.
//!
//! A batch stages its changes. On commit, each is compared with what the store holds: an
//! unchanged chunk, mark, universe or catalog is not written again. If anything changed, the
//! commit is the next store version: the values it replaces go to the history under that
//! version, each day whose chunks changed is journaled for readers, and the version is
//! recorded with its commit time. A commit that changes nothing records no version and no
//! history.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use rocksdb::WriteBatch;

use super::catalog::{Catalog, FieldEntry, TableEntry};
use super::codec;
use super::history::{Kind, Subject};
use super::keys::{self, chunk_key, meta};
use super::symbols::SymbolDictionary;
use super::versions::Version;
use super::{Store, CF_META, CF_ROWS, CF_VALUES};
use crate::error::StoreError;
use crate::types::{Day, ValueType};
use crate::universe::Universe;

impl Store {
    /// A new empty batch.
    pub fn batch(&self) -> StoreBatch<'_> {
        StoreBatch { store: self, changes: Vec::new(), plain: WriteBatch::default(), symbols: None }
    }

    /// Commits a batch atomically: the next store version if it changes anything.
    ///
    /// # Errors
    /// [`StoreError::Rocks`], for example when the disk is full; nothing of the batch is then
    /// visible.
    pub fn write(&self, batch: StoreBatch<'_>) -> Result<Option<Version>, StoreError> {
        let StoreBatch { changes, mut plain, symbols, .. } = batch;
        // One commit at a time: each compares with what the one before it left.
        let _commit = self.commits.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let old = self.current_values(&changes)?;
        // Comparing a rewritten chunk decodes it and what it replaces: in parallel.
        let changed: Vec<(&Change, Option<Vec<u8>>)> =
            changes.par_iter().zip(old).filter(|(change, old)| !change.same_as(old.as_deref())).collect();
        if changed.is_empty() {
            self.db.write(plain).map_err(|e| self.rocks(e))?;
            return Ok(None);
        }
        let number = self.next_version.load(Ordering::Relaxed);
        let mut journaled = BTreeSet::new();
        for (change, old) in &changed {
            change.apply(self, &mut plain, number, old.as_deref());
            if let Some(day) = change.journaled_day() {
                journaled.insert(day);
            }
            if matches!(change.target, Target::Catalog) {
                // Readers reload the catalog when this changes. Stores before versions wrote
                // journal numbers here; the top bit keeps a version from ever equalling one.
                plain.put_cf(self.cf(CF_META), meta::CATALOG_VERSION, (number | 1 << 63).to_be_bytes());
            }
        }
        for (table, day) in journaled {
            let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
            let mut entry = table.to_be_bytes().to_vec();
            entry.extend_from_slice(&keys::day_bytes(day));
            plain.put_cf(self.cf(CF_META), meta::journal(seq), entry);
        }
        let symbols = symbols.unwrap_or_else(|| self.symbols_written.load(Ordering::Relaxed));
        // Commit times never go back, whatever the clock does, so a moment finds one version.
        let micros = Utc::now().timestamp_micros().max(self.last_commit_micros.load(Ordering::Relaxed));
        let version =
            Version { number, committed: DateTime::from_timestamp_micros(micros).unwrap_or_default(), symbols };
        plain.put_cf(self.cf(CF_META), meta::version(number), version.encode());
        plain.put_cf(self.cf(CF_META), meta::LATEST_VERSION, number.to_be_bytes());
        self.announce(number)?;
        self.db.write(plain).map_err(|e| self.rocks(e))?;
        self.next_version.store(number + 1, Ordering::Relaxed);
        self.last_commit_micros.store(micros, Ordering::Relaxed);
        self.symbols_written.store(symbols, Ordering::Relaxed);
        Ok(Some(version))
    }

    /// What the store holds now under each change's key.
    fn current_values(&self, changes: &[Change]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let keys: Vec<(&rocksdb::ColumnFamily, Vec<u8>)> =
            changes.iter().map(|c| (self.cf(c.family()), c.key())).collect();
        self.db
            .multi_get_cf(keys.iter().map(|(cf, key)| (*cf, key.as_slice())))
            .into_iter()
            .map(|value| value.map_err(|e| self.rocks(e)))
            .collect()
    }
}

/// Writes for one atomic commit.
pub struct StoreBatch<'a> {
    store: &'a Store,
    /// Changes to what reads return, compared and versioned on commit.
    changes: Vec<Change>,
    /// Writes outside versions: update times, new symbols, marks for the sweep.
    plain: WriteBatch,
    /// The dictionary's length once this batch's new symbols are in.
    symbols: Option<u32>,
}

/// One key to set or delete, and what it is.
struct Change {
    target: Target,
    /// The new value; `None` deletes.
    value: Option<Vec<u8>>,
}

enum Target {
    /// A table's row chunk of a day.
    Rows { table: u32, day: Day },
    /// A field's value chunk of a day.
    Values { table: u32, field: u32, dtype: ValueType, day: Day },
    /// A table's day index entry: its rows that day.
    Day { table: u32, day: Day },
    /// A table's watermark.
    Watermark(u32),
    /// A field's backfill mark.
    Fieldmark(u32),
    /// A universe.
    Universe(String),
    /// The catalog.
    Catalog,
}

impl Change {
    fn family(&self) -> &'static str {
        match self.target {
            Target::Rows { .. } => CF_ROWS,
            Target::Values { .. } => CF_VALUES,
            _ => CF_META,
        }
    }

    fn key(&self) -> Vec<u8> {
        match &self.target {
            Target::Rows { table, day } => chunk_key(*table, *day).to_vec(),
            Target::Values { field, day, .. } => chunk_key(*field, *day).to_vec(),
            Target::Day { table, day } => meta::day(*table, *day),
            Target::Watermark(table) => meta::with_id(meta::WATERMARK, *table),
            Target::Fieldmark(field) => meta::with_id(meta::FIELDMARK, *field),
            Target::Universe(name) => meta::universe(name),
            Target::Catalog => meta::CATALOG.to_vec(),
        }
    }

    /// Whether the new value holds what `old` holds: chunks are compared by content (another
    /// build or compression level may encode the same values otherwise), a universe by its
    /// intervals (not when it was read).
    fn same_as(&self, old: Option<&[u8]>) -> bool {
        let (Some(old), Some(new)) = (old, self.value.as_deref()) else { return old.is_none() && self.value.is_none() };
        if old == new {
            return true;
        }
        match &self.target {
            Target::Rows { .. } => {
                matches!((codec::decode_rows(old), codec::decode_rows(new)), (Ok(a), Ok(b)) if a == b)
            }
            Target::Values { dtype, .. } => {
                // Arrow's equality ignores what lies under a null, as the content does.
                matches!((codec::decode_values(old, *dtype), codec::decode_values(new, *dtype)), (Ok(a), Ok(b)) if a.as_ref() == b.as_ref())
            }
            Target::Universe(_) => match (postcard::from_bytes::<Universe>(old), postcard::from_bytes::<Universe>(new))
            {
                (Ok(a), Ok(b)) => a.intervals == b.intervals,
                _ => false,
            },
            _ => false,
        }
    }

    /// Writes the new value, and what it replaces into the history under `version`.
    fn apply(&self, store: &Store, batch: &mut WriteBatch, version: u64, old: Option<&[u8]>) {
        let cf = store.cf(self.family());
        match &self.value {
            Some(value) => batch.put_cf(cf, self.key(), value),
            None => batch.delete_cf(cf, self.key()),
        }
        let Some(history) = store.history_cf() else { return };
        let (subject, day) = match &self.target {
            Target::Rows { table, day } => (Subject::id(Kind::Rows, *table), Some(*day)),
            Target::Values { field, day, .. } => (Subject::id(Kind::Values, *field), Some(*day)),
            Target::Day { table, day } => (Subject::id(Kind::Day, *table), Some(*day)),
            Target::Watermark(table) => (Subject::id(Kind::Watermark, *table), None),
            Target::Fieldmark(field) => (Subject::id(Kind::Fieldmark, *field), None),
            Target::Universe(name) => (Subject::universe(name), None),
            Target::Catalog => (Subject::catalog(), None),
        };
        // A chunk exists exactly when its day does, so a new chunk needs no record that it
        // did not exist: its day's entry says so.
        let chunk = matches!(self.target, Target::Rows { .. } | Target::Values { .. });
        if old.is_some() || !chunk {
            batch.put_cf(history, subject.key(version, day), old.unwrap_or_default());
        }
    }

    /// The (table, day) whose chunks this change touches, for the journal.
    fn journaled_day(&self) -> Option<(u32, Day)> {
        match self.target {
            Target::Rows { table, day } | Target::Values { table, day, .. } | Target::Day { table, day } => {
                Some((table, day))
            }
            _ => None,
        }
    }
}

impl StoreBatch<'_> {
    fn change(&mut self, target: Target, value: Option<Vec<u8>>) {
        self.changes.push(Change { target, value });
    }

    /// Puts the row chunk of `table_id` on `day` and its day index entry: the day is (re)written.
    pub fn put_day(&mut self, table_id: u32, day: Day, rows: usize, chunk: impl Into<Vec<u8>>) {
        self.change(Target::Rows { table: table_id, day }, Some(chunk.into()));
        self.change(Target::Day { table: table_id, day }, Some((rows as u32).to_be_bytes().to_vec()));
    }

    /// Puts the value chunk of `field` (of table `table_id`) on `day`.
    pub fn put_values(&mut self, table_id: u32, field: &FieldEntry, day: Day, chunk: impl Into<Vec<u8>>) {
        let target = Target::Values { table: table_id, field: field.id, dtype: field.dtype, day };
        self.change(target, Some(chunk.into()));
    }

    /// Deletes everything a table holds for `day`.
    pub fn delete_day(&mut self, table: &TableEntry, day: Day) {
        self.change(Target::Rows { table: table.id, day }, None);
        self.change(Target::Day { table: table.id, day }, None);
        for field in &table.fields {
            self.change(Target::Values { table: table.id, field: field.id, dtype: field.dtype, day }, None);
        }
    }

    /// Sets a table's watermark.
    pub fn put_watermark(&mut self, table_id: u32, day: Day) {
        self.change(Target::Watermark(table_id), Some(keys::day_bytes(day).to_vec()));
    }

    /// Records when a table last finished an update.
    pub fn put_updated(&mut self, table_id: u32, unix_seconds: i64) {
        self.put_plain(meta::with_id(meta::UPDATED, table_id), unix_seconds.to_be_bytes().to_vec());
    }

    /// Sets a new field's backfill progress.
    pub fn put_fieldmark(&mut self, field_id: u32, day: Day) {
        self.change(Target::Fieldmark(field_id), Some(keys::day_bytes(day).to_vec()));
    }

    /// Clears a field's backfill progress.
    pub fn delete_fieldmark(&mut self, field_id: u32) {
        self.change(Target::Fieldmark(field_id), None);
    }

    /// Marks that the catalog written with this batch dropped ids: the next update sweeps them.
    pub fn mark_sweep_pending(&mut self) {
        self.put_plain(meta::SWEEP_PENDING.to_vec(), Vec::new());
    }

    /// Replaces the catalog.
    pub fn put_catalog(&mut self, catalog: &Catalog) {
        let bytes = postcard::to_stdvec(catalog).expect("the catalog serializes");
        self.change(Target::Catalog, Some(bytes));
    }

    /// Persists the symbols `dictionary` assigned since it was last persisted. Call
    /// [`SymbolDictionary::mark_persisted`] once the batch is written.
    pub fn put_new_symbols(&mut self, dictionary: &SymbolDictionary) {
        for (id, name) in dictionary.unpersisted() {
            self.put_plain(meta::with_id(meta::SYMBOL, id), name.as_bytes().to_vec());
        }
        self.symbols = Some(u32::try_from(dictionary.len()).expect("fewer than 2^32 symbols"));
    }

    /// Replaces the universe `name`.
    pub fn put_universe(&mut self, name: &str, universe: &Universe) {
        let bytes = postcard::to_stdvec(universe).expect("a universe serializes");
        self.change(Target::Universe(name.to_string()), Some(bytes));
    }

    /// Deletes the universe `name`.
    pub fn delete_universe(&mut self, name: &str) {
        self.change(Target::Universe(name.to_string()), None);
    }

    fn put_plain(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.plain.put_cf(self.store.cf(CF_META), key, value);
    }
}
