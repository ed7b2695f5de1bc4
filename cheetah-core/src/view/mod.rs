//! A reader's view of the store: its catalog, symbols, days and marks as of one store version,
//! kept current with the writer by the [`Follower`], and rolled back to an older version by
//! [`View::at`].

mod at;
mod follower;
mod saved;

use std::collections::HashMap;

use arrow::array::StringArray;

pub(crate) use self::follower::Follower;
use crate::error::StoreError;
use crate::store::symbols::SymbolDictionary;
use crate::store::{catalog::Catalog, MarkSnapshot, Store, Version};
use crate::types::Day;

/// What a reader knows of the store, as of its last refresh.
#[derive(Debug, Clone)]
pub(crate) struct View {
    /// The catalog.
    pub catalog: Catalog,
    /// The symbol dictionary.
    pub symbols: SymbolDictionary,
    /// The dictionary in text order.
    pub ranking: SymbolRanking,
    /// Cached days of each table, ascending.
    pub days: HashMap<u32, Vec<Day>>,
    /// The watermarks and fieldmarks, read before the days: a read's cut comes from here, so it
    /// never passes a day this view does not list yet.
    pub marks: MarkSnapshot,
    /// The store version it reflects, read before anything else: everything it holds is of that
    /// version or newer, and rolling it back by the history of the commits after that version
    /// makes it exactly that version ([`View::at`]).
    pub version: Version,
}

impl View {
    fn load(store: &Store) -> Result<Self, StoreError> {
        let version = store.latest()?;
        let marks = store.marks()?;
        let catalog = store.catalog()?;
        let symbols = store.symbols()?;
        let ranking = SymbolRanking::new(&symbols);
        let mut days = HashMap::with_capacity(catalog.tables.len());
        for table in &catalog.tables {
            days.insert(table.id, store.day_index(table.id)?.into_iter().map(|(day, _)| day).collect());
        }
        Ok(Self { catalog, symbols, ranking, days, marks, version })
    }

    /// The cached days of table `table_id`, ascending.
    pub fn days_of(&self, table_id: u32) -> &[Day] {
        self.days.get(&table_id).map_or(&[][..], Vec::as_slice)
    }
}

/// The symbol dictionary in text order.
#[derive(Debug, Clone)]
pub struct SymbolRanking {
    /// `rank[id]` is the position of symbol `id` in text order.
    pub rank: Vec<u32>,
    /// Every symbol in text order: the `symbol` column's dictionary.
    pub sorted: StringArray,
}

impl SymbolRanking {
    /// Ranks every symbol of `symbols`.
    pub fn new(symbols: &SymbolDictionary) -> Self {
        let names = symbols.names();
        let mut order: Vec<u32> = (0..names.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| names[a as usize].cmp(&names[b as usize]));
        let mut rank = vec![0; names.len()];
        for (position, &id) in order.iter().enumerate() {
            rank[id as usize] = position as u32;
        }
        let sorted = StringArray::from_iter_values(order.iter().map(|&id| &*names[id as usize]));
        Self { rank, sorted }
    }
}
