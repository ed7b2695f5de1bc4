//! The RocksDB store: key chunks, value chunks, and the meta records beside them.
//!
//! Three column families:
//! - `keys`: per (table, day), the sorted symbol ids with a row that day ([`codec::encode_keys`]);
//! - `values`: per (field, day), the field's values for exactly those rows
//!   ([`codec::encode_values`]);
//! - `meta`: the format version, the catalog, watermarks, fieldmarks and the symbol dictionary.
//!
//! Everything written for one day goes into one [`StoreBatch`], so a reader sees a day whole or
//! not at all. One process writes (RocksDB's `LOCK` file enforces it); any number read through
//! secondary instances that catch up with the writer before each read.

pub mod catalog;
pub mod codec;
pub mod keys;
pub mod symbols;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Direction, IteratorMode, Options, WriteBatch, DB,
};

use self::catalog::{Catalog, TableEntry};
use self::keys::{chunk_key, date_of, id_prefix, meta, parse_chunk_key, parse_day, Day};
use self::symbols::SymbolDictionary;
use crate::error::StoreError;

/// The on-disk format this build reads and writes.
///
/// - 1: the first format: `keys`/`values`/`meta` column families, chunk codec version 1,
///   postcard catalog.
/// - 2: adds the day index (`day/`), the change journal (`journal/`, `journal_floor`) and
///   `catalog_version` to `meta`, so readers refresh incrementally.
/// - 3: Float64 chunks may hold decimal doubles as integers (codec flag bit 1).
/// - 4: fixed-width chunks may be dictionaries of at most 256 values (codec flag bit 2).
///
/// Stores of older versions from 2 on are read as they are, and a writer marks them current
/// before writing chunks they may not hold.
pub const FORMAT_VERSION: u32 = 4;
/// The oldest format this build reads: every later version only adds to it.
const OLDEST_READABLE_VERSION: u32 = 2;

/// Journal entries kept after an update; a reader further behind reloads everything.
const JOURNAL_KEEP: u64 = 1_000_000;

const CF_META: &str = "meta";
const CF_KEYS: &str = "keys";
const CF_VALUES: &str = "values";
const COLUMN_FAMILIES: [&str; 3] = [CF_META, CF_KEYS, CF_VALUES];

/// An open store.
pub struct Store {
    db: DB,
    path: PathBuf,
    /// Set for readers: the secondary instance's private directory, removed on drop.
    secondary_dir: Option<PathBuf>,
    compression_level: i32,
    /// The writer's next journal sequence number.
    next_seq: AtomicU64,
}

/// What changed since a reader's last look at the journal.
#[derive(Debug, Default)]
pub struct Changes {
    /// `(table id, day)` written or deleted, in commit order.
    pub days: Vec<(u32, Day)>,
    /// The reader fell behind the kept journal: drop everything cached.
    pub reset: bool,
    /// The sequence number to ask from next time.
    pub next_seq: u64,
}

/// The two kinds of chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChunkKind {
    /// A table's symbol ids on a day.
    Keys,
    /// A field's values on a day.
    Values,
}

/// Which of a table's or field's chunks exist, and their size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkSpan {
    /// Number of chunks (dates).
    pub chunks: usize,
    /// The first date with a chunk.
    pub first: Option<Day>,
    /// The last date with a chunk.
    pub last: Option<Day>,
    /// Compressed bytes of all chunks.
    pub bytes: u64,
    /// Rows over all chunks.
    pub rows: u64,
}

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
        let store =
            Self { db, path: path.to_path_buf(), secondary_dir: None, compression_level, next_seq: AtomicU64::new(1) };
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
        Ok(store)
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
        let descriptors = COLUMN_FAMILIES.map(|name| ColumnFamilyDescriptor::new(name, cf_options(name)));
        let db = DB::open_cf_descriptors_as_secondary(&options, path, &secondary_dir, descriptors)
            .map_err(|e| open_error(path, e))?;
        let store = Self {
            db,
            path: path.to_path_buf(),
            secondary_dir: Some(secondary_dir),
            compression_level: 3,
            next_seq: AtomicU64::new(0),
        };
        match store.format_version()? {
            None => return Err(StoreError::Missing { path: path.to_path_buf() }),
            Some(found) => check_version(path, found)?,
        }
        Ok(store)
    }

    /// The primary's current MANIFEST and its length: it changes when the writer flushes,
    /// compacts or reopens the store.
    pub fn manifest_state(&self) -> Option<(String, u64)> {
        Self::manifest_state_at(&self.path)
    }

    /// The newest write-ahead log of the store at `path` and its length: it changes whenever the
    /// writer commits.
    pub fn wal_state_at(path: &Path) -> Option<(String, u64)> {
        let newest = std::fs::read_dir(path)
            .ok()?
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| name.ends_with(".log"))
            .max()?;
        let len = std::fs::metadata(path.join(&newest)).ok()?.len();
        Some((newest, len))
    }

    /// [`Store::manifest_state`] of the store at `path`.
    pub fn manifest_state_at(path: &Path) -> Option<(String, u64)> {
        let current = std::fs::read_to_string(path.join("CURRENT")).ok()?;
        let name = current.trim().to_string();
        let len = std::fs::metadata(path.join(&name)).ok()?.len();
        Some((name, len))
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this handle may write.
    pub fn is_writer(&self) -> bool {
        self.secondary_dir.is_none()
    }

    /// The zstd level chunks are written with.
    pub fn compression_level(&self) -> i32 {
        self.compression_level
    }

    /// For readers, replays what the writer appended to its write-ahead log since the last call;
    /// a no-op for the writer. After the writer flushed or reopened, a secondary instance may
    /// keep serving stale memtable entries (RocksDB issue 14444): [`crate::Cache`] then opens a
    /// fresh reader instead, see [`Store::manifest_state`].
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn refresh(&self) -> Result<(), StoreError> {
        if self.is_writer() {
            return Ok(());
        }
        self.db.try_catch_up_with_primary().map_err(|e| self.rocks(e))
    }

    /// The catalog; empty for a new store.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if it does not decode.
    pub fn catalog(&self) -> Result<Catalog, StoreError> {
        match self.get(CF_META, meta::CATALOG)? {
            None => Ok(Catalog::default()),
            Some(bytes) => postcard::from_bytes(&bytes).map_err(|e| self.corrupt("catalog", e)),
        }
    }

    /// The whole symbol dictionary.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if an entry is not UTF-8 or ids have gaps.
    pub fn symbols(&self) -> Result<SymbolDictionary, StoreError> {
        let mut dictionary = SymbolDictionary::default();
        self.load_new_symbols(&mut dictionary)?;
        Ok(dictionary)
    }

    /// Whether symbols with ids at or above `known` exist.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn symbols_after(&self, known: usize) -> Result<bool, StoreError> {
        Ok(self.get(CF_META, &meta::with_id(meta::SYMBOL, known as u32))?.is_some())
    }

    /// Whether table `table_id` has a cached day `day`.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn has_day(&self, table_id: u32, day: Day) -> Result<bool, StoreError> {
        Ok(self.get(CF_META, &meta::day(table_id, day))?.is_some())
    }

    /// Appends to `dictionary` the symbols persisted after its last one.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if an entry is not UTF-8 or ids have gaps.
    pub fn load_new_symbols(&self, dictionary: &mut SymbolDictionary) -> Result<(), StoreError> {
        let first = dictionary.len() as u32;
        let start = meta::with_id(meta::SYMBOL, first);
        let mut names = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_META), IteratorMode::From(&start, Direction::Forward)) {
            let (key, value) = item.map_err(|e| self.rocks(e))?;
            let Some(id_bytes) = key.strip_prefix(meta::SYMBOL) else {
                break;
            };
            let expected = first + names.len() as u32;
            if id_bytes != expected.to_be_bytes() {
                return Err(self.corrupt("symbol dictionary", format!("missing symbol id {expected}")));
            }
            let name = std::str::from_utf8(&value).map_err(|e| self.corrupt("symbol dictionary", e))?;
            names.push(Arc::from(name));
        }
        dictionary.extend_persisted(first, names);
        Ok(())
    }

    /// The last date fully loaded for table `table_id`.
    ///
    /// # Errors
    /// [`StoreError::Rocks`] or [`StoreError::Corrupt`].
    pub fn watermark(&self, table_id: u32) -> Result<Option<Day>, StoreError> {
        self.get_day(&meta::with_id(meta::WATERMARK, table_id), "watermark")
    }

    /// The last date backfilled for a field that is not yet complete.
    ///
    /// # Errors
    /// [`StoreError::Rocks`] or [`StoreError::Corrupt`].
    pub fn fieldmark(&self, field_id: u32) -> Result<Option<Day>, StoreError> {
        self.get_day(&meta::with_id(meta::FIELDMARK, field_id), "fieldmark")
    }

    /// When table `table_id` last finished an update, in seconds since the Unix epoch.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn last_updated(&self, table_id: u32) -> Result<Option<i64>, StoreError> {
        Ok(self
            .get(CF_META, &meta::with_id(meta::UPDATED, table_id))?
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(i64::from_be_bytes))
    }

    /// The days in `from..=to` on which table `table_id` has a key chunk, ascending.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn days(&self, table_id: u32, from: Day, to: Day) -> Result<Vec<Day>, StoreError> {
        Ok(self.day_index(table_id)?.into_iter().map(|(day, _)| day).filter(|d| (from..=to).contains(d)).collect())
    }

    /// Every cached day of table `table_id` with its row count, ascending.
    ///
    /// # Errors
    /// [`StoreError::Rocks`] or [`StoreError::Corrupt`].
    pub fn day_index(&self, table_id: u32) -> Result<Vec<(Day, u32)>, StoreError> {
        let prefix = meta::with_id(meta::DAY, table_id);
        let mut days = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_META), IteratorMode::From(&prefix, Direction::Forward)) {
            let (key, value) = item.map_err(|e| self.rocks(e))?;
            let Some(day) = key.strip_prefix(prefix.as_slice()) else { break };
            let day = parse_day(day).ok_or_else(|| self.corrupt("day index", "bad key"))?;
            let rows = <[u8; 4]>::try_from(&*value).map_err(|_| self.corrupt("day index", "bad row count"))?;
            days.push((day, u32::from_be_bytes(rows)));
        }
        Ok(days)
    }

    /// The days written or deleted since journal sequence `since`.
    ///
    /// # Errors
    /// [`StoreError::Rocks`] or [`StoreError::Corrupt`].
    pub fn changes_since(&self, since: u64) -> Result<Changes, StoreError> {
        let floor = self
            .get(CF_META, meta::JOURNAL_FLOOR)?
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map_or(0, u64::from_be_bytes);
        let mut changes = Changes { reset: since < floor, next_seq: since, days: Vec::new() };
        let start = meta::journal(since);
        for item in self.db.iterator_cf(self.cf(CF_META), IteratorMode::From(&start, Direction::Forward)) {
            let (key, value) = item.map_err(|e| self.rocks(e))?;
            let Some(seq) = key.strip_prefix(meta::JOURNAL) else { break };
            let seq = <[u8; 8]>::try_from(seq).map_err(|_| self.corrupt("journal", "bad key"))?;
            let (table, day) = value.split_at_checked(4).ok_or_else(|| self.corrupt("journal", "short entry"))?;
            let table = u32::from_be_bytes(table.try_into().map_err(|_| self.corrupt("journal", "bad table"))?);
            let day = parse_day(day).ok_or_else(|| self.corrupt("journal", "bad day"))?;
            changes.days.push((table, day));
            changes.next_seq = u64::from_be_bytes(seq) + 1;
        }
        Ok(changes)
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

    /// A number that changes whenever the catalog does.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn catalog_version(&self) -> Result<u64, StoreError> {
        Ok(self
            .get(CF_META, meta::CATALOG_VERSION)?
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    /// The `n`-th most recent day at or before `day` with a key chunk of table `table_id`
    /// (`n = 1` is the latest), or the earliest one if fewer exist.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn nth_latest_day(&self, table_id: u32, day: Day, n: u32) -> Result<Option<Day>, StoreError> {
        let start = chunk_key(table_id, day);
        let mut found = None;
        let mut seen = 0;
        for item in self.db.iterator_cf(self.cf(CF_KEYS), IteratorMode::From(&start, Direction::Reverse)) {
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
    pub fn keys(&self, table: &TableEntry, day: Day) -> Result<Option<Arc<[u32]>>, StoreError> {
        self.get(CF_KEYS, &chunk_key(table.id, day))?
            .map(|bytes| {
                codec::decode_keys(&bytes)
                    .map_err(|e| self.corrupt(&format!("key chunk of table `{}` on {}", table.name, date_of(day)), e))
            })
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
            ChunkKind::Keys => CF_KEYS,
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
    pub fn touch_chunks(&self, kind: ChunkKind, id: u32, from: Day, to: Day) -> Result<(usize, u64), StoreError> {
        let cf = match kind {
            ChunkKind::Keys => CF_KEYS,
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

    /// Counts the key chunks of a table, with their rows and bytes.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn table_span(&self, table_id: u32) -> Result<ChunkSpan, StoreError> {
        self.span(CF_KEYS, table_id)
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
        for cf_name in [CF_KEYS, CF_VALUES] {
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
        orphan_marks.delete_cf(self.cf(CF_META), meta::SWEEP_PENDING);
        self.db.write(orphan_marks).map_err(|e| self.rocks(e))?;
        swept.sort_unstable();
        swept.dedup();
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

    /// Bytes of the store's files on disk.
    pub fn disk_bytes(&self) -> u64 {
        fn walk(dir: &Path) -> u64 {
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => walk(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        }
        walk(&self.path)
    }

    /// Flushes memtables to table files, so a reopen needs no WAL replay.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn flush(&self) -> Result<(), StoreError> {
        // Meta last: a reader's catch-up may apply one family's flush before it replays the
        // others' log, and a date becomes visible only through meta (its day index, journal
        // entry and watermark), so its chunks must never be behind it.
        for name in [CF_VALUES, CF_KEYS, CF_META] {
            self.db.flush_cf(self.cf(name)).map_err(|e| self.rocks(e))?;
        }
        Ok(())
    }

    fn format_version(&self) -> Result<Option<u32>, StoreError> {
        match self.get(CF_META, meta::FORMAT_VERSION)? {
            None => Ok(None),
            Some(bytes) => <[u8; 4]>::try_from(bytes.as_slice())
                .map(|b| Some(u32::from_be_bytes(b)))
                .map_err(|_| self.corrupt("format version", "not 4 bytes")),
        }
    }

    fn get_day(&self, key: &[u8], what: &str) -> Result<Option<Day>, StoreError> {
        self.get(CF_META, key)?
            .map(|bytes| parse_day(&bytes).ok_or_else(|| self.corrupt(what, "not 4 bytes")))
            .transpose()
    }

    fn get(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get_cf(self.cf(cf), key).map_err(|e| self.rocks(e))
    }

    fn cf(&self, name: &str) -> &ColumnFamily {
        self.db.cf_handle(name).expect("every column family is opened with the store")
    }

    fn rocks(&self, e: impl std::fmt::Display) -> StoreError {
        rocks_error(&self.path, e)
    }

    /// A corruption finding about `what`, for example ``chunk of field `pe` on 2020-01-02``.
    pub fn corrupt(&self, what: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt { path: self.path.clone(), what: what.to_string(), message: e.to_string() }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(dir) = &self.secondary_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Writes for one atomic commit.
pub struct StoreBatch<'a> {
    store: &'a Store,
    batch: WriteBatch,
}

impl StoreBatch<'_> {
    /// Puts the key chunk of `table_id` on `day`, with its day index entry and a journal
    /// entry: the day is (re)written.
    pub fn put_day(&mut self, table_id: u32, day: Day, rows: usize, chunk: &[u8]) {
        self.batch.put_cf(self.store.cf(CF_KEYS), chunk_key(table_id, day), chunk);
        self.put_meta(meta::day(table_id, day), (rows as u32).to_be_bytes().to_vec());
        self.touch(table_id, day);
    }

    /// Records in the journal that the chunks of `table_id` on `day` changed, so readers drop
    /// what they cached of that day.
    pub fn touch(&mut self, table_id: u32, day: Day) {
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
        self.batch.delete_cf(self.store.cf(CF_KEYS), chunk_key(table.id, day));
        self.batch.delete_cf(self.store.cf(CF_META), meta::day(table.id, day));
        for field in &table.fields {
            self.batch.delete_cf(self.store.cf(CF_VALUES), chunk_key(field.id, day));
        }
        self.touch(table.id, day);
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

    fn put_meta(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.batch.put_cf(self.store.cf(CF_META), key, value);
    }
}

fn db_options() -> Options {
    let mut options = Options::default();
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

fn open_error(path: &Path, e: rocksdb::Error) -> StoreError {
    let message = e.to_string();
    if message.contains("lock") && (message.contains("Resource temporarily unavailable") || message.contains("hold")) {
        StoreError::Locked { path: path.to_path_buf() }
    } else {
        rocks_error(path, message)
    }
}

/// RocksDB reports an I/O failure as text, and once one write failed it refuses every later one
/// with the first failure quoted inside: the text says which it was.
fn rocks_error(path: &Path, e: impl std::fmt::Display) -> StoreError {
    let (path, message) = (path.to_path_buf(), e.to_string());
    if message.contains("No space left") || message.contains("File too large") {
        StoreError::DiskFull { path, message }
    } else if message.contains("Permission denied") || message.contains("Read-only file system") {
        StoreError::PermissionDenied { path, message }
    } else {
        StoreError::Rocks { path, message }
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
