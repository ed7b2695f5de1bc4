//! Streaming a table's rows as Arrow batches, fetched on a background thread.

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit};
use arrow_odbc::odbc_api::{Cursor, OwnedCursor};
use arrow_odbc::{ConcurrentOdbcReader, OdbcReaderBuilder};
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

/// Batches of a table's rows in date order.
struct RowStream {
    reader: ConcurrentOdbcReader<OwnedCursor<Connection>>,
    table: String,
    source: Source,
    /// The cached type of each field, which text-fetched columns are parsed into.
    types: Vec<DataType>,
}

impl RowStream {
    /// Starts fetching `fields` of `table` for dates `from..=to`, ordered by date.
    ///
    /// # Errors
    /// [`SourceError::Query`] if the query fails to start.
    fn open(
        source: &Source,
        table: &ResolvedTable,
        fields: &[(String, ValueType)],
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Self, SourceError> {
        let failed = |doing: &str, message: String| source.failed(&table.config.name, doing, message);
        let sql = query::rows(
            &table.dialect,
            &table.config,
            (&table.date, &table.symbol),
            &table.select_list(fields),
            table.order_by.as_deref(),
            (from, to),
        );
        tracing::debug!(table = %table.config.name, %sql, "fetching");
        let connection = source.connect()?;
        let cursor = connection
            .into_cursor(&sql, (), None)
            .map_err(|e| failed("starting the fetch", e.error.to_string()))?
            .ok_or_else(|| failed("starting the fetch", "the query returned no result set".into()))?;
        let reader = OdbcReaderBuilder::new()
            .with_schema(table.fetch_schema(fields))
            .with_max_text_size(source.config().max_text_size)
            .with_max_num_rows_per_batch(source.config().batch_rows)
            .with_max_bytes_per_batch(BYTES_PER_BATCH)
            .build(cursor)
            .map_err(|e| failed("allocating fetch buffers", e.to_string()))?
            .into_concurrent()
            .map_err(|e| failed("starting the fetch thread", e.to_string()))?;
        let types = fields.iter().map(|(_, dtype)| dtype.arrow()).collect();
        Ok(Self { reader, table: table.config.name.clone(), source: source.clone(), types })
    }

    fn convert(&self, batch: arrow::record_batch::RecordBatch) -> Result<TableRows, SourceError> {
        let bad = |message: String| SourceError::BadValue { table: self.table.clone(), message };
        let days = to_days(batch.column(0).as_ref()).map_err(bad)?;
        let symbols = cast(batch.column(1), &DataType::Utf8)
            .map_err(|e| bad(format!("symbol column: {e}")))?
            .as_string::<i32>()
            .clone();
        let fields = batch.columns()[2..]
            .iter()
            .zip(&self.types)
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
}

impl Iterator for RowStream {
    type Item = Result<TableRows, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch = self.reader.next()?;
        Some(match batch {
            Ok(batch) => self.convert(batch),
            Err(e) => Err(self.source.failed(&self.table, "fetching rows", e)),
        })
    }
}

/// A date range fetched as consecutive date windows of about `query_rows` rows each, so that no
/// driver ever holds more than one window, however it buffers results.
///
/// Drivers differ: psqlODBC without `UseDeclareFetch` and MariaDB's driver buffer a whole result
/// set, and psqlODBC 13 with `UseDeclareFetch=1` crashes the process if the connection drops
/// mid-fetch. Windows bound memory with neither risk. Each window is sized from the rows per day
/// seen in the previous one.
pub struct WindowedRows {
    source: Source,
    table: ResolvedTable,
    fields: Vec<(String, ValueType)>,
    next_from: Option<NaiveDate>,
    to: NaiveDate,
    window_days: i64,
    current: Option<RowStream>,
    rows_in_window: usize,
}

const FIRST_WINDOW_DAYS: i64 = 7;
const MAX_WINDOW_DAYS: i64 = 3660;
/// Empty windows grow slowly and stay short: a long empty stretch may end in dense dates.
const MAX_EMPTY_GROWTH_DAYS: i64 = 366;

impl WindowedRows {
    /// Fetches `fields` of `table` for `from..=to`, ordered by date.
    pub fn new(
        source: &Source,
        table: &ResolvedTable,
        fields: &[(String, ValueType)],
        from: NaiveDate,
        to: NaiveDate,
    ) -> Self {
        Self {
            source: source.clone(),
            table: table.clone(),
            fields: fields.to_vec(),
            next_from: (from <= to).then_some(from),
            to,
            window_days: FIRST_WINDOW_DAYS,
            current: None,
            rows_in_window: 0,
        }
    }

    fn resize_window(&mut self) {
        let target = self.source.config().query_rows as f64;
        self.window_days = if self.rows_in_window == 0 {
            (self.window_days * 2).min(MAX_EMPTY_GROWTH_DAYS.max(self.window_days))
        } else {
            let rows_per_day = self.rows_in_window as f64 / self.window_days as f64;
            (target / rows_per_day) as i64
        }
        .clamp(1, MAX_WINDOW_DAYS);
        self.rows_in_window = 0;
    }
}

impl Iterator for WindowedRows {
    type Item = Result<TableRows, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(stream) = &mut self.current {
                match stream.next() {
                    Some(Ok(rows)) => {
                        self.rows_in_window += rows.days.len();
                        return Some(Ok(rows));
                    }
                    Some(Err(e)) => {
                        self.current = None;
                        self.next_from = None;
                        return Some(Err(e));
                    }
                    None => {
                        self.current = None;
                        self.resize_window();
                    }
                }
            }
            let from = self.next_from?;
            let end = from
                .checked_add_days(chrono::Days::new(self.window_days as u64 - 1))
                .map_or(self.to, |end| end.min(self.to));
            self.next_from = end.succ_opt().filter(|next| *next <= self.to);
            match RowStream::open(&self.source, &self.table, &self.fields, from, end) {
                Ok(stream) => self.current = Some(stream),
                Err(e) => {
                    self.next_from = None;
                    return Some(Err(e));
                }
            }
        }
    }
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
