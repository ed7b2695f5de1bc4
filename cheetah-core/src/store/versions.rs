//! Store versions: every commit that changes what a read can return is one, numbered from 1
//! up, with its commit time and the number of symbols the dictionary held after it.
//!
//! A store written before versions (formats 2 to 4) has one version, 1: everything it holds.
//! Its writer records it on open, as of then.

use chrono::{DateTime, Utc};
use rocksdb::{Direction, IteratorMode};

use super::keys::meta;
use super::{Store, CF_META};
use crate::error::StoreError;

/// One store version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// Its number: 1 for the first commit, growing by one with each.
    pub number: u64,
    /// When it was committed.
    pub committed: DateTime<Utc>,
    /// Symbols the dictionary held once it was committed.
    pub symbols: u32,
}

impl Version {
    /// Version 1 of an empty store, for tests.
    #[cfg(test)]
    pub(crate) fn first() -> Self {
        Self { number: 1, committed: DateTime::default(), symbols: 0 }
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        let mut bytes = self.committed.timestamp_micros().to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.symbols.to_be_bytes());
        bytes
    }

    fn decode(number: u64, bytes: &[u8]) -> Option<Self> {
        let micros = i64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let symbols = u32::from_be_bytes(bytes.get(8..12)?.try_into().ok()?);
        Some(Self { number, committed: DateTime::from_timestamp_micros(micros)?, symbols })
    }
}

impl Store {
    /// The newest version, with its record.
    ///
    /// # Errors
    /// As for [`Store::version`].
    pub fn latest(&self) -> Result<Version, StoreError> {
        let number = self.latest_version()?;
        self.version(number)?.ok_or_else(|| self.corrupt("version records", format!("version {number} is missing")))
    }

    /// The newest version's number; 1 for a store written before versions.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn latest_version(&self) -> Result<u64, StoreError> {
        Ok(self
            .get(CF_META, meta::LATEST_VERSION)?
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map_or(1, u64::from_be_bytes))
    }

    /// Version `number`, if the store has it. A store written before versions has only 1, as
    /// of its last update.
    ///
    /// # Errors
    /// [`StoreError::Rocks`] or [`StoreError::Corrupt`].
    pub fn version(&self, number: u64) -> Result<Option<Version>, StoreError> {
        match self.get(CF_META, &meta::version(number))? {
            Some(bytes) => Version::decode(number, &bytes)
                .map(Some)
                .ok_or_else(|| self.corrupt("version record", format!("version {number} does not decode"))),
            None if number == 1 && self.get(CF_META, meta::LATEST_VERSION)?.is_none() => Ok(Some(self.unrecorded()?)),
            None => Ok(None),
        }
    }

    /// The version in force at `moment`: the newest committed at or before it; `None` before
    /// the first.
    ///
    /// # Errors
    /// As for [`Store::version`].
    pub fn version_at(&self, moment: DateTime<Utc>) -> Result<Option<Version>, StoreError> {
        let latest = self.latest_version()?;
        let at = |n: u64| -> Result<Version, StoreError> {
            self.version(n)?.ok_or_else(|| self.corrupt("version records", format!("version {n} is missing")))
        };
        if at(1)?.committed > moment {
            return Ok(None);
        }
        // Commit times only grow with the number: the newest at or before `moment`, by halves.
        let (mut low, mut high) = (1, latest);
        while low < high {
            let middle = low + (high - low).div_ceil(2);
            if at(middle)?.committed <= moment {
                low = middle;
            } else {
                high = middle - 1;
            }
        }
        at(low).map(Some)
    }

    /// The oldest version readable without a snapshot: history replaced at or below it was
    /// dropped by retention.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn history_floor(&self) -> Result<u64, StoreError> {
        Ok(self
            .get(CF_META, meta::HISTORY_FLOOR)?
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map_or(1, u64::from_be_bytes))
    }

    /// How many versions have records from `from` on.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn versions_from(&self, from: u64) -> Result<u64, StoreError> {
        Ok(self.latest_version()?.saturating_sub(from) + 1)
    }

    /// The one version of a store written before versions: its content as of its last update.
    fn unrecorded(&self) -> Result<Version, StoreError> {
        let mut newest = 0;
        let start = meta::UPDATED;
        for item in self.db.iterator_cf(self.cf(CF_META), IteratorMode::From(start, Direction::Forward)) {
            let (key, value) = item.map_err(|e| self.rocks(e))?;
            if !key.starts_with(meta::UPDATED) {
                break;
            }
            if let Ok(bytes) = <[u8; 8]>::try_from(&*value) {
                newest = newest.max(i64::from_be_bytes(bytes));
            }
        }
        let symbols = self.symbol_count()?;
        Ok(Version { number: 1, committed: DateTime::from_timestamp(newest, 0).unwrap_or_default(), symbols })
    }

    /// The number of symbols in the dictionary: one more than the last id.
    pub(super) fn symbol_count(&self) -> Result<u32, StoreError> {
        let end = meta::with_id(meta::SYMBOL, u32::MAX);
        let last = self.db.iterator_cf(self.cf(CF_META), IteratorMode::From(&end, Direction::Reverse)).next();
        match last {
            Some(item) => {
                let (key, _) = item.map_err(|e| self.rocks(e))?;
                Ok(key
                    .strip_prefix(meta::SYMBOL)
                    .and_then(|id| <[u8; 4]>::try_from(id).ok())
                    .map_or(0, |id| u32::from_be_bytes(id) + 1))
            }
            None => Ok(0),
        }
    }

    /// Records version 1 for a store written before versions, as of now, so later commits
    /// have a first version to keep history from.
    pub(super) fn record_first_version(&self) -> Result<(), StoreError> {
        if self.get(CF_META, meta::LATEST_VERSION)?.is_some() {
            return Ok(());
        }
        let first = Version { number: 1, committed: Utc::now(), symbols: self.symbol_count()? };
        let mut batch = rocksdb::WriteBatch::default();
        batch.put_cf(self.cf(CF_META), meta::version(1), first.encode());
        batch.put_cf(self.cf(CF_META), meta::LATEST_VERSION, 1u64.to_be_bytes());
        self.db.write(batch).map_err(|e| self.rocks(e))
    }
}
