//! Reading: requested fields over a date range, assembled into one Arrow table keyed by
//! (date, symbol).

mod asof;
mod assemble;
mod pool;
mod resolve;

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use rayon::prelude::*;

use self::asof::{align, Aligned, Events};
pub use self::assemble::{assemble, Assembled, DateLayout, Inputs, SymbolRanking, TableKeys};
pub use self::pool::{Lease, OutputPool};
pub use self::resolve::{aliases, resolve_fields, Aliases, ResolvedField};

use crate::config::TableKind;
use crate::error::{QueryError, StoreError};
use crate::hot::HotChunks;
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
    /// The layout of the `date` column.
    pub dates: DateLayout,
}

/// An assembled result.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// `date` (Date32), `symbol` (dictionary over the global symbol dictionary), then the fields.
    pub batch: RecordBatch,
    /// The dates actually covered: the request clipped to what every involved table has loaded.
    pub covered: Option<(NaiveDate, NaiveDate)>,
    /// Each date with rows, and how many; the rows are in this order.
    pub rows_per_day: Vec<(Day, usize)>,
}

/// What a reader knows of the store, refreshed before each read: see [`crate::Cache`].
#[derive(Debug, Clone)]
pub struct View {
    /// The catalog.
    pub catalog: Catalog,
    /// The symbol dictionary.
    pub symbols: SymbolDictionary,
    /// The dictionary in text order.
    pub ranking: SymbolRanking,
    /// Cached days of each table, ascending.
    pub days: HashMap<u32, Vec<Day>>,
    /// The config's other names for fields.
    pub aliases: Aliases,
}

/// Reads `request` through the hot layer, into buffers from `pool`.
///
/// # Errors
/// [`QueryError`] for bad arguments, unknown or ambiguous names, and store failures.
pub fn read(
    store: &Store,
    hot: &HotChunks,
    pool: &OutputPool,
    view: &View,
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
    let catalog = &view.catalog;
    let fields = resolve_fields(catalog, &view.aliases, &request.fields)?;
    let base = match &request.base {
        Some(name) => Some(catalog.table(name).ok_or_else(|| {
            QueryError::InvalidArgument(format!(
                "base table `{name}` is not cached; cached tables: {}",
                catalog.tables.iter().map(|t| format!("`{}`", t.name)).collect::<Vec<_>>().join(", ")
            ))
        })?),
        None => None,
    };
    let is_asof = |t: &TableEntry| t.kind == TableKind::Asof;
    if let Some(table) = base.filter(|t| is_asof(t)) {
        return Err(QueryError::InvalidArgument(format!(
            "base table `{}` is an asof (event) table; pass a daily table as base: its keys make the rows",
            table.name
        )));
    }
    if base.is_none() && fields.iter().all(|f| is_asof(f.table)) {
        let daily: Vec<String> =
            catalog.tables.iter().filter(|t| !is_asof(t)).map(|t| format!("`{}`", t.name)).collect();
        return Err(QueryError::InvalidArgument(format!(
            "asof fields ({}) do not make rows of their own; pass base= (`--base` on the command line) naming one of the daily tables ({}) to align them to",
            fields.iter().map(|f| format!("`{}`", f.requested)).collect::<Vec<_>>().join(", "),
            daily.join(", ")
        )));
    }

    // Involved tables: the row tables first (the base, or the daily tables of the fields), then
    // the other tables of the fields.
    let mut tables: Vec<&TableEntry> = Vec::new();
    match base {
        Some(table) => tables.push(table),
        None => {
            for f in fields.iter().filter(|f| !is_asof(f.table)) {
                if !tables.iter().any(|t| t.id == f.table.id) {
                    tables.push(f.table);
                }
            }
        }
    }
    let row_tables: Vec<usize> = (0..tables.len()).collect();
    for f in &fields {
        if !tables.iter().any(|t| t.id == f.table.id) {
            tables.push(f.table);
        }
    }

    // A consistent cut: never past the lowest watermark among the involved daily tables. An
    // asof table's watermark is its newest event, which may lie far behind (quarterly reports)
    // or ahead: its events count as of its last update, and never past a row's own date.
    let mut cut = day_of(request.end);
    for table in tables.iter().filter(|t| !is_asof(t)) {
        cut = cut.min(store.watermark(table.id)?.unwrap_or(Day::MIN));
    }
    for f in fields.iter().filter(|f| !f.field.complete) {
        cut = cut.min(store.fieldmark(f.field.id)?.unwrap_or(Day::MIN));
    }
    let start = day_of(request.start);
    let mut days: Vec<Day> = Vec::new();
    if start <= cut {
        for &t in &row_tables {
            let cached = view.days.get(&tables[t].id).map_or(&[][..], Vec::as_slice);
            let lo = cached.partition_point(|&d| d < start);
            let hi = cached.partition_point(|&d| d <= cut);
            days.extend_from_slice(&cached[lo..hi]);
        }
        days.sort_unstable();
        days.dedup();
    }

    // Every table's and field's chunks at once: a short range has too few dates per field to
    // keep both cores busy.
    // Asof tables' chunks are their events, read and aligned below.
    let (keys, values) = rayon::join(
        || {
            tables
                .par_iter()
                .map(|t| if is_asof(t) { Ok(Vec::new()) } else { hot.keys(store, t, &days) })
                .collect::<Result<Vec<_>, _>>()
        },
        || {
            fields
                .par_iter()
                .map(|f| {
                    let t = tables.iter().position(|t| t.id == f.table.id).expect("involved");
                    let chunks = if is_asof(f.table) { Vec::new() } else { hot.values(store, f.field, &days)? };
                    Ok((t, f.field.dtype, chunks))
                })
                .collect::<Result<Vec<_>, StoreError>>()
        },
    );
    let (mut keys, mut values) = (keys?, values?);
    check_whole_dates(store, &days, &keys, &values, &fields)?;
    for (t, table) in tables.iter().enumerate().filter(|(_, t)| is_asof(t)) {
        let own: Vec<usize> = (0..fields.len()).filter(|&i| fields[i].table.id == table.id).collect();
        let aligned = read_asof(store, hot, view, table, &own, &fields, &days)?;
        keys[t] = aligned.keys;
        for (i, chunks) in own.into_iter().zip(aligned.fields) {
            values[i].2 = chunks;
        }
    }
    let wanted: Option<Vec<u32>> = request.symbols.as_ref().map(|names| {
        let mut ids: Vec<u32> = names.iter().filter_map(|n| view.symbols.id(n)).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    });
    let assembled = assemble(
        &Inputs {
            days: &days,
            tables: keys,
            row_tables,
            fields: values,
            symbols: wanted.as_deref(),
            ranking: &view.ranking,
            dates: request.dates,
        },
        pool,
    );

    let mut schema_fields = vec![
        Field::new("date", assembled.dates.data_type().clone(), false),
        Field::new("symbol", assembled.symbols.data_type().clone(), false),
    ];
    schema_fields.extend(fields.iter().map(|f| Field::new(&f.requested, f.field.dtype.arrow(), true)));
    let mut columns: Vec<ArrayRef> = vec![assembled.dates, assembled.symbols];
    columns.extend(assembled.fields);
    let batch = RecordBatch::try_new(Arc::new(Schema::new(schema_fields)), columns).expect("columns match the schema");
    let rows_per_day =
        days.iter().zip(&assembled.rows_per_day).filter(|(_, &n)| n > 0).map(|(&d, &n)| (d, n)).collect();
    let covered = (start <= cut).then(|| (request.start, date_of(cut)));
    Ok(QueryResult { batch, covered, rows_per_day })
}

/// Every date below the cut has a value chunk for every field wherever its table has a key
/// chunk: the writer commits them in one batch. A hole means this reader's view of the store
/// is torn or a chunk is lost; either way the result would be wrong, so it is an error.
fn check_whole_dates(
    store: &Store,
    days: &[Day],
    keys: &[TableKeys],
    values: &[(usize, crate::types::ValueType, Vec<Option<ArrayRef>>)],
    fields: &[ResolvedField<'_>],
) -> Result<(), StoreError> {
    for ((table, _, chunks), field) in values.iter().zip(fields) {
        for (i, chunk) in chunks.iter().enumerate() {
            if chunk.is_none() && keys[*table][i].as_ref().is_some_and(|ids| !ids.is_empty()) {
                return Err(store.corrupt(
                    &format!("chunk of field `{}` on {}", field.field.name, date_of(days[i])),
                    "it is missing although the date's key chunk is present",
                ));
            }
        }
    }
    Ok(())
}

/// Reads the events of asof `table` up to the last of `days` for its fields `own` (indexes into
/// `fields`), and aligns them to `days`.
fn read_asof(
    store: &Store,
    hot: &HotChunks,
    view: &View,
    table: &TableEntry,
    own: &[usize],
    fields: &[ResolvedField<'_>],
    days: &[Day],
) -> Result<Aligned, StoreError> {
    let last = days.last().copied().unwrap_or(Day::MIN);
    let cached = view.days.get(&table.id).map_or(&[][..], Vec::as_slice);
    let event_days = cached[..cached.partition_point(|&d| d <= last)].to_vec();
    let keys = hot.keys(store, table, &event_days)?;
    let chunks = own
        .iter()
        .map(|&i| Ok((0, fields[i].field.dtype, hot.values(store, fields[i].field, &event_days)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let own_fields: Vec<ResolvedField<'_>> = own.iter().map(|&i| fields[i].clone()).collect();
    let keys = vec![keys];
    check_whole_dates(store, &event_days, &keys, &chunks, &own_fields)?;
    let events = Events {
        days: event_days,
        keys: keys.into_iter().next().expect("one table"),
        fields: chunks.into_iter().map(|(_, _, c)| c).collect(),
    };
    align(days, &events).map_err(|e| store.corrupt(&format!("events of asof table `{}`", table.name), e))
}
