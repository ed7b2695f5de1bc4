//! Per-date checksums of a table computed by the source in SQL, for `verify`: only one row per
//! date crosses the wire, never the data itself.
//!
//! A field's checksum is the count of its non-null values, their sum and the sum of their
//! absolute values, each value first mapped to a number the same way on both sides
//! ([`checksum_value`] is the cache's half): numbers as themselves, booleans as 0/1, text as its
//! length in characters, dates as days and timestamps as seconds since 1970-01-01.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
use arrow_odbc::OdbcReaderBuilder;
use chrono::NaiveDate;

use super::columns::ResolvedTable;
use super::query::{self, Dialect, Family};
use super::Source;
use crate::error::SourceError;
use crate::types::ValueType;
use crate::types::{day_of, Day};

/// Aggregates of one query stay well below every database's column limit.
const FIELDS_PER_QUERY: usize = 200;

/// One field's checksum on one date.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FieldChecksum {
    /// Non-null values.
    pub count: u64,
    /// Sum of the values as numbers.
    pub sum: f64,
    /// Sum of their absolute values; it bounds the rounding of `sum`.
    pub abs: f64,
}

impl FieldChecksum {
    /// Adds one value, as [`checksum_value`] maps it.
    pub fn add(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        self.abs += value.abs();
    }

    /// Whether two checksums of `rows` values agree, allowing for the rounding of sums taken in
    /// different orders: at most `n·ε·Σ|x|` each way, doubled for the source's own arithmetic.
    pub fn agrees(&self, other: &FieldChecksum, rows: u64) -> bool {
        if self.count != other.count {
            return false;
        }
        let scale = self.abs.max(other.abs);
        let tolerance = 4.0 * (rows.max(1) as f64) * f64::EPSILON * scale;
        let close = |a: f64, b: f64| (a.is_nan() && b.is_nan()) || (a - b).abs() <= tolerance;
        close(self.sum, other.sum) && close(self.abs, other.abs)
    }
}

/// A table's checksum on one date.
#[derive(Debug, Clone, PartialEq)]
pub struct DayChecksum {
    /// The date.
    pub day: Day,
    /// Rows.
    pub rows: u64,
    /// One per field asked for, in that order.
    pub fields: Vec<FieldChecksum>,
}

/// The checksum of every date of `table` in `from..=to` that has rows, ascending, over `fields`.
///
/// # Errors
/// [`SourceError`] when the source fails.
pub fn day_checksums(
    source: &Source,
    table: &ResolvedTable,
    fields: &[(String, ValueType)],
    (from, to): (NaiveDate, NaiveDate),
) -> Result<Vec<DayChecksum>, SourceError> {
    let mut days: Vec<DayChecksum> = Vec::new();
    let groups: Vec<&[(String, ValueType)]> =
        if fields.is_empty() { vec![&[]] } else { fields.chunks(FIELDS_PER_QUERY).collect() };
    for (g, group) in groups.into_iter().enumerate() {
        let part = run(source, table, group, (from, to))?;
        if g == 0 {
            days = part;
            continue;
        }
        // Every group sees the same rows, so the same dates in the same order.
        if part.len() != days.len() || part.iter().zip(&days).any(|(p, d)| p.day != d.day || p.rows != d.rows) {
            return Err(source.failed(
                &table.config.name,
                "computing checksums",
                "the source changed while it was being checked; run verify again",
            ));
        }
        for (day, p) in days.iter_mut().zip(part) {
            day.fields.extend(p.fields);
        }
    }
    Ok(days)
}

fn run(
    source: &Source,
    table: &ResolvedTable,
    fields: &[(String, ValueType)],
    range: (NaiveDate, NaiveDate),
) -> Result<Vec<DayChecksum>, SourceError> {
    let failed = |message: String| source.failed(&table.config.name, "computing checksums", message);
    let sql = checksum_sql(table, fields, range);
    tracing::debug!(table = %table.config.name, %sql, "checksums");
    let connection = source.connect()?;
    let Some(cursor) = connection.into_cursor(&sql, (), None).map_err(|e| failed(e.error.to_string()))? else {
        return Ok(Vec::new());
    };
    // SQLite's driver hands doubles over as 15-digit text; its sums come as exact text instead.
    let sums = if table.dialect.family() == Family::Sqlite { DataType::Utf8 } else { DataType::Float64 };
    let mut columns = vec![Field::new("day", DataType::Utf8, false), Field::new("rows", DataType::Int64, false)];
    for i in 0..fields.len() {
        columns.push(Field::new(format!("n{i}"), DataType::Int64, true));
        columns.push(Field::new(format!("s{i}"), sums.clone(), true));
        columns.push(Field::new(format!("a{i}"), sums.clone(), true));
    }
    let reader = OdbcReaderBuilder::new()
        .with_schema(std::sync::Arc::new(Schema::new(columns)))
        .with_max_num_rows_per_batch(4096)
        .build(cursor)
        .map_err(|e| failed(e.to_string()))?;
    let mut days = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| failed(e.to_string()))?;
        let dates = batch.column(0).as_string::<i32>();
        let rows = batch.column(1).as_primitive::<Int64Type>();
        for r in 0..batch.num_rows() {
            let text = dates.value(r);
            let date = text.get(..10).and_then(|t| NaiveDate::parse_from_str(t, "%Y-%m-%d").ok()).ok_or_else(|| {
                SourceError::BadValue {
                    table: table.config.name.clone(),
                    message: format!("its date `{text}` is not a calendar date"),
                }
            })?;
            let sums = (0..fields.len())
                .map(|f| {
                    let number = |c: usize| {
                        let column = batch.column(2 + 3 * f + c);
                        match column.data_type() {
                            _ if column.is_null(r) => 0.0,
                            DataType::Utf8 => column.as_string::<i32>().value(r).trim().parse().unwrap_or(f64::NAN),
                            _ => column.as_primitive::<Float64Type>().value(r),
                        }
                    };
                    let count = batch.column(2 + 3 * f).as_primitive::<Int64Type>().value(r);
                    FieldChecksum { count: count as u64, sum: number(1), abs: number(2) }
                })
                .collect();
            days.push(DayChecksum { day: day_of(date), rows: rows.value(r) as u64, fields: sums });
        }
    }
    days.sort_by_key(|d| d.day);
    Ok(days)
}

/// `SELECT day, COUNT(*), COUNT(f), SUM(v(f)), SUM(ABS(v(f))), ... GROUP BY day`. An asof table
/// counts only the rows its cache keeps: the last by `order_by` of each (date, symbol).
fn checksum_sql(table: &ResolvedTable, fields: &[(String, ValueType)], (from, to): (NaiveDate, NaiveDate)) -> String {
    let d = &table.dialect;
    let date = d.quote(&table.date);
    let day = match d.family() {
        Family::Sqlite => format!("date({date})"),
        _ => format!("CAST({date} AS DATE)"),
    };
    let mut select = vec![day.clone(), "COUNT(*)".to_string()];
    for (name, dtype) in fields {
        let column = d.quote(name);
        let value = checksum_expr(d, *dtype, &column);
        select.push(format!("COUNT({column})"));
        for sum in [format!("SUM({value})"), format!("SUM(ABS({value}))")] {
            select.push(match d.family() {
                Family::Sqlite => format!("printf('%!.17g', {sum})"),
                _ => sum,
            });
        }
    }
    let mut filter = query::conditions(d, &table.config, &table.date, &table.symbol, from, Some(to));
    if let Some(order) = &table.order_by {
        let (symbol, order) = (d.quote(&table.symbol), d.quote(order));
        // Unqualified names in the table's `where` bind to the inner `later` rows.
        let also = table.config.filter.as_ref().map(|f| format!(" AND ({f})")).unwrap_or_default();
        filter.push_str(&format!(
            " AND NOT EXISTS (SELECT 1 FROM {} later WHERE later.{date} = t.{date} AND later.{symbol} = t.{symbol} AND later.{order} > t.{order}{also})",
            query::table_ref(d, &table.config)
        ));
    }
    format!(
        "SELECT {} FROM {} t WHERE {filter} GROUP BY {day} ORDER BY {day}",
        select.join(", "),
        query::table_ref(d, &table.config)
    )
}

/// A value as the number its checksum adds, in the source's SQL.
fn checksum_expr(dialect: &Dialect, dtype: ValueType, column: &str) -> String {
    use Family::*;
    match (dtype, dialect.family()) {
        (ValueType::Bool, _) => format!("(CASE WHEN {column} THEN 1 ELSE 0 END)"),
        (ValueType::Utf8, MySql) => format!("CHAR_LENGTH({column})"),
        (ValueType::Utf8, SqlServer) => format!("LEN({column})"),
        (ValueType::Utf8, _) => format!("LENGTH({column})"),
        (ValueType::Date32, Postgres) => format!("({column} - DATE '1970-01-01')"),
        (ValueType::Date32, MySql) => format!("(TO_DAYS({column}) - 719528)"),
        (ValueType::Date32, Sqlite) => format!("(julianday({column}) - 2440587.5)"),
        (ValueType::Date32, _) => format!("DATEDIFF(day, '1970-01-01', {column})"),
        (ValueType::Timestamp(_), Postgres) => format!("EXTRACT(EPOCH FROM {column})"),
        // `1e6` is a double: dividing by the decimal `1000000.0` keeps only
        // `div_precision_increment` (4) more digits, rounding each value's microseconds away.
        (ValueType::Timestamp(_), MySql) => {
            format!("(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {column}) / 1e6)")
        }
        // SQLite's date functions keep milliseconds: whole seconds come from them, the fraction
        // from the ISO text Cheetah itself reads.
        (ValueType::Timestamp(_), Sqlite) => format!(
            "(CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER) + CASE WHEN substr({column}, 20, 1) = '.' THEN CAST(substr({column}, 20) AS REAL) ELSE 0 END)"
        ),
        (ValueType::Timestamp(_), _) => format!("(DATEDIFF_BIG(microsecond, '1970-01-01', {column}) / 1000000.0)"),
        // Sums of doubles, not of 64-bit integers, which SQLite refuses to let overflow.
        (_, Sqlite) => format!("({column} * 1.0)"),
        (_, Postgres) => format!("CAST({column} AS DOUBLE PRECISION)"),
        _ => column.to_string(),
    }
}

/// The number a cached value adds to its field's checksum; `None` for null.
pub fn checksum_value(array: &dyn Array, i: usize) -> Option<f64> {
    use arrow::datatypes::*;
    if array.is_null(i) {
        return None;
    }
    Some(match array.data_type() {
        DataType::Boolean => f64::from(u8::from(array.as_boolean().value(i))),
        DataType::Int8 => f64::from(array.as_primitive::<Int8Type>().value(i)),
        DataType::UInt8 => f64::from(array.as_primitive::<UInt8Type>().value(i)),
        DataType::Int16 => f64::from(array.as_primitive::<Int16Type>().value(i)),
        DataType::Int32 => f64::from(array.as_primitive::<Int32Type>().value(i)),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(i) as f64,
        DataType::Float32 => f64::from(array.as_primitive::<Float32Type>().value(i)),
        DataType::Float64 => array.as_primitive::<Float64Type>().value(i),
        DataType::Date32 => f64::from(array.as_primitive::<Date32Type>().value(i)),
        DataType::Timestamp(unit, _) => {
            let per_second = match unit {
                TimeUnit::Second => 1.0,
                TimeUnit::Millisecond => 1e3,
                TimeUnit::Microsecond => 1e6,
                TimeUnit::Nanosecond => 1e9,
            };
            let raw = arrow::compute::cast(&array.slice(i, 1), &DataType::Int64).ok()?;
            raw.as_primitive::<Int64Type>().value(0) as f64 / per_second
        }
        DataType::Utf8 => array.as_string::<i32>().value(i).chars().count() as f64,
        DataType::Decimal128(_, scale) => {
            array.as_primitive::<Decimal128Type>().value(i) as f64 / 10f64.powi(i32::from(*scale))
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_taken_in_another_order_agree_and_a_changed_value_does_not() {
        let values: Vec<f64> = (0..5000).map(|i| 100.0 + f64::from(i) * 0.013).collect();
        let (mut forward, mut backward) = (FieldChecksum::default(), FieldChecksum::default());
        values.iter().for_each(|v| forward.add(*v));
        values.iter().rev().for_each(|v| backward.add(*v));
        assert!(forward.agrees(&backward, 5000));
        let mut changed = FieldChecksum::default();
        values.iter().enumerate().for_each(|(i, v)| changed.add(if i == 17 { v + 0.0001 } else { *v }));
        assert!(!forward.agrees(&changed, 5000));
        let mut one_null = forward;
        one_null.count -= 1;
        assert!(!forward.agrees(&one_null, 5000));
    }
}
