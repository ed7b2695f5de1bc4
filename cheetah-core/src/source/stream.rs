//! A table's rows for a date range, fetched as Arrow batches, and its date span.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit};
use arrow_odbc::odbc_api::Cursor;
use arrow_odbc::OdbcReaderBuilder;
use chrono::NaiveDate;

use super::columns::ResolvedTable;
use super::{query, Connection, Source};
use crate::error::SourceError;
use crate::types::Day;
use crate::types::ValueType;

/// Bounds a batch's buffers whatever `batch_rows` says.
const BYTES_PER_BATCH: usize = 16 << 20;

/// One fetched batch: the day and symbol of each row, and the fields in the order asked.
pub struct TableRows {
    /// Day of each row, non-decreasing.
    pub days: Vec<Day>,
    /// Symbol of each row.
    pub symbols: StringArray,
    /// One array per requested field, typed as the field's [`ValueType`].
    pub fields: Vec<ArrayRef>,
}

/// Fetches `fields` of `table` for dates `from..=to` over `connection`, ordered by date, and
/// hands each batch to `deliver`. Returns the rows fetched, or `None` once `deliver` refused a
/// batch (its reader went away).
///
/// # Errors
/// [`SourceError::Query`] when the query fails, [`SourceError::BadValue`] for a value that does
/// not read as its field's type.
pub fn fetch_window(
    connection: &Connection,
    source: &Source,
    table: &ResolvedTable,
    fields: &[(String, ValueType)],
    (from, to): (NaiveDate, NaiveDate),
    mut deliver: impl FnMut(TableRows) -> bool,
) -> Result<Option<usize>, SourceError> {
    let name = &table.config.name;
    let failed = |doing: &str, message: String| source.failed(name, doing, message);
    let sql = query::rows(
        &table.dialect,
        &table.config,
        (&table.date, &table.symbol),
        &table.select_list(fields),
        table.order_by.as_deref(),
        (from, to),
    );
    tracing::debug!(table = %name, %sql, "fetching");
    let cursor = connection
        .execute(&sql, (), None)
        .map_err(|e| failed("starting the fetch", e.to_string()))?
        .ok_or_else(|| failed("starting the fetch", "the query returned no result set".into()))?;
    let reader = OdbcReaderBuilder::new()
        .with_schema(table.fetch_schema(fields))
        .with_max_text_size(source.config().max_text_size)
        .with_max_num_rows_per_batch(source.config().batch_rows)
        .with_max_bytes_per_batch(BYTES_PER_BATCH)
        .build(cursor)
        .map_err(|e| failed("allocating fetch buffers", e.to_string()))?;
    let types: Vec<DataType> = fields.iter().map(|(_, dtype)| dtype.arrow()).collect();
    let mut rows = 0;
    for batch in reader {
        let batch = batch.map_err(|e| failed("fetching rows", e.to_string()))?;
        let batch = convert(name, &types, &batch)?;
        rows += batch.days.len();
        if !deliver(batch) {
            return Ok(None);
        }
    }
    Ok(Some(rows))
}

/// A fetched batch as days, symbols, and each field in its cached type (text-fetched columns
/// parsed into it).
fn convert(table: &str, types: &[DataType], batch: &RecordBatch) -> Result<TableRows, SourceError> {
    let bad = |message: String| SourceError::BadValue { table: table.to_string(), message };
    let days = to_days(batch.column(0).as_ref()).map_err(bad)?;
    let symbols = cast(batch.column(1), &DataType::Utf8)
        .map_err(|e| bad(format!("symbol column: {e}")))?
        .as_string::<i32>()
        .clone();
    let fields = batch.columns()[2..]
        .iter()
        .zip(types)
        .map(|(column, dtype)| {
            if column.data_type() == dtype {
                return Ok(column.clone());
            }
            let parse = arrow::compute::CastOptions { safe: false, ..Default::default() };
            arrow::compute::cast_with_options(column, dtype, &parse)
                .map_err(|e| bad(format!("cannot read a value as {dtype}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    Ok(TableRows { days, symbols, fields })
}

/// The oldest and newest dates of `table` at or after `from`, or `None` if it has no rows there.
///
/// # Errors
/// [`SourceError::Query`], or [`SourceError::BadValue`] if a date does not parse (for example
/// PostgreSQL's `'infinity'`).
pub fn date_span(
    source: &Source,
    connection: &Connection,
    table: &ResolvedTable,
    from: NaiveDate,
) -> Result<Option<(NaiveDate, NaiveDate)>, SourceError> {
    let failed = |e: arrow_odbc::odbc_api::Error| source.failed(&table.config.name, "finding its date range", e);
    let sql = query::date_span(&table.dialect, &table.config, &table.date, &table.symbol, from);
    let Some(mut cursor) = connection.execute(&sql, (), None).map_err(failed)? else {
        return Ok(None);
    };
    let Some(mut row) = cursor.next_row().map_err(failed)? else {
        return Ok(None);
    };
    let mut span = [None, None];
    for (i, slot) in span.iter_mut().enumerate() {
        let mut text = Vec::new();
        if !row.get_text(i as u16 + 1, &mut text).map_err(failed)? {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&text);
        *slot = Some(parse_date_text(&text).ok_or_else(|| SourceError::BadValue {
            table: table.config.name.clone(),
            message: format!("its date `{text}` is not a calendar date; exclude such rows with a `where` filter"),
        })?);
    }
    Ok(span[0].zip(span[1]))
}

/// Days of a date column fetched as Date32, a timestamp or ISO text.
fn to_days(array: &dyn Array) -> Result<Vec<Day>, String> {
    if array.null_count() > 0 {
        return Err("the date column holds NULL in the fetched range".into());
    }
    match array.data_type() {
        DataType::Date32 => Ok(array.as_primitive::<arrow::datatypes::Date32Type>().values().to_vec()),
        DataType::Timestamp(unit, _) => {
            let per_day: i64 = match unit {
                TimeUnit::Second => 86_400,
                TimeUnit::Millisecond => 86_400_000,
                TimeUnit::Microsecond => 86_400_000_000,
                TimeUnit::Nanosecond => 86_400_000_000_000,
            };
            let as_i64 = cast(array, &DataType::Int64).map_err(|e| e.to_string())?;
            Ok(as_i64
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values()
                .iter()
                .map(|t| t.div_euclid(per_day) as Day)
                .collect())
        }
        DataType::Utf8 => array
            .as_string::<i32>()
            .iter()
            .map(|text| {
                let text = text.unwrap_or_default();
                parse_date_text(text)
                    .map(crate::types::day_of)
                    .ok_or_else(|| format!("date `{text}` is not an ISO date (YYYY-MM-DD)"))
            })
            .collect(),
        other => Err(format!("the date column arrived as {other}")),
    }
}

pub(super) fn parse_date_text(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim().get(..10)?, "%Y-%m-%d").ok()
}
