//! Turning one day's fetched rows into encoded chunks.

use arrow::array::{ArrayRef, UInt32Array};
use arrow::compute::take;
use rayon::prelude::*;

use super::days::DayRows;
use crate::error::UpdateError;
use crate::store::catalog::{FieldEntry, TableEntry};
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
    table: &TableEntry,
    dictionary: &mut SymbolDictionary,
    level: i32,
) -> Result<DayChunks, UpdateError> {
    let ids: Vec<u32> = rows.symbols.iter().map(|symbol| dictionary.intern(symbol.unwrap_or_default())).collect();
    encode_keyed(rows.day, &ids, &rows.fields, table, dictionary, level)
}

/// [`encode_day`] of rows whose symbols are interned already: `ids[i]` is row `i`'s, and
/// `columns` hold one array per field of `table`, aligned with `ids`.
///
/// # Errors
/// [`UpdateError::DuplicateKey`].
pub fn encode_keyed(
    day: Day,
    ids: &[u32],
    columns: &[ArrayRef],
    table: &TableEntry,
    dictionary: &SymbolDictionary,
    level: i32,
) -> Result<DayChunks, UpdateError> {
    let mut order: Vec<(u32, u32)> = ids.iter().enumerate().map(|(row, &id)| (id, row as u32)).collect();
    // Stable, so equal ids keep fetch order and "last" means last fetched.
    order.sort_by_key(|&(id, _)| id);
    let mut sorted = Vec::with_capacity(order.len());
    let mut picks = Vec::with_capacity(order.len());
    let mut i = 0;
    while i < order.len() {
        let id = order[i].0;
        let run = order[i..].iter().take_while(|(other, _)| *other == id).count();
        if run > 1 && table.kind == TableKind::Daily {
            return Err(UpdateError::DuplicateKey {
                table: table.name.clone(),
                date: date_of(day),
                symbol: dictionary.name(id).unwrap_or_default().to_string(),
                count: run,
            });
        }
        sorted.push(id);
        picks.push(order[i + run - 1].1);
        i += run;
    }
    let picks = UInt32Array::from(picks);
    let values = encode_fields(columns, &table.fields, &picks, level);
    Ok(DayChunks { day, rows: sorted.len(), ids: codec::encode_rows(&sorted, level), values })
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
    use crate::store::catalog::TableFingerprint;
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

    fn table(name: &str, kind: TableKind) -> TableEntry {
        TableEntry { id: 1, name: name.into(), kind, fingerprint: TableFingerprint::default(), fields: field() }
    }

    fn decoded(chunk: &[u8]) -> Vec<Option<f64>> {
        let array = codec::decode_values(chunk, crate::types::ValueType::Float64).unwrap();
        array.as_primitive::<arrow::datatypes::Float64Type>().iter().collect()
    }

    #[test]
    fn rows_are_sorted_by_symbol_id() {
        let mut dictionary = SymbolDictionary::from_persisted(vec!["B".into(), "A".into()]);
        let chunks =
            encode_day(&day(&["A", "C", "B"], &[1.0, 3.0, 2.0]), &table("t", TableKind::Daily), &mut dictionary, 3)
                .unwrap();
        assert_eq!(&*codec::decode_rows(&chunks.ids).unwrap(), [0, 1, 2]);
        assert_eq!(decoded(&chunks.values[0].1), [Some(2.0), Some(1.0), Some(3.0)]);
        assert_eq!(dictionary.unpersisted().collect::<Vec<_>>(), [(2, "C")]);
    }

    #[test]
    fn duplicates_are_an_error_for_daily_and_last_wins_for_asof() {
        let rows = day(&["A", "A"], &[1.0, 2.0]);
        let mut dictionary = SymbolDictionary::default();
        let err = encode_day(&rows, &table("bar", TableKind::Daily), &mut dictionary, 3).err().unwrap();
        assert!(err.to_string().contains("2 rows for (1970-04-11, A)"), "{err}");
        let chunks = encode_day(&rows, &table("bar", TableKind::Asof), &mut dictionary, 3).unwrap();
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
