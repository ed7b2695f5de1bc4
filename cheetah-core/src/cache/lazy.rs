//! The store as a cache holds it: opened when first needed, so a reader whose reads the shared
//! layer serves alone never pays for opening every table file of the store.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::error::StoreError;
use crate::view::Follower;

/// A [`Follower`] of the store, opened on first use.
pub(super) struct LazyFollower {
    path: PathBuf,
    follower: OnceLock<Follower>,
    /// One open at a time: a second caller waits for the first's follower.
    opening: Mutex<()>,
}

impl LazyFollower {
    /// Holds `follower`, already open.
    pub fn open(path: PathBuf, follower: Follower) -> Self {
        Self { path, follower: OnceLock::from(follower), opening: Mutex::new(()) }
    }

    /// Opens a reader of the store at `path` when first asked.
    ///
    /// # Errors
    /// [`StoreError::Missing`] when no update has created the store yet: that much is known
    /// without opening it.
    pub fn deferred(path: PathBuf) -> Result<Self, StoreError> {
        if !path.join("CURRENT").is_file() {
            return Err(StoreError::Missing { path });
        }
        Ok(Self { path, follower: OnceLock::new(), opening: Mutex::new(()) })
    }

    /// The follower, opening the store if this is the first call.
    ///
    /// # Errors
    /// As for [`Follower::reader`].
    pub fn get(&self) -> Result<&Follower, StoreError> {
        if let Some(follower) = self.follower.get() {
            return Ok(follower);
        }
        let _opening = self.opening.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(follower) = self.follower.get() {
            return Ok(follower);
        }
        let follower = Follower::reader(&self.path)?;
        Ok(self.follower.get_or_init(|| follower))
    }

    /// Whether the store is open.
    pub fn is_open(&self) -> bool {
        self.follower.get().is_some()
    }
}
