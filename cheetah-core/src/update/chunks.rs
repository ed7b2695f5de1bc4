//! Turning one day's fetched rows into encoded chunks.

use arrow::array::{ArrayRef, UInt32Array};
use arrow::compute::take;
use rayon::prelude::*;

use super::days::DayRows;
use crate::error::UpdateError;
use crate::store::catalog::FieldEntry;
use crate::store::codec;
use crate::store::symbols::SymbolDictionary;
use crate::types::TableKind;
use crate::types::{date_of, Day};

/// Everything written for one (table, day).
pub struct DayChunks {
    /// The day.
    pub day: Day,
    /// Rows (symbols) that day.
    pub rows: usize,
    /// The encoded row chunk.
    pub ids: Vec<u8>,
    /// `(field id, encoded chunk)` for every field.
    pub values: Vec<(u32, Vec<u8>)>,
}

/// Sorts a day's rows by symbol id and encodes the row chunk and one chunk per field.
///
/// A daily table with two rows for one symbol is an error; for an asof table the last row wins
/// (rows arrive ordered by the table's `order_by`).
///
/// # Errors
/// [`UpdateError::DuplicateKey`].
pub fn encode_day(
    rows: &DayRows,
    fields: &[FieldEntry],
    kind: TableKind,
    table: &str,
    dictionary: &mut SymbolDictionary,
    level: i32,
) -> Result<DayChunks, UpdateError> {
    let mut order: Vec<(u32, u32)> = rows
        .symbols
        .iter()
        .enumerate()
        .map(|(row, symbol)| (dictionary.intern(symbol.unwrap_or_default()), row as u32))
        .collect();
    // Stable, so equal ids keep fetch order and "last" means last fetched.
    order.sort_by_key(|&(id, _)| id);
    let mut ids = Vec::with_capacity(order.len());
    let mut picks = Vec::with_capacity(order.len());
    let mut i = 0;
    while i < order.len() {
        let id = order[i].0;
        let run = order[i..].iter().take_while(|(other, _)| *other == id).count();
        if run > 1 && kind == TableKind::Daily {
            return Err(UpdateError::DuplicateKey {
                table: table.to_string(),
                date: date_of(rows.day),
                symbol: dictionary.name(id).unwrap_or_default().to_string(),
                count: run,
            });
        }
        ids.push(id);
        picks.push(order[i + run - 1].1);
        i += run;
    }
    let picks = UInt32Array::from(picks);
    let values = encode_fields(&rows.fields, fields, &picks, level);
    Ok(DayChunks { day: rows.day, rows: ids.len(), ids: codec::encode_rows(&ids, level), values })
}

/// Encodes the day's rows of `fields` into the row order of an existing row chunk: key `i` takes
/// the row whose symbol is `keys[i]`, or null. Rows whose symbol is not in `keys` are dropped,
/// because only the main fetch may change which keys a day has.
pub fn encode_aligned(
    rows: Option<&DayRows>,
    keys: &[u32],
    fields: &[FieldEntry],
    dictionary: &SymbolDictionary,
    level: i32,
) -> Vec<(u32, Vec<u8>)> {
    let Some(rows) = rows else {
        return fields
            .iter()
            .map(|f| (f.id, codec::encode_values(f.dtype.null_array(keys.len()).as_ref(), f.dtype, level)))
            .collect();
    };
    let mut picks: Vec<Option<u32>> = vec![None; keys.len()];
    for (row, symbol) in rows.symbols.iter().enumerate() {
        if let Some(position) = symbol.and_then(|s| dictionary.id(s)).and_then(|id| keys.binary_search(&id).ok()) {
            picks[position] = Some(row as u32);
        }
    }
    encode_fields(&rows.fields, fields, &UInt32Array::from(picks), level)
}

fn encode_fields(columns: &[ArrayRef], fields: &[FieldEntry], picks: &UInt32Array, level: i32) -> Vec<(u32, Vec<u8>)> {
    columns
        .par_iter()
        .zip(fields.par_iter())
        .map(|(column, field)| {
            let ordered = take(column.as_ref(), picks, None).expect("picks are in bounds and types match");
            (field.id, codec::encode_values(ordered.as_ref(), field.dtype, level))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray, Float64Array, StringArray};
    use std::sync::Arc;

    fn day(symbols: &[&str], values: &[f64]) -> DayRows {
        DayRows {
            day: 100,
            symbols: StringArray::from(symbols.to_vec()),
            fields: vec![Arc::new(Float64Array::from(values.to_vec()))],
        }
    }

    fn field() -> Vec<FieldEntry> {
        vec![FieldEntry { id: 7, name: "close".into(), dtype: crate::types::ValueType::Float64, complete: true }]
    }

    fn decoded(chunk: &[u8]) -> Vec<Option<f64>> {
        let array = codec::decode_values(chunk, crate::types::ValueType::Float64).unwrap();
        array.as_primitive::<arrow::datatypes::Float64Type>().iter().collect()
    }

    #[test]
    fn rows_are_sorted_by_symbol_id() {
        let mut dictionary = SymbolDictionary::from_persisted(vec!["B".into(), "A".into()]);
        let chunks =
            encode_day(&day(&["A", "C", "B"], &[1.0, 3.0, 2.0]), &field(), TableKind::Daily, "t", &mut dictionary, 3)
                .unwrap();
        assert_eq!(&*codec::decode_rows(&chunks.ids).unwrap(), [0, 1, 2]);
        assert_eq!(decoded(&chunks.values[0].1), [Some(2.0), Some(1.0), Some(3.0)]);
        assert_eq!(dictionary.unpersisted().collect::<Vec<_>>(), [(2, "C")]);
    }

    #[test]
    fn duplicates_are_an_error_for_daily_and_last_wins_for_asof() {
        let rows = day(&["A", "A"], &[1.0, 2.0]);
        let mut dictionary = SymbolDictionary::default();
        let err = encode_day(&rows, &field(), TableKind::Daily, "bar", &mut dictionary, 3).err().unwrap();
        assert!(err.to_string().contains("2 rows for (1970-04-11, A)"), "{err}");
        let chunks = encode_day(&rows, &field(), TableKind::Asof, "bar", &mut dictionary, 3).unwrap();
        assert_eq!(decoded(&chunks.values[0].1), [Some(2.0)]);
    }

    #[test]
    fn aligned_rows_fill_existing_keys_and_drop_strangers() {
        let dictionary = SymbolDictionary::from_persisted(vec!["A".into(), "B".into(), "C".into(), "D".into()]);
        let chunks =
            encode_aligned(Some(&day(&["D", "A", "Z"], &[4.0, 1.0, 9.0])), &[0, 2, 3], &field(), &dictionary, 3);
        assert_eq!(decoded(&chunks[0].1), [Some(1.0), None, Some(4.0)]);
        let empty = encode_aligned(None, &[0, 2], &field(), &dictionary, 3);
        let array = codec::decode_values(&empty[0].1, crate::types::ValueType::Float64).unwrap();
        assert_eq!((array.len(), array.null_count()), (2, 2));
    }
}
