//! Resolving requested field names (`close`, `valuation.pe`) against the catalog.

use crate::error::{ranked_matches, QueryError};
use crate::store::catalog::{Catalog, FieldEntry, TableEntry};

/// A requested field found in the catalog.
#[derive(Debug, Clone)]
pub struct ResolvedField<'c> {
    /// The name as requested; it names the output column.
    pub requested: String,
    /// Its table.
    pub table: &'c TableEntry,
    /// The field.
    pub field: &'c FieldEntry,
}

/// Finds each requested name: an alias from the config, `table.field`, or a bare `field` unique
/// among cached fields. The result keeps the name as requested.
///
/// # Errors
/// [`QueryError::Empty`] before the first update, [`QueryError::UnknownField`] with close matches, [`QueryError::AmbiguousField`] with the
/// candidates, or [`QueryError::InvalidArgument`] for a name asked twice.
pub fn resolve_fields<'c>(
    catalog: &'c Catalog,
    aliases: &Aliases,
    names: &[String],
) -> Result<Vec<ResolvedField<'c>>, QueryError> {
    if catalog.tables.is_empty() && !names.is_empty() {
        return Err(QueryError::Empty);
    }
    let mut resolved = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(QueryError::InvalidArgument(format!("field `{name}` is asked for twice")));
        }
        resolved.push(resolve_one(catalog, aliases, name)?);
    }
    Ok(resolved)
}

/// Other names for cached fields, from the config: alias → `table.column`.
pub type Aliases = std::collections::HashMap<String, String>;

/// What the config says about reading, beyond the catalog: aliases, adjustments and universes.
#[derive(Debug, Clone, Default)]
pub struct ReadRules {
    /// Every table's aliases.
    pub aliases: Aliases,
    /// Each table's `[table.adjust]`, by table name.
    pub adjust: std::collections::HashMap<String, crate::config::AdjustConfig>,
    /// The configured universes' names, in config order.
    pub universes: Vec<String>,
}

impl ReadRules {
    /// The rules of every table of `config`.
    pub fn of(config: &crate::config::Config) -> Self {
        let aliases = config
            .tables
            .iter()
            .flat_map(|t| t.alias.iter().map(move |(alias, column)| (alias.clone(), format!("{}.{column}", t.name))))
            .collect();
        let adjust = config.tables.iter().filter_map(|t| Some((t.name.clone(), t.adjust.clone()?))).collect();
        let universes = config.universes.iter().map(|u| u.name.clone()).collect();
        Self { aliases, adjust, universes }
    }

    /// Why universe `name` cannot be read: it is not configured, or no update has read it yet.
    pub fn no_universe(&self, name: &str) -> QueryError {
        if self.universes.iter().any(|u| u == name) {
            return QueryError::InvalidArgument(format!("universe `{name}` is not cached yet; run `cheetah update`"));
        }
        let known: Vec<String> = self.universes.iter().map(|u| format!("`{u}`")).collect();
        QueryError::InvalidArgument(if known.is_empty() {
            format!("universe `{name}` is not configured; add a [[universe]] block naming its membership table")
        } else {
            format!("universe `{name}` is not configured; configured universes: {}", known.join(", "))
        })
    }
}

fn resolve_one<'c>(catalog: &'c Catalog, aliases: &Aliases, requested: &str) -> Result<ResolvedField<'c>, QueryError> {
    let found =
        |table: &'c TableEntry, field: &'c FieldEntry| ResolvedField { requested: requested.to_string(), table, field };
    let name = aliases.get(requested).map_or(requested, String::as_str);
    if let Some((table_name, field_name)) = name.split_once('.') {
        if let Some(table) = catalog.table(table_name) {
            if let Some(field) = table.field(field_name) {
                return Ok(found(table, field));
            }
        }
    }
    let mut matches =
        catalog.tables.iter().flat_map(|t| t.fields.iter().map(move |f| (t, f))).filter(|(_, f)| f.name == name);
    match (matches.next(), matches.next()) {
        (Some((table, field)), None) => Ok(found(table, field)),
        (Some(first), Some(second)) => {
            let candidates: Vec<String> =
                [first, second].into_iter().chain(matches).map(|(t, f)| format!("`{}.{}`", t.name, f.name)).collect();
            Err(QueryError::AmbiguousField { name: name.to_string(), candidates: candidates.join(", ") })
        }
        (None, _) => {
            let qualified: Vec<String> = catalog
                .tables
                .iter()
                .flat_map(|t| t.fields.iter().map(move |f| format!("{}.{}", t.name, f.name)))
                .collect();
            let bare = name.rsplit('.').next().unwrap_or(name);
            fn field_of(q: &str) -> &str {
                q.split_once('.').map_or(q, |(_, f)| f)
            }
            let ranked = ranked_matches(bare, qualified.iter().map(|q| field_of(q)));
            let mut suggestions: Vec<&str> = Vec::new();
            for field in ranked {
                suggestions.extend(qualified.iter().map(String::as_str).filter(|q| field_of(q) == field));
            }
            suggestions.dedup();
            let mut hint = String::new();
            if !suggestions.is_empty() {
                let names: Vec<String> = suggestions.iter().take(5).map(|n| format!("`{n}`")).collect();
                hint = format!("; cached fields like it: {}", names.join(", "));
            }
            let tables: Vec<&str> = catalog.tables.iter().map(|t| t.name.as_str()).collect();
            hint.push_str(&format!(
                "; add it to `fields` of a [[table]] ({}) in the config and run `cheetah update`",
                tables.join(", ")
            ));
            Err(QueryError::UnknownField { name: name.to_string(), hint })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TableKind;
    use crate::types::ValueType;

    fn catalog() -> Catalog {
        let field = |id, name: &str| FieldEntry { id, name: name.into(), dtype: ValueType::Float64, complete: true };
        let table = |id, name: &str, fields| TableEntry {
            id,
            name: name.into(),
            kind: TableKind::Daily,
            fingerprint: Default::default(),
            fields,
        };
        Catalog {
            next_id: 10,
            tables: vec![
                table(0, "bar", vec![field(1, "close"), field(2, "volume")]),
                table(3, "valuation", vec![field(4, "pe_ttm"), field(5, "volume")]),
            ],
        }
    }

    #[test]
    fn bare_and_qualified_names() {
        let c = catalog();
        let r = resolve_fields(&c, &Aliases::new(), &["close".into(), "valuation.volume".into()]).unwrap();
        assert_eq!((r[0].field.id, r[1].field.id), (1, 5));
    }

    #[test]
    fn an_alias_names_its_column_and_keeps_the_requested_name() {
        let aliases = Aliases::from([("vol".to_string(), "valuation.volume".to_string())]);
        let c = catalog();
        let r = resolve_fields(&c, &aliases, &["vol".into(), "bar.volume".into()]).unwrap();
        assert_eq!((r[0].field.id, r[0].requested.as_str(), r[1].field.id), (5, "vol", 2));
    }

    #[test]
    fn ambiguous_names_list_candidates() {
        let err = resolve_fields(&catalog(), &Aliases::new(), &["volume".into()]).unwrap_err().to_string();
        assert!(err.contains("`bar.volume`, `valuation.volume`"), "{err}");
    }

    #[test]
    fn unknown_names_suggest_close_matches() {
        let err = resolve_fields(&catalog(), &Aliases::new(), &["pe".into()]).unwrap_err().to_string();
        assert!(err.contains("field `pe` is not cached; cached fields like it: `valuation.pe_ttm`"), "{err}");
        assert!(err.contains("add it to `fields`"), "{err}");
    }
}
