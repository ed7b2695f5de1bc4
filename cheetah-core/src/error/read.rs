//! Reads: requests that cannot be answered, and versions that cannot be found.

use std::path::PathBuf;

use super::*;

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
