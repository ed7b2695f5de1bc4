//! One error enum per subsystem, rolled up into [`Error`].
//!
//! Every message names what it is about (file and line, table, field, date) and says what to do.
//! No message ever contains the ODBC connection string.

use std::path::PathBuf;

use chrono::NaiveDate;

/// Reading or validating a config file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No config was given and none was found in the default places.
    #[error(
        "no config found: pass --config PATH, set $CHEETAH_CONFIG, or create {default} \
         (`cheetah init` writes a commented starter)"
    )]
    NotFound {
        /// The last place looked at.
        default: PathBuf,
    },
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key or a value of the wrong type.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// 1-based line of the offending key or value.
        line: usize,
        /// The parser's message, which names the key.
        message: String,
    },
    /// A value that parses but makes no sense.
    #[error("{path}:{line}: {message}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// 1-based line of the offending key.
        line: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// `${NAME}` in a value names an unset variable.
    #[error(
        "{path}: {key} uses ${{{name}}}, but the environment variable {name} is not set in this process; set it where the source is contacted (`cheetah update`, `serve`, `verify`, `fields`), or write the value in"
    )]
    MissingEnv {
        /// The config file.
        path: PathBuf,
        /// The key holding it, such as `[source] odbc`.
        key: String,
        /// The variable's name.
        name: String,
    },
    /// `${NAME}` in a secret names a variable set to nothing.
    #[error("{path}: {key} is empty once its variables are filled in; set them to a long random value")]
    EmptySecret {
        /// The config file.
        path: PathBuf,
        /// The key, such as `[flight] token`.
        key: String,
    },
    /// A table was asked for by a name the config does not have.
    #[error("{path} has no table `{name}`; its tables are: {known}")]
    UnknownTable {
        /// The config file.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// The configured tables.
        known: String,
    },
    /// A source was asked for by a name the config does not have.
    #[error("{path} has no source `{name}`; its sources are: {known}")]
    UnknownSource {
        /// The config file.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// The configured sources.
        known: String,
    },
    /// The write token equals the read token.
    #[error("{path}: [flight] write_token is the same as token; a reader could then write: give it a token of its own", path = path.display())]
    SameTokens {
        /// The config file.
        path: PathBuf,
    },
}

/// Talking to the source database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The connection string names an environment variable this process does not have.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Connecting failed.
    #[error("cannot connect to the source {source_name}: {message}; check {section} odbc in the config and that the database is up")]
    Connect {
        /// The source's name and its redacted description.
        source_name: String,
        /// Its config section, `[source]` or `[sources.NAME]`.
        section: String,
        /// The driver's message.
        message: String,
    },
    /// The ODBC driver the connection string names is not installed (or not registered).
    #[error("the source {source_name} needs the ODBC driver `{driver}`, which is not installed: {hint}; then check {section} odbc in the config")]
    MissingDriver {
        /// The source's name and its redacted description.
        source_name: String,
        /// Its config section, `[source]` or `[sources.NAME]`.
        section: String,
        /// The driver, as the connection string names it.
        driver: String,
        /// What to install.
        hint: String,
    },
    /// A configured table is not in the source's catalog.
    #[error("{location}: table `{table}` is not in the source {source_name}{hint}")]
    NoSuchTable {
        /// `file:line` of the `[[table]]`.
        location: String,
        /// The configured name.
        table: String,
        /// The source's name and its redacted description.
        source_name: String,
        /// Close matches, if any, as a ready-to-print suffix.
        hint: String,
    },
    /// A configured column is not in the source table.
    #[error("{location}: table `{table}` has no column `{column}` (configured as {role}){hint}")]
    NoSuchColumn {
        /// `file:line` of the `[[table]]`.
        location: String,
        /// The table.
        table: String,
        /// The configured column name.
        column: String,
        /// What the column was meant to be: `date`, `symbol` or `field`.
        role: &'static str,
        /// Close matches, if any, as a ready-to-print suffix.
        hint: String,
    },
    /// Cached columns are gone from the source.
    #[error("{location}: table `{table}`: cached columns vanished from the source: {columns}; their cached data stays readable. Restore them, remove them from `fields`, or set on_missing = \"warn\" to go on caching the table with nulls for them")]
    Vanished {
        /// `file:line` of the `[[table]]`.
        location: String,
        /// The table.
        table: String,
        /// The columns, comma-separated.
        columns: String,
    },
    /// A column's SQL type has no Arrow mapping Cheetah can cache.
    #[error("table `{table}`, column `{column}`: SQL type {sql_type} is not supported; remove it from `fields` or add it to `exclude`")]
    UnsupportedType {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// The type the driver reported.
        sql_type: String,
    },
    /// A query or fetch failed (the source went down, a timeout, a permission).
    #[error("table `{table}`: the source failed while {doing}: {message}")]
    Query {
        /// The table.
        table: String,
        /// What Cheetah was doing.
        doing: String,
        /// The driver's message.
        message: String,
    },
    /// The source returned a value Cheetah cannot interpret.
    #[error("table `{table}`: {message}")]
    BadValue {
        /// The table.
        table: String,
        /// What was wrong and what to do.
        message: String,
    },
}

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

/// A write into a local table (`Cache::write`, `delete`, `drop`, `cheetah import`). Each
/// leaves the store as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The table name is not a plain identifier.
    #[error("`{name}` cannot name a local table: use letters, digits and _, starting with a letter or _, at most 64 characters")]
    BadTableName {
        /// The name.
        name: String,
    },
    /// A column cannot name a field.
    #[error("column `{name}` cannot name a field: use letters, digits and _ (rename it before writing)")]
    BadFieldName {
        /// The column.
        name: String,
    },
    /// A key column is missing.
    #[error("the frame has no {what} column `{name}` (its columns: {columns}); index it by (date, symbol), or name the columns that hold them")]
    NoKey {
        /// `date` or `symbol`.
        what: &'static str,
        /// The column looked for.
        name: String,
        /// The columns the frame has.
        columns: String,
    },
    /// A key column holds a null.
    #[error("`{column}` is null at row {row}: every row needs a date and a symbol")]
    NullKey {
        /// The key column.
        column: String,
        /// The row, from 0.
        row: usize,
    },
    /// A key column has a type that cannot hold its key.
    #[error("`{column}` is {found}; it must hold {wanted}")]
    KeyType {
        /// The key column.
        column: String,
        /// Its type.
        found: String,
        /// What it must hold.
        wanted: &'static str,
    },
    /// A date that is not one.
    #[error("`{column}` at row {row} is {value:?}, not a date (YYYY-MM-DD)")]
    BadDate {
        /// The date column.
        column: String,
        /// The row, from 0.
        row: usize,
        /// What it holds.
        value: String,
    },
    /// Two rows share a key.
    #[error("({date}, {symbol}) has {count} rows in the frame; a local table holds one row per (date, symbol)")]
    Duplicate {
        /// The date.
        date: NaiveDate,
        /// The symbol.
        symbol: String,
        /// Its rows.
        count: usize,
    },
    /// A column of a type no field holds.
    #[error("column `{name}` is {found}, which no field holds: use numbers, booleans, text, dates or timestamps (an object column of mixed types, or one with no value, needs a cast such as .astype(\"string\"))")]
    UnsupportedType {
        /// The column.
        name: String,
        /// Its type.
        found: String,
    },
    /// A column whose type differs from the field's stored type.
    #[error("column `{name}` is {found} in this frame but {stored} in local table `{table}`; cast it to {stored}, or drop the table and write it again")]
    TypeConflict {
        /// The local table.
        table: String,
        /// The column.
        name: String,
        /// Its type in the frame.
        found: String,
        /// The field's stored type.
        stored: String,
    },
    /// The name is a configured table's.
    #[error("`{name}` is a table in {config}; a local table needs a name of its own", config = config.display())]
    TableCollision {
        /// The name.
        name: String,
        /// The config.
        config: PathBuf,
    },
    /// The table is cached from a source.
    #[error("`{table}` is cached from a source, not written locally; local writes, deletes and drops take local tables only")]
    NotLocal {
        /// The table.
        table: String,
    },
    /// A new field's name is another table's field.
    #[error("field `{field}` is already cached in table `{table}`; rename the column so reads can tell them apart")]
    FieldCollision {
        /// The field.
        field: String,
        /// The table that has it.
        table: String,
    },
    /// No local table of that name.
    #[error("no local table `{table}`; local tables: {known}", known = if known.is_empty() { "none yet" } else { known.as_str() })]
    UnknownTable {
        /// The name.
        table: String,
        /// The local tables.
        known: String,
    },
    /// The frame could not be read.
    #[error("the frame cannot be written: {message}")]
    Frame {
        /// What went wrong.
        message: String,
    },
    /// The write was handed to the writer process, which failed it.
    #[error("{message}")]
    Writer {
        /// The writer's error.
        message: String,
    },
    /// The writer process did not take the write in time.
    #[error("the process holding store {path}'s writer role (pid {pid}) did not take the write within {seconds} s, and the write was withdrawn; if it is a long `cheetah update`, try again once it is done", path = path.display())]
    NotTaken {
        /// The store.
        path: PathBuf,
        /// The writer's process id, as far as is known.
        pid: String,
        /// How long the write waited.
        seconds: u64,
    },
    /// The inbox could not be written or read.
    #[error("handing the write to the writer through {path} failed: {message}", path = path.display())]
    Inbox {
        /// The inbox folder.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

impl WriteError {
    /// The same error with its row counted `offset` rows further on: for a batch of a stream.
    #[must_use]
    pub fn offset_rows(self, offset: u64) -> Self {
        let shift = |row: usize| row + usize::try_from(offset).unwrap_or(usize::MAX - row);
        match self {
            Self::NullKey { column, row } => Self::NullKey { column, row: shift(row) },
            Self::BadDate { column, row, value } => Self::BadDate { column, row: shift(row), value },
            other => other,
        }
    }
}

/// A read from the cache.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Nothing is cached yet: no update has committed a table.
    #[error("empty cache: no update has finished a table yet; run `cheetah update`, or wait for `cheetah serve`'s first round")]
    Empty,
    /// A requested field is not cached.
    #[error("field `{name}` is not cached{hint}")]
    UnknownField {
        /// The requested name.
        name: String,
        /// Close matches, as a ready-to-print suffix.
        hint: String,
    },
    /// A bare field name matches fields of several tables.
    #[error("field `{name}` is ambiguous: it is cached in several tables; ask for one of {candidates}")]
    AmbiguousField {
        /// The requested name.
        name: String,
        /// The qualified names to choose from.
        candidates: String,
    },
    /// The arguments make no sense.
    #[error("{0}")]
    InvalidArgument(String),
    /// The version asked for cannot be read.
    #[error(transparent)]
    Version(#[from] VersionError),
}

/// Reading at a version, naming versions, and snapshots.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VersionError {
    /// A snapshot name that does not exist.
    #[error("no snapshot `{name}`; {}", known_snapshots(.known))]
    UnknownSnapshot {
        /// The name asked for.
        name: String,
        /// The snapshots there are.
        known: Vec<String>,
    },
    /// A snapshot name that is taken.
    #[error("snapshot `{name}` exists already (version {version}, made {created}); pick another name, or delete it first with `cheetah snapshot delete {name}`")]
    DuplicateSnapshot {
        /// The name.
        name: String,
        /// The version it pins.
        version: u64,
        /// When it was made.
        created: chrono::DateTime<chrono::Utc>,
    },
    /// A snapshot name that is not a plain name.
    #[error("`{name}` is not a snapshot name; use 1 to 100 letters, digits, `.`, `-` or `_`, such as `paper-2026-q3`")]
    BadSnapshotName {
        /// The name given.
        name: String,
    },
    /// The snapshots folder cannot be read or written.
    #[error(
        "snapshots of the store ({path}): {message}; check that this user may write the store's `snapshots` folder"
    )]
    SnapshotIo {
        /// The folder or file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// A version number past the newest.
    #[error("version {asked} does not exist yet: the newest is {latest}")]
    BeyondLatest {
        /// The version asked for.
        asked: u64,
        /// The newest version.
        latest: u64,
    },
    /// A moment before the store's first version.
    #[error("known_at {moment} is before the store's first version, committed {first}; ask for {first} or later")]
    BeforeFirst {
        /// The moment asked for.
        moment: chrono::DateTime<chrono::Utc>,
        /// When the first version was committed.
        first: chrono::DateTime<chrono::Utc>,
    },
    /// A version whose history retention dropped.
    #[error("{asked} is older than the oldest version kept, {oldest} (version {oldest_version}): [store] keep_versions = \"{keep}\" dropped what it read; read a snapshot, or a later moment")]
    PastRetention {
        /// The version or moment asked for.
        asked: String,
        /// When the oldest readable version was committed.
        oldest: chrono::DateTime<chrono::Utc>,
        /// The oldest readable version.
        oldest_version: u64,
        /// The setting.
        keep: String,
    },
    /// A moment that does not parse.
    #[error("known_at `{text}` is not a moment; give a version number, or a date or time such as \"2026-03-01\" or \"2026-03-01T16:00:00Z\" (without a zone, UTC)")]
    BadMoment {
        /// The text given.
        text: String,
    },
    /// Text that names no version, snapshot or moment.
    #[error("`{text}` names no version: give a version number, a snapshot's name ({}), or a moment such as \"2026-03-01T16:00:00Z\"", if .known.is_empty() { "there are none".to_string() } else { .known.join(", ") })]
    NotAVersion {
        /// The text given.
        text: String,
        /// The snapshots there are.
        known: Vec<String>,
    },
    /// Both a moment or version and a snapshot.
    #[error("pass either known_at or snapshot, not both: a snapshot names its version")]
    Both,
    /// A field whose history went with its chunks.
    #[error("field `{field}` was cached at version {version} but has been removed from the cache since (its config changed), and its history with it; read it at a later version")]
    Gone {
        /// `table.field`.
        field: String,
        /// The version asked for.
        version: u64,
    },
}

fn known_snapshots(known: &[String]) -> String {
    if known.is_empty() {
        "there are none yet; `cheetah snapshot create NAME` makes one".into()
    } else {
        format!("the snapshots are: {}", known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "))
    }
}

/// Publishing into the shared layer. Reads never fail for the layer's sake: they fall back to
/// the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShareError {
    /// The config has no `[share]`.
    #[error("{config} has no [share] section; add one with `path` (a tmpfs directory such as /dev/shm/cheetah) and `budget`, or drop the publishing option")]
    NotConfigured {
        /// The config file.
        config: PathBuf,
    },
    /// What was asked for is larger than the budget.
    #[error("publishing needs {needed} bytes, more than the shared layer's budget of {budget} bytes ({path}); raise [share] budget, or publish a shorter range or fewer fields")]
    OverBudget {
        /// The layer directory.
        path: PathBuf,
        /// Bytes needed.
        needed: u64,
        /// The budget.
        budget: u64,
    },
    /// The file system under the layer has no room.
    #[error("the file system of the shared layer {path} is full ({detail}); enlarge the tmpfs (Docker gives /dev/shm 64 MB unless run with --shm-size), lower [share] budget, or publish less. Readers keep using what is published, and the store")]
    Full {
        /// The layer directory.
        path: PathBuf,
        /// How much was needed and free, or which write failed.
        detail: String,
    },
    /// Any other I/O failure in the layer directory.
    #[error("shared layer {path}: {message}; check that the directory is writable (it should be on a tmpfs such as /dev/shm)")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

impl ShareError {
    /// An I/O failure on `path`, told apart into a full file system or anything else.
    pub(crate) fn io(path: &std::path::Path, e: &std::io::Error) -> Self {
        if e.raw_os_error() == Some(libc::ENOSPC) {
            tracing::error!(layer = %path.display(), "the shared layer's file system is full");
            ShareError::Full { path: path.to_path_buf(), detail: format!("writing {} failed: {e}", path.display()) }
        } else {
            ShareError::Io { path: path.to_path_buf(), message: e.to_string() }
        }
    }
}

/// Why a reader ignored the shared layer and read from the store instead. A read never fails
/// for it: it becomes one warning.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// The manifest cannot be read.
    #[error("its manifest cannot be read: {0}")]
    Unreadable(std::io::Error),
    /// A manifest or file written by another layer format.
    #[error("{what} was written by layer format {found}; this build reads {expected}")]
    Format {
        /// The manifest or file.
        what: String,
        /// Its format.
        found: u32,
        /// This build's.
        expected: u32,
    },
    /// A manifest, file or segment that fails its checks.
    #[error("{what} is damaged: {why}")]
    Damaged {
        /// The manifest, file or segment.
        what: String,
        /// What is wrong with it.
        why: String,
    },
    /// Published from another store.
    #[error("it was published from another store ({store})")]
    Foreign {
        /// The store it names.
        store: String,
    },
    /// A file the manifest names is gone, or cannot be mapped.
    #[error("{file} cannot be opened: {source}")]
    Missing {
        /// The file.
        file: String,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// A file whose length is not the manifest's.
    #[error("{file} is {len} bytes, its manifest says {expected}: it was truncated")]
    Truncated {
        /// The file.
        file: String,
        /// Its length.
        len: u64,
        /// The manifest's.
        expected: u64,
    },
    /// A file replaced since its manifest named it.
    #[error("{file} does not match its manifest: it was replaced")]
    Replaced {
        /// The file.
        file: String,
    },
    /// The store failed while the reader asked what changed since the layer was published.
    #[error("the store could not say what changed since the layer was published: {0}")]
    Store(#[from] StoreError),
}

impl LayerError {
    /// `what` fails its checks because of `why`.
    pub(crate) fn damaged(what: impl Into<String>, why: impl std::fmt::Display) -> Self {
        Self::Damaged { what: what.into(), why: why.to_string() }
    }
}

/// Any Cheetah error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`ConfigError`].
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// See [`SourceError`].
    #[error(transparent)]
    Source(#[from] SourceError),
    /// See [`StoreError`].
    #[error(transparent)]
    Store(#[from] StoreError),
    /// See [`UpdateError`].
    #[error(transparent)]
    Update(#[from] UpdateError),
    /// See [`QueryError`].
    #[error(transparent)]
    Query(#[from] QueryError),
    /// See [`ShareError`].
    #[error(transparent)]
    Share(#[from] ShareError),
    /// See [`VersionError`].
    #[error(transparent)]
    Version(#[from] VersionError),
    /// See [`WriteError`].
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// How a message names a chunk: ``chunk of field `close` `` or ``row chunk of table `bar` ``.
fn chunk_label(table: &str, field: Option<&str>) -> String {
    match field {
        Some(field) => format!("chunk of field `{field}`"),
        None => format!("row chunk of table `{table}`"),
    }
}

/// `Result` with Cheetah's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Formats a "did you mean" suffix from candidates ranked by closeness to `wanted`.
pub(crate) fn close_matches<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let ranked = ranked_matches(wanted, candidates);
    if ranked.is_empty() {
        return String::new();
    }
    let names: Vec<String> = ranked.iter().take(5).map(|c| format!("`{c}`")).collect();
    format!("; close matches: {}", names.join(", "))
}

/// Edit distance where swapping two neighbouring letters counts as one edit (a typo).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// Candidates ranked by closeness to `wanted`, best first.
pub(crate) fn ranked_matches<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let wanted_lower = wanted.to_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .map(|c| (edit_distance(&wanted_lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= wanted.len().max(2) / 2 + 1 || c.to_lowercase().contains(&wanted_lower))
        .collect();
    scored.sort();
    scored.dedup();
    scored.into_iter().map(|(_, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_matches_ranks_by_distance() {
        let hint = close_matches("clsoe", ["close", "open", "closed", "volume"]);
        assert_eq!(hint, "; close matches: `close`, `closed`");
        assert_eq!(close_matches("zzz", ["close"]), "");
    }
}
