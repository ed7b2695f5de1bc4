//! The shared layer: decoded columns on a tmpfs that every reader process on the box maps, so a
//! new process reads published fields without decoding or allocating them.
//!
//! What is published is a set of segments ([`format::Segment`]): a range of dates, the union of
//! some daily tables' keys on each of them (in the order a plain read lays rows out), and fields
//! filled in over those rows, cut into blocks of rows that are written and replaced on their own.
//! A read whose rows and range agree with a segment's gets columns
//! that are views of the mapped files; a read that keeps fewer rows (a symbol filter, a base
//! table, fewer tables) gets a plain copy of the rows it keeps; days the layer does not hold, or
//! that changed in the store since it was published, are read from the store. One result never
//! spans two generations, because a reader takes one manifest per read.
//!
//! Invariants:
//! - A file, once named by a manifest, is never written, truncated or renamed over; new content
//!   goes to new files and a new manifest is renamed into place. Unreferenced files are unlinked,
//!   and the kernel keeps their pages for whoever still maps them.
//! - A manifest records the store's journal position its content reflects. A reader treats every
//!   day journaled since as changed, so the layer can be behind the store but never wrong.
//! - Anything a reader cannot validate (missing, foreign, another format, truncated, damaged) is
//!   ignored with one warning, and the read falls back to the store.

#[cfg(test)]
mod block_tests;
mod blocks;
mod dirty;
pub(crate) mod format;
mod generation;
mod learned;
pub(crate) mod publish;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

pub(crate) use self::blocks::LazyBlocks;
pub(crate) use self::dirty::{asof_tables, Dirty};
pub use self::format::LAYER_FORMAT_VERSION;
pub(crate) use self::format::{Block, Blocks, FieldInfo, FileRef, Segment, PAGE};
/// A segment as a reader holds it: its blocks decoded when a read first needs them.
pub(crate) type MappedSegment = Segment<LazyBlocks>;
pub(crate) use self::generation::Generation;
pub(crate) use self::learned::Codes;
pub(crate) use self::publish::Publisher;
pub use self::publish::{PublishReport, SegmentReport};
use crate::error::LayerError;
use crate::store::Store;
use crate::types::date_of;
use crate::view::View;

/// A reader's handle on the layer directory of its config.
pub(crate) struct SharedLayer {
    dir: PathBuf,
    identity: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The manifest file as last looked at, and what it gave: `None` for an unusable one.
    seen: Option<(FileStamp, Option<Arc<Generation>>)>,
    /// Warnings not yet taken by [`SharedLayer::take_warnings`].
    warnings: Vec<String>,
    /// Whether a missing manifest was warned about.
    warned_missing: bool,
}

/// Enough of a file's metadata to tell that it was replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    inode: u64,
    modified_ns: i128,
    len: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(Self {
            inode: m.ino(),
            modified_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            len: m.len(),
        })
    }
}

/// A generation and what changed in the store since it, for one read.
pub(crate) struct LayerView {
    /// The generation.
    pub generation: Arc<Generation>,
    /// The days changed since.
    pub dirty: Arc<Dirty>,
}

impl SharedLayer {
    /// The layer at `dir` for the store with RocksDB `identity`.
    pub fn new(dir: PathBuf, identity: String) -> Self {
        Self { dir, identity, state: Mutex::default() }
    }

    /// The current generation if it is usable with `store`'s snapshot: published from this
    /// store, at or before the snapshot's journal position, with the journal still reaching
    /// back to it.
    pub fn for_snapshot(&self, store: &Store, symbols: usize) -> Option<LayerView> {
        let generation = self.current()?;
        let position = store.journal_end().ok()?;
        // Newer than this reader's snapshot: its next read, after catching up, can use it.
        if generation.manifest.journal_newest > position || generation.manifest.symbols > symbols {
            return None;
        }
        match generation.dirty(store, position) {
            Ok(Some(dirty)) => Some(LayerView { generation, dirty }),
            Ok(None) => None,
            Err(e) => {
                self.warn(format!("{e}; reading from the store"));
                None
            }
        }
    }

    /// The current generation with the view of the store it saved, if that view is the
    /// store's version `head`: the store has committed nothing since, so nothing the generation
    /// holds has changed, and a read planned from the view needs the store only for what the
    /// layer does not hold.
    pub fn without_store(&self, head: u64) -> Option<(Arc<View>, LayerView)> {
        let generation = self.current()?;
        let manifest = &generation.manifest;
        if manifest.view.as_ref()?.version != head || manifest.journal_newest != manifest.journal {
            return None;
        }
        let view = generation.saved_view()?;
        (manifest.symbols <= view.symbols.len())
            .then(|| (view, LayerView { generation, dirty: Arc::new(Dirty::default()) }))
    }

    /// The generation the manifest names now, loaded once per manifest file.
    fn current(&self) -> Option<Arc<Generation>> {
        let path = self.dir.join(format::MANIFEST);
        let stamp = FileStamp::of(&path);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(stamp) = stamp else {
            if !state.warned_missing {
                state.warned_missing = true;
                let message = format!(
                    "no shared layer at {} yet: `cheetah warm` publishes one; reading from the store",
                    self.dir.display()
                );
                tracing::warn!("{message}");
                state.warnings.push(message);
            }
            state.seen = None;
            return None;
        };
        if let Some((seen, generation)) = &state.seen {
            if *seen == stamp {
                return generation.clone();
            }
        }
        let loaded = match Generation::load(&self.dir, &self.identity) {
            Ok(generation) => Some(Arc::new(generation)),
            Err(e) => {
                let message = format!(
                    "ignoring the shared layer at {}: {e}; reading from the store (`cheetah warm` publishes it again)",
                    self.dir.display()
                );
                tracing::warn!("{message}");
                state.warnings.push(message);
                None
            }
        };
        state.seen = Some((stamp, loaded.clone()));
        loaded
    }

    /// Notes that a generation failed while being read: reads use the store until a new
    /// manifest is in place.
    pub fn failed(&self, e: &LayerError) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // Files are checked when first read: the manifest that named a bad one is not used
        // again, and the next manifest is looked at afresh.
        if let Some((_, generation)) = state.seen.as_mut() {
            *generation = None;
        }
        drop(state);
        self.warn(format!(
            "the shared layer at {} failed while being read: {e}; reading from the store",
            self.dir.display()
        ));
    }

    fn warn(&self, message: String) {
        tracing::warn!("{message}");
        self.state.lock().unwrap_or_else(PoisonError::into_inner).warnings.push(message);
    }

    /// The warnings given since the last call, for callers that show them their own way.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner).warnings)
    }

    /// Marks `segment` as just used, for the publisher's least-recently-used eviction.
    pub fn touch(&self, segment: u64) {
        touch(&self.dir.join(format::stamp_name(segment)));
    }

    /// What the layer holds now.
    pub fn status(&self, budget: u64) -> ShareStatus {
        let generation = self.current();
        let segments = generation
            .as_ref()
            .map(|g| {
                g.manifest
                    .segments
                    .iter()
                    .map(|s| SegmentStatus {
                        id: s.id,
                        start: date_of(s.start),
                        end: date_of(s.end),
                        first: s.days.first().map(|&(d, _)| date_of(d)),
                        last: s.days.last().map(|&(d, _)| date_of(d)),
                        rows: s.total_rows(),
                        bytes: s.bytes(),
                        fields: s.fields.iter().map(|f| f.name.clone()).collect(),
                        last_used: modified_seconds(&self.dir.join(format::stamp_name(s.id))),
                    })
                    .collect()
            })
            .unwrap_or_default();
        ShareStatus {
            path: self.dir.display().to_string(),
            budget,
            bytes: generation.as_ref().map_or(0, |g| g.manifest.segments.iter().map(Segment::bytes).sum()),
            generation: generation.as_ref().map(|g| g.manifest.generation),
            published: generation.as_ref().and_then(|g| rfc3339(g.manifest.published)),
            usable: generation.is_some(),
            segments,
        }
    }
}

/// Sets a file's modification time to now; a stamp that cannot be set only makes eviction less
/// exact.
fn touch(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(name) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return };
    // SAFETY: `name` is a NUL-terminated path; a null `times` means "now" for both times.
    unsafe { libc::utimensat(libc::AT_FDCWD, name.as_ptr(), std::ptr::null(), 0) };
}

fn modified_seconds(path: &Path) -> Option<String> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let seconds = modified.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    rfc3339(i64::try_from(seconds).ok()?)
}

fn rfc3339(seconds: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(seconds, 0).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// What the shared layer holds, for `cheetah status`.
#[derive(Debug, Clone, Serialize)]
pub struct ShareStatus {
    /// Its directory.
    pub path: String,
    /// The most bytes it may hold.
    pub budget: u64,
    /// The bytes its current generation holds.
    pub bytes: u64,
    /// The current generation, if one is usable.
    pub generation: Option<u64>,
    /// When it was published (RFC 3339, UTC).
    pub published: Option<String>,
    /// Whether readers use it; false when it is missing or was ignored.
    pub usable: bool,
    /// What is published.
    pub segments: Vec<SegmentStatus>,
}

/// One published segment.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentStatus {
    /// Its id.
    pub id: u64,
    /// The range published, as asked.
    pub start: chrono::NaiveDate,
    /// See `start`.
    pub end: chrono::NaiveDate,
    /// The first date it holds.
    pub first: Option<chrono::NaiveDate>,
    /// The last date it holds.
    pub last: Option<chrono::NaiveDate>,
    /// Its rows.
    pub rows: u64,
    /// Its bytes.
    pub bytes: u64,
    /// Its fields, as `table.field`.
    pub fields: Vec<String>,
    /// When a reader last served from it (RFC 3339, UTC).
    pub last_used: Option<String>,
}
