//! The store as it was at an older version: a [`ChunkSource`] that takes each chunk, day index
//! entry and universe a later commit replaced from the history, and the rest, unchanged since,
//! from the hot layer over the store.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::ArrayRef;

use super::fetch::{ChunkSource, HotStore};
use crate::error::StoreError;
use crate::store::catalog::{FieldEntry, TableEntry};
use crate::store::codec;
use crate::store::history::{Kind, Replaced, Subject};
use crate::types::Day;
use crate::universe::Universe;

/// The store at `version`, through the hot layer for what no later commit replaced.
pub(crate) struct PastStore<'a> {
    /// The store as it is now, and the hot layer in front of it.
    pub now: HotStore<'a>,
    /// The version read.
    pub version: u64,
}

impl PastStore<'_> {
    /// The values at this version of `subject` (a chunk of table `table`) on `days`, where a
    /// later commit replaced them. A chunk written since on a day its table did not have then
    /// left no entry of its own (a chunk exists exactly when its day does): the day's entry
    /// says it was absent.
    fn replaced(&self, table: u32, subject: &Subject, days: &[Day]) -> Result<BTreeMap<Day, Replaced>, StoreError> {
        let (Some(&first), Some(&last)) = (days.first(), days.last()) else { return Ok(BTreeMap::new()) };
        let store = self.now.store;
        let mut found: BTreeMap<Day, Replaced> = store
            .replaced_after(subject, self.version, &(first..=last))?
            .into_iter()
            .filter_map(|(day, value)| Some((day?, value)))
            .collect();
        for (day, rows) in store.replaced_after(&Subject::id(Kind::Day, table), self.version, &(first..=last))? {
            if rows.is_none() {
                found.insert(day.expect("day entries are per day"), None);
            }
        }
        Ok(found)
    }

    /// Each of `days`: the history's value where a later commit replaced it, decoded by
    /// `decode`; otherwise what `now` gives for the days left, in order.
    fn merge<T>(
        days: &[Day],
        replaced: &BTreeMap<Day, Replaced>,
        now: impl FnOnce(&[Day]) -> Result<Vec<Option<T>>, StoreError>,
        decode: impl Fn(Day, &[u8]) -> Result<T, StoreError>,
    ) -> Result<Vec<Option<T>>, StoreError> {
        let unchanged: Vec<Day> = days.iter().copied().filter(|d| !replaced.contains_key(d)).collect();
        let mut current = now(&unchanged)?.into_iter();
        days.iter()
            .map(|day| match replaced.get(day) {
                Some(Some(bytes)) => decode(*day, bytes).map(Some),
                Some(None) => Ok(None),
                None => Ok(current.next().expect("one value per unchanged day")),
            })
            .collect()
    }
}

impl ChunkSource for PastStore<'_> {
    fn rows(&self, table: &TableEntry, days: &[Day]) -> Result<Vec<Option<Arc<[u32]>>>, StoreError> {
        let replaced = self.replaced(table.id, &Subject::id(Kind::Rows, table.id), days)?;
        Self::merge(
            days,
            &replaced,
            |days| self.now.rows(table, days),
            |day, bytes| codec::decode_rows(bytes).map_err(|e| self.corrupt_chunk(&table.name, None, day, &e)),
        )
    }

    fn values(
        &self,
        table: &TableEntry,
        field: &FieldEntry,
        days: &[Day],
    ) -> Result<Vec<Option<ArrayRef>>, StoreError> {
        let replaced = self.replaced(table.id, &Subject::id(Kind::Values, field.id), days)?;
        Self::merge(
            days,
            &replaced,
            |days| self.now.values(table, field, days),
            |day, bytes| {
                codec::decode_values(bytes, field.dtype)
                    .map_err(|e| self.corrupt_chunk(&table.name, Some(&field.name), day, &e))
            },
        )
    }

    fn day_rows(&self, table: &TableEntry, from: Day, to: Day) -> Result<Vec<(Day, u32)>, StoreError> {
        let mut rows: BTreeMap<Day, u32> = self.now.day_rows(table, from, to)?.into_iter().collect();
        let replaced = self.now.store.replaced_after(&Subject::id(Kind::Day, table.id), self.version, &(from..=to))?;
        for (day, value) in replaced {
            let day = day.expect("day entries are per day");
            match value.and_then(|bytes| <[u8; 4]>::try_from(bytes.as_slice()).ok()) {
                Some(count) => rows.insert(day, u32::from_be_bytes(count)),
                None => rows.remove(&day),
            };
        }
        Ok(rows.into_iter().collect())
    }

    fn universe(&self, name: &str) -> Result<Option<Universe>, StoreError> {
        let every_day = Day::MIN..=Day::MAX;
        match self.now.store.replaced_after(&Subject::universe(name), self.version, &every_day)?.remove(&None) {
            Some(Some(bytes)) => postcard::from_bytes(&bytes)
                .map(Some)
                .map_err(|e| self.corrupt(&format!("universe `{name}` history"), &e.to_string())),
            Some(None) => Ok(None),
            None => self.now.universe(name),
        }
    }

    fn corrupt_chunk(&self, table: &str, field: Option<&str>, day: Day, message: &str) -> StoreError {
        self.now.corrupt_chunk(table, field, day, message)
    }

    fn corrupt(&self, what: &str, message: &str) -> StoreError {
        self.now.corrupt(what, message)
    }
}

/// Where a read's chunks come from: the store as it is, or as it was at an older version.
pub(crate) enum Chunks<'a> {
    /// The latest version, through the hot layer.
    Now(HotStore<'a>),
    /// An older version.
    Past(PastStore<'a>),
}

impl ChunkSource for Chunks<'_> {
    fn rows(&self, table: &TableEntry, days: &[Day]) -> Result<Vec<Option<Arc<[u32]>>>, StoreError> {
        match self {
            Self::Now(now) => now.rows(table, days),
            Self::Past(past) => past.rows(table, days),
        }
    }

    fn values(
        &self,
        table: &TableEntry,
        field: &FieldEntry,
        days: &[Day],
    ) -> Result<Vec<Option<ArrayRef>>, StoreError> {
        match self {
            Self::Now(now) => now.values(table, field, days),
            Self::Past(past) => past.values(table, field, days),
        }
    }

    fn day_rows(&self, table: &TableEntry, from: Day, to: Day) -> Result<Vec<(Day, u32)>, StoreError> {
        match self {
            Self::Now(now) => now.day_rows(table, from, to),
            Self::Past(past) => past.day_rows(table, from, to),
        }
    }

    fn universe(&self, name: &str) -> Result<Option<Universe>, StoreError> {
        match self {
            Self::Now(now) => now.universe(name),
            Self::Past(past) => past.universe(name),
        }
    }

    fn corrupt_chunk(&self, table: &str, field: Option<&str>, day: Day, message: &str) -> StoreError {
        match self {
            Self::Now(now) => now.corrupt_chunk(table, field, day, message),
            Self::Past(past) => past.corrupt_chunk(table, field, day, message),
        }
    }

    fn corrupt(&self, what: &str, message: &str) -> StoreError {
        match self {
            Self::Now(now) => now.corrupt(what, message),
            Self::Past(past) => past.corrupt(what, message),
        }
    }
}
