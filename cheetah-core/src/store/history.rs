//! History: what each commit replaced, kept so a read at an older version returns what it
//! returned then, while the latest keys stay where they always were.
//!
//! An entry is keyed `kind ++ subject ++ version ++ day`, where `version` is the commit that
//! replaced it, and holds the value it replaced: a chunk, a day's row count, a mark, a universe
//! or the catalog. An empty value means the key did not exist before that commit (only days
//! and marks record that; a chunk exists exactly when its day does).
//!
//! The value of a key at version `v` is the entry with the smallest replacing version above
//! `v`, or the latest value if no commit after `v` replaced it. Entries are ordered by subject
//! then replacing version, so the history after `v` is one seek per subject, and its cost
//! follows what changed after `v`, not what the store holds.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;

use rocksdb::{Direction, IteratorMode, WriteBatch};

use super::keys::{day_bytes, meta, parse_day};
use super::{Store, CF_META};
use crate::error::StoreError;
use crate::types::Day;

/// What a history entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A table's row chunk of a day.
    Rows,
    /// A field's value chunk of a day.
    Values,
    /// A table's day index entry (its rows that day), or its absence.
    Day,
    /// A table's watermark.
    Watermark,
    /// A field's backfill mark.
    Fieldmark,
    /// A universe.
    Universe,
    /// The catalog.
    Catalog,
}

impl Kind {
    fn tag(self) -> u8 {
        match self {
            Self::Rows => b'r',
            Self::Values => b'v',
            Self::Day => b'd',
            Self::Watermark => b'w',
            Self::Fieldmark => b'f',
            Self::Universe => b'u',
            Self::Catalog => b'c',
        }
    }

    /// Whether its entries are per day.
    fn daily(self) -> bool {
        matches!(self, Self::Rows | Self::Values | Self::Day)
    }
}

/// The key prefix of one subject's history: a kind and its table, field, universe or nothing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Subject(Vec<u8>);

impl Subject {
    /// The history of table or field `id` of `kind`.
    pub fn id(kind: Kind, id: u32) -> Self {
        let mut bytes = vec![kind.tag()];
        bytes.extend_from_slice(&id.to_be_bytes());
        Self(bytes)
    }

    /// The history of universe `name`.
    pub fn universe(name: &str) -> Self {
        let mut bytes = vec![Kind::Universe.tag()];
        let len = u16::try_from(name.len()).expect("a universe's name is short");
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(name.as_bytes());
        Self(bytes)
    }

    /// The catalog's history.
    pub fn catalog() -> Self {
        Self(vec![Kind::Catalog.tag()])
    }

    fn kind(&self) -> Kind {
        match self.0[0] {
            b'r' => Kind::Rows,
            b'v' => Kind::Values,
            b'd' => Kind::Day,
            b'w' => Kind::Watermark,
            b'f' => Kind::Fieldmark,
            b'u' => Kind::Universe,
            _ => Kind::Catalog,
        }
    }

    /// The key of the entry replaced by `version`, for `day` of a daily kind.
    pub fn key(&self, version: u64, day: Option<Day>) -> Vec<u8> {
        let mut key = self.0.clone();
        key.extend_from_slice(&version.to_be_bytes());
        if let Some(day) = day {
            key.extend_from_slice(&day_bytes(day));
        }
        key
    }

    /// The replacing version and day of an entry key of this subject.
    fn parse(&self, key: &[u8]) -> Option<(u64, Option<Day>)> {
        let rest = key.strip_prefix(self.0.as_slice())?;
        let version = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
        let day = if self.kind().daily() { Some(parse_day(rest.get(8..12)?)?) } else { None };
        Some((version, day))
    }
}

/// A key's value at some version, where a later commit replaced it: `None` when it did not
/// exist then.
pub(crate) type Replaced = Option<Vec<u8>>;

impl Store {
    /// For each day of `subject` in `days` (or its one record, under `None`, for a subject that
    /// is not per day) that a commit after `version` replaced: its value at `version`.
    ///
    /// # Errors
    /// [`StoreError::Rocks`] or [`StoreError::Corrupt`].
    pub(crate) fn replaced_after(
        &self,
        subject: &Subject,
        version: u64,
        days: &RangeInclusive<Day>,
    ) -> Result<BTreeMap<Option<Day>, Replaced>, StoreError> {
        let mut found = BTreeMap::new();
        self.scan_history(subject, version, u64::MAX, |day, _, value| {
            if day.is_none_or(|d| days.contains(&d)) {
                found.entry(day).or_insert_with(|| (!value.is_empty()).then(|| value.to_vec()));
            }
        })?;
        Ok(found)
    }

    /// The days of `subject` in `days` (or `None`, for a subject that is not per day) that a
    /// commit in `after + 1 ..= through` replaced, with the newest such commit.
    ///
    /// # Errors
    /// [`StoreError::Rocks`] or [`StoreError::Corrupt`].
    pub(crate) fn changed_between(
        &self,
        subject: &Subject,
        after: u64,
        through: u64,
        days: &RangeInclusive<Day>,
    ) -> Result<BTreeSet<Option<Day>>, StoreError> {
        let mut changed = BTreeSet::new();
        self.scan_history(subject, after, through, |day, _, _| {
            if day.is_none_or(|d| days.contains(&d)) {
                changed.insert(day);
            }
        })?;
        Ok(changed)
    }

    /// Calls `visit(day, version, value)` for each entry of `subject` replaced by a commit in
    /// `after + 1 ..= through`, in the order of those commits.
    fn scan_history(
        &self,
        subject: &Subject,
        after: u64,
        through: u64,
        mut visit: impl FnMut(Option<Day>, u64, &[u8]),
    ) -> Result<(), StoreError> {
        let Some(cf) = self.history_cf() else { return Ok(()) };
        let Some(first) = after.checked_add(1) else { return Ok(()) };
        let start = subject.key(first, None);
        for item in self.db.iterator_cf(cf, IteratorMode::From(&start, Direction::Forward)) {
            let (key, value) = item.map_err(|e| self.rocks(e))?;
            if !key.starts_with(&subject.0) {
                break;
            }
            let (version, day) = subject.parse(&key).ok_or_else(|| self.corrupt("history", "a key does not parse"))?;
            if version > through {
                break;
            }
            visit(day, version, &value);
        }
        Ok(())
    }

    /// Bytes the history holds: its keys and the values they kept.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub(crate) fn history_bytes(&self) -> Result<u64, StoreError> {
        let Some(cf) = self.history_cf() else { return Ok(0) };
        let mut bytes = 0;
        for item in self.db.iterator_cf(cf, IteratorMode::Start) {
            let (key, value) = item.map_err(|e| self.rocks(e))?;
            bytes += (key.len() + value.len()) as u64;
        }
        Ok(bytes)
    }

    /// Drops the history no read may ask for any more: every entry replaced at or below
    /// `floor`, except those a pinned version (a snapshot's) still reads. Returns the bytes
    /// dropped.
    ///
    /// An entry replaced by `r` holds the value in force from the previous replacement of its
    /// key (or the start) up to `r`; it is kept while a pinned version lies in that span.
    ///
    /// # Errors
    /// [`StoreError::Rocks`] or [`StoreError::Corrupt`].
    pub(crate) fn drop_history(&self, floor: u64, pinned: &BTreeSet<u64>) -> Result<u64, StoreError> {
        let Some(cf) = self.history_cf() else { return Ok(0) };
        // No read at an old version runs while what it reads is dropped.
        let _commit = self.commits.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_META), meta::HISTORY_FLOOR, floor.to_be_bytes());
        let mut dropped = 0u64;
        // Per subject, in entry order: for each of its keys, the version that last replaced it.
        let mut subject: Option<Subject> = None;
        let mut last: BTreeMap<Option<Day>, u64> = BTreeMap::new();
        for item in self.db.iterator_cf(cf, IteratorMode::Start) {
            let (key, value) = item.map_err(|e| self.rocks(e))?;
            let current = match &subject {
                Some(s) if key.starts_with(&s.0) => s,
                _ => {
                    last.clear();
                    subject.insert(subject_of(&key).ok_or_else(|| self.corrupt("history", "a key does not parse"))?)
                }
            };
            let (version, day) = current.parse(&key).ok_or_else(|| self.corrupt("history", "a key does not parse"))?;
            let since = last.insert(day, version).unwrap_or(0);
            if version <= floor && pinned.range(since..version).next().is_none() {
                batch.delete_cf(cf, &key);
                dropped += (key.len() + value.len()) as u64;
            }
        }
        self.db.write(batch).map_err(|e| self.rocks(e))?;
        Ok(dropped)
    }

    /// Deletes every entry of the tables and fields `ids`, whose chunks a sweep deleted.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub(crate) fn delete_history_of(&self, ids: &[u32]) -> Result<(), StoreError> {
        let Some(cf) = self.history_cf() else { return Ok(()) };
        let mut batch = WriteBatch::default();
        for &id in ids {
            for kind in [Kind::Rows, Kind::Values, Kind::Day, Kind::Watermark, Kind::Fieldmark] {
                let subject = Subject::id(kind, id);
                let mut end = subject.0.clone();
                end.extend_from_slice(&[0xff; 13]);
                batch.delete_range_cf(cf, subject.0.as_slice(), end.as_slice());
            }
        }
        self.db.write(batch).map_err(|e| self.rocks(e))
    }
}

/// The subject an entry key belongs to.
fn subject_of(key: &[u8]) -> Option<Subject> {
    let len = match *key.first()? {
        b'r' | b'v' | b'd' | b'w' | b'f' => 5,
        b'u' => 3 + usize::from(u16::from_be_bytes(key.get(1..3)?.try_into().ok()?)),
        b'c' => 1,
        _ => return None,
    };
    Some(Subject(key.get(..len)?.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_subject_then_version_and_parse_back() {
        let values = Subject::id(Kind::Values, 7);
        let (a, b) = (values.key(3, Some(-5)), values.key(4, Some(-9)));
        assert!(a < b, "the version orders before the day");
        assert_eq!(values.parse(&b), Some((4, Some(-9))));
        assert_eq!(subject_of(&b), Some(values));
        let universe = Subject::universe("csi300");
        let key = universe.key(12, None);
        assert_eq!((subject_of(&key).as_ref(), universe.parse(&key)), (Some(&universe), Some((12, None))));
        assert!(Subject::id(Kind::Rows, 1).key(1, Some(0)) < Subject::id(Kind::Rows, 2).key(0, Some(0)));
    }
}
