//! The catalog: which tables and fields the store holds, under which ids.
//!
//! Ids are never reused. Invalidating a table or re-typing a field gives it fresh ids, and the
//! chunks under ids no longer in the catalog are swept by the next update.

use serde::{Deserialize, Serialize};

use crate::config::TableKind;
use crate::types::ValueType;

/// Every cached table and field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// The next unused id, shared by tables and fields.
    pub next_id: u32,
    /// The cached tables.
    pub tables: Vec<TableEntry>,
}

/// A cached table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableEntry {
    /// Id of its key chunks.
    pub id: u32,
    /// Its name in the config and the source.
    pub name: String,
    /// Daily or asof.
    pub kind: TableKind,
    /// The config settings its chunks were built with; see `TableConfig::fingerprint`.
    pub fingerprint: String,
    /// Its cached fields.
    pub fields: Vec<FieldEntry>,
}

/// A cached field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldEntry {
    /// Id of its value chunks.
    pub id: u32,
    /// Its column name in the source.
    pub name: String,
    /// Its type.
    pub dtype: ValueType,
    /// False while a newly added field is being backfilled; its chunks then cover only the
    /// dates up to its fieldmark.
    pub complete: bool,
}

impl Catalog {
    /// Takes a fresh id.
    pub fn allocate_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The table named `name`.
    pub fn table(&self, name: &str) -> Option<&TableEntry> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// Every id with chunks that should exist, ascending.
    pub fn live_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> =
            self.tables.iter().flat_map(|t| std::iter::once(t.id).chain(t.fields.iter().map(|f| f.id))).collect();
        ids.sort_unstable();
        ids
    }
}

impl TableEntry {
    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&FieldEntry> {
        self.fields.iter().find(|f| f.name == name)
    }
}
