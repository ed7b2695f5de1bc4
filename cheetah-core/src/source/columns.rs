//! Checking configured names against the source's catalog, and resolving field patterns and
//! types, before any query runs.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_odbc::arrow_schema_from;
use arrow_odbc::odbc_api::Cursor;

use super::query::{self, Dialect};
use super::{Connection, Source};
use crate::config::{is_glob, DecimalMode, MissingPolicy, TableConfig};
use crate::error::{close_matches, SourceError};
use crate::types::ValueType;

/// A column as the source's catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ColumnInfo {
    /// Its schema, if the source has schemas.
    pub schema: Option<String>,
    /// Its table.
    pub table: String,
    /// Its name.
    pub name: String,
    /// The source's name for its type, for example `float8` or `DECIMAL`.
    pub type_name: String,
    /// The ODBC SQL type code.
    pub sql_type: i16,
}

/// A `[[table]]` checked against the source: exact column names and the type of every field.
#[derive(Debug, Clone)]
pub struct ResolvedTable {
    /// The config it came from.
    pub config: TableConfig,
    /// How to quote for this source.
    pub dialect: Dialect,
    /// The date column's exact name.
    pub date: String,
    /// The symbol column's exact name.
    pub symbol: String,
    /// The asof ordering column's exact name.
    pub order_by: Option<String>,
    /// Every selected field: exact name and cached type, in source order.
    pub fields: Vec<(String, ValueType)>,
    /// Arrow type of the date column as fetched.
    pub date_type: DataType,
    /// Cached fields gone from the source, kept under `on_missing = "warn"`: fetched as NULL.
    pub vanished: Vec<String>,
}

impl ResolvedTable {
    /// The Arrow schema to fetch `date, symbol, fields...` with.
    pub fn fetch_schema(&self, fields: &[(String, ValueType)]) -> SchemaRef {
        let mut columns =
            vec![Field::new(&self.date, self.date_type.clone(), true), Field::new(&self.symbol, DataType::Utf8, true)];
        columns.extend(fields.iter().map(|(name, dtype)| {
            let fetched = if self.fetched_as_text(*dtype) { DataType::Utf8 } else { dtype.arrow() };
            Field::new(name, fetched, true)
        }));
        Arc::new(Schema::new(columns))
    }

    /// The select list for `date, symbol, fields...`.
    pub fn select_list(&self, fields: &[(String, ValueType)]) -> Vec<String> {
        let mut list = vec![self.dialect.quote(&self.date), self.dialect.quote(&self.symbol)];
        list.extend(fields.iter().map(|(name, dtype)| {
            if self.vanished.contains(name) {
                return "NULL".to_string();
            }
            let column = self.dialect.quote(name);
            match dtype {
                // `!` lifts SQLite's 16-digit cap: exact for every magnitude below 1e100.
                ValueType::Float32 | ValueType::Float64 if self.fetched_as_text(*dtype) => {
                    format!("CASE WHEN {column} IS NULL THEN NULL ELSE printf('%!.17g', {column}) END")
                }
                ValueType::Timestamp(_) if self.fetched_as_text(*dtype) => {
                    format!("CAST({column} AS TEXT)")
                }
                _ => column,
            }
        }));
        list
    }

    /// SQLite's driver hands doubles over as 15-digit text and timestamps at whole seconds,
    /// silently losing digits. For SQLite, Cheetah selects them as exact text and parses that.
    pub fn fetched_as_text(&self, dtype: ValueType) -> bool {
        self.dialect.is_sqlite() && matches!(dtype, ValueType::Float32 | ValueType::Float64 | ValueType::Timestamp(_))
    }
}

/// Lists columns of tables whose name matches the ODBC search pattern `table` (`%` and `_`).
///
/// # Errors
/// [`SourceError::Query`].
pub fn list_columns(
    source: &Source,
    connection: &Connection,
    schema: Option<&str>,
    table: &str,
) -> Result<Vec<ColumnInfo>, SourceError> {
    let failed = |e: arrow_odbc::odbc_api::Error| source.failed(table, "reading the catalog", e);
    let mut columns = Vec::new();
    for row in connection.columns("", schema.unwrap_or(""), table, "%").map_err(failed)? {
        let row = row.map_err(failed)?;
        let text = |v: Result<Option<&str>, _>| v.ok().flatten().unwrap_or_default().to_string();
        columns.push(ColumnInfo {
            schema: Some(text(row.schema.as_str())).filter(|s| !s.is_empty()),
            table: text(row.table.as_str()),
            name: text(row.column_name.as_str()),
            type_name: text(row.type_name.as_str()),
            sql_type: row.data_type,
        });
    }
    Ok(columns)
}

/// Names of the tables and views in the source, for suggestions.
fn table_names(connection: &Connection) -> Vec<String> {
    let Ok(rows) = connection.tables("", "", "%", "") else {
        return Vec::new();
    };
    rows.filter_map(Result::ok).filter_map(|row| row.table.as_str().ok().flatten().map(str::to_string)).collect()
}

/// Checks a `[[table]]` against the source and resolves its fields and their types.
///
/// # Errors
/// [`SourceError::NoSuchTable`], [`SourceError::NoSuchColumn`], [`SourceError::Vanished`] or
/// [`SourceError::UnsupportedType`], all before any query on the table runs.
pub fn resolve(
    source: &Source,
    connection: &Connection,
    table: &TableConfig,
    cached: &[(String, ValueType)],
) -> Result<ResolvedTable, SourceError> {
    let dialect =
        Dialect::of(connection).map_err(|e| source.failed(&table.name, "asking the driver how to quote names", e))?;
    let all = list_columns(source, connection, table.schema.as_deref(), &table.name)?;
    // The table name is a search pattern (`_` matches any character): keep exact matches, or a
    // unique case-insensitive one for sources that fold case.
    let exact: Vec<ColumnInfo> = all.iter().filter(|c| c.table == table.name).cloned().collect();
    let columns = if exact.is_empty() {
        let folded: Vec<ColumnInfo> = all.into_iter().filter(|c| c.table.eq_ignore_ascii_case(&table.name)).collect();
        let distinct_tables: std::collections::BTreeSet<&str> = folded.iter().map(|c| c.table.as_str()).collect();
        if distinct_tables.len() == 1 {
            folded
        } else {
            Vec::new()
        }
    } else {
        exact
    };
    if columns.is_empty() {
        let names = table_names(connection);
        return Err(SourceError::NoSuchTable {
            location: table.location.clone(),
            table: table.name.clone(),
            source_name: source.name(),
            hint: close_matches(&table.name, names.iter().map(String::as_str)),
        });
    }
    let find = |wanted: &str, role: &'static str| -> Result<String, SourceError> {
        columns
            .iter()
            .find(|c| c.name == wanted)
            .or_else(|| {
                let mut folded = columns.iter().filter(|c| c.name.eq_ignore_ascii_case(wanted));
                folded.next().filter(|_| folded.next().is_none())
            })
            .map(|c| c.name.clone())
            .ok_or_else(|| SourceError::NoSuchColumn {
                location: table.location.clone(),
                table: table.name.clone(),
                column: wanted.to_string(),
                role,
                hint: close_matches(wanted, columns.iter().map(|c| c.name.as_str())),
            })
    };
    let date = find(&table.date, "date")?;
    let symbol = find(&table.symbol, "symbol")?;
    let order_by = table.order_by.as_deref().map(|o| find(o, "order_by")).transpose()?;
    // Cached fields the config still selects but the source no longer has.
    let vanished: Vec<(String, ValueType)> = cached
        .iter()
        .filter(|(name, _)| table.selects(name) && !columns.iter().any(|c| &c.name == name))
        .cloned()
        .collect();
    if !vanished.is_empty() {
        let names: Vec<&str> = vanished.iter().map(|(n, _)| n.as_str()).collect();
        if table.on_missing == MissingPolicy::Error {
            return Err(SourceError::Vanished {
                location: table.location.clone(),
                table: table.name.clone(),
                columns: names.join(", "),
            });
        }
        tracing::warn!(table = %table.name, columns = ?names, "cached columns vanished from the source; their cached dates stay readable, and dates fetched from now on hold nulls for them (on_missing = \"warn\")");
    }
    for name in table.fields.iter().chain(&table.exclude).filter(|f| !is_glob(f)) {
        if !vanished.iter().any(|(v, _)| v == name) {
            find(name, "field")?;
        }
    }
    let selected: Vec<&ColumnInfo> = columns
        .iter()
        .filter(|c| c.name != date && c.name != symbol && Some(&c.name) != order_by.as_ref())
        .filter(|c| {
            table.selects(&c.name) || table.fields.iter().any(|f| !is_glob(f) && f.eq_ignore_ascii_case(&c.name))
        })
        .collect();

    // Describe the real result set: its types are what the driver will deliver.
    let mut probe_columns = vec![date.as_str(), symbol.as_str()];
    probe_columns.extend(selected.iter().map(|c| c.name.as_str()));
    let sql = query::probe(&dialect, table, &probe_columns);
    let query_failed = |e: String| source.failed(&table.name, "describing its columns", e);
    let mut cursor = connection
        .execute(&sql, (), None)
        .map_err(|e| query_failed(e.to_string()))?
        .ok_or_else(|| query_failed("the probe query returned no result set".into()))?;
    let schema =
        arrow_schema_from(&mut cursor, Some(dialect.dbms()), false).map_err(|e| query_failed(e.to_string()))?;
    drop(cursor);

    let date_type = match schema.field(0).data_type() {
        t @ (DataType::Date32 | DataType::Timestamp(..)) => t.clone(),
        DataType::Utf8 | DataType::LargeUtf8 => DataType::Utf8,
        other => {
            return Err(SourceError::BadValue {
                table: table.name.clone(),
                message: format!("date column `{date}` has type {other}; it must be a DATE, a TIMESTAMP or ISO text"),
            })
        }
    };
    let mut arrow_types: Vec<DataType> = schema.fields().iter().skip(2).map(|f| f.data_type().clone()).collect();
    if dialect.is_sqlite() {
        sqlite_storage_types(connection, &dialect, table, &selected, &mut arrow_types)
            .map_err(|e| query_failed(e.to_string()))?;
    }
    let mut fields = Vec::with_capacity(selected.len());
    for (column, arrow_type) in selected.iter().zip(&arrow_types) {
        let arrow_type = corrected_float(arrow_type, column, &dialect);
        let dtype = match ValueType::for_source(&arrow_type, table.decimal == DecimalMode::Exact) {
            // SQLite reports every TIMESTAMP with precision 0; its text keeps the fraction.
            Some(ValueType::Timestamp(_)) if dialect.is_sqlite() => Some(ValueType::Timestamp(2)),
            other => other,
        };
        let dtype = dtype.ok_or_else(|| SourceError::UnsupportedType {
            table: table.name.clone(),
            column: column.name.clone(),
            sql_type: format!("{} ({arrow_type})", column.type_name),
        })?;
        fields.push((column.name.clone(), dtype));
    }
    fields.extend(vanished.iter().cloned());
    let vanished = vanished.into_iter().map(|(name, _)| name).collect();
    Ok(ResolvedTable { config: table.clone(), dialect, date, symbol, order_by, fields, date_type, vanished })
}

/// SQLite columns without a declared type (view columns, `CREATE TABLE t AS ...`) are reported
/// as text whatever they hold. For those, the storage classes of the first rows decide:
/// integers only become Int64, any real makes Float64, and anything else stays text.
fn sqlite_storage_types(
    connection: &Connection,
    dialect: &Dialect,
    table: &TableConfig,
    columns: &[&ColumnInfo],
    types: &mut [DataType],
) -> Result<(), arrow_odbc::odbc_api::Error> {
    const SAMPLE_ROWS: usize = 1000;
    let untyped: Vec<usize> = (0..columns.len()).filter(|&i| types[i] == DataType::Utf8).collect();
    if untyped.is_empty() {
        return Ok(());
    }
    let select: Vec<String> = untyped.iter().map(|&i| format!("typeof({})", dialect.quote(&columns[i].name))).collect();
    let sql = format!("SELECT {} FROM {} LIMIT {SAMPLE_ROWS}", select.join(", "), query::table_ref(dialect, table));
    let mut classes: Vec<std::collections::BTreeSet<String>> = vec![Default::default(); untyped.len()];
    if let Some(mut cursor) = connection.execute(&sql, (), None)? {
        let mut text = Vec::new();
        while let Some(mut row) = cursor.next_row()? {
            for (j, set) in classes.iter_mut().enumerate() {
                if row.get_text(j as u16 + 1, &mut text)? {
                    set.insert(String::from_utf8_lossy(&text).into_owned());
                }
            }
        }
    }
    for (&i, mut set) in untyped.iter().zip(classes) {
        set.remove("null");
        let numeric = !set.is_empty() && set.iter().all(|c| c == "integer" || c == "real");
        if numeric {
            types[i] = if set.contains("real") { DataType::Float64 } else { DataType::Int64 };
        }
    }
    Ok(())
}

/// psqlODBC reports `double precision` as SQL_FLOAT with precision 17, which arrow-odbc maps to
/// Float32, silently dropping digits. Only a declared REAL/FLOAT4 is single precision, and in
/// SQLite every floating type is a double.
fn corrected_float(arrow_type: &DataType, column: &ColumnInfo, dialect: &Dialect) -> DataType {
    const SQL_REAL: i16 = 7;
    let declared_single =
        column.sql_type == SQL_REAL || ["real", "float4"].contains(&column.type_name.to_ascii_lowercase().as_str());
    match arrow_type {
        DataType::Float32 if dialect.is_sqlite() || !declared_single => DataType::Float64,
        other => other.clone(),
    }
}
