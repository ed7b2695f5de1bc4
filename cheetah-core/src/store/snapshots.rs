//! Snapshots: names for store versions, kept past retention. Each is a small JSON file in the
//! store's `snapshots/` folder, so any process that may write that folder makes one, even while
//! `cheetah serve` holds the writer role: a snapshot adds nothing to RocksDB, it only keeps the
//! writer's retention from dropping the history its version reads.
//!
//! A file is written whole under a temporary name and linked to its own, which fails if the name
//! is taken: two processes creating one name at once get one snapshot and one clear error.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::VersionError;

/// A named store version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Its name.
    pub name: String,
    /// The store version it pins.
    pub version: u64,
    /// When it was made.
    pub created: DateTime<Utc>,
    /// What it is for, as its maker wrote it.
    pub note: Option<String>,
}

/// The folder of a store's snapshots.
fn folder(store: &Path) -> PathBuf {
    store.join("snapshots")
}

/// Whether `name` is a snapshot name: 1 to 100 letters, digits, `.`, `-` or `_`, not starting
/// with a `.`.
fn valid(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn io(store: &Path, doing: &str, e: &std::io::Error) -> VersionError {
    VersionError::SnapshotIo { path: folder(store), message: format!("{doing}: {e}") }
}

/// Every snapshot of the store at `store`, by name.
///
/// # Errors
/// [`VersionError::SnapshotIo`] when the folder cannot be read.
pub fn list(store: &Path) -> Result<Vec<Snapshot>, VersionError> {
    let entries = match std::fs::read_dir(folder(store)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(store, "listing snapshots", &e)),
    };
    let mut snapshots = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| io(store, "listing snapshots", &e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let Some(name) = name.strip_suffix(".json").filter(|n| valid(n)) else { continue };
        if let Some(snapshot) = read_file(store, &path, name)? {
            snapshots.push(snapshot);
        }
    }
    snapshots.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(snapshots)
}

/// The snapshot `name`, if there is one.
///
/// # Errors
/// [`VersionError::SnapshotIo`] when its file cannot be read or does not parse.
pub fn get(store: &Path, name: &str) -> Result<Option<Snapshot>, VersionError> {
    if !valid(name) {
        return Ok(None);
    }
    read_file(store, &folder(store).join(format!("{name}.json")), name)
}

fn read_file(store: &Path, path: &Path, name: &str) -> Result<Option<Snapshot>, VersionError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(store, &format!("reading snapshot `{name}`"), &e)),
    };
    let snapshot: Snapshot = serde_json::from_str(&text).map_err(|e| VersionError::SnapshotIo {
        path: path.to_path_buf(),
        message: format!("snapshot `{name}` does not parse ({e}); delete the file to drop it"),
    })?;
    Ok(Some(snapshot))
}

/// Records `snapshot`.
///
/// # Errors
/// [`VersionError::BadSnapshotName`], [`VersionError::DuplicateSnapshot`] when the name is
/// taken, [`VersionError::SnapshotIo`] when the folder cannot be written.
pub fn create(store: &Path, snapshot: &Snapshot) -> Result<(), VersionError> {
    if !valid(&snapshot.name) {
        return Err(VersionError::BadSnapshotName { name: snapshot.name.clone() });
    }
    let dir = folder(store);
    std::fs::create_dir_all(&dir).map_err(|e| io(store, "creating the snapshots folder", &e))?;
    let target = dir.join(format!("{}.json", snapshot.name));
    let temporary = dir.join(format!(".{}.{}.tmp", snapshot.name, std::process::id()));
    let text = serde_json::to_string_pretty(snapshot).expect("a snapshot serializes");
    let written = std::fs::write(&temporary, text).and_then(|()| std::fs::File::open(&temporary)?.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(io(store, "writing the snapshot", &e));
    }
    let linked = std::fs::hard_link(&temporary, &target);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let existing = get(store, &snapshot.name)?;
            Err(VersionError::DuplicateSnapshot {
                name: snapshot.name.clone(),
                version: existing.as_ref().map_or(0, |s| s.version),
                created: existing.map_or_else(Utc::now, |s| s.created),
            })
        }
        Err(e) => Err(io(store, "linking the snapshot into place", &e)),
    }
}

/// Deletes the snapshot `name`; the history only it pinned goes with the next retention.
///
/// # Errors
/// [`VersionError::UnknownSnapshot`] naming the snapshots there are.
pub fn delete(store: &Path, name: &str) -> Result<Snapshot, VersionError> {
    let Some(snapshot) = get(store, name)? else { return Err(unknown(store, name)) };
    std::fs::remove_file(folder(store).join(format!("{name}.json")))
        .map_err(|e| io(store, &format!("deleting snapshot `{name}`"), &e))?;
    Ok(snapshot)
}

/// The error for a snapshot `name` that does not exist, naming those that do.
pub fn unknown(store: &Path, name: &str) -> VersionError {
    let known = list(store).map(|all| all.into_iter().map(|s| s.name).collect::<Vec<_>>()).unwrap_or_default();
    VersionError::UnknownSnapshot { name: name.to_string(), known }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(name: &str, version: u64) -> Snapshot {
        Snapshot { name: name.into(), version, created: Utc::now(), note: Some("paper".into()) }
    }

    #[test]
    fn snapshots_are_created_listed_and_deleted_once() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list(dir.path()).unwrap().is_empty());
        create(dir.path(), &snapshot("paper-2026", 7)).unwrap();
        create(dir.path(), &snapshot("a.b_c", 9)).unwrap();
        let err = create(dir.path(), &snapshot("paper-2026", 8)).unwrap_err();
        assert!(matches!(err, VersionError::DuplicateSnapshot { version: 7, .. }), "{err}");
        assert!(matches!(create(dir.path(), &snapshot("../x", 1)), Err(VersionError::BadSnapshotName { .. })));
        let names: Vec<(String, u64)> = list(dir.path()).unwrap().into_iter().map(|s| (s.name, s.version)).collect();
        assert_eq!(names, [("a.b_c".to_string(), 9), ("paper-2026".to_string(), 7)]);
        assert_eq!(get(dir.path(), "paper-2026").unwrap().unwrap().note.as_deref(), Some("paper"));
        delete(dir.path(), "paper-2026").unwrap();
        let err = delete(dir.path(), "paper-2026").unwrap_err();
        assert!(matches!(&err, VersionError::UnknownSnapshot { known, .. } if known == &["a.b_c"]), "{err}");
    }
}
