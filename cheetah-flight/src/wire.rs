//! What travels: one fixed schema per read, and a read split into date-range parts.
//!
//! Dictionary codes are as wide as pandas keeps them (dates 8 bits below 127 values; both 16 below
//! 32,767, else 32), decided from the read's outline: the dates it covers and the symbols the
//! store knows. So every part of a read, and the schema `GetFlightInfo` promised, are one schema
//! whatever dates each part holds.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use cheetah_core::{symbol_type, DateLayout, Outline};
use chrono::NaiveDate;

use crate::ticket::Dates;

/// The schema every part of a read travels in.
pub fn schema(outline: &Outline, dates: Dates) -> SchemaRef {
    let date = match dates {
        Dates::Dictionary => DateLayout::Dictionary.date_type(outline.dates.len()),
        Dates::Date32 => DataType::Date32,
    };
    let mut fields = vec![Field::new("date", date, false), Field::new("symbol", symbol_type(outline.symbols), false)];
    fields.extend(outline.fields.iter().map(|(name, dtype)| Field::new(name, dtype.clone(), true)));
    Arc::new(Schema::new(fields))
}

/// `batch` in `schema`: dictionary codes of the schema's width (the store's symbols may have
/// grown past 32,767 since the outline), and the schema's exact fields.
///
/// # Errors
/// An [`ArrowError`] if a column cannot take the schema's type, which a read of the same
/// outline never gives.
pub fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let columns: Vec<ArrayRef> =
        batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(column, field)| {
                if column.data_type() == field.data_type() {
                    Ok(column.clone())
                } else {
                    cast(column, field.data_type())
                }
            })
            .collect::<Result<_, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

/// `batch` cut into consecutive slices of at most about `max_bytes` each, one per message.
///
/// Sizes count the rows' own bytes. Arrow-flight's encoder sizes a batch by its buffers' whole
/// capacity, and a read's columns are slices of larger buffers (views of the shared layer), so
/// left to it a 3 MB read went out as 162 messages.
pub fn messages(batch: &RecordBatch, max_bytes: usize) -> Vec<RecordBatch> {
    let rows = batch.num_rows();
    let bytes: usize = batch.columns().iter().map(|c| row_bytes(c.as_ref())).sum();
    let per_message = (rows * max_bytes).checked_div(bytes).map_or(rows, |n| n).max(1);
    (0..rows.max(1))
        .step_by(per_message)
        .map(|start| batch.slice(start.min(rows), per_message.min(rows - start.min(rows))))
        .collect()
}

/// The bytes `array`'s rows take in a message: values and validity, not the capacity behind
/// them; a dictionary counts its codes (its values travel once, on their own).
fn row_bytes(array: &dyn arrow::array::Array) -> usize {
    use arrow::array::AsArray;
    let rows = array.len();
    let validity = array.nulls().map_or(0, |_| rows.div_ceil(8));
    let values = match array.data_type() {
        DataType::Dictionary(key, _) => key.primitive_width().unwrap_or(4) * rows,
        DataType::Utf8 => {
            let offsets = array.as_string::<i32>().value_offsets();
            4 * rows + (offsets[rows] - offsets[0]) as usize
        }
        DataType::Boolean => rows.div_ceil(8),
        other => other.primitive_width().map_or_else(|| array.get_buffer_memory_size(), |w| w * rows),
    };
    validity + values
}

/// A part of a read: its first and last date, and about how many rows and bytes it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// First date.
    pub first: NaiveDate,
    /// Last date.
    pub last: NaiveDate,
    /// Rows, at most.
    pub rows: u64,
    /// Bytes of its fixed-width columns, about.
    pub bytes: u64,
}

/// Splits the outlined read into parts of consecutive dates, each about `target_bytes` (at most
/// `max_parts` of them), so a client fetches them in parallel and the server never builds more
/// than one part of a read at a time per stream.
pub fn split(outline: &Outline, target_bytes: u64, max_parts: usize) -> Vec<Part> {
    let row_bytes = outline.row_bytes();
    let total: u64 = outline.dates.iter().map(|(_, rows)| rows * row_bytes).sum();
    let parts = usize::try_from(total.div_ceil(target_bytes.max(1))).unwrap_or(max_parts).clamp(1, max_parts.max(1));
    let per_part = total.div_ceil(parts as u64).max(1);
    let mut out: Vec<Part> = Vec::with_capacity(parts);
    for &(date, rows) in &outline.dates {
        let bytes = rows * row_bytes;
        let full = out.len() == parts;
        match out.last_mut() {
            Some(part) if part.bytes < per_part || full => {
                part.last = date;
                part.rows += rows;
                part.bytes += bytes;
            }
            _ => out.push(Part { first: date, last: date, rows, bytes }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outline(days: u32, rows: u64) -> Outline {
        let start = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
        Outline {
            fields: vec![("close".into(), DataType::Float64), ("volume".into(), DataType::Int64)],
            dates: (0..days).map(|d| (start + chrono::Days::new(d.into()), rows)).collect(),
            covered: None,
            symbols: rows as usize,
            version: cheetah_core::Version { number: 1, committed: Default::default(), symbols: 0 },
        }
    }

    #[test]
    fn parts_are_consecutive_cover_every_date_and_are_even() {
        let o = outline(100, 1000);
        let parts = split(&o, 24 * 1000 * 10, 64);
        assert_eq!(parts.len(), 10);
        assert_eq!(parts[0].first, o.dates[0].0);
        assert_eq!(parts.last().unwrap().last, o.dates[99].0);
        for pair in parts.windows(2) {
            assert_eq!(pair[1].first, pair[0].last + chrono::Days::new(1));
        }
        assert!(parts.iter().all(|p| p.rows == 10_000), "{parts:?}");
        assert_eq!(split(&o, 1, 7).len(), 7, "capped at max_parts");
        assert_eq!(split(&o, u64::MAX, 64).len(), 1);
        assert!(split(&outline(0, 0), 1000, 64).is_empty());
    }

    #[test]
    fn messages_follow_the_rows_bytes_not_the_buffers_behind_a_slice() {
        use arrow::array::Float64Array;
        let big = Arc::new(Float64Array::from((0..100_000).map(f64::from).collect::<Vec<_>>())) as ArrayRef;
        let view = RecordBatch::try_from_iter([("x", big)]).unwrap().slice(10, 1000);
        let parts = messages(&view, 2000);
        assert_eq!(parts.len(), 4, "8,000 bytes of rows in messages of 2,000, whatever the buffer behind");
        assert_eq!(parts.iter().map(RecordBatch::num_rows).sum::<usize>(), 1000);
        assert_eq!(parts[1].column(0).as_any().downcast_ref::<Float64Array>().unwrap().value(0), 260.0);
        assert_eq!(messages(&view.slice(0, 0), 2000).len(), 1, "an empty read is one empty message");
    }

    #[test]
    fn codes_take_the_width_of_the_wire_schema() {
        use arrow::array::{
            Date32Array, DictionaryArray, Float64Array, Int16Array, Int64Array, Int8Array, StringArray,
        };
        let key = |schema: &SchemaRef, i: usize| match schema.field(i).data_type() {
            DataType::Dictionary(k, _) => (**k).clone(),
            other => panic!("{other} is no dictionary"),
        };
        let mut o = outline(1, 2);
        let narrow = schema(&o, Dates::Dictionary);
        assert_eq!((key(&narrow, 0), key(&narrow, 1)), (DataType::Int8, DataType::Int16));
        assert_eq!(key(&schema(&outline(127, 2), Dates::Dictionary), 0), DataType::Int16, "pandas' widths");
        o.symbols = 40_000;
        let schema = schema(&o, Dates::Dictionary);
        let dates = DictionaryArray::new(Int8Array::from(vec![0, 0]), Arc::new(Date32Array::from(vec![18262])));
        let symbols = DictionaryArray::new(Int16Array::from(vec![0, 1]), Arc::new(StringArray::from(vec!["A", "B"])));
        let local = RecordBatch::try_from_iter([
            ("date", Arc::new(dates) as ArrayRef),
            ("symbol", Arc::new(symbols) as ArrayRef),
            ("close", Arc::new(Float64Array::from(vec![1.0, 2.0])) as ArrayRef),
            ("volume", Arc::new(Int64Array::from(vec![Some(1), None])) as ArrayRef),
        ])
        .unwrap();
        let wire = conform(&local, &schema).unwrap();
        assert_eq!(wire.schema(), schema);
        let back = cast(wire.column(1), &DataType::Utf8).unwrap();
        assert_eq!(
            back.as_any().downcast_ref::<StringArray>().unwrap().iter().collect::<Vec<_>>(),
            [Some("A"), Some("B")]
        );
    }
}
