//! The shared layer: publishing it, and what a reader finds in it.

use std::path::PathBuf;

use super::*;

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
    /// A published block a refresh compares with could not be read back; the refresh writes
    /// its segment again whole.
    #[error("a published block of the shared layer cannot be read back: {0}")]
    Unreadable(#[from] LayerError),
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
