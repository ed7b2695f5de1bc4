//! Fetching the decoded chunks a [`Plan`] needs, from a [`ChunkSource`].
//!
//! The source is the seam for where a read's stored data comes from: the per-process hot layer
//! in front of the store ([`HotStore`]).

use arrow::array::ArrayRef;
use rayon::prelude::*;

use super::asof::{align, Events};
use super::assemble::{FieldChunks, TableRows};
use super::plan::Plan;
use crate::error::StoreError;
use crate::hot::HotChunks;
use crate::store::catalog::{FieldEntry, TableEntry};
use crate::store::Store;
use crate::types::{Day, TableKind};
use crate::universe::Universe;
use crate::view::View;

/// Where a read's decoded chunks come from.
pub(crate) trait ChunkSource: Sync {
    /// The row chunks (sorted symbol ids) of `table` on `days`, `None` where it has no row.
    fn rows(&self, table: &TableEntry, days: &[Day]) -> Result<TableRows, StoreError>;

    /// The value chunks of `table`'s `field` on `days`, `None` where it has none.
    fn values(&self, table: &TableEntry, field: &FieldEntry, days: &[Day])
        -> Result<Vec<Option<ArrayRef>>, StoreError>;

    /// The cached days of `table` in `from..=to` with their rows, ascending.
    fn day_rows(&self, table: &TableEntry, from: Day, to: Day) -> Result<Vec<(Day, u32)>, StoreError>;

    /// The universe `name` as stored, if an update has read it.
    fn universe(&self, name: &str) -> Result<Option<Universe>, StoreError>;

    /// A finding that a chunk is missing or undecodable: the rows of `table`, or its `field`,
    /// on `day`.
    fn corrupt_chunk(&self, table: &str, field: Option<&str>, day: Day, message: &str) -> StoreError;

    /// A finding that something other than one chunk is inconsistent.
    fn corrupt(&self, what: &str, message: &str) -> StoreError;
}

/// No store: what a read the shared layer serves alone has instead. Anything else the read
/// asks for fails with [`StoreError::Unopened`], and the caller opens the store to read again.
pub(crate) struct Unopened<'a> {
    /// The store's directory.
    pub path: &'a std::path::Path,
}

impl Unopened<'_> {
    fn refuse(&self) -> StoreError {
        StoreError::Unopened { path: self.path.to_path_buf() }
    }
}

impl ChunkSource for Unopened<'_> {
    fn rows(&self, _: &TableEntry, _: &[Day]) -> Result<TableRows, StoreError> {
        Err(self.refuse())
    }

    fn values(&self, _: &TableEntry, _: &FieldEntry, _: &[Day]) -> Result<Vec<Option<ArrayRef>>, StoreError> {
        Err(self.refuse())
    }

    fn day_rows(&self, _: &TableEntry, _: Day, _: Day) -> Result<Vec<(Day, u32)>, StoreError> {
        Err(self.refuse())
    }

    fn universe(&self, _: &str) -> Result<Option<Universe>, StoreError> {
        Err(self.refuse())
    }

    fn corrupt_chunk(&self, _: &str, _: Option<&str>, _: Day, _: &str) -> StoreError {
        self.refuse()
    }

    fn corrupt(&self, _: &str, _: &str) -> StoreError {
        self.refuse()
    }
}

/// The store behind this process's hot layer.
pub(crate) struct HotStore<'a> {
    /// The decoded chunks kept in memory.
    pub hot: &'a HotChunks,
    /// Where the rest are read and decoded from.
    pub store: &'a Store,
}

impl ChunkSource for HotStore<'_> {
    fn rows(&self, table: &TableEntry, days: &[Day]) -> Result<TableRows, StoreError> {
        self.hot.rows(self.store, table, days)
    }

    fn values(
        &self,
        table: &TableEntry,
        field: &FieldEntry,
        days: &[Day],
    ) -> Result<Vec<Option<ArrayRef>>, StoreError> {
        self.hot.values(self.store, table, field, days)
    }

    fn day_rows(&self, table: &TableEntry, from: Day, to: Day) -> Result<Vec<(Day, u32)>, StoreError> {
        self.store.day_rows(table.id, from, to)
    }

    fn universe(&self, name: &str) -> Result<Option<Universe>, StoreError> {
        self.store.universe(name)
    }

    fn corrupt_chunk(&self, table: &str, field: Option<&str>, day: Day, message: &str) -> StoreError {
        self.store.corrupt_chunk(table, field, day, message)
    }

    fn corrupt(&self, what: &str, message: &str) -> StoreError {
        self.store.corrupt(what, message)
    }
}

/// The chunks of a plan, aligned with [`Plan::days`].
pub(crate) struct Fetched {
    /// Row chunks of every involved table, in [`Plan::tables`] order. An asof table's are its
    /// state on each day: the symbols with an event so far.
    pub tables: Vec<TableRows>,
    /// Value chunks of every field, in [`Plan::fields`] order.
    pub fields: Vec<FieldChunks>,
}

/// Fetches every chunk `plan` needs from `chunks`, aligning asof events to the plan's days.
///
/// # Errors
/// [`StoreError`]; a value chunk missing beside its day's row chunk is
/// [`StoreError::Corrupt`], which a reader takes as a torn view.
pub(crate) fn fetch(plan: &Plan<'_>, view: &View, chunks: &impl ChunkSource) -> Result<Fetched, StoreError> {
    let is_asof = |t: &TableEntry| t.kind == TableKind::Asof;
    // Every table's and field's chunks at once: a short range has too few dates per field to
    // keep both cores busy. Asof tables' chunks are their events, read and aligned below.
    let (tables, fields) = rayon::join(
        || {
            plan.tables
                .par_iter()
                .map(|t| if is_asof(t) { Ok(Vec::new()) } else { chunks.rows(t, &plan.days) })
                .collect::<Result<Vec<_>, _>>()
        },
        || {
            plan.fields
                .par_iter()
                .map(|f| if is_asof(f.table) { Ok(Vec::new()) } else { chunks.values(f.table, f.field, &plan.days) })
                .collect::<Result<Vec<_>, StoreError>>()
        },
    );
    let (mut tables, mut fields) = (tables?, fields?);
    for (f, values) in plan.fields.iter().zip(&fields) {
        check_whole_days(chunks, &plan.days, &tables[plan.table_index(f.table.id)], values, f.table, f.field)?;
    }
    for (t, table) in plan.tables.iter().enumerate().filter(|(_, t)| is_asof(t)) {
        let own: Vec<usize> = (0..plan.fields.len()).filter(|&i| plan.fields[i].table.id == table.id).collect();
        let own_fields: Vec<&FieldEntry> = own.iter().map(|&i| plan.fields[i].field).collect();
        let (rows, aligned) = fetch_asof(chunks, view, table, &own_fields, &plan.days)?;
        tables[t] = rows;
        for (i, values) in own.into_iter().zip(aligned) {
            fields[i] = values;
        }
    }
    Ok(Fetched { tables, fields })
}

/// Every day below the cut has a value chunk for every field wherever its table has a row
/// chunk: the writer commits them in one batch. A hole means the view is torn or a chunk is
/// lost; either way the result would be wrong, so it is an error.
fn check_whole_days(
    chunks: &impl ChunkSource,
    days: &[Day],
    rows: &TableRows,
    values: &[Option<ArrayRef>],
    table: &TableEntry,
    field: &FieldEntry,
) -> Result<(), StoreError> {
    for (i, value) in values.iter().enumerate() {
        if value.is_none() && rows[i].as_ref().is_some_and(|ids| !ids.is_empty()) {
            return Err(chunks.corrupt_chunk(
                &table.name,
                Some(&field.name),
                days[i],
                "it is missing although the date's row chunk is present",
            ));
        }
    }
    Ok(())
}

/// Reads the events of asof `table` up to the last of `days` for `fields`, and aligns them to
/// `days`: the table's state rows and each field's state values per day.
fn fetch_asof(
    chunks: &impl ChunkSource,
    view: &View,
    table: &TableEntry,
    fields: &[&FieldEntry],
    days: &[Day],
) -> Result<(TableRows, Vec<FieldChunks>), StoreError> {
    let last = days.last().copied().unwrap_or(Day::MIN);
    let cached = view.days_of(table.id);
    let event_days = cached[..cached.partition_point(|&d| d <= last)].to_vec();
    let rows = chunks.rows(table, &event_days)?;
    let values = fields.iter().map(|field| chunks.values(table, field, &event_days)).collect::<Result<Vec<_>, _>>()?;
    for (field, values) in fields.iter().zip(&values) {
        check_whole_days(chunks, &event_days, &rows, values, table, field)?;
    }
    let events = Events { days: event_days, rows, fields: values };
    let aligned =
        align(days, &events).map_err(|e| chunks.corrupt(&format!("events of asof table `{}`", table.name), &e))?;
    Ok((aligned.rows, aligned.fields))
}
