//! A view written down: what the publisher leaves beside a generation of the shared layer, so a
//! new reader plans its reads from it instead of opening the store and loading the view.
//!
//! It holds exactly what [`View`] holds, the symbols' text order included (sorting them is most
//! of a fresh view's cost), in postcard. The symbols are kept as the ranking's sorted array is
//! laid out, so that array is made from two buffers instead of a pass per symbol, and the
//! dictionary's names from that array only when a reader first asks for them.

use std::collections::HashMap;

use arrow::array::{Array, StringArray};
use arrow::buffer::{Buffer, OffsetBuffer};
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
    /// Every symbol's text in text order, one after another, and where each ends.
    sorted_text: String,
    sorted_ends: Vec<u32>,
    /// The id of each, in text order.
    order: Vec<u32>,
    days: Vec<(u32, Vec<Day>)>,
    watermarks: Vec<(u32, Day)>,
    fieldmarks: Vec<(u32, Day)>,
}

impl View {
    /// The view as bytes for [`View::decode`].
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut order = vec![0u32; self.ranking.rank.len()];
        for (id, &rank) in self.ranking.rank.iter().enumerate() {
            order[rank as usize] = id as u32;
        }
        let sorted = &self.ranking.sorted;
        let offsets = sorted.value_offsets();
        let text = &sorted.value_data()[offsets[0] as usize..offsets[sorted.len()] as usize];
        let saved = Saved {
            version: self.version.number,
            committed_micros: self.version.committed.timestamp_micros(),
            version_symbols: self.version.symbols,
            catalog: self.catalog.clone(),
            sorted_text: std::str::from_utf8(text).expect("an array of text").to_string(),
            sorted_ends: offsets[1..].iter().map(|&end| (end - offsets[0]) as u32).collect(),
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
        let mut offsets = Vec::with_capacity(saved.sorted_ends.len() + 1);
        offsets.push(0i32);
        for &end in &saved.sorted_ends {
            let end = i32::try_from(end).ok().filter(|&end| end >= offsets[offsets.len() - 1])?;
            offsets.push(end);
        }
        let text = Buffer::from_vec(saved.sorted_text.into_bytes());
        let sorted = StringArray::try_new(OffsetBuffer::new(offsets.into()), text, None).ok()?;
        // The order must be a permutation of the ids: the rank of each follows from it.
        let mut rank = vec![u32::MAX; sorted.len()];
        if saved.order.len() != sorted.len() {
            return None;
        }
        for (position, &id) in saved.order.iter().enumerate() {
            let slot = rank.get_mut(id as usize)?;
            if *slot != u32::MAX {
                return None;
            }
            *slot = position as u32;
        }
        Some(Self {
            catalog: saved.catalog,
            symbols: SymbolDictionary::from_text_order(sorted.clone(), rank.clone()),
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
