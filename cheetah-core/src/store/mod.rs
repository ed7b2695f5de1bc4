//! The RocksDB store: row chunks, value chunks, and the meta records beside them.
//!
//! Four column families:
//! - `keys` (the on-disk name of the row chunks): per (table, day), the sorted symbol ids with a
//!   row that day ([`codec::encode_rows`]);
//! - `values`: per (field, day), the field's values for exactly those rows
//!   ([`codec::encode_values`]);
//! - `meta`: the format version, the catalog, watermarks, fieldmarks, the symbol dictionary,
//!   the day index, the journal and the store versions;
//! - `history`: what each version replaced ([`history`]), so an older version stays readable
//!   while the latest keys stay where they are.
//!
//! Everything written for one day goes into one [`StoreBatch`], so a reader sees a day whole or
//! not at all, and each batch that changes anything is one store version. One process writes
//! (RocksDB's `LOCK` file enforces it); any number read through secondary instances that catch
//! up with the writer before each read.

mod batch;
pub mod catalog;
mod chunks;
pub mod codec;
pub(crate) mod head;
pub(crate) mod history;
mod journal;
pub mod keys;
mod open;
mod records;
pub mod snapshots;
mod sweep;
pub mod symbols;
mod versions;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard};

use rocksdb::{ColumnFamily, DB};

pub use self::batch::StoreBatch;
pub use self::open::FORMAT_VERSION;
pub(crate) use self::records::MarkSnapshot;
pub use self::versions::Version;
use crate::error::StoreError;
use crate::types::Day;

const CF_META: &str = "meta";
/// Row chunks; "keys" on disk, the name format 1 gave them.
const CF_ROWS: &str = "keys";
const CF_VALUES: &str = "values";
/// What each store version replaced; absent from stores written before versions.
const CF_HISTORY: &str = "history";
const COLUMN_FAMILIES: [&str; 4] = [CF_META, CF_ROWS, CF_VALUES, CF_HISTORY];

/// An open store.
pub struct Store {
    db: DB,
    path: PathBuf,
    /// Set for readers: the secondary instance's private directory, removed on drop.
    secondary_dir: Option<PathBuf>,
    /// Set for the writer: the head it writes before each version ([`head`]).
    head: Option<head::HeadFile>,
    compression_level: i32,
    /// The writer's next journal sequence number.
    next_seq: AtomicU64,
    /// The writer's next store version.
    next_version: AtomicU64,
    /// When the writer's last version was committed, in microseconds since the epoch.
    last_commit_micros: AtomicI64,
    /// Symbols in the dictionary as of the writer's last commit.
    symbols_written: AtomicU32,
    /// Written while a batch commits (so each compares with what the one before it left), read
    /// while a read runs (so no commit lands in the middle of it).
    commits: RwLock<()>,
    /// Held by each writing task of the writer's process: a table's update, a repair, a local
    /// write. Each reads the catalog and the symbol dictionary under it, and commits what it
    /// derived from them before letting go.
    writing: Mutex<()>,
}

/// The journal entries after a reader's position: the days written or deleted since.
#[derive(Debug, Default)]
pub struct JournalTail {
    /// `(table id, day)` written or deleted, in commit order.
    pub days: Vec<(u32, Day)>,
    /// The reader fell behind the kept journal: drop everything cached.
    pub fell_behind: bool,
    /// The sequence number to ask from next time.
    pub next_seq: u64,
}

/// The two kinds of chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChunkKind {
    /// A table's symbol ids on a day.
    Rows,
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

    fn get(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get_cf(self.cf(cf), key).map_err(|e| self.rocks(e))
    }

    fn cf(&self, name: &str) -> &ColumnFamily {
        self.db.cf_handle(name).expect("every column family is opened with the store")
    }

    /// Keeps this process's commits out until the guard drops: what a read sees of the store
    /// holds still under it.
    pub(crate) fn hold_still(&self) -> RwLockReadGuard<'_, ()> {
        self.commits.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One writing task at a time; see `writing`.
    pub(crate) fn exclusive(&self) -> MutexGuard<'_, ()> {
        self.writing.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The history's column family; a reader of a store written before versions has none.
    fn history_cf(&self) -> Option<&ColumnFamily> {
        self.db.cf_handle(CF_HISTORY)
    }

    fn rocks(&self, e: impl std::fmt::Display) -> StoreError {
        rocks_error(&self.path, e)
    }

    /// A finding that the chunk of `table` (its rows) or of its `field` on `day` is corrupt or
    /// missing.
    pub fn corrupt_chunk(&self, table: &str, field: Option<&str>, day: Day, e: impl std::fmt::Display) -> StoreError {
        StoreError::CorruptChunk {
            path: self.path.clone(),
            table: table.to_string(),
            field: field.map(str::to_string),
            date: crate::types::date_of(day),
            message: e.to_string(),
        }
    }

    /// A corruption finding about the meta record `what`, for example `catalog`.
    pub fn corrupt(&self, what: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt { path: self.path.clone(), what: what.to_string(), message: e.to_string() }
    }
}

/// RocksDB's identity of the store at `path`, read without opening it: unique to the store,
/// kept across reopens and by every copy.
///
/// # Errors
/// [`StoreError::Corrupt`] when the store has no readable `IDENTITY` file.
pub fn identity_at(path: &Path) -> Result<String, StoreError> {
    std::fs::read_to_string(path.join("IDENTITY")).map(|s| s.trim().to_string()).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        what: "IDENTITY".into(),
        message: e.to_string(),
    })
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
