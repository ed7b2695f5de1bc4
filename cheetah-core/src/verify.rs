//! `verify`: compares the cache with the source date by date, by row count and a checksum of
//! every cached field that the source computes in SQL (see [`crate::source::day_checksums`]).
//!
//! Only dates at or below a table's watermark are compared: later ones are not cached yet. The
//! dates that differ are what `verify --repair` re-fetches.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::config::TableConfig;
use crate::error::{StoreError, UpdateError};
use crate::source::{self, checksum_value, DayChecksum, FieldChecksum, Source};
use crate::store::catalog::FieldEntry;
use crate::store::codec;
use crate::store::{ChunkKind, Store};
use crate::types::{date_of, day_of, Day};

/// What `verify` found for one table.
#[derive(Debug, Clone, Default)]
pub struct TableVerification {
    /// The table.
    pub table: String,
    /// The dates compared, when the table has any cached.
    pub range: Option<(NaiveDate, NaiveDate)>,
    /// Dates present on either side in the range.
    pub dates: usize,
    /// Fields compared.
    pub fields: usize,
    /// Every date that differs, ascending.
    pub differences: Vec<Difference>,
    /// A local table: no source to compare with, so its chunks were only checked to decode and
    /// to agree with the day index.
    pub local: bool,
}

/// One date on which the cache and the source differ.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// The date.
    pub date: NaiveDate,
    /// What differs, one finding per line.
    pub findings: Vec<String>,
}

/// Compares `table`'s cached dates in `start..=end` (each defaulting to the whole cached range)
/// with the source.
///
/// # Errors
/// [`UpdateError::Source`] when the source fails, [`UpdateError::Store`] when the store does.
/// Chunks that fail to decode are findings, not errors.
pub fn verify_table(
    store: &Store,
    source: &Source,
    table: &TableConfig,
    (start, end): (Option<NaiveDate>, Option<NaiveDate>),
) -> Result<TableVerification, UpdateError> {
    let mut report = TableVerification { table: table.name.clone(), ..TableVerification::default() };
    let catalog = store.catalog()?;
    let Some(entry) = catalog.table(&table.name) else { return Ok(report) };
    let Some(watermark) = store.watermark(entry.id)? else { return Ok(report) };
    let from = start.map_or(table.start, |s| s.max(table.start));
    let to = end.map_or(date_of(watermark), |e| e.min(date_of(watermark)));
    if from > to {
        return Ok(report);
    }
    report.range = Some((from, to));

    let connection = source.connect()?;
    let resolved = source::resolve(source, &connection, table, &crate::update::cached_fields(&catalog, &table.name))?;
    drop(connection);
    // A field still being backfilled holds only part of its dates (the next update finishes
    // it), and one that vanished from the source has nothing to compare with.
    let fields: Vec<&FieldEntry> =
        entry.fields.iter().filter(|f| f.complete && !resolved.vanished.contains(&f.name)).collect();
    report.fields = fields.len();
    let list: Vec<(String, _)> = fields.iter().map(|f| (f.name.clone(), f.dtype)).collect();
    let theirs = source::day_checksums(source, &resolved, &list, (from, to))?;
    let ours = cache_checksums(store, entry, &fields, (day_of(from), day_of(to)))?;

    let mut by_day: BTreeMap<Day, (Option<&DayChecksum>, Option<&CachedDay>)> = BTreeMap::new();
    for day in &theirs {
        by_day.entry(day.day).or_default().0 = Some(day);
    }
    for day in &ours {
        by_day.entry(day.day).or_default().1 = Some(day);
    }
    report.dates = by_day.len();
    for (day, sides) in by_day {
        let findings = match sides {
            (Some(source), None) => vec![format!("the cache lacks this date; the source has {} rows", source.rows)],
            (None, Some(cached)) => vec![format!("the source has no rows on this date; the cache has {}", cached.rows)],
            (Some(source), Some(cached)) => compare(source, cached, &fields),
            (None, None) => unreachable!("every entry has a side"),
        };
        if !findings.is_empty() {
            report.differences.push(Difference { date: date_of(day), findings });
        }
    }
    Ok(report)
}

/// Checks that every chunk of local table `table` in `start..=end` decodes and agrees with the
/// day index: a local table has no source to compare with.
///
/// # Errors
/// [`StoreError`] when the store cannot be read; chunks that fail are findings.
pub fn verify_local(
    store: &Store,
    entry: &crate::store::catalog::TableEntry,
    (start, end): (Option<NaiveDate>, Option<NaiveDate>),
) -> Result<TableVerification, StoreError> {
    let mut report = TableVerification { table: entry.name.clone(), local: true, ..TableVerification::default() };
    let (from, to) = (start.map_or(Day::MIN, day_of), end.map_or(Day::MAX, day_of));
    let fields: Vec<&FieldEntry> = entry.fields.iter().collect();
    report.fields = fields.len();
    let days = cache_checksums(store, entry, &fields, (from, to))?;
    report.dates = days.len();
    report.range = days.first().zip(days.last()).map(|(a, b)| (date_of(a.day), date_of(b.day)));
    for day in days {
        let mut findings: Vec<String> =
            day.ids.err().map(|e| format!("its row chunk is unreadable: {e}")).into_iter().collect();
        for (field, sum) in fields.iter().zip(day.fields) {
            if let Err(e) = sum {
                findings.push(format!("`{}`: {e}", field.name));
            }
        }
        if !findings.is_empty() {
            report.differences.push(Difference { date: date_of(day.day), findings });
        }
    }
    Ok(report)
}

/// A cached date's checksum, or why its chunks could not be read.
struct CachedDay {
    day: Day,
    rows: u64,
    ids: Result<(), String>,
    fields: Vec<Result<FieldChecksum, String>>,
}

fn compare(source: &DayChecksum, cached: &CachedDay, fields: &[&FieldEntry]) -> Vec<String> {
    let mut findings = Vec::new();
    if let Err(e) = &cached.ids {
        findings.push(format!("its row chunk is unreadable: {e}"));
    }
    if source.rows != cached.rows {
        findings.push(format!("rows: source {}, cache {}", source.rows, cached.rows));
    }
    for ((field, theirs), ours) in fields.iter().zip(&source.fields).zip(&cached.fields) {
        match ours {
            Err(e) => findings.push(format!("`{}`: {e}", field.name)),
            Ok(ours) if !theirs.agrees(ours, source.rows) => findings.push(format!(
                "`{}`: source has {} values summing to {}, the cache {} summing to {}",
                field.name, theirs.count, theirs.sum, ours.count, ours.sum
            )),
            Ok(_) => {}
        }
    }
    findings
}

/// Checksums of every cached date of `entry` in `from..=to`, read straight from the store
/// (never through a hot layer, which could hide what is on disk).
fn cache_checksums(
    store: &Store,
    entry: &crate::store::catalog::TableEntry,
    fields: &[&FieldEntry],
    (from, to): (Day, Day),
) -> Result<Vec<CachedDay>, StoreError> {
    let index: Vec<(Day, u32)> =
        store.day_index(entry.id)?.into_iter().filter(|(d, _)| (from..=to).contains(d)).collect();
    let key_ids: Vec<(u32, Day)> = index.iter().map(|&(day, _)| (entry.id, day)).collect();
    let keys = store.read_chunks(ChunkKind::Rows, &key_ids, |i, bytes| {
        let rows = index[i].1 as usize;
        Ok(match codec::decode_rows(bytes) {
            Ok(ids) if ids.len() == rows => Ok(()),
            Ok(ids) => Err(format!("it holds {} symbols where the day index says {rows}", ids.len())),
            Err(e) => Err(e),
        })
    })?;
    let mut days: Vec<CachedDay> = index
        .iter()
        .zip(keys)
        .map(|(&(day, rows), keys)| CachedDay {
            day,
            rows: u64::from(rows),
            ids: keys.unwrap_or_else(|| Err("it is missing".into())),
            fields: Vec::with_capacity(fields.len()),
        })
        .collect();
    for field in fields {
        let ids: Vec<(u32, Day)> = index.iter().map(|&(day, _)| (field.id, day)).collect();
        let sums = store.read_chunks(ChunkKind::Values, &ids, |i, bytes| {
            let rows = index[i].1 as usize;
            Ok(codec::decode_values(bytes, field.dtype).map_err(|e| format!("its chunk is unreadable: {e}")).and_then(
                |array| {
                    if array.len() != rows {
                        return Err(format!("its chunk holds {} values for {rows} rows", array.len()));
                    }
                    let mut sum = FieldChecksum::default();
                    (0..array.len()).filter_map(|r| checksum_value(array.as_ref(), r)).for_each(|v| sum.add(v));
                    Ok(sum)
                },
            ))
        })?;
        for (day, sum) in days.iter_mut().zip(sums) {
            day.fields.push(sum.unwrap_or_else(|| Err("its chunk is missing".into())));
        }
    }
    Ok(days)
}
