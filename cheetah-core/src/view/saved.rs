//! A view written down: what the publisher leaves beside a generation of the shared layer, so a
//! new reader plans its reads from it instead of opening the store and loading the view.
//!
//! It holds exactly what [`View`] holds, the symbols' text order included (sorting them is most
//! of a fresh view's cost), in postcard.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::StringArray;
use chrono::DateTime;
use serde::{Deserialize, Serialize};

use super::{SymbolRanking, View};
use crate::store::catalog::Catalog;
use crate::store::symbols::SymbolDictionary;
use crate::store::{MarkSnapshot, Version};
use crate::types::Day;

#[derive(Serialize, Deserialize)]
struct Saved {
    version: u64,
    committed_micros: i64,
    version_symbols: u32,
    catalog: Catalog,
    /// Every symbol's text, one after another, and where each ends: one allocation to read.
    symbol_text: String,
    symbol_ends: Vec<u32>,
    /// Symbol ids in text order.
    order: Vec<u32>,
    days: Vec<(u32, Vec<Day>)>,
    watermarks: Vec<(u32, Day)>,
    fieldmarks: Vec<(u32, Day)>,
}

impl View {
    /// The view as bytes for [`View::decode`].
    pub(crate) fn encode(&self) -> Vec<u8> {
        let names = self.symbols.names();
        let mut order = vec![0u32; names.len()];
        for (id, &rank) in self.ranking.rank.iter().enumerate() {
            order[rank as usize] = id as u32;
        }
        let saved = Saved {
            version: self.version.number,
            committed_micros: self.version.committed.timestamp_micros(),
            version_symbols: self.version.symbols,
            catalog: self.catalog.clone(),
            symbol_text: names.concat(),
            symbol_ends: names
                .iter()
                .scan(0u32, |end, n| {
                    *end += n.len() as u32;
                    Some(*end)
                })
                .collect(),
            order,
            days: self.days.iter().map(|(&t, d)| (t, d.clone())).collect(),
            watermarks: self.marks.watermarks.iter().map(|(&t, &d)| (t, d)).collect(),
            fieldmarks: self.marks.fieldmarks.iter().map(|(&f, &d)| (f, d)).collect(),
        };
        postcard::to_allocvec(&saved).expect("a view serializes")
    }

    /// A view from [`View::encode`]'s bytes; `None` for bytes that are not one.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let saved: Saved = postcard::from_bytes(bytes).ok()?;
        let mut start = 0;
        let mut names: Vec<Arc<str>> = Vec::with_capacity(saved.symbol_ends.len());
        for &end in &saved.symbol_ends {
            names.push(Arc::from(saved.symbol_text.get(start..end as usize)?));
            start = end as usize;
        }
        // The order must be a permutation of the ids: the rank of each follows from it.
        let mut rank = vec![u32::MAX; names.len()];
        if saved.order.len() != names.len() {
            return None;
        }
        for (position, &id) in saved.order.iter().enumerate() {
            let slot = rank.get_mut(id as usize)?;
            if *slot != u32::MAX {
                return None;
            }
            *slot = position as u32;
        }
        let sorted = StringArray::from_iter_values(saved.order.iter().map(|&id| &*names[id as usize]));
        Some(Self {
            catalog: saved.catalog,
            symbols: SymbolDictionary::from_persisted(names),
            ranking: SymbolRanking { rank, sorted },
            days: saved.days.into_iter().collect::<HashMap<_, _>>(),
            marks: MarkSnapshot {
                watermarks: saved.watermarks.into_iter().collect(),
                fieldmarks: saved.fieldmarks.into_iter().collect(),
            },
            version: Version {
                number: saved.version,
                committed: DateTime::from_timestamp_micros(saved.committed_micros)?,
                symbols: saved.version_symbols,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{Market, DAYS, FIRST};
    use crate::view::View;

    #[test]
    fn a_saved_view_reads_back_as_the_view_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut market = Market::new(dir.path(), 12, 3);
        for day in FIRST..FIRST + DAYS {
            market.commit(day);
        }
        let view = View::load(&market.store).unwrap();
        let bytes = view.encode();
        let back = View::decode(&bytes).unwrap();
        assert_eq!(back.catalog, view.catalog);
        assert_eq!(back.symbols.names(), view.symbols.names());
        assert_eq!((back.ranking.rank.clone(), back.ranking.sorted.clone()), (view.ranking.rank, view.ranking.sorted));
        assert_eq!(back.days, view.days);
        assert_eq!((back.marks.watermarks, back.marks.fieldmarks), (view.marks.watermarks, view.marks.fieldmarks));
        assert_eq!(back.version, view.version);

        assert!(View::decode(&bytes[..bytes.len() / 2]).is_none(), "cut short");
        assert!(View::decode(&[]).is_none());
    }
}
