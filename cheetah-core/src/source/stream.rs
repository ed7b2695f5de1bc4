//! Streaming a table's rows as Arrow batches, fetched on a background thread.

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit};
use arrow_odbc::odbc_api::{Cursor, OwnedCursor};
use arrow_odbc::{ConcurrentOdbcReader, OdbcReaderBuilder};
use chrono::NaiveDate;

use super::catalog::ResolvedTable;
use super::{query, Connection, Source};
use crate::error::SourceError;
use crate::store::keys::Day;
use crate::types::ValueType;

/// Rows fetched per batch; bounds memory whatever the table's size.
const ROWS_PER_BATCH: usize = 50_000;
const BYTES_PER_BATCH: usize = 64 << 20;

/// One fetched batch: the day and symbol of each row, and the fields in the order asked.
pub struct TableRows {
    /// Day of each row, non-decreasing.
    pub days: Vec<Day>,
    /// Symbol of each row.
    pub symbols: StringArray,
    /// One array per requested field, typed as the field's [`ValueType`].
    pub fields: Vec<ArrayRef>,
}

/// Batches of a table's rows in date order.
pub struct RowStream {
    reader: ConcurrentOdbcReader<OwnedCursor<Connection>>,
    table: String,
    source: Source,
}

impl RowStream {
    /// Starts fetching `fields` of `table` for dates `from..=to`, ordered by date.
    ///
    /// # Errors
    /// [`SourceError::Query`] if the query fails to start.
    pub fn open(
        source: &Source,
        table: &ResolvedTable,
        fields: &[(String, ValueType)],
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Self, SourceError> {
        let failed = |doing: &str, message: String| SourceError::Query {
            table: table.config.name.clone(),
            doing: doing.to_string(),
            message: source.scrub(&message),
        };
        let mut columns = vec![table.date.as_str(), table.symbol.as_str()];
        columns.extend(fields.iter().map(|(name, _)| name.as_str()));
        let sql = query::rows(&table.dialect, &table.config, &columns, from, to);
        tracing::debug!(table = %table.config.name, %sql, "fetching");
        let connection = source.connect()?;
        let cursor = connection
            .into_cursor(&sql, (), None)
            .map_err(|e| failed("starting the fetch", e.error.to_string()))?
            .ok_or_else(|| failed("starting the fetch", "the query returned no result set".into()))?;
        let reader = OdbcReaderBuilder::new()
            .with_schema(table.fetch_schema(fields))
            .with_max_text_size(source.config().max_text_size)
            .with_max_num_rows_per_batch(ROWS_PER_BATCH)
            .with_max_bytes_per_batch(BYTES_PER_BATCH)
            .build(cursor)
            .map_err(|e| failed("allocating fetch buffers", e.to_string()))?
            .into_concurrent()
            .map_err(|e| failed("starting the fetch thread", e.to_string()))?;
        Ok(Self { reader, table: table.config.name.clone(), source: source.clone() })
    }

    fn convert(&self, batch: arrow::record_batch::RecordBatch) -> Result<TableRows, SourceError> {
        let bad = |message: String| SourceError::BadValue { table: self.table.clone(), message };
        let days = to_days(batch.column(0).as_ref()).map_err(bad)?;
        let symbols = cast(batch.column(1), &DataType::Utf8)
            .map_err(|e| bad(format!("symbol column: {e}")))?
            .as_string::<i32>()
            .clone();
        Ok(TableRows { days, symbols, fields: batch.columns()[2..].to_vec() })
    }
}

impl Iterator for RowStream {
    type Item = Result<TableRows, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch = self.reader.next()?;
        Some(match batch {
            Ok(batch) => self.convert(batch),
            Err(e) => Err(SourceError::Query {
                table: self.table.clone(),
                doing: "fetching rows".into(),
                message: self.source.scrub(&e.to_string()),
            }),
        })
    }
}

/// The newest date of `table` at or after `from`, or `None` if it has no rows there.
///
/// # Errors
/// [`SourceError::Query`], or [`SourceError::BadValue`] if the date does not parse (for example
/// PostgreSQL's `'infinity'`).
pub fn max_date(source: &Source, connection: &Connection, table: &ResolvedTable, from: NaiveDate) -> Result<Option<NaiveDate>, SourceError> {
    let failed = |e: arrow_odbc::odbc_api::Error| SourceError::Query {
        table: table.config.name.clone(),
        doing: "finding its newest date".into(),
        message: source.scrub(&e.to_string()),
    };
    let sql = query::max_date(&table.dialect, &table.config, &table.date, &table.symbol, from);
    let Some(mut cursor) = connection.execute(&sql, (), None).map_err(failed)? else { return Ok(None) };
    let Some(mut row) = cursor.next_row().map_err(failed)? else { return Ok(None) };
    let mut text = Vec::new();
    if !row.get_text(1, &mut text).map_err(failed)? {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&text);
    parse_date_text(&text).map(Some).ok_or_else(|| SourceError::BadValue {
        table: table.config.name.clone(),
        message: format!(
            "its newest date `{text}` is not a calendar date; exclude such rows with a `where` filter"
        ),
    })
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
                    .map(crate::store::keys::day_of)
                    .ok_or_else(|| format!("date `{text}` is not an ISO date (YYYY-MM-DD)"))
            })
            .collect(),
        other => Err(format!("the date column arrived as {other}")),
    }
}

fn parse_date_text(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim().get(..10)?, "%Y-%m-%d").ok()
}
