//! Reconciling the catalog with a table's config and the source: which fields are new, gone or
//! re-typed, and whether the table must be rebuilt.

use crate::source::ResolvedTable;
use crate::store::catalog::{Catalog, FieldEntry, TableEntry};

/// What reconciling changed.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CatalogDiff {
    /// The table is new to the store.
    pub created: bool,
    /// The settings that changed, if the table was rebuilt.
    pub invalidated: Vec<String>,
    /// Fields added (to be backfilled alone).
    pub added: Vec<String>,
    /// Fields no longer configured or no longer in the source.
    pub removed: Vec<String>,
    /// Fields whose type changed in the source (rebuilt alone).
    pub retyped: Vec<String>,
}

impl CatalogDiff {
    /// Whether ids left the catalog, so their chunks must be swept.
    pub fn drops_ids(&self) -> bool {
        !self.invalidated.is_empty() || !self.removed.is_empty() || !self.retyped.is_empty()
    }

    /// Whether the catalog changed.
    pub fn any(&self) -> bool {
        self.created
            || !self.invalidated.is_empty()
            || !self.added.is_empty()
            || !self.removed.is_empty()
            || !self.retyped.is_empty()
    }
}

/// Updates `catalog` for `table`. `has_data` says whether the table's current entry has loaded
/// any date; fields added to such a table start incomplete and are backfilled alone.
pub fn reconcile(catalog: &mut Catalog, table: &ResolvedTable, has_data: bool) -> CatalogDiff {
    let name = &table.config.name;
    let fingerprint = table.config.fingerprint();
    let mut changes = CatalogDiff::default();
    let position = catalog.tables.iter().position(|t| &t.name == name);
    let rebuild = match position {
        None => {
            changes.created = true;
            true
        }
        Some(i) if catalog.tables[i].fingerprint != fingerprint => {
            changes.invalidated = catalog.tables[i].fingerprint.changed_settings(&fingerprint);
            true
        }
        Some(_) => false,
    };
    if rebuild {
        let id = catalog.allocate_id();
        let fields = table
            .fields
            .iter()
            .map(|(field, dtype)| FieldEntry {
                id: catalog.allocate_id(),
                name: field.clone(),
                dtype: *dtype,
                complete: true,
            })
            .collect();
        let entry = TableEntry { id, name: name.clone(), kind: table.config.kind, fingerprint, fields };
        match position {
            Some(i) => catalog.tables[i] = entry,
            None => catalog.tables.push(entry),
        }
        return changes;
    }
    let i = position.expect("not rebuilt, so present");
    let old_fields = std::mem::take(&mut catalog.tables[i].fields);
    let mut fields = Vec::with_capacity(table.fields.len());
    for (field, dtype) in &table.fields {
        match old_fields.iter().find(|f| &f.name == field) {
            Some(old) if old.dtype == *dtype => fields.push(old.clone()),
            found => {
                if found.is_some() {
                    changes.retyped.push(field.clone());
                } else {
                    changes.added.push(field.clone());
                }
                fields.push(FieldEntry {
                    id: catalog.allocate_id(),
                    name: field.clone(),
                    dtype: *dtype,
                    complete: !has_data,
                });
            }
        }
    }
    changes.removed = old_fields
        .iter()
        .filter(|f| !table.fields.iter().any(|(name, _)| name == &f.name))
        .map(|f| f.name.clone())
        .collect();
    catalog.tables[i].fields = fields;
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::source::Dialect;
    use crate::types::ValueType;
    use arrow::datatypes::DataType;
    use std::path::Path;

    fn resolved(filter: &str, fields: &[(&str, ValueType)]) -> ResolvedTable {
        let text = format!(
            "[store]\npath='s'\n[source]\nodbc='x'\n[[table]]\nname='bar'\ndate='d'\nsymbol='s'\nfields=['*']\nstart='2020-01-01'\n{filter}"
        );
        let config = Config::parse(Path::new("c.toml"), &text).unwrap().tables.remove(0);
        ResolvedTable {
            config,
            dialect: Dialect::with_quote('"', "test"),
            date: "d".into(),
            symbol: "s".into(),
            order_by: None,
            fields: fields.iter().map(|(n, t)| (n.to_string(), *t)).collect(),
            date_type: DataType::Date32,
            vanished: Vec::new(),
        }
    }

    #[test]
    fn added_removed_and_retyped_fields_keep_the_rest() {
        let mut catalog = Catalog::default();
        let first =
            reconcile(&mut catalog, &resolved("", &[("a", ValueType::Float64), ("b", ValueType::Int64)]), false);
        assert!(first.created);
        let before = catalog.tables[0].clone();
        let changes = reconcile(
            &mut catalog,
            &resolved("", &[("a", ValueType::Float64), ("b", ValueType::Utf8), ("c", ValueType::Bool)]),
            true,
        );
        assert_eq!(
            (changes.added, changes.retyped, changes.removed.len()),
            (vec!["c".to_string()], vec!["b".to_string()], 0)
        );
        let after = &catalog.tables[0];
        assert_eq!(after.id, before.id);
        assert_eq!(after.fields[0], before.fields[0]);
        assert!(after.fields[1].id != before.fields[1].id && !after.fields[1].complete);
        let changes = reconcile(&mut catalog, &resolved("", &[("c", ValueType::Bool)]), true);
        assert_eq!(changes.removed, ["a", "b"]);
    }

    #[test]
    fn a_changed_filter_rebuilds_the_table_under_new_ids() {
        let mut catalog = Catalog::default();
        reconcile(&mut catalog, &resolved("", &[("a", ValueType::Float64)]), false);
        let old_ids = catalog.live_ids();
        let changes = reconcile(&mut catalog, &resolved("where = 'x > 1'", &[("a", ValueType::Float64)]), true);
        assert_eq!(changes.invalidated, ["where"]);
        assert!(catalog.live_ids().iter().all(|id| !old_ids.contains(id)));
        assert!(catalog.tables[0].fields[0].complete);
    }
}
