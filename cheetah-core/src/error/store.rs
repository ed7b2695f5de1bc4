//! The store on disk, and the updater that writes it.

use std::path::PathBuf;

use chrono::NaiveDate;

use super::*;

/// The RocksDB store and its chunks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process holds the write lock.
    #[error("store {path} is locked by another writer (another `cheetah update` or `serve` is running); only one process may update a store at a time")]
    Locked {
        /// The store directory.
        path: PathBuf,
    },
    /// A reader handle was asked to write.
    #[error("store {path} is open for reading; updating needs the writer role (`cheetah update`)")]
    ReadOnly {
        /// The store directory.
        path: PathBuf,
    },
    /// There is no store at the path yet.
    #[error("empty cache: no store at {path} yet; run `cheetah update` to fill it")]
    Missing {
        /// The store directory.
        path: PathBuf,
    },
    /// The store was written by a format this build does not read.
    #[error("store {path} has format version {found}, this build reads versions {oldest} to {expected}; use a matching cheetah build or rebuild the store with a new `path`")]
    FormatVersion {
        /// The store directory.
        path: PathBuf,
        /// The version on disk.
        found: u32,
        /// The oldest version this build reads.
        oldest: u32,
        /// The version this build writes.
        expected: u32,
    },
    /// A chunk failed to decode, or is missing beside its date's row chunk.
    #[error("corrupt {} on {date} in store {path}: {message}; run `cheetah verify --repair` to re-fetch it", chunk_label(.table, .field.as_deref()))]
    CorruptChunk {
        /// The store directory.
        path: PathBuf,
        /// The chunk's table.
        table: String,
        /// The chunk's field; `None` for the table's row chunk.
        field: Option<String>,
        /// The chunk's date.
        date: NaiveDate,
        /// The decoder's finding.
        message: String,
    },
    /// A meta record (catalog, dictionary, journal, index) failed to decode.
    #[error("corrupt {what} in store {path}: {message}; run `cheetah verify --repair` to re-fetch it")]
    Corrupt {
        /// The store directory.
        path: PathBuf,
        /// What was being read, for example ``chunk of `close` on 2020-01-02``.
        what: String,
        /// The decoder's finding.
        message: String,
    },
    /// The disk holding the store is full, or a file-size limit was hit.
    #[error("store {path}: the disk is full ({message}); free space and run `cheetah update` again: every date committed before is intact")]
    DiskFull {
        /// The store directory.
        path: PathBuf,
        /// The operating system's message, through RocksDB.
        message: String,
    },
    /// The store's files or directory are not writable.
    #[error("store {path}: permission denied ({message}); give this user write access to the store directory and run `cheetah update` again: every date committed before is intact")]
    PermissionDenied {
        /// The store directory.
        path: PathBuf,
        /// The operating system's message, through RocksDB.
        message: String,
    },
    /// RocksDB reported an error.
    #[error("store {path}: {message}")]
    Rocks {
        /// The store directory.
        path: PathBuf,
        /// RocksDB's message.
        message: String,
    },
    /// A read the shared layer was to serve alone needed the store, which it had not opened;
    /// the cache opens the store and reads again, so no caller sees this.
    #[error("store {path} is not open: the shared layer alone was to serve this read")]
    Unopened {
        /// The store directory.
        path: PathBuf,
    },
}

/// An update run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// The source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A daily table has two rows for one key.
    #[error("table `{table}` has {count} rows for ({date}, {symbol}); a daily table holds at most one row per (date, symbol): fix the source, add a `where` filter, or declare it kind = \"asof\"")]
    DuplicateKey {
        /// The table.
        table: String,
        /// The date.
        date: NaiveDate,
        /// The symbol.
        symbol: String,
        /// How many rows share the key.
        count: usize,
    },
    /// `repair` found the source's columns or the config no longer match the catalog.
    #[error("table `{table}` changed in the source or the config since the last update; run `cheetah update` first, then repair")]
    CatalogChanged {
        /// The table.
        table: String,
    },
    /// A universe's intervals overlap or run backwards; the universe stored before stays.
    #[error("{location}: universe `{universe}`: {message}; fix those rows in the source or narrow the universe's `where` (the universe cached before is kept until then)")]
    BadUniverse {
        /// `file:line` of the `[[universe]]`.
        location: String,
        /// The universe.
        universe: String,
        /// What is wrong, naming the symbol and the dates.
        message: String,
    },
    /// A configured table has the name of a local table.
    #[error("table `{table}` is configured, and the store holds a local table `{table}` written with `Cache.write` or `cheetah import`; rename the configured table (its `name` is the source's, so cache it under a view of another name), or `cheetah drop {table}` to give the name to the source")]
    LocalTable {
        /// The table.
        table: String,
    },
    /// The run was asked to stop; every committed date is intact.
    #[error("update interrupted; every date committed so far is intact and the next update resumes")]
    Interrupted,
}
