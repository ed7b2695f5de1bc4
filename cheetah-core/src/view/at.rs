//! A view at an older store version: the current view rolled back by the history of the commits
//! after that version.
//!
//! Everything the current view holds was read once its own version was the latest, so it is of
//! that version or newer; each key a commit after the older version replaced is taken from the
//! history instead, which holds its value as of then. The rest is unchanged since.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::{SymbolRanking, View};
use crate::error::StoreError;
use crate::store::catalog::Catalog;
use crate::store::history::{Kind, Subject};
use crate::store::keys::parse_day;
use crate::store::symbols::SymbolDictionary;
use crate::store::{MarkSnapshot, Store, Version};
use crate::types::Day;

/// A view at an older version, and what of it can no longer be read.
pub(crate) struct Past {
    /// The view.
    pub view: View,
    /// `table.field` of each field it held whose chunks were deleted since (a field removed from
    /// the config, a table rebuilt): their history went with them.
    pub gone: Vec<String>,
}

impl View {
    /// This view as of `version`, which is not newer than it.
    ///
    /// # Errors
    /// [`StoreError`] for a record that does not decode.
    pub fn at(&self, store: &Store, version: Version) -> Result<Past, StoreError> {
        debug_assert!(version.number <= self.version.number, "a view rolls back, never forward");
        let (past, version) = (version, version.number);
        let every_day = Day::MIN..=Day::MAX;
        let catalog = match store.replaced_after(&Subject::catalog(), version, &every_day)?.remove(&None) {
            Some(Some(bytes)) => postcard::from_bytes(&bytes).map_err(|e| store.corrupt("catalog history", e))?,
            Some(None) => Catalog::default(),
            None => self.catalog.clone(),
        };
        let (catalog, gone) = readable(catalog, &self.catalog);

        let recorded = past.symbols as usize;
        let symbols = if recorded < self.symbols.len() {
            SymbolDictionary::from_persisted(self.symbols.names()[..recorded].iter().map(Arc::clone).collect())
        } else {
            self.symbols.clone()
        };
        let ranking =
            if symbols.len() == self.symbols.len() { self.ranking.clone() } else { SymbolRanking::new(&symbols) };

        let mut marks = MarkSnapshot::default();
        let mut days = HashMap::with_capacity(catalog.tables.len());
        for table in &catalog.tables {
            let watermark = mark_at(store, Kind::Watermark, table.id, version, self.marks.watermark(table.id))?;
            if let Some(day) = watermark {
                marks.watermarks.insert(table.id, day);
            }
            for field in &table.fields {
                if let Some(day) = mark_at(store, Kind::Fieldmark, field.id, version, self.marks.fieldmark(field.id))? {
                    marks.fieldmarks.insert(field.id, day);
                }
            }
            let mut held: BTreeSet<Day> = self.days_of(table.id).iter().copied().collect();
            for (day, rows) in store.replaced_after(&Subject::id(Kind::Day, table.id), version, &every_day)? {
                let day = day.expect("day entries are per day");
                match rows {
                    Some(_) => held.insert(day),
                    None => held.remove(&day),
                };
            }
            days.insert(table.id, held.into_iter().collect());
        }
        Ok(Past { view: View { catalog, symbols, ranking, days, marks, version: past }, gone })
    }
}

/// The mark of `kind` of table or field `id` at `version`, where `now` is its value in the
/// current view.
fn mark_at(store: &Store, kind: Kind, id: u32, version: u64, now: Option<Day>) -> Result<Option<Day>, StoreError> {
    match store.replaced_after(&Subject::id(kind, id), version, &(Day::MIN..=Day::MAX))?.remove(&None) {
        Some(Some(bytes)) => parse_day(&bytes).map(Some).ok_or_else(|| store.corrupt("mark history", "not 4 bytes")),
        Some(None) => Ok(None),
        None => Ok(now),
    }
}

/// `past` with only the tables and fields whose chunks `now` still holds (ids are never reused),
/// and the names of the fields it lost.
fn readable(mut past: Catalog, now: &Catalog) -> (Catalog, Vec<String>) {
    let live: BTreeMap<u32, ()> = now.live_ids().into_iter().map(|id| (id, ())).collect();
    let mut gone = Vec::new();
    past.tables.retain_mut(|table| {
        let alive = live.contains_key(&table.id);
        table.fields.retain(|field| {
            let keep = alive && live.contains_key(&field.id);
            if !keep {
                gone.push(format!("{}.{}", table.name, field.name));
            }
            keep
        });
        alive
    });
    (past, gone)
}
