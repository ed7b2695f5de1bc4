//! The data-quality report: whether the source itself looks right, computed from the cached
//! chunks (never the source), per table and date, and per field.
//!
//! Each check compares a date with what came before it: the previous date, and the typical
//! date, the median of the previous `window` dates. A check flags a date when it departs from
//! them by more than its `[quality]` threshold, so a field that is always sparse or always
//! constant is not flagged for being so, but one that becomes so is.
//! - **coverage** (daily tables): the rows on each date of the calendar (the dates of every
//!   daily table), a date a table lacks counting 0;
//! - **missing**: each field's share of nulls;
//! - **stale**: each field's share of symbols whose value equals the previous date's;
//! - **outliers** (numeric fields): symbols beyond `outlier_k` robust deviations from the date's
//!   median (on the log scale for a positive field where fewer values lie that far) that were within half of that on each of the previous `window` dates, so a symbol
//!   that lives in a fat tail, or hovers at the threshold, is not news on every date;
//! - **late** (asof tables): symbols trading on a date (with a row in a daily table) whose latest
//!   event is older than `max_age_days`.

mod html;
mod late;
mod scan;
mod stats;

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Date32Array, DictionaryArray, Float64Array, StringArray, UInt16Array};
use arrow::datatypes::{DataType, Field, Schema, UInt16Type};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use serde::Serialize;

use crate::config::{Config, QualityConfig};
use crate::error::StoreError;
use crate::store::catalog::TableEntry;
use crate::store::Store;
use crate::types::{day_of, Day, TableKind};

/// What a metric measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Check {
    /// Rows on the date.
    Coverage,
    /// A field's share of nulls.
    Missing,
    /// A field's share of values unchanged from the previous date.
    Stale,
    /// A field's new outliers.
    Outliers,
    /// Trading symbols whose latest event is too old.
    Late,
}

impl Check {
    /// Every check, in report order.
    pub const ALL: [Check; 5] = [Check::Coverage, Check::Missing, Check::Stale, Check::Outliers, Check::Late];

    /// Its name, as the report prints it.
    pub fn name(self) -> &'static str {
        match self {
            Check::Coverage => "coverage",
            Check::Missing => "missing",
            Check::Stale => "stale",
            Check::Outliers => "outliers",
            Check::Late => "late",
        }
    }
}

/// One measurement: a check of a table, or of one of its fields, on one date.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The index of its table in [`QualityReport::tables`].
    pub table: usize,
    /// The index of its field in that table's `fields`, for field checks.
    pub field: Option<usize>,
    /// The date.
    pub date: NaiveDate,
    /// What it measures.
    pub check: Check,
    /// The measurement: rows, a share, or a count of symbols.
    pub value: f64,
    /// What it is compared with: the typical date's value, or for outliers and late symbols the
    /// count of all of them and of the symbols checked.
    pub typical: Option<f64>,
    /// Why the date is flagged; `None` when it is not.
    pub flag: Option<String>,
}

/// A table the report covers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableQuality {
    /// Its name.
    pub name: String,
    /// Daily or asof.
    pub kind: TableKind,
    /// Its fields, in catalog order.
    pub fields: Vec<String>,
}

/// The report: every metric of every table over the range.
#[derive(Debug, Clone)]
pub struct QualityReport {
    /// The dates it covers, when any table has cached dates in the range.
    pub range: Option<(NaiveDate, NaiveDate)>,
    /// The thresholds it flagged with.
    pub settings: QualityConfig,
    /// The tables, in config order.
    pub tables: Vec<TableQuality>,
    /// The metrics, by table, check, field and date.
    pub metrics: Vec<Metric>,
}

/// One flagged metric, with its names spelled out.
#[derive(Debug, Clone, Serialize)]
pub struct Flag {
    /// The table.
    pub table: String,
    /// The field, for field checks.
    pub field: Option<String>,
    /// The date.
    pub date: NaiveDate,
    /// The check.
    pub check: Check,
    /// The measurement.
    pub value: f64,
    /// What it was compared with.
    pub typical: Option<f64>,
    /// Why it is flagged.
    pub why: String,
}

impl QualityReport {
    /// Every flagged metric, by table, check, field and date.
    pub fn flags(&self) -> impl Iterator<Item = Flag> + '_ {
        self.metrics.iter().filter_map(|m| {
            let why = m.flag.clone()?;
            let table = &self.tables[m.table];
            Some(Flag {
                table: table.name.clone(),
                field: m.field.map(|f| table.fields[f].clone()),
                date: m.date,
                check: m.check,
                value: m.value,
                typical: m.typical,
                why,
            })
        })
    }

    /// The metrics as one Arrow table: `table`, `field` (null for table checks), `date`,
    /// `check`, `value`, `typical`, `flagged` and `why`, the names dictionary-encoded.
    pub fn to_arrow(&self) -> RecordBatch {
        let names = |all: Vec<String>, codes: Vec<Option<u16>>| -> ArrayRef {
            let keys = UInt16Array::from(codes);
            Arc::new(
                DictionaryArray::<UInt16Type>::try_new(keys, Arc::new(StringArray::from(all))).expect("codes in range"),
            )
        };
        // One code per distinct field name: two tables' `close` share it.
        let mut fields: Vec<String> = self.tables.iter().flat_map(|t| t.fields.iter().cloned()).collect();
        fields.sort_unstable();
        fields.dedup();
        let field_code =
            |m: &Metric| m.field.map(|f| fields.binary_search(&self.tables[m.table].fields[f]).expect("listed") as u16);
        let m = &self.metrics;
        let columns: Vec<ArrayRef> = vec![
            names(
                self.tables.iter().map(|t| t.name.clone()).collect(),
                m.iter().map(|m| Some(m.table as u16)).collect(),
            ),
            names(fields.clone(), m.iter().map(field_code).collect()),
            Arc::new(Date32Array::from(m.iter().map(|m| day_of(m.date)).collect::<Vec<Day>>())),
            names(
                Check::ALL.iter().map(|c| c.name().to_string()).collect(),
                m.iter()
                    .map(|m| Some(Check::ALL.iter().position(|c| *c == m.check).expect("a check") as u16))
                    .collect(),
            ),
            Arc::new(Float64Array::from(m.iter().map(|m| m.value).collect::<Vec<_>>())),
            Arc::new(Float64Array::from(m.iter().map(|m| m.typical).collect::<Vec<_>>())),
            Arc::new(BooleanArray::from(m.iter().map(|m| m.flag.is_some()).collect::<Vec<_>>())),
            Arc::new(StringArray::from(m.iter().map(|m| m.flag.as_deref()).collect::<Vec<_>>())),
        ];
        let dictionary = || DataType::Dictionary(Box::new(DataType::UInt16), Box::new(DataType::Utf8));
        let schema = Schema::new(vec![
            Field::new("table", dictionary(), false),
            Field::new("field", dictionary(), true),
            Field::new("date", DataType::Date32, false),
            Field::new("check", dictionary(), false),
            Field::new("value", DataType::Float64, false),
            Field::new("typical", DataType::Float64, true),
            Field::new("flagged", DataType::Boolean, false),
            Field::new("why", DataType::Utf8, true),
        ]);
        RecordBatch::try_new(Arc::new(schema), columns).expect("columns match the schema")
    }

    /// The report as one self-contained HTML page: heatmaps of missing share (fields × months)
    /// and of coverage (tables × months) linking to the flagged dates.
    pub fn to_html(&self, title: &str) -> String {
        html::page(self, title)
    }
}

/// A cached table and its dates up to its watermark.
type Cached<'a> = (&'a TableEntry, Vec<(Day, u32)>);

/// Assesses the cached `tables` (every configured and every local table when empty) of `store`
/// over `start..=end` (each defaulting to the whole cached range).
///
/// # Errors
/// [`StoreError`] when the store cannot be read or a chunk does not decode.
pub fn assess(
    store: &Store,
    config: &Config,
    tables: &[String],
    (start, end): (Option<NaiveDate>, Option<NaiveDate>),
) -> Result<QualityReport, StoreError> {
    let settings = config.quality.clone();
    let catalog = store.catalog()?;
    let symbols = store.symbols()?;
    let range = (start.map_or(Day::MIN, day_of), end.map_or(Day::MAX, day_of));
    // Every cached table of the config makes the calendar, even when only some are assessed:
    // a trading date is a date of any daily table. Local tables are assessed like daily ones,
    // against that calendar, but do not add to it.
    let configured = config.tables.iter().filter_map(|t| catalog.table(&t.name));
    let local = catalog.tables.iter().filter(|t| t.is_local());
    let mut cached: Vec<Cached<'_>> = Vec::new();
    for entry in configured.chain(local) {
        let Some(watermark) = store.watermark(entry.id)? else { continue };
        let days = store.day_index(entry.id)?.into_iter().filter(|(d, _)| *d <= watermark).collect();
        cached.push((entry, days));
    }
    let mut calendar: Vec<Day> = cached
        .iter()
        .filter(|(t, _)| t.kind == TableKind::Daily && !t.is_local())
        .flat_map(|(_, days)| days.iter().map(|(d, _)| *d))
        .collect();
    calendar.sort_unstable();
    calendar.dedup();
    let scan = |entry, days| scan::TableScan { store, entry, days, calendar: &calendar, range, settings: &settings };

    let assessed = |name: &str| tables.is_empty() || tables.iter().any(|t| t == name);
    let late_needed = cached.iter().any(|(t, _)| t.kind == TableKind::Asof && assessed(&t.name));
    let mut report = QualityReport { range: None, settings: settings.clone(), tables: Vec::new(), metrics: Vec::new() };
    let mut alive = late::Alive::default();
    let mut asof = Vec::new();
    for (table, days) in &cached {
        let scan = scan(*table, days.as_slice());
        if !assessed(&table.name) {
            if late_needed && table.kind == TableKind::Daily {
                alive.add(&scan.ids()?);
            }
            continue;
        }
        let index = report.tables.len();
        report.tables.push(TableQuality {
            name: table.name.clone(),
            kind: table.kind,
            fields: table.fields.iter().map(|f| f.name.clone()).collect(),
        });
        let ids = scan.ids()?;
        report.metrics.extend(scan.fields(index, &ids, &symbols)?);
        match table.kind {
            TableKind::Daily => {
                report.metrics.extend(scan.coverage(index));
                if late_needed {
                    alive.add(&ids);
                }
            }
            TableKind::Asof => asof.push((index, ids)),
        }
    }
    // Late needs every daily table's symbols, so it comes once they are all read.
    for (index, events) in asof {
        report.metrics.extend(late::late(index, &events, &alive, &calendar, range, &settings, &symbols));
    }
    report.metrics.sort_by_key(|m| (m.table, m.check, m.field, m.date));
    let dates = report.metrics.iter().map(|m| m.date);
    report.range = dates.clone().min().zip(dates.max());
    Ok(report)
}
