//! The read-time research settings: a table's `[table.adjust]` and the `[[universe]]` blocks.

use serde::Deserialize;

/// `[table.adjust]`: the table's adjustment factor and the price fields it adjusts at read time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdjustConfig {
    /// The factor: a cached field of the table.
    pub factor: String,
    /// The fields that are prices.
    pub fields: Vec<String>,
}

/// One `[[universe]]`: membership intervals of symbols, read whole from a source table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniverseConfig {
    /// Its name, as `universe=` takes it.
    pub name: String,
    /// The table or view in the source.
    pub table: String,
    /// Its schema, if not the connection's default.
    pub schema: Option<String>,
    /// The symbol column.
    pub symbol: String,
    /// The column of each interval's first day as a member.
    pub start: String,
    /// The column of each interval's first day no longer a member; NULL while still a member.
    pub end: String,
    /// An SQL filter on the table's rows.
    pub filter: Option<String>,
    /// The name of the source it is read from.
    pub source: String,
    /// `file:line` of the block, for messages.
    pub location: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdjust {
    factor: String,
    fields: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUniverse {
    pub(super) name: String,
    table: String,
    schema: Option<String>,
    symbol: String,
    start: String,
    end: String,
    #[serde(rename = "where")]
    filter: Option<String>,
    pub(super) source: Option<String>,
}

/// Checks a table's `[table.adjust]` against its `fields`.
pub(super) fn adjust(table: &str, raw: RawAdjust, selects: impl Fn(&str) -> bool) -> Result<AdjustConfig, String> {
    let prefix = format!("[[table]] `{table}` [table.adjust]");
    if !selects(&raw.factor) {
        return Err(format!(
            "{prefix}: factor `{}` is not a cached field of the table; add it to `fields`",
            raw.factor
        ));
    }
    if raw.fields.is_empty() {
        return Err(format!("{prefix}: `fields` is empty; list the price fields the factor adjusts"));
    }
    for field in &raw.fields {
        if field == &raw.factor {
            return Err(format!("{prefix}: `{field}` is the factor itself; list only the price fields"));
        }
        if super::is_glob(field) {
            return Err(format!("{prefix}: `{field}` is a pattern; name each price field"));
        }
        if !selects(field) {
            return Err(format!("{prefix}: `{field}` is not a cached field of the table; add it to `fields`"));
        }
    }
    Ok(AdjustConfig { factor: raw.factor, fields: raw.fields })
}

/// Checks one `[[universe]]`.
pub(super) fn universe(raw: RawUniverse, location: String) -> Result<UniverseConfig, String> {
    let name = raw.name.trim();
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == ',') {
        return Err(format!("[[universe]] name {:?} must be a plain name: no spaces or commas", raw.name));
    }
    for (key, value) in [("table", &raw.table), ("symbol", &raw.symbol), ("start", &raw.start), ("end", &raw.end)] {
        if value.trim().is_empty() {
            return Err(format!("[[universe]] `{name}`: `{key}` is empty; name the source's column or table"));
        }
    }
    Ok(UniverseConfig {
        name: name.to_string(),
        table: raw.table,
        schema: raw.schema,
        symbol: raw.symbol,
        start: raw.start,
        end: raw.end,
        filter: raw.filter.filter(|w| !w.trim().is_empty()),
        source: raw.source.unwrap_or_else(|| super::DEFAULT_SOURCE.to_string()),
        location,
    })
}
