//! Local tables: frames researchers write into the store, read by everyone like tables cached
//! from a source.
//!
//! A local table is a daily table whose catalog entry carries the fingerprint `local`. A write
//! replaces each date it holds whole and leaves the others alone; it is checked entirely before
//! anything is written, and commits in one batch: one store version, never half a write. The
//! writer process writes; another process hands it the write through the store's inbox
//! ([`inbox`]).

mod frame;
pub mod inbox;

use std::collections::BTreeSet;

use arrow::array::ArrayRef;
use chrono::NaiveDate;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use self::frame::{is_table_name, Frame};
use crate::config::Config;
use crate::error::{UpdateError, WriteError};
use crate::store::catalog::{Catalog, FieldEntry, TableEntry, TableFingerprint};
use crate::store::{codec, ChunkKind, Store};
use crate::types::{day_of, Day, TableKind, ValueType};
use crate::update::{encode_keyed, DayChunks};

/// What a write, delete or drop did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteReport {
    /// The local table.
    pub table: String,
    /// The table was new.
    pub created: bool,
    /// Fields the write added to it.
    pub added: Vec<String>,
    /// Dates written or deleted.
    pub dates: usize,
    /// Rows written.
    pub rows: u64,
    /// The store version it committed; `None` when it changed nothing.
    pub version: Option<u64>,
}

/// Writes `frame` into the local table `table`, creating it or adding fields as needed. Each
/// date of the frame replaces that date of the table, but for the days in `merge`, whose rows
/// join those stored (an import whose earlier batch wrote part of the date); a field of the
/// table the frame lacks is null on the frame's rows.
///
/// # Errors
/// [`WriteError`] for a bad name, a name taken by a configured table or another table's field,
/// a field whose type differs from the stored one, and duplicate keys; nothing is written then.
pub fn write(
    store: &Store,
    config: &Config,
    table: &str,
    frame: &Frame,
    merge: &BTreeSet<Day>,
) -> Result<WriteReport, WriteError> {
    let _writing = store.exclusive();
    let mut catalog = store.catalog()?;
    let (entry, created, added) = local_entry(&mut catalog, config, table, &frame.fields)?;
    let mut report = WriteReport { table: table.to_string(), created, added, ..WriteReport::default() };
    if frame.rows() == 0 {
        return Ok(report);
    }
    let mut dictionary = store.symbols()?;
    let ids: Vec<u32> = frame.names.iter().map(|name| dictionary.intern(name.unwrap_or_default())).collect();
    let level = store.compression_level();
    let chunks: Vec<DayChunks> = days_of(&frame.days)
        .into_par_iter()
        .map(|(day, rows)| {
            let mut row_ids: Vec<u32> = rows.iter().map(|&r| ids[frame.symbols[r as usize] as usize]).collect();
            let mut columns = columns_for(&entry, frame, &rows);
            if merge.contains(&day) {
                (row_ids, columns) = with_stored(store, &entry, day, row_ids, columns)?;
            }
            encode_keyed(day, &row_ids, &columns, &entry, &dictionary, level).map_err(|e| match e {
                UpdateError::DuplicateKey { date, symbol, count, .. } => WriteError::Duplicate { date, symbol, count },
                other => WriteError::Frame { message: other.to_string() },
            })
        })
        .collect::<Result<_, _>>()?;
    let mut batch = store.batch();
    if report.created || !report.added.is_empty() {
        batch.put_catalog(&catalog);
    }
    report.dates = chunks.len();
    let written: BTreeSet<Day> = chunks.iter().map(|c| c.day).collect();
    let newest = *written.last().expect("rows, so a day");
    for day in chunks {
        batch.put_day(entry.id, day.day, day.rows, day.ids);
        for (field, (id, chunk)) in entry.fields.iter().zip(day.values) {
            debug_assert_eq!(field.id, id);
            batch.put_values(entry.id, field, day.day, chunk);
        }
        report.rows += day.rows as u64;
    }
    // Every field has a chunk on every date of its table: an added field is null on the dates
    // written before it.
    let added: Vec<&FieldEntry> = entry.fields.iter().filter(|f| report.added.contains(&f.name)).collect();
    if !added.is_empty() {
        for (day, rows) in store.day_index(entry.id)?.into_iter().filter(|(day, _)| !written.contains(day)) {
            for field in &added {
                let nulls = codec::encode_values(field.dtype.null_array(rows as usize).as_ref(), field.dtype, level);
                batch.put_values(entry.id, field, day, nulls);
            }
        }
    }
    batch.put_new_symbols(&dictionary);
    batch.put_watermark(entry.id, store.watermark(entry.id)?.map_or(newest, |w| w.max(newest)));
    batch.put_updated(entry.id, chrono::Utc::now().timestamp());
    report.version = store.write(batch)?.map(|v| v.number);
    Ok(report)
}

/// Checks that `frame` may be written into local table `table`, as [`write`] does, without
/// writing: so a process handing the write to the writer learns of a bad name at once.
///
/// # Errors
/// As [`write`], but for duplicate keys.
pub fn check(catalog: &Catalog, config: &Config, table: &str, frame: &Frame) -> Result<(), WriteError> {
    local_entry(&mut catalog.clone(), config, table, &frame.fields).map(|_| ())
}

/// Deletes the dates of local table `table` in `start..=end`.
///
/// # Errors
/// [`WriteError::UnknownTable`] for a name that is no local table; store failures.
pub fn delete(store: &Store, table: &str, start: NaiveDate, end: NaiveDate) -> Result<WriteReport, WriteError> {
    let _writing = store.exclusive();
    let catalog = store.catalog()?;
    let entry = local_table(&catalog, table)?;
    let doomed = store.days(entry.id, day_of(start), day_of(end))?;
    let mut report = WriteReport { table: table.to_string(), dates: doomed.len(), ..WriteReport::default() };
    if doomed.is_empty() {
        return Ok(report);
    }
    let mut batch = store.batch();
    for &day in &doomed {
        batch.delete_day(entry, day);
    }
    let left = store.day_index(entry.id)?.into_iter().map(|(day, _)| day).filter(|d| !doomed.contains(d)).max();
    if let Some(newest) = left {
        batch.put_watermark(entry.id, newest);
    }
    batch.put_updated(entry.id, chrono::Utc::now().timestamp());
    report.version = store.write(batch)?.map(|v| v.number);
    Ok(report)
}

/// Drops local table `table`: its catalog entry at once, its chunks in the sweep that follows.
///
/// # Errors
/// [`WriteError::UnknownTable`] for a name that is no local table; store failures.
pub fn drop_table(store: &Store, table: &str) -> Result<WriteReport, WriteError> {
    let _writing = store.exclusive();
    let mut catalog = store.catalog()?;
    let dates = store.day_index(local_table(&catalog, table)?.id)?.len();
    catalog.tables.retain(|t| t.name != table);
    let mut batch = store.batch();
    batch.put_catalog(&catalog);
    batch.mark_sweep_pending();
    let version = store.write(batch)?.map(|v| v.number);
    store.sweep(&catalog)?;
    Ok(WriteReport { table: table.to_string(), dates, version, ..WriteReport::default() })
}

/// The local tables of `catalog`, by name.
pub fn local_tables(catalog: &Catalog) -> Vec<&TableEntry> {
    let mut tables: Vec<&TableEntry> = catalog.tables.iter().filter(|t| t.is_local()).collect();
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    tables
}

fn local_table<'c>(catalog: &'c Catalog, table: &str) -> Result<&'c TableEntry, WriteError> {
    match catalog.table(table) {
        Some(entry) if entry.is_local() => Ok(entry),
        Some(_) => Err(WriteError::NotLocal { table: table.to_string() }),
        None => Err(WriteError::UnknownTable {
            table: table.to_string(),
            known: local_tables(catalog).iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// The catalog entry of local table `name` once `fields` are in it, created or extended in
/// `catalog`; with whether it was created and the fields added.
fn local_entry(
    catalog: &mut Catalog,
    config: &Config,
    name: &str,
    fields: &[(String, ValueType, ArrayRef)],
) -> Result<(TableEntry, bool, Vec<String>), WriteError> {
    if !is_table_name(name) {
        return Err(WriteError::BadTableName { name: name.to_string() });
    }
    if config.table(name).is_some() {
        return Err(WriteError::TableCollision { name: name.to_string(), config: config.path.clone() });
    }
    let created = match catalog.table(name) {
        Some(entry) if !entry.is_local() => return Err(WriteError::NotLocal { table: name.to_string() }),
        Some(_) => false,
        None => true,
    };
    let mut added = Vec::new();
    for (field, dtype, _) in fields {
        let stored = catalog.table(name).and_then(|t| t.field(field));
        match stored {
            Some(stored) if stored.dtype != *dtype => {
                return Err(WriteError::TypeConflict {
                    table: name.to_string(),
                    name: field.clone(),
                    found: dtype.name(),
                    stored: stored.dtype.name(),
                })
            }
            Some(_) => {}
            None => {
                if let Some(other) = catalog.tables.iter().find(|t| t.name != name && t.field(field).is_some()) {
                    return Err(WriteError::FieldCollision { field: field.clone(), table: other.name.clone() });
                }
                added.push((field.clone(), *dtype));
            }
        }
    }
    if created {
        let id = catalog.allocate_id();
        catalog.tables.push(TableEntry {
            id,
            name: name.to_string(),
            kind: TableKind::Daily,
            fingerprint: TableFingerprint::local(),
            fields: Vec::new(),
        });
    }
    for (field, dtype) in &added {
        let id = catalog.allocate_id();
        let entry = catalog.tables.iter_mut().find(|t| t.name == name).expect("present");
        entry.fields.push(FieldEntry { id, name: field.clone(), dtype: *dtype, complete: true });
    }
    let entry = catalog.table(name).expect("present").clone();
    Ok((entry, created, added.into_iter().map(|(field, _)| field).collect()))
}

/// The rows of each day, in frame order: ranges when the frame is sorted by date.
fn days_of(days: &[Day]) -> Vec<(Day, Vec<u32>)> {
    let mut order: Vec<u32> = (0..days.len() as u32).collect();
    if !days.is_sorted() {
        order.sort_by_key(|&row| days[row as usize]);
    }
    let mut groups: Vec<(Day, Vec<u32>)> = Vec::new();
    for row in order {
        let day = days[row as usize];
        match groups.last_mut() {
            Some((last, rows)) if *last == day => rows.push(row),
            _ => groups.push((day, vec![row])),
        }
    }
    groups
}

/// The rows stored for `day` of `table` put before `ids` and `columns`, the rows to write.
fn with_stored(
    store: &Store,
    table: &TableEntry,
    day: Day,
    mut ids: Vec<u32>,
    columns: Vec<ArrayRef>,
) -> Result<(Vec<u32>, Vec<ArrayRef>), WriteError> {
    let Some(stored) = store.rows(table, day)? else { return Ok((ids, columns)) };
    let wanted: Vec<(u32, Day)> = table.fields.iter().map(|f| (f.id, day)).collect();
    let mut order: Vec<usize> = (0..wanted.len()).collect();
    order.sort_by_key(|&i| wanted[i].0);
    let sorted: Vec<(u32, Day)> = order.iter().map(|&i| wanted[i]).collect();
    let decoded = store.read_chunks(ChunkKind::Values, &sorted, |i, bytes| {
        let field = table.fields.iter().find(|f| f.id == sorted[i].0).expect("a field of the table");
        codec::decode_values(bytes, field.dtype)
            .map_err(|e| store.corrupt_chunk(&table.name, Some(&field.name), day, e))
    })?;
    let mut merged = Vec::with_capacity(columns.len());
    for (position, (field, column)) in table.fields.iter().zip(columns).enumerate() {
        let at = order.iter().position(|&i| i == position).expect("every field is read");
        let old = decoded[at].clone().unwrap_or_else(|| field.dtype.null_array(stored.len()));
        let joined = arrow::compute::concat(&[old.as_ref(), column.as_ref()])
            .map_err(|e| WriteError::Frame { message: e.to_string() })?;
        merged.push(joined);
    }
    let mut all = stored.to_vec();
    all.append(&mut ids);
    Ok((all, merged))
}

/// One array per field of `table` over `rows` of the frame: the frame's column, or nulls for a
/// field it lacks.
fn columns_for(table: &TableEntry, frame: &Frame, rows: &[u32]) -> Vec<ArrayRef> {
    let contiguous = rows.windows(2).all(|w| w[1] == w[0] + 1);
    let picks = (!contiguous).then(|| arrow::array::UInt32Array::from(rows.to_vec()));
    table
        .fields
        .iter()
        .map(|field| match frame.fields.iter().find(|(name, ..)| name == &field.name) {
            Some((.., values)) => match &picks {
                None => values.slice(rows[0] as usize, rows.len()),
                Some(picks) => arrow::compute::take(values.as_ref(), picks, None).expect("rows are in bounds"),
            },
            None => field.dtype.null_array(rows.len()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, AsArray, Date32Array, Float64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Float64Type, Schema};

    use super::*;
    use crate::types::date_of;

    fn frame(rows: &[(Day, &str, Option<f64>)], field: &str) -> Frame {
        let schema = Schema::new(vec![
            Field::new("date", DataType::Date32, false),
            Field::new("symbol", DataType::Utf8, false),
            Field::new(field, DataType::Float64, true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Date32Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
                Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
                Arc::new(Float64Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
            ],
        )
        .unwrap();
        Frame::new(&[batch], "date", "symbol").unwrap()
    }

    /// `(symbol, value)` of `field` on `day`, in stored (symbol id) order.
    fn stored(store: &Store, table: &str, field: &str, day: Day) -> Vec<(String, Option<f64>)> {
        let catalog = store.catalog().unwrap();
        let entry = catalog.table(table).unwrap();
        let field = entry.field(field).unwrap();
        let Some(ids) = store.rows(entry, day).unwrap() else { return Vec::new() };
        let values =
            store
                .read_chunks(ChunkKind::Values, &[(field.id, day)], |_, b| {
                    Ok(codec::decode_values(b, field.dtype).unwrap())
                })
                .unwrap();
        let values = values[0].clone().unwrap();
        let symbols = store.symbols().unwrap();
        let values = values.as_primitive::<Float64Type>();
        ids.iter()
            .enumerate()
            .map(|(i, &id)| (symbols.name(id).unwrap().to_string(), (!values.is_null(i)).then(|| values.value(i))))
            .collect()
    }

    #[test]
    fn writes_replace_their_dates_merge_when_asked_and_delete_and_drop() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::testing::config(dir.path(), "1MiB");
        let store = Store::open_writer(&config.store.path, 1).unwrap();
        let none = BTreeSet::new();
        let first = write(
            &store,
            &config,
            "alpha",
            &frame(&[(1, "B", Some(1.0)), (1, "A", None), (2, "A", Some(3.0))], "mom"),
            &none,
        )
        .unwrap();
        assert_eq!(
            (first.created, first.dates, first.rows, first.added.as_slice()),
            (true, 2, 3, ["mom".to_string()].as_slice())
        );
        assert!(store.catalog().unwrap().table("alpha").unwrap().is_local());
        assert_eq!(stored(&store, "alpha", "mom", 1), [("B".into(), Some(1.0)), ("A".into(), None)]);

        // Day 1 replaced whole; day 2 untouched; a merge of day 2 adds its rows to those stored.
        write(&store, &config, "alpha", &frame(&[(1, "C", Some(9.0))], "mom"), &none).unwrap();
        assert_eq!(stored(&store, "alpha", "mom", 1), [("C".into(), Some(9.0))]);
        write(&store, &config, "alpha", &frame(&[(2, "B", Some(4.0))], "mom"), &BTreeSet::from([2])).unwrap();
        assert_eq!(stored(&store, "alpha", "mom", 2), [("B".into(), Some(4.0)), ("A".into(), Some(3.0))]);
        let again = write(&store, &config, "alpha", &frame(&[(2, "A", Some(5.0))], "mom"), &BTreeSet::from([2]));
        assert!(matches!(again, Err(WriteError::Duplicate { count: 2, .. })), "{again:?}");

        // An added field is null where it was not written, and has a chunk on every date.
        write(&store, &config, "alpha", &frame(&[(2, "A", Some(7.0)), (2, "B", Some(8.0))], "rev"), &none).unwrap();
        assert_eq!(stored(&store, "alpha", "rev", 1), [("C".into(), None)]);
        assert_eq!(stored(&store, "alpha", "mom", 2), [("B".into(), None), ("A".into(), None)]);

        let named = |table, field| {
            write(&store, &config, table, &frame(&[(1, "A", Some(1.0))], field), &none).err().unwrap().to_string()
        };
        assert!(named("bar", "x").contains("is a table in"), "a configured table's name");
        assert!(named("beta", "mom").contains("already cached in table `alpha`"));
        assert!(named("a.b", "x").contains("cannot name a local table"));

        assert_eq!(delete(&store, "alpha", date_of(2), date_of(9)).unwrap().dates, 1);
        assert_eq!(store.day_index(store.catalog().unwrap().table("alpha").unwrap().id).unwrap().len(), 1);
        assert_eq!(drop_table(&store, "alpha").unwrap().dates, 1);
        assert!(store.catalog().unwrap().table("alpha").is_none());
        assert!(matches!(drop_table(&store, "alpha"), Err(WriteError::UnknownTable { .. })));
    }
}
