//! A frame to write into a local table: its (date, symbol) key and its fields, checked and cast
//! to the types the store keeps, before anything is written.

use arrow::array::{Array, ArrayRef, AsArray, DictionaryArray, RecordBatch, StringArray};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Int32Type, TimeUnit};
use chrono::NaiveDate;

use crate::error::WriteError;
use crate::types::{day_of, Day, ValueType};

/// A checked frame: per row its day and symbol, and its fields in the types they are kept as.
pub struct Frame {
    /// Each row's day.
    pub days: Vec<Day>,
    /// Each row's symbol, as an index into `names`.
    pub symbols: Vec<u32>,
    /// The distinct symbol names the rows index.
    pub names: StringArray,
    /// Each field: its name, its type and its values, aligned with the rows.
    pub fields: Vec<(String, ValueType, ArrayRef)>,
}

impl Frame {
    /// Checks `batches` (one schema) keyed by the columns `date` and `symbol`: a key column
    /// that is missing, or null on a row, and a field of a type no field holds are errors.
    /// Duplicate keys are found later, per date, when the rows are sorted.
    ///
    /// # Errors
    /// [`WriteError`] naming the column, and the row for a bad value.
    pub fn new(batches: &[RecordBatch], date: &str, symbol: &str) -> Result<Self, WriteError> {
        let Some(first) = batches.first() else {
            return Ok(Self {
                days: Vec::new(),
                symbols: Vec::new(),
                names: StringArray::from(Vec::<&str>::new()),
                fields: Vec::new(),
            });
        };
        let batch = if batches.len() == 1 {
            first.clone()
        } else {
            concat_batches(&first.schema(), batches).map_err(|e| WriteError::Frame { message: e.to_string() })?
        };
        let schema = batch.schema();
        let column = |name: &str, what: &'static str| {
            schema.index_of(name).map(|i| batch.column(i).clone()).map_err(|_| WriteError::NoKey {
                what,
                name: name.to_string(),
                columns: schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", "),
            })
        };
        let days = days(&column(date, "date")?, date)?;
        let (symbols, names) = symbols(&column(symbol, "symbol")?, symbol)?;
        let mut fields = Vec::new();
        for (field, array) in schema.fields().iter().zip(batch.columns()) {
            let name = field.name();
            if name == date || name == symbol {
                continue;
            }
            check_field_name(name)?;
            let (dtype, values) = field_values(name, array)?;
            fields.push((name.clone(), dtype, values));
        }
        Ok(Self { days, symbols, names, fields })
    }

    /// Rows in the frame.
    pub fn rows(&self) -> usize {
        self.days.len()
    }
}

/// Whether `name` may name a local table: a plain identifier of at most 64 characters.
pub fn is_table_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

/// A field's name must be letters, digits and `_`, so that `table.field` and lists of names
/// read it back unambiguously.
fn check_field_name(name: &str) -> Result<(), WriteError> {
    let plain = !name.is_empty() && name.len() <= 128 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        Ok(())
    } else {
        Err(WriteError::BadFieldName { name: name.to_string() })
    }
}

/// Each row's day, from dates, midnight timestamps or `YYYY-MM-DD` text.
fn days(array: &ArrayRef, column: &str) -> Result<Vec<Day>, WriteError> {
    if let Some(row) = first_null(array.as_ref()) {
        return Err(WriteError::NullKey { column: column.to_string(), row });
    }
    let bad = |row: usize, value: String| WriteError::BadDate { column: column.to_string(), row, value };
    match array.data_type() {
        DataType::Date32 => Ok(array.as_primitive::<arrow::datatypes::Date32Type>().values().to_vec()),
        DataType::Date64 => whole_days(array.as_primitive::<arrow::datatypes::Date64Type>().values(), 86_400_000, bad),
        DataType::Timestamp(unit, _) => {
            let per_day = match unit {
                TimeUnit::Second => 86_400,
                TimeUnit::Millisecond => 86_400_000,
                TimeUnit::Microsecond => 86_400_000_000,
                TimeUnit::Nanosecond => 86_400_000_000_000,
            };
            let values = cast(array, &DataType::Int64).map_err(|e| WriteError::Frame { message: e.to_string() })?;
            whole_days(values.as_primitive::<arrow::datatypes::Int64Type>().values(), per_day, bad)
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => {
            let text = cast(array, &DataType::Utf8).map_err(|e| WriteError::Frame { message: e.to_string() })?;
            text.as_string::<i32>()
                .iter()
                .enumerate()
                .map(|(row, value)| {
                    let value = value.unwrap_or_default();
                    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d")
                        .map(day_of)
                        .map_err(|_| bad(row, value.to_string()))
                })
                .collect()
        }
        other => Err(WriteError::KeyType { column: column.to_string(), found: other.to_string(), wanted: "dates" }),
    }
}

/// Days from counts of `per_day` units since the epoch; a value that is not a whole day (a
/// time of day) is an error.
fn whole_days(values: &[i64], per_day: i64, bad: impl Fn(usize, String) -> WriteError) -> Result<Vec<Day>, WriteError> {
    values
        .iter()
        .enumerate()
        .map(|(row, &v)| {
            if v.rem_euclid(per_day) != 0 {
                return Err(bad(row, format!("{v} ({} units a day): a time of day, not a date", per_day)));
            }
            Day::try_from(v.div_euclid(per_day)).map_err(|_| bad(row, v.to_string()))
        })
        .collect()
}

/// Each row's symbol as an index into the distinct names: a dictionary column is taken as it
/// is, text is dictionary-encoded once.
fn symbols(array: &ArrayRef, column: &str) -> Result<(Vec<u32>, StringArray), WriteError> {
    if let Some(row) = first_null(array.as_ref()) {
        return Err(WriteError::NullKey { column: column.to_string(), row });
    }
    let text = matches!(array.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
        || matches!(array.data_type(), DataType::Dictionary(_, value) if matches!(**value, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View));
    if !text {
        return Err(WriteError::KeyType {
            column: column.to_string(),
            found: array.data_type().to_string(),
            wanted: "text",
        });
    }
    let wanted = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let encoded = cast(array, &wanted).map_err(|e| WriteError::Frame { message: e.to_string() })?;
    let dictionary: &DictionaryArray<Int32Type> = encoded.as_dictionary();
    let names = dictionary.values().as_string::<i32>().clone();
    if let Some(row) = first_null(&names) {
        return Err(WriteError::NullKey { column: column.to_string(), row });
    }
    let keys = dictionary.keys().values().iter().map(|&k| k as u32).collect();
    Ok((keys, names))
}

/// A field's values in the type the store keeps: text in any encoding becomes text, dates
/// become `Date32`, timestamps lose their zone (the wall time in it is kept).
fn field_values(name: &str, array: &ArrayRef) -> Result<(ValueType, ArrayRef), WriteError> {
    let source = match array.data_type() {
        DataType::Dictionary(_, value) => value.as_ref().clone(),
        other => other.clone(),
    };
    let unsupported = || WriteError::UnsupportedType { name: name.to_string(), found: array.data_type().to_string() };
    let dtype = match source {
        DataType::Null => {
            let found = "all missing, with no type to keep".to_string();
            return Err(WriteError::UnsupportedType { name: name.to_string(), found });
        }
        ref other => ValueType::for_source(other, true).ok_or_else(unsupported)?,
    };
    let values =
        cast(array, &dtype.arrow()).map_err(|e| WriteError::Frame { message: format!("column {name}: {e}") })?;
    Ok((dtype, values))
}

fn first_null(array: &dyn Array) -> Option<usize> {
    let nulls = array.logical_nulls()?;
    (nulls.null_count() > 0).then(|| nulls.iter().position(|valid| !valid).expect("a null is counted"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Date32Array, Float64Array, Int64Array, TimestampNanosecondArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    const DATE: &str = "date";
    const SYMBOL: &str = "symbol";

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let schema =
            Schema::new(columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect::<Vec<_>>());
        RecordBatch::try_new(Arc::new(schema), columns.into_iter().map(|(_, a)| a).collect()).unwrap()
    }

    #[test]
    fn keys_come_from_dates_timestamps_or_text_and_symbols_are_indexed_once() {
        let nanos = TimestampNanosecondArray::from(vec![0, 86_400_000_000_000, 0]).with_timezone("UTC");
        let frame = Frame::new(
            &[batch(vec![
                ("date", Arc::new(nanos)),
                ("symbol", Arc::new(StringArray::from(vec!["B", "A", "B"]))),
                ("x", Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0]))),
            ])],
            DATE,
            SYMBOL,
        )
        .unwrap();
        assert_eq!(frame.days, [0, 1, 0]);
        let names: Vec<&str> = frame.symbols.iter().map(|&i| frame.names.value(i as usize)).collect();
        assert_eq!(names, ["B", "A", "B"]);
        assert_eq!(frame.names.len(), 2);
        assert_eq!(frame.fields[0].1, ValueType::Float64);

        let text = Frame::new(
            &[batch(vec![
                ("d", Arc::new(StringArray::from(vec!["2024-01-02"]))),
                ("s", Arc::new(StringArray::from(vec!["A"]))),
            ])],
            "d",
            "s",
        )
        .unwrap();
        assert_eq!(text.days, [day_of(NaiveDate::from_ymd_opt(2024, 1, 2).unwrap())]);
    }

    #[test]
    fn bad_keys_and_types_are_named_with_their_row() {
        let symbols: ArrayRef = Arc::new(StringArray::from(vec![Some("A"), None]));
        let dates: ArrayRef = Arc::new(Date32Array::from(vec![1, 2]));
        let err = Frame::new(&[batch(vec![("date", dates.clone()), ("symbol", symbols)])], DATE, SYMBOL).err().unwrap();
        assert!(matches!(err, WriteError::NullKey { row: 1, .. }), "{err}");

        let text: ArrayRef = Arc::new(StringArray::from(vec!["2024-01-02", "2024-13-01"]));
        let ok: ArrayRef = Arc::new(StringArray::from(vec!["A", "B"]));
        let err = Frame::new(&[batch(vec![("date", text), ("symbol", ok.clone())])], DATE, SYMBOL).err().unwrap();
        assert!(matches!(&err, WriteError::BadDate { row: 1, value, .. } if value == "2024-13-01"), "{err}");

        let noon: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![0, 43_200_000_000_000]));
        let err = Frame::new(&[batch(vec![("date", noon), ("symbol", ok.clone())])], DATE, SYMBOL).err().unwrap();
        assert!(err.to_string().contains("time of day"), "{err}");

        let err =
            Frame::new(&[batch(vec![("when", dates.clone()), ("symbol", ok.clone())])], DATE, SYMBOL).err().unwrap();
        assert!(err.to_string().contains("when, symbol"), "{err}");

        let nulls: ArrayRef = Arc::new(arrow::array::NullArray::new(2));
        let err =
            Frame::new(&[batch(vec![("date", dates.clone()), ("symbol", ok.clone()), ("n", nulls)])], DATE, SYMBOL)
                .err()
                .unwrap();
        assert!(matches!(err, WriteError::UnsupportedType { .. }), "{err}");

        let spaced: ArrayRef = Arc::new(Int64Array::from(vec![1, 2]));
        let err = Frame::new(&[batch(vec![("date", dates), ("symbol", ok), ("ret 5d", spaced)])], DATE, SYMBOL)
            .err()
            .unwrap();
        assert!(matches!(err, WriteError::BadFieldName { .. }), "{err}");
    }

    #[test]
    fn table_names_are_plain_identifiers() {
        for good in ["factors", "_x", "mom_12_1"] {
            assert!(is_table_name(good), "{good}");
        }
        for bad in ["", "1x", "a.b", "a-b", "a b", &"x".repeat(65)] {
            assert!(!is_table_name(bad), "{bad}");
        }
    }
}
