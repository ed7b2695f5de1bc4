//! Opening a store: as its one writer, or as a reader following the writer; the format version
//! check, and RocksDB's options.

use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use rocksdb::{ColumnFamilyDescriptor, DBCompressionType, Options, DB};

use super::keys::meta;
use super::{open_error, rocks_error, Store, CF_HISTORY, CF_META, CF_ROWS, CF_VALUES, COLUMN_FAMILIES};
use crate::error::StoreError;

/// The on-disk format this build reads and writes.
///
/// - 1: the first format: `keys`/`values`/`meta` column families, chunk codec version 1,
///   postcard catalog.
/// - 2: adds the day index (`day/`), the change journal (`journal/`, `journal_floor`) and
///   `catalog_version` to `meta`, so readers refresh incrementally.
/// - 3: Float64 chunks may hold decimal doubles as integers (codec flag bit 1).
/// - 4: fixed-width chunks may be dictionaries of at most 256 values (codec flag bit 2).
/// - 5: store versions: the `history` column family, `version/` records, `latest_version` and
///   `history_floor` in `meta`, and snapshots in the store's `snapshots/` folder. What an older
///   store holds is its version 1.
/// - 6: the writer keeps the store's head ([`super::head`]) beside RocksDB's files. A build
///   that does not would leave readers trusting a head behind the store, so it must refuse
///   the store.
///
/// Stores of older versions from 2 on are read as they are, and a writer marks them current
/// before writing chunks they may not hold.
pub const FORMAT_VERSION: u32 = 6;
/// How many table files the small families may spread over before [`Store::tidy`] merges them.
const TIDY_FILES: usize = 12;
/// The oldest format this build reads: every later version only adds to it.
const OLDEST_READABLE_VERSION: u32 = 2;

impl Store {
    /// Opens (creating if needed) the store for writing.
    ///
    /// # Errors
    /// [`StoreError::Locked`] if another process writes it, [`StoreError::FormatVersion`] if
    /// another format wrote it, [`StoreError::Rocks`] for other failures.
    pub fn open_writer(path: &Path, compression_level: i32) -> Result<Self, StoreError> {
        std::fs::create_dir_all(path).map_err(|e| rocks_error(path, e))?;
        let mut options = db_options();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let descriptors = COLUMN_FAMILIES.map(|name| ColumnFamilyDescriptor::new(name, cf_options(name)));
        let db = DB::open_cf_descriptors(&options, path, descriptors).map_err(|e| open_error(path, e))?;
        let head =
            super::head::HeadFile::open(path).map_err(|e| rocks_error(path, format!("opening its head: {e}")))?;
        let mut store = Self::new(db, path, None, compression_level);
        store.head = Some(head);
        store.next_seq.store(store.journal_end()?, Ordering::Relaxed);
        match store.format_version()? {
            None => store
                .db
                .put_cf(store.cf(CF_META), meta::FORMAT_VERSION, FORMAT_VERSION.to_be_bytes())
                .map_err(|e| rocks_error(path, e))?,
            Some(found) => {
                check_version(path, found)?;
                if found < FORMAT_VERSION {
                    tracing::info!(path = %path.display(), from = found, to = FORMAT_VERSION, "upgrading the store's format version");
                    store
                        .db
                        .put_cf(store.cf(CF_META), meta::FORMAT_VERSION, FORMAT_VERSION.to_be_bytes())
                        .map_err(|e| rocks_error(path, e))?;
                }
            }
        }
        store.record_first_version()?;
        let latest = store.latest_version()?;
        let last = store.version(latest)?;
        store.next_version.store(latest + 1, Ordering::Relaxed);
        store.announce(latest)?;
        store.last_commit_micros.store(last.map_or(0, |v| v.committed.timestamp_micros()), Ordering::Relaxed);
        store.symbols_written.store(store.symbol_count()?, Ordering::Relaxed);
        Ok(store)
    }

    fn new(db: DB, path: &Path, secondary_dir: Option<std::path::PathBuf>, compression_level: i32) -> Self {
        Self {
            db,
            path: path.to_path_buf(),
            secondary_dir,
            head: None,
            compression_level,
            next_seq: AtomicU64::new(1),
            next_version: AtomicU64::new(1),
            last_commit_micros: AtomicI64::new(0),
            symbols_written: AtomicU32::new(0),
            commits: RwLock::new(()),
            writing: Mutex::new(()),
        }
    }

    /// Opens the store for reading while another process may write it. Call
    /// [`Store::refresh`] to see what the writer committed since.
    ///
    /// # Errors
    /// [`StoreError::Missing`] if no update has created the store yet,
    /// [`StoreError::FormatVersion`] if another format wrote it.
    pub fn open_reader(path: &Path) -> Result<Self, StoreError> {
        if !path.join("CURRENT").is_file() {
            return Err(StoreError::Missing { path: path.to_path_buf() });
        }
        static READERS: AtomicU64 = AtomicU64::new(0);
        let secondary_dir = std::env::temp_dir().join(format!(
            "cheetah-reader-{}-{}",
            std::process::id(),
            READERS.fetch_add(1, Ordering::Relaxed)
        ));
        let mut options = db_options();
        // Secondary instances must keep every table file open to follow the primary.
        options.set_max_open_files(-1);
        // Each catch-up reloads table handlers; more than one thread means spawning threads
        // on every call.
        options.set_max_file_opening_threads(1);
        // What a reader never uses: the compaction statistics of every table file, and a stat of
        // each to check its size (a damaged file still fails its first read, and `verify` finds
        // it). A new process's open then costs less per table file.
        options.set_skip_stats_update_on_db_open(true);
        options.set_skip_checking_sst_file_sizes_on_db_open(true);
        // A writer killed while creating the store leaves RocksDB's files without all of the
        // column families; to a reader that is no store yet, and the next update completes it.
        let families = DB::list_cf(&options, path).map_err(|e| open_error(path, e))?;
        let present = |name: &str| families.iter().any(|f| f == name);
        // A store written before versions has no history: everything it holds is version 1.
        if !COLUMN_FAMILIES.iter().filter(|&&name| name != CF_HISTORY).all(|name| present(name)) {
            return Err(StoreError::Missing { path: path.to_path_buf() });
        }
        let descriptors = COLUMN_FAMILIES
            .iter()
            .filter(|name| present(name))
            .map(|&name| ColumnFamilyDescriptor::new(name, cf_options(name)))
            .collect::<Vec<_>>();
        let db = DB::open_cf_descriptors_as_secondary(&options, path, &secondary_dir, descriptors)
            .map_err(|e| open_error(path, e))?;
        let store = Self::new(db, path, Some(secondary_dir), 3);
        match store.format_version()? {
            None => return Err(StoreError::Missing { path: path.to_path_buf() }),
            Some(found) => check_version(path, found)?,
        }
        Ok(store)
    }

    /// For readers, replays what the writer appended to its write-ahead log since the last call;
    /// a no-op for the writer. This alone is not enough to follow a writer that flushes: the
    /// follower above the store reopens then.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn catch_up(&self) -> Result<(), StoreError> {
        if self.is_writer() {
            return Ok(());
        }
        self.db.try_catch_up_with_primary().map_err(|e| self.rocks(e))
    }

    /// Flushes memtables to table files, so a reopen needs no WAL replay.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn flush(&self) -> Result<(), StoreError> {
        // Meta last: a reader's catch-up may apply one family's flush before it replays the
        // others' log, and a date becomes visible only through meta (its day index, journal
        // entry and watermark), so its chunks must never be behind it.
        for name in [CF_VALUES, CF_ROWS, CF_HISTORY, CF_META] {
            if let Some(cf) = self.db.cf_handle(name) {
                self.db.flush_cf(cf).map_err(|e| self.rocks(e))?;
            }
        }
        Ok(())
    }

    /// Merges the small families (meta, row keys, history) into few table files once they have
    /// spread over more than [`TIDY_FILES`]. Dates written in order make table files with
    /// disjoint keys, which RocksDB moves down the levels without merging: a backfill left 49
    /// files of about 180 KB in the row keys, and every reader's open pays for each file.
    /// Returns how many files the families held when it merged them.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn tidy(&self) -> Result<Option<usize>, StoreError> {
        let small = [CF_META, CF_ROWS, CF_HISTORY];
        let files = self.db.live_files().map_err(|e| self.rocks(e))?;
        let count = files.iter().filter(|f| small.contains(&f.column_family_name.as_str())).count();
        if count <= TIDY_FILES {
            return Ok(None);
        }
        let mut options = rocksdb::CompactOptions::default();
        // The files already sit in the last level: merge them there too.
        options.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
        for name in small {
            if let Some(cf) = self.db.cf_handle(name) {
                self.db.compact_range_cf_opt(cf, None::<&[u8]>, None::<&[u8]>, &options);
            }
        }
        Ok(Some(count))
    }

    /// The format version the store is marked with; `None` before the first open wrote it.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the record is not 4 bytes.
    pub fn format_version(&self) -> Result<Option<u32>, StoreError> {
        match self.get(CF_META, meta::FORMAT_VERSION)? {
            None => Ok(None),
            Some(bytes) => <[u8; 4]>::try_from(bytes.as_slice())
                .map(|b| Some(u32::from_be_bytes(b)))
                .map_err(|_| self.corrupt("format version", "not 4 bytes")),
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(dir) = &self.secondary_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn db_options() -> Options {
    let mut options = Options::default();
    // The `default` family holds nothing; set it as the others are, so that no option names a
    // compressor the wheel's RocksDB (compiled with none) lacks.
    options.set_compression_type(DBCompressionType::None);
    options.set_max_background_jobs(2);
    // Automatic flushes take every family at once, so no reader sees one family's part of a
    // date flushed while another's is still only in the log.
    options.set_atomic_flush(true);
    // The small `meta` family rarely fills a memtable; without a cap it would pin every WAL.
    options.set_max_total_wal_size(64 << 20);
    options.set_keep_log_file_num(3);
    options.set_max_log_file_size(1 << 20);
    options
}

fn cf_options(name: &str) -> Options {
    let mut options = Options::default();
    // Chunks are zstd-compressed already.
    options.set_compression_type(DBCompressionType::None);
    if name == CF_VALUES {
        options.set_write_buffer_size(64 << 20);
    }
    options
}

fn check_version(path: &Path, found: u32) -> Result<(), StoreError> {
    if (OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&found) {
        Ok(())
    } else {
        Err(StoreError::FormatVersion {
            path: path.to_path_buf(),
            found,
            oldest: OLDEST_READABLE_VERSION,
            expected: FORMAT_VERSION,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_version(dir: &Path, version: u32) {
        let store = Store::open_writer(dir, 1).unwrap();
        store.db.put_cf(store.cf(CF_META), meta::FORMAT_VERSION, version.to_be_bytes()).unwrap();
    }

    #[test]
    fn a_store_whose_creation_was_cut_short_is_no_store_yet_and_the_writer_completes_it() {
        // What a writer killed between creating the database and its column families leaves.
        let dir = tempfile::tempdir().unwrap();
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        drop(DB::open(&options, dir.path()).unwrap());
        assert!(matches!(Store::open_reader(dir.path()), Err(StoreError::Missing { .. })));
        drop(Store::open_writer(dir.path(), 1).unwrap());
        assert_eq!(Store::open_reader(dir.path()).unwrap().format_version().unwrap(), Some(FORMAT_VERSION));
    }

    #[test]
    fn tidy_merges_the_small_families_once_they_spread_over_many_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_writer(dir.path(), 1).unwrap();
        let files = |store: &Store| {
            let live = store.db.live_files().unwrap();
            live.iter().filter(|f| f.column_family_name == CF_ROWS).count()
        };
        // Keys in order, one flush each: disjoint files, as a backfill's dates make them.
        for day in 0u32..20 {
            store.db.put_cf(store.cf(CF_ROWS), day.to_be_bytes(), [1u8; 64]).unwrap();
            store.flush().unwrap();
        }
        let spread = files(&store);
        assert!(spread > TIDY_FILES, "{spread} files");
        assert!(store.tidy().unwrap().is_some_and(|n| n >= spread));
        assert_eq!(files(&store), 1);
        assert_eq!(store.tidy().unwrap(), None, "nothing more to merge");
        for day in 0u32..20 {
            assert!(store.db.get_cf(store.cf(CF_ROWS), day.to_be_bytes()).unwrap().is_some(), "{day}");
        }
    }

    #[test]
    fn an_older_store_is_read_and_upgraded_by_its_writer() {
        let dir = tempfile::tempdir().unwrap();
        write_version(dir.path(), 2);
        assert_eq!(Store::open_reader(dir.path()).unwrap().format_version().unwrap(), Some(2));
        let writer = Store::open_writer(dir.path(), 1).unwrap();
        assert_eq!(writer.format_version().unwrap(), Some(FORMAT_VERSION));
    }

    #[test]
    fn unknown_versions_are_refused_by_name() {
        for version in [1, FORMAT_VERSION + 1] {
            let dir = tempfile::tempdir().unwrap();
            write_version(dir.path(), version);
            let err = Store::open_reader(dir.path()).err().expect("refused");
            assert!(matches!(err, StoreError::FormatVersion { found, .. } if found == version), "{version}: {err}");
            assert!(Store::open_writer(dir.path(), 1).is_err(), "{version}");
        }
    }
}
