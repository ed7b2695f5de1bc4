//! Reading: requested fields over a date range, assembled into one Arrow table keyed by
//! (date, symbol).

mod resolve;

use std::sync::Arc;

use arrow::array::{new_empty_array, Array, ArrayRef, Date32Array, DictionaryArray, StringArray, UInt32Array};
use arrow::compute::{concat, take};
use arrow::datatypes::{DataType, Field, Schema, UInt32Type};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;

pub use self::resolve::{resolve_fields, ResolvedField};

use crate::config::TableKind;
use crate::error::QueryError;
use crate::store::catalog::{Catalog, TableEntry};
use crate::store::keys::{date_of, day_of, Day};
use crate::store::symbols::SymbolDictionary;
use crate::store::Store;

/// What to read.
#[derive(Debug, Clone)]
pub struct Request {
    /// First date, inclusive.
    pub start: NaiveDate,
    /// Last date, inclusive.
    pub end: NaiveDate,
    /// Field names as the user wrote them; they name the output columns, in this order.
    pub fields: Vec<String>,
    /// Keep only these symbols; unknown ones are simply absent.
    pub symbols: Option<Vec<String>>,
    /// Use this table's keys as the rows instead of the union of the fields' tables.
    pub base: Option<String>,
}

/// An assembled result.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// `date` (Date32), `symbol` (dictionary over the global symbol dictionary), then the fields.
    pub batch: RecordBatch,
    /// The dates actually covered: the request clipped to what every involved table has loaded.
    pub covered: Option<(NaiveDate, NaiveDate)>,
}

/// Reads `request` from `store`.
///
/// # Errors
/// [`QueryError`] for bad arguments, unknown or ambiguous names, and store failures.
pub fn read(
    store: &Store,
    catalog: &Catalog,
    symbols: &SymbolDictionary,
    request: &Request,
) -> Result<QueryResult, QueryError> {
    if request.start > request.end {
        return Err(QueryError::InvalidArgument(format!(
            "start {} is after end {}; dates are inclusive, so pass start <= end",
            request.start, request.end
        )));
    }
    if request.fields.is_empty() {
        return Err(QueryError::InvalidArgument("no fields asked for; pass at least one field name".into()));
    }
    let fields = resolve_fields(catalog, &request.fields)?;
    let base = match &request.base {
        Some(name) => Some(catalog.table(name).ok_or_else(|| {
            QueryError::InvalidArgument(format!(
                "base table `{name}` is not cached; cached tables: {}",
                catalog.tables.iter().map(|t| format!("`{}`", t.name)).collect::<Vec<_>>().join(", ")
            ))
        })?),
        None => None,
    };
    if let Some(asof) = fields.iter().find(|f| f.table.kind == TableKind::Asof) {
        return Err(QueryError::InvalidArgument(format!(
            "field `{}` is in asof table `{}`; point-in-time reads are not available in this version",
            asof.requested, asof.table.name
        )));
    }
    let row_tables: Vec<&TableEntry> = match base {
        Some(table) => vec![table],
        None => {
            let mut tables: Vec<&TableEntry> = Vec::new();
            for f in &fields {
                if !tables.iter().any(|t| t.id == f.table.id) {
                    tables.push(f.table);
                }
            }
            tables
        }
    };

    // A consistent cut: never past the lowest watermark among the involved tables.
    let mut cut = day_of(request.end);
    for table in row_tables.iter().copied().chain(fields.iter().map(|f| f.table)) {
        let mark = store.watermark(table.id)?.unwrap_or(Day::MIN);
        cut = cut.min(mark);
    }
    for f in fields.iter().filter(|f| !f.field.complete) {
        cut = cut.min(store.fieldmark(f.field.id)?.unwrap_or(Day::MIN));
    }
    let start = day_of(request.start);

    let wanted: Option<Vec<u32>> = request.symbols.as_ref().map(|names| {
        let mut ids: Vec<u32> = names.iter().filter_map(|n| symbols.id(n)).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    });

    let ranking = SymbolRanking::new(symbols);
    let mut days: Vec<Day> = Vec::new();
    if start <= cut {
        for table in &row_tables {
            days.extend(store.days(table.id, start, cut)?);
        }
    }
    days.sort_unstable();
    days.dedup();

    let mut date_parts: Vec<ArrayRef> = Vec::with_capacity(days.len());
    let mut symbol_parts: Vec<ArrayRef> = Vec::with_capacity(days.len());
    let mut field_parts: Vec<Vec<ArrayRef>> = vec![Vec::with_capacity(days.len()); fields.len()];
    for &day in &days {
        let mut ids: Vec<u32> = Vec::new();
        for table in &row_tables {
            if let Some(keys) = store.keys(table, day)? {
                ids = union(&ids, &keys);
            }
        }
        if let Some(wanted) = &wanted {
            ids.retain(|id| wanted.binary_search(id).is_ok());
        }
        if ids.is_empty() {
            continue;
        }
        // Rows are ordered by symbol text, which is rank order, not id order.
        ids.sort_unstable_by_key(|&id| ranking.rank[id as usize]);
        date_parts.push(Arc::new(Date32Array::from(vec![day; ids.len()])));
        symbol_parts.push(Arc::new(UInt32Array::from_iter_values(ids.iter().map(|&id| ranking.rank[id as usize]))));
        for (f, parts) in fields.iter().zip(&mut field_parts) {
            let keys = store.keys(f.table, day)?.unwrap_or_else(|| Arc::from([]));
            let picks: UInt32Array = ids.iter().map(|id| keys.binary_search(id).ok().map(|i| i as u32)).collect();
            let column = match store.values(f.field, day)? {
                Some(values) => {
                    take(values.as_ref(), &picks, None).map_err(|e| QueryError::InvalidArgument(e.to_string()))?
                }
                None => f.field.dtype.null_array(ids.len()),
            };
            parts.push(column);
        }
    }

    let mut columns: Vec<ArrayRef> = Vec::with_capacity(fields.len() + 2);
    columns.push(concat_or_empty(&date_parts, &DataType::Date32));
    let codes = concat_or_empty(&symbol_parts, &DataType::UInt32);
    let codes = codes.as_any().downcast_ref::<UInt32Array>().expect("u32 codes").clone();
    columns.push(Arc::new(
        DictionaryArray::<UInt32Type>::try_new(codes, Arc::new(ranking.sorted)).expect("codes index the dictionary"),
    ));
    for (f, parts) in fields.iter().zip(&field_parts) {
        columns.push(concat_or_empty(parts, &f.field.dtype.arrow()));
    }
    let mut schema_fields = vec![
        Field::new("date", DataType::Date32, false),
        Field::new("symbol", DataType::Dictionary(Box::new(DataType::UInt32), Box::new(DataType::Utf8)), false),
    ];
    schema_fields.extend(fields.iter().map(|f| Field::new(&f.requested, f.field.dtype.arrow(), true)));
    let batch = RecordBatch::try_new(Arc::new(Schema::new(schema_fields)), columns).expect("columns match the schema");
    let covered = (start <= cut).then(|| (request.start, date_of(cut)));
    Ok(QueryResult { batch, covered })
}

/// The symbol dictionary in text order: the `symbol` column's dictionary, indexed by rank.
struct SymbolRanking {
    /// `rank[id]` is the position of symbol `id` in text order.
    rank: Vec<u32>,
    /// Every symbol in text order.
    sorted: StringArray,
}

impl SymbolRanking {
    fn new(symbols: &SymbolDictionary) -> Self {
        let names = symbols.names();
        let mut order: Vec<u32> = (0..names.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| names[a as usize].cmp(&names[b as usize]));
        let mut rank = vec![0; names.len()];
        for (position, &id) in order.iter().enumerate() {
            rank[id as usize] = position as u32;
        }
        let sorted = StringArray::from_iter_values(order.iter().map(|&id| &*names[id as usize]));
        Self { rank, sorted }
    }
}

fn concat_or_empty(parts: &[ArrayRef], dtype: &DataType) -> ArrayRef {
    if parts.is_empty() {
        return new_empty_array(dtype);
    }
    let refs: Vec<&dyn Array> = parts.iter().map(AsRef::as_ref).collect();
    concat(&refs).expect("parts share one type")
}

/// The sorted union of two sorted id lists.
fn union(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}
