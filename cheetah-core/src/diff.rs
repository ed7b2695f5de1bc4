//! What changed between two store versions, cell by cell.
//!
//! The history says which days of which tables and fields a commit between the two versions
//! replaced; only those days are read, at both versions, and compared symbol by symbol. So a
//! diff costs what changed between the versions, not what the store holds.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, BooleanArray, Date32Array, RecordBatch, StringArray, UInt32Array};
use arrow::compute::kernels::cmp::distinct;
use arrow::compute::{concat, take};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::NaiveDate;

use crate::error::StoreError;
use crate::query::ChunkSource;
use crate::store::catalog::{FieldEntry, TableEntry};
use crate::store::history::{Kind, Subject};
use crate::store::{Store, Version};
use crate::types::{date_of, day_of, Day, ValueType};
use crate::view::View;

/// Every cell that differs between two versions.
#[derive(Debug, Clone)]
pub struct Diff {
    /// The version compared from: its values are `old`.
    pub from: Version,
    /// The version compared to: its values are `new`.
    pub to: Version,
    /// Per field with changes, in catalog order.
    pub fields: Vec<FieldDiff>,
    /// `table.field` of the fields one version has and the other not (added to or removed
    /// from the config between them), which are not compared.
    pub skipped: Vec<String>,
}

/// The changed cells of one field, ordered by date, then symbol.
#[derive(Debug, Clone)]
pub struct FieldDiff {
    /// Its table.
    pub table: String,
    /// The field.
    pub field: String,
    /// Its type.
    pub dtype: ValueType,
    /// Each cell's date.
    pub dates: Vec<NaiveDate>,
    /// Each cell's symbol.
    pub symbols: Vec<String>,
    /// Its value at `from`: null where the row did not exist then (or held null).
    pub old: ArrayRef,
    /// Its value at `to`: null where the row does not exist (or holds null).
    pub new: ArrayRef,
}

impl Diff {
    /// The changed cells in all.
    pub fn cells(&self) -> usize {
        self.fields.iter().map(|f| f.dates.len()).sum()
    }
}

impl FieldDiff {
    /// As a batch: `date`, `symbol`, `old`, `new` (the field's own type).
    pub fn to_arrow(&self) -> RecordBatch {
        let dtype = self.dtype.arrow();
        let schema = Schema::new(vec![
            Field::new("date", DataType::Date32, false),
            Field::new("symbol", DataType::Utf8, false),
            Field::new("old", dtype.clone(), true),
            Field::new("new", dtype, true),
        ]);
        let dates = Date32Array::from_iter_values(self.dates.iter().map(|&d| day_of(d)));
        let symbols = StringArray::from_iter_values(&self.symbols);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(dates), Arc::new(symbols), self.old.clone(), self.new.clone()],
        )
        .expect("columns match the schema")
    }
}

/// One side of a diff: the view and chunks of a version.
pub(crate) struct Side<'a, C: ChunkSource> {
    /// Its view.
    pub view: &'a View,
    /// Its chunks.
    pub chunks: &'a C,
}

impl<C: ChunkSource> Side<'_, C> {
    /// Which of `days` its view has for `table`, and each of `days` as `read` gives it for
    /// those (`None` for the others).
    fn on<T>(
        &self,
        table: &TableEntry,
        days: &[Day],
        read: impl FnOnce(&[Day]) -> Result<Vec<Option<T>>, StoreError>,
    ) -> Result<Vec<Option<T>>, StoreError> {
        let held = self.view.days_of(table.id);
        let present: Vec<Day> = days.iter().copied().filter(|d| held.binary_search(d).is_ok()).collect();
        let mut found = read(&present)?.into_iter();
        Ok(days.iter().map(|d| if present.binary_search(d).is_ok() { found.next().flatten() } else { None }).collect())
    }

    fn rows(&self, table: &TableEntry, days: &[Day]) -> Result<Vec<Option<Arc<[u32]>>>, StoreError> {
        self.on(table, days, |present| self.chunks.rows(table, present))
    }

    fn values(
        &self,
        table: &TableEntry,
        field: &FieldEntry,
        days: &[Day],
    ) -> Result<Vec<Option<ArrayRef>>, StoreError> {
        self.on(table, days, |present| self.chunks.values(table, field, present))
    }
}

/// The cells of the fields `wanted` (their ids; every field when `None`) over `from..=to` days
/// that differ between `old` and `new`, whose versions are `lo` and `hi` in some order. `names`
/// spells the symbols: a view at least as new as both.
pub(crate) fn diff(
    store: &Store,
    old: &Side<'_, impl ChunkSource>,
    new: &Side<'_, impl ChunkSource>,
    days: (Day, Day),
    wanted: Option<&[u32]>,
    names: &View,
) -> Result<Diff, StoreError> {
    let (lo, hi) = {
        let (a, b) = (old.view.version.number, new.view.version.number);
        (a.min(b), a.max(b))
    };
    let range = days.0..=days.1;
    let mut fields = Vec::new();
    let mut skipped = Vec::new();
    for table in &new.view.catalog.tables {
        let Some(before) = old.view.catalog.tables.iter().find(|t| t.id == table.id) else {
            skipped.extend(table.fields.iter().map(|f| format!("{}.{}", table.name, f.name)));
            continue;
        };
        let compared: Vec<&FieldEntry> = table
            .fields
            .iter()
            .filter(|f| wanted.is_none_or(|w| w.contains(&f.id)))
            .filter(|f| {
                let both = before.fields.iter().any(|b| b.id == f.id);
                if !both {
                    skipped.push(format!("{}.{}", table.name, f.name));
                }
                both
            })
            .collect();
        if compared.is_empty() {
            continue;
        }
        let mut changed: BTreeSet<Day> = BTreeSet::new();
        let subjects = [Subject::id(Kind::Day, table.id), Subject::id(Kind::Rows, table.id)]
            .into_iter()
            .chain(compared.iter().map(|f| Subject::id(Kind::Values, f.id)));
        for subject in subjects {
            changed.extend(store.changed_between(&subject, lo, hi, &range)?.into_iter().flatten());
        }
        let changed: Vec<Day> = changed.into_iter().collect();
        fields.extend(compare_table(table, &compared, &changed, old, new, names)?);
    }
    for table in &old.view.catalog.tables {
        if !new.view.catalog.tables.iter().any(|t| t.id == table.id) {
            skipped.extend(table.fields.iter().map(|f| format!("{}.{}", table.name, f.name)));
        }
    }
    Ok(Diff { from: old.view.version, to: new.view.version, fields, skipped })
}

/// The changed cells of `fields` of `table` on `days`.
fn compare_table(
    table: &TableEntry,
    fields: &[&FieldEntry],
    days: &[Day],
    old: &Side<'_, impl ChunkSource>,
    new: &Side<'_, impl ChunkSource>,
    names: &View,
) -> Result<Vec<FieldDiff>, StoreError> {
    let (old_rows, new_rows) = (old.rows(table, days)?, new.rows(table, days)?);
    // Per day, the union of both sides' symbols and where each side has it.
    let aligned: Vec<(Vec<u32>, UInt32Array, UInt32Array)> =
        old_rows.iter().zip(&new_rows).map(|(a, b)| align(a.as_deref(), b.as_deref())).collect();

    let mut out = Vec::new();
    for field in fields {
        let (old_values, new_values) = (old.values(table, field, days)?, new.values(table, field, days)?);
        let (mut dates, mut symbols, mut olds, mut news) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, (ids, at_old, at_new)) in aligned.iter().enumerate() {
            if ids.is_empty() {
                continue;
            }
            let side = |values: &Option<ArrayRef>, at: &UInt32Array| match values {
                Some(array) => take(array.as_ref(), at, None).expect("indexes are in bounds"),
                None => new_null_array(&field.dtype.arrow(), at.len()),
            };
            let (before, after) = (side(&old_values[i], at_old), side(&new_values[i], at_new));
            // A row that appeared or vanished is a change even where both sides are null.
            let moved = BooleanArray::from_iter((0..ids.len()).map(|j| Some(at_old.is_null(j) != at_new.is_null(j))));
            let differs = distinct(&before, &after).expect("both sides have the field's type");
            let keep = arrow::compute::or(&differs, &moved).expect("same lengths");
            // The changed cells of the day, in symbol text order.
            let mut kept: Vec<u32> = (0..ids.len() as u32).filter(|&j| keep.value(j as usize)).collect();
            if kept.is_empty() {
                continue;
            }
            kept.sort_unstable_by_key(|&j| names.ranking.rank[ids[j as usize] as usize]);
            let date = date_of(days[i]);
            for &j in &kept {
                dates.push(date);
                symbols.push(names.symbols.name(ids[j as usize]).unwrap_or_default().to_string());
            }
            let kept = UInt32Array::from(kept);
            olds.push(take(before.as_ref(), &kept, None).expect("kept rows are in bounds"));
            news.push(take(after.as_ref(), &kept, None).expect("kept rows are in bounds"));
        }
        if dates.is_empty() {
            continue;
        }
        let joined = |parts: &[ArrayRef]| {
            concat(&parts.iter().map(AsRef::as_ref).collect::<Vec<&dyn Array>>()).expect("parts of one type")
        };
        out.push(FieldDiff {
            table: table.name.clone(),
            field: field.name.clone(),
            dtype: field.dtype,
            dates,
            symbols,
            old: joined(&olds),
            new: joined(&news),
        });
    }
    Ok(out)
}

/// The union of two days' sorted symbol ids, and where each side has each (null where not).
fn align(old: Option<&[u32]>, new: Option<&[u32]>) -> (Vec<u32>, UInt32Array, UInt32Array) {
    let (old, new) = (old.unwrap_or_default(), new.unwrap_or_default());
    let (mut ids, mut at_old, mut at_new) = (Vec::new(), Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) if a == b => {
                ids.push(*a);
                at_old.push(Some(i as u32));
                at_new.push(Some(j as u32));
                i += 1;
                j += 1;
            }
            (Some(a), b) if b.is_none_or(|b| a < b) => {
                ids.push(*a);
                at_old.push(Some(i as u32));
                at_new.push(None);
                i += 1;
            }
            (_, Some(b)) => {
                ids.push(*b);
                at_old.push(None);
                at_new.push(Some(j as u32));
                j += 1;
            }
            (_, None) => unreachable!("one side has more"),
        }
    }
    (ids, UInt32Array::from(at_old), UInt32Array::from(at_new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_is_the_union_with_each_sides_place() {
        let (ids, old, new) = align(Some(&[1, 3, 5]), Some(&[3, 4, 5, 9]));
        assert_eq!(ids, [1, 3, 4, 5, 9]);
        assert_eq!(old.iter().collect::<Vec<_>>(), [Some(0), Some(1), None, Some(2), None]);
        assert_eq!(new.iter().collect::<Vec<_>>(), [None, Some(0), Some(1), Some(2), Some(3)]);
        let (ids, old, _) = align(None, Some(&[2]));
        assert_eq!((ids, old.null_count()), (vec![2], 1));
    }
}
