//! Following the writer: a [`Follower`] holds a store handle and the [`View`] read from it, and
//! brings both up to what the writer has committed before each read.
//!
//! A reader is a RocksDB secondary instance. Keeping it current takes four mechanisms, all here:
//! - **Catch-up.** `try_catch_up_with_primary` replays what the writer appended to its log. It
//!   is skipped when neither the writer's MANIFEST nor its newest log changed on disk, because
//!   catch-up is not free even when there is nothing to replay.
//! - **Reopen after a flush.** Once the writer has flushed or reopened (its MANIFEST changed), a
//!   secondary instance may keep serving stale memtable entries (RocksDB issue 14444), so the
//!   follower opens a fresh instance instead of trusting the catch-up.
//! - **The journal.** Every day the writer writes or deletes has a journal entry; the follower
//!   reads the entries since its last position, updates the view's day lists, and evicts those
//!   days from the hot layer. A reader that fell behind the kept journal reloads everything.
//! - **Torn views.** A catch-up can apply one column family's flush before another's log, so a
//!   read may find a day's row chunk without its value chunk. [`Follower::read`] then reopens a
//!   fresh instance and reads once more; a chunk still missing is real corruption.

use std::path::Path;
use std::sync::{Mutex, RwLock, RwLockReadGuard};

use super::{SymbolRanking, View};
use crate::error::{QueryError, StoreError};
use crate::hot::HotChunks;
use crate::store::Store;

/// A file of the writer's and its length: any change the writer makes changes one of them.
type FileState = Option<(String, u64)>;

/// The writer's MANIFEST and newest log as a reader last saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DiskState {
    manifest: FileState,
    log: FileState,
}

impl DiskState {
    fn at(path: &Path) -> Self {
        Self { manifest: manifest_at(path), log: newest_log_at(path) }
    }
}

/// The store's current MANIFEST and its length: it changes when the writer flushes, compacts or
/// reopens the store.
fn manifest_at(path: &Path) -> FileState {
    let current = std::fs::read_to_string(path.join("CURRENT")).ok()?;
    let name = current.trim().to_string();
    let len = std::fs::metadata(path.join(&name)).ok()?.len();
    Some((name, len))
}

/// The store's newest write-ahead log and its length: it changes whenever the writer commits.
fn newest_log_at(path: &Path) -> FileState {
    let newest = std::fs::read_dir(path)
        .ok()?
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.ends_with(".log"))
        .max()?;
    let len = std::fs::metadata(path.join(&newest)).ok()?.len();
    Some((newest, len))
}

/// How far a follower has followed the store.
struct Position {
    /// The next journal entry to read.
    journal: u64,
    catalog_version: u64,
    /// For readers: the writer's MANIFEST as it was before the reader instance was opened.
    opened_at: FileState,
    /// For readers: the store's files as they were when the last refresh began.
    seen: Option<DiskState>,
}

/// A store handle and the view of it, kept current with the writer.
pub(crate) struct Follower {
    store: RwLock<Store>,
    view: RwLock<View>,
    position: Mutex<Position>,
    /// Fresh reader instances opened since this follower was created.
    reopens: std::sync::atomic::AtomicU64,
}

impl Follower {
    /// Wraps the writer's own handle: it sees its own commits, so it never catches up or reopens.
    pub fn writer(store: Store) -> Result<Self, StoreError> {
        Self::new(store, None)
    }

    /// Opens a reader instance of the store at `path`.
    pub fn reader(path: &Path) -> Result<Self, StoreError> {
        let (store, seen) = open_reader(path)?;
        Self::new(store, Some(seen))
    }

    fn new(store: Store, seen: Option<DiskState>) -> Result<Self, StoreError> {
        let position = Position {
            journal: store.journal_end()?,
            catalog_version: store.catalog_version()?,
            opened_at: seen.as_ref().and_then(|s| s.manifest.clone()),
            seen,
        };
        let view = View::load(&store)?;
        Ok(Self {
            store: RwLock::new(store),
            view: RwLock::new(view),
            position: Mutex::new(position),
            reopens: 0.into(),
        })
    }

    /// The store handle.
    pub fn store(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().expect("store lock")
    }

    /// The view as of the last refresh.
    pub fn view(&self) -> RwLockReadGuard<'_, View> {
        self.view.read().expect("view lock")
    }

    /// Fresh reader instances opened so far, after a writer's flush or a torn view.
    #[cfg(test)]
    pub fn reopens(&self) -> u64 {
        self.reopens.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Catches up with what the writer committed since the last call: new catalog, new symbols,
    /// and the days written or deleted, whose chunks it evicts from `hot`.
    pub fn refresh(&self, hot: &HotChunks) -> Result<(), StoreError> {
        let mut position = self.position.lock().expect("position lock");
        let is_reader = !self.store().is_writer();
        let mut disk = None;
        if is_reader {
            let path = self.store().path().to_path_buf();
            let now = DiskState::at(&path);
            if position.seen.as_ref() == Some(&now) {
                return Ok(());
            }
            disk = Some(now);
            // Not while a read holds the store: a read sees one state of it from start to end.
            self.store.write().expect("store lock").catch_up()?;
            let manifest = manifest_at(&path);
            // Catch-up is exact only while the writer has neither flushed nor reopened.
            if manifest != position.opened_at {
                let (fresh, opened) = open_reader(&path)?;
                *self.store.write().expect("store lock") = fresh;
                position.opened_at = opened.manifest;
                self.reopens.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let store = self.store();
        // The version first: everything read after it is of that version or newer.
        let version = store.latest()?;
        // Before the journal: every day these marks cover is committed, so the journal lists it.
        let marks = store.marks()?;
        let catalog_version = store.catalog_version()?;
        let tail = store.journal_since(position.journal)?;
        let symbols_grew = store.symbols_after(self.view().symbols.len())?;
        let catalog_changed = catalog_version != position.catalog_version;
        if !catalog_changed && tail.days.is_empty() && !tail.fell_behind && !symbols_grew {
            if self.view().marks != marks || self.view().version != version {
                let mut view = self.view.write().expect("view lock");
                view.marks = marks;
                view.version = version;
            }
            position.seen = disk;
            return Ok(());
        }
        let mut view = self.view.write().expect("view lock");
        if tail.fell_behind || catalog_changed {
            if tail.fell_behind {
                hot.clear();
            }
            *view = View::load(&store)?;
        } else if symbols_grew {
            store.load_new_symbols(&mut view.symbols)?;
            view.ranking = SymbolRanking::new(&view.symbols);
        }
        for &(table_id, day) in &tail.days {
            let Some(table) = view.catalog.tables.iter().find(|t| t.id == table_id) else { continue };
            hot.evict(table, day);
            let present = store.has_day(table_id, day)?;
            let days = view.days.entry(table_id).or_default();
            match (days.binary_search(&day), present) {
                (Err(at), true) => days.insert(at, day),
                (Ok(at), false) => {
                    days.remove(at);
                }
                _ => {}
            }
        }
        view.marks = marks;
        view.version = version;
        position.journal = tail.next_seq;
        position.catalog_version = catalog_version;
        position.seen = disk;
        Ok(())
    }

    /// Runs `read` on the store and view, which hold still while it runs: no commit of this
    /// process's writer and no catch-up of a reader lands in the middle of it. A reader whose
    /// view turns out torn (a chunk missing beside its day's row chunk) opens a fresh instance
    /// and runs `read` once more.
    pub fn read<T>(
        &self,
        hot: &HotChunks,
        read: impl Fn(&Store, &View) -> Result<T, QueryError>,
    ) -> Result<T, QueryError> {
        let attempt = || {
            let store = self.store();
            let _still = store.hold_still();
            read(&store, &self.view())
        };
        match attempt() {
            Err(QueryError::Store(e @ (StoreError::Corrupt { .. } | StoreError::CorruptChunk { .. })))
                if !self.store().is_writer() =>
            {
                tracing::warn!(error = %e, "reopening the store: this reader's view was incomplete");
                self.reopen(hot)?;
                attempt()
            }
            result => result,
        }
    }

    /// Replaces a reader's instance with a fresh one and reloads everything from it.
    fn reopen(&self, hot: &HotChunks) -> Result<(), StoreError> {
        let mut position = self.position.lock().expect("position lock");
        let path = self.store().path().to_path_buf();
        let (fresh, seen) = open_reader(&path)?;
        *self.store.write().expect("store lock") = fresh;
        self.reopens.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        hot.clear();
        let store = self.store();
        position.journal = store.journal_end()?;
        position.catalog_version = store.catalog_version()?;
        *self.view.write().expect("view lock") = View::load(&store)?;
        position.opened_at = seen.manifest.clone();
        position.seen = Some(seen);
        Ok(())
    }
}

/// Opens a reader instance, with the store's files as they were just before: the instance holds
/// at least that much, and any later change shows as a different state.
fn open_reader(path: &Path) -> Result<(Store, DiskState), StoreError> {
    let before = DiskState::at(path);
    Ok((Store::open_reader(path)?, before))
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, Float64Array};
    use arrow::datatypes::Float64Type;

    use super::*;
    use crate::store::catalog::{Catalog, FieldEntry, TableEntry};
    use crate::store::codec::{encode_rows, encode_values};
    use crate::store::symbols::SymbolDictionary;
    use crate::types::Day;
    use crate::types::TableKind;
    use crate::types::ValueType;

    fn table() -> TableEntry {
        TableEntry {
            id: 1,
            name: "bar".into(),
            kind: TableKind::Daily,
            fingerprint: Default::default(),
            fields: vec![FieldEntry { id: 2, name: "close".into(), dtype: ValueType::Float64, complete: true }],
        }
    }

    /// Commits `day` with three symbols whose `close` is `day + i`, as the updater does.
    fn commit_day(store: &Store, day: Day) {
        let ids = [0u32, 1, 2];
        let values = Float64Array::from_iter_values(ids.iter().map(|&i| f64::from(day) + f64::from(i)));
        let mut batch = store.batch();
        batch.put_day(1, day, ids.len(), encode_rows(&ids, 1));
        batch.put_values(1, &table().fields[0], day, encode_values(&values, ValueType::Float64, 1));
        batch.put_watermark(1, day);
        store.write(batch).unwrap();
    }

    /// A writer holding a catalog and symbols, with `days` committed.
    fn writer(dir: &Path, days: &[Day]) -> Store {
        let store = Store::open_writer(dir, 1).unwrap();
        let mut symbols = SymbolDictionary::default();
        for name in ["A", "B", "C"] {
            symbols.intern(name);
        }
        let mut batch = store.batch();
        batch.put_catalog(&Catalog { next_id: 3, tables: vec![table()] });
        batch.put_new_symbols(&symbols);
        store.write(batch).unwrap();
        for &day in days {
            commit_day(&store, day);
        }
        store
    }

    fn close(hot: &HotChunks, follower: &Follower, day: Day) -> Option<f64> {
        let (store, view) = (follower.store(), follower.view());
        let field = &view.catalog.tables[0].fields[0];
        let chunk = hot.values(&store, &view.catalog.tables[0], field, &[day]).unwrap().pop().unwrap()?;
        Some(chunk.as_primitive::<Float64Type>().value(0))
    }

    #[test]
    fn a_new_date_appears_on_the_next_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(dir.path(), &[10]);
        let hot = HotChunks::new(1 << 20);
        let follower = Follower::reader(dir.path()).unwrap();
        assert_eq!(follower.view().days_of(1), [10]);

        commit_day(&writer, 11);
        assert_eq!(follower.view().days_of(1), [10], "nothing changes before a refresh");
        follower.refresh(&hot).unwrap();
        assert_eq!(follower.view().days_of(1), [10, 11]);
        assert_eq!(close(&hot, &follower, 11), Some(11.0));
        assert_eq!(follower.reopens(), 0, "a commit without a flush is followed by catch-up alone");
    }

    #[test]
    fn a_flush_by_the_writer_makes_the_reader_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(dir.path(), &[10]);
        let hot = HotChunks::new(1 << 20);
        let follower = Follower::reader(dir.path()).unwrap();

        commit_day(&writer, 11);
        writer.flush().unwrap();
        follower.refresh(&hot).unwrap();
        assert_eq!(follower.reopens(), 1, "the MANIFEST changed: the instance is replaced");
        assert_eq!(follower.view().days_of(1), [10, 11]);
        assert_eq!(close(&hot, &follower, 11), Some(11.0));

        follower.refresh(&hot).unwrap();
        assert_eq!(follower.reopens(), 1, "nothing changed on disk since: no second reopen");
    }

    #[test]
    fn a_torn_view_is_read_again_from_a_fresh_instance() {
        let dir = tempfile::tempdir().unwrap();
        let _writer = writer(dir.path(), &[10]);
        let hot = HotChunks::new(1 << 20);
        let follower = Follower::reader(dir.path()).unwrap();
        let attempts = std::cell::Cell::new(0);
        let result = follower.read(&hot, |store, _| {
            attempts.set(attempts.get() + 1);
            if attempts.get() == 1 {
                Err(store.corrupt_chunk("bar", Some("close"), 10, "missing beside its row chunk").into())
            } else {
                Ok(attempts.get())
            }
        });
        assert_eq!(result.unwrap(), 2);
        assert_eq!(follower.reopens(), 1);

        // A chunk that is still missing after the reopen is reported, not retried forever.
        let always = follower.read(&hot, |store, _| -> Result<(), QueryError> {
            Err(store.corrupt_chunk("bar", Some("close"), 10, "lost").into())
        });
        assert!(matches!(always, Err(QueryError::Store(StoreError::CorruptChunk { .. }))), "{always:?}");
        assert_eq!(follower.reopens(), 2);
    }

    #[test]
    fn a_deleted_date_is_evicted_from_the_hot_layer() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(dir.path(), &[10, 11]);
        let hot = HotChunks::new(1 << 20);
        let follower = Follower::reader(dir.path()).unwrap();
        assert_eq!(close(&hot, &follower, 11), Some(11.0));
        let decoded = hot.decoded();

        let mut batch = writer.batch();
        batch.delete_day(&table(), 11);
        writer.write(batch).unwrap();
        follower.refresh(&hot).unwrap();
        assert_eq!(follower.view().days_of(1), [10]);
        assert_eq!(close(&hot, &follower, 11), None, "the evicted chunk is not served from memory");
        assert_eq!(hot.decoded(), decoded, "and the store has none to decode");

        commit_day(&writer, 11);
        follower.refresh(&hot).unwrap();
        assert_eq!(follower.view().days_of(1), [10, 11]);
        assert_eq!(close(&hot, &follower, 11), Some(11.0));
    }

    #[test]
    fn the_writer_sees_its_own_commits_without_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let follower = Follower::writer(writer(dir.path(), &[10])).unwrap();
        let hot = HotChunks::new(1 << 20);
        commit_day(&follower.store(), 11);
        follower.store().flush().unwrap();
        follower.refresh(&hot).unwrap();
        assert_eq!(follower.view().days_of(1), [10, 11]);
        assert_eq!(follower.reopens(), 0);
    }
}
