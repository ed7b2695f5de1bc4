//! What changed in the store since a generation was published: the days a reader must take
//! from the store rather than the layer.

use std::collections::HashMap;

use super::format::FieldInfo;
use crate::types::{Day, TableKind};
use crate::view::View;

/// What changed in the store since a generation was published.
#[derive(Debug, Default)]
pub(crate) struct Dirty {
    /// Per table id, the days written or deleted, ascending.
    days: HashMap<u32, Vec<Day>>,
}

impl Dirty {
    /// The days of `journaled`, (table id, day) pairs in any order and repeated.
    pub fn of(journaled: impl IntoIterator<Item = (u32, Day)>) -> Self {
        let mut days: HashMap<u32, Vec<Day>> = HashMap::new();
        for (table, day) in journaled {
            days.entry(table).or_default().push(day);
        }
        for list in days.values_mut() {
            list.sort_unstable();
            list.dedup();
        }
        Self { days }
    }

    /// Whether `day` of a segment over `tables`, serving fields of the asof tables `asof`, may
    /// differ from the store: a daily table changed that day, or an asof table changed on or
    /// before it (an event counts from its day on).
    pub fn touches(&self, tables: &[u32], asof: &[u32], day: Day) -> bool {
        tables.iter().any(|t| self.days.get(t).is_some_and(|days| days.binary_search(&day).is_ok()))
            || asof.iter().any(|t| self.days.get(t).and_then(|days| days.first()).is_some_and(|&first| first <= day))
    }
}

/// The asof tables among `fields`' tables.
pub(crate) fn asof_tables(view: &View, fields: &[FieldInfo]) -> Vec<u32> {
    let mut tables: Vec<u32> = fields
        .iter()
        .map(|f| f.table)
        .filter(|&t| view.catalog.tables.iter().any(|e| e.id == t && e.kind == TableKind::Asof))
        .collect();
    tables.sort_unstable();
    tables.dedup();
    tables
}
