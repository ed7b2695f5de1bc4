//! Reading: requested fields over a date range, assembled into one Arrow table keyed by
//! (date, symbol). A [`Reader`] holds what a read needs beside its [`Request`]: the view, the
//! config's rules, the chunk source, the shared layer and the output pool. A read runs in three
//! steps with types between them:
//! - [`plan`](plan::plan): what the request means against the view, touching no chunk;
//! - [`fetch`](fetch::fetch): the decoded chunks the plan needs, from a
//!   [`ChunkSource`](fetch::ChunkSource);
//! - [`assemble`](assemble::assemble): the chunks into the output columns.
//!
//! Asked to, [`adjust`] then multiplies the price columns by their factors, read beside them as
//! fields the plan adds. A wide read ([`panel`]) plans and fetches the same way and scatters the
//! chunks into date × symbol matrices instead.
//!
//! Words: the caller asks for `cols`, the names of the output columns as written; each resolves
//! to a cached `field` of a table.

mod adjust;
mod asof;
mod assemble;
mod fetch;
mod layered;
mod membership;
mod outline;
mod panel;
mod past;
mod plan;
mod pool;
mod resolve;

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};

pub use self::adjust::Adjust;
pub(crate) use self::assemble::Assembled;
pub use self::assemble::{symbol_type, DateLayout};
pub(crate) use self::fetch::{ChunkSource, HotStore, Unopened};
pub(crate) use self::layered::{dictionary_keys, narrow, ranking_of_first, recode};
pub use self::outline::Outline;
pub use self::panel::Panel;
pub(crate) use self::past::{Chunks, PastStore};
pub(crate) use self::plan::{check_range, plan, Plan};
pub use self::pool::OutputPool;
pub(crate) use self::resolve::{resolve_fields, ReadRules};
use crate::error::{QueryError, StoreError, VersionError};
use crate::share::{LayerView, SharedLayer};
use crate::store::Version;
use crate::types::{date_of, Day};
use crate::view::View;

#[cfg(feature = "internals")]
pub use self::assemble::{assemble, Inputs};

/// What to read: build it with [`Request::new`] and the optional settings after it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Request {
    /// First date, inclusive.
    pub start: NaiveDate,
    /// Last date, inclusive.
    pub end: NaiveDate,
    /// Field names as the user wrote them (`close`, `valuation.pe`, an alias); they name the
    /// output columns, in this order.
    pub cols: Vec<String>,
    /// Keep only these symbols; unknown ones are simply absent.
    pub symbols: Option<Vec<String>>,
    /// Use this table's keys as the rows instead of the union of the fields' tables.
    pub base: Option<String>,
    /// The layout of the `date` column.
    pub dates: DateLayout,
    /// How integer fields with nulls come back.
    pub integer_nulls: IntegerNulls,
    /// Adjust the price fields of tables with `[table.adjust]`.
    pub adjust: Option<Adjust>,
    /// Keep only rows whose symbol was a member of this universe on the row's date.
    pub universe: Option<String>,
    /// The store version to read; the latest when `None`.
    pub as_of: Option<AsOf>,
}

/// How a read returns an integer field that has nulls in its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IntegerNulls {
    /// As integers with a validity bitmap, as Arrow holds them.
    #[default]
    Validity,
    /// As float64 with NaN at the nulls, the validity kept: the column pandas' numpy backend
    /// holds, which the shared layer then serves as a view instead of every process widening
    /// its own copy.
    NanFloat,
}

/// Which store version a read sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsOf {
    /// A version, by number.
    Version(u64),
    /// The version that was the newest at a moment.
    Moment(DateTime<Utc>),
    /// The version a snapshot pins, by the snapshot's name.
    Snapshot(String),
}

impl AsOf {
    /// A moment as text: RFC 3339 (`2026-03-01T16:00:00Z`, any offset), or a date and time
    /// without a zone (`2026-03-01 16:00:00`, `2026-03-01T16:00`), or a date alone (its
    /// midnight); without a zone, UTC.
    ///
    /// # Errors
    /// [`VersionError::BadMoment`].
    pub fn moment(text: &str) -> Result<Self, VersionError> {
        let trimmed = text.trim();
        if let Ok(moment) = DateTime::parse_from_rfc3339(trimmed) {
            return Ok(Self::Moment(moment.with_timezone(&Utc)));
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
            if let Ok(moment) = chrono::NaiveDateTime::parse_from_str(trimmed, format) {
                return Ok(Self::Moment(moment.and_utc()));
            }
        }
        match NaiveDate::parse_from_str(trimmed, "%Y-%m-%d") {
            Ok(date) => Ok(Self::Moment(date.and_time(chrono::NaiveTime::MIN).and_utc())),
            Err(_) => Err(VersionError::BadMoment { text: text.to_string() }),
        }
    }
}

impl Request {
    /// Reads `cols` over `start..=end` (inclusive), every symbol, rows from the fields' tables,
    /// at the latest version.
    pub fn new(start: NaiveDate, end: NaiveDate, cols: Vec<String>) -> Self {
        Self {
            start,
            end,
            cols,
            symbols: None,
            base: None,
            dates: DateLayout::Date32,
            integer_nulls: IntegerNulls::Validity,
            adjust: None,
            universe: None,
            as_of: None,
        }
    }

    /// Reads at this store version.
    #[must_use]
    pub fn as_of(mut self, as_of: AsOf) -> Self {
        self.as_of = Some(as_of);
        self
    }

    /// Adjusts prices so.
    #[must_use]
    pub fn adjust(mut self, adjust: Adjust) -> Self {
        self.adjust = Some(adjust);
        self
    }

    /// Keeps only the rows of the universe's members on each date.
    #[must_use]
    pub fn universe(mut self, name: impl Into<String>) -> Self {
        self.universe = Some(name.into());
        self
    }

    /// Keeps only these symbols.
    #[must_use]
    pub fn symbols(mut self, symbols: Vec<String>) -> Self {
        self.symbols = Some(symbols);
        self
    }

    /// Takes the rows from this table's keys.
    #[must_use]
    pub fn base(mut self, table: impl Into<String>) -> Self {
        self.base = Some(table.into());
        self
    }

    /// Lays out the `date` column so.
    #[must_use]
    pub fn dates(mut self, layout: DateLayout) -> Self {
        self.dates = layout;
        self
    }

    /// Returns integer fields with nulls so.
    #[must_use]
    pub fn integer_nulls(mut self, layout: IntegerNulls) -> Self {
        self.integer_nulls = layout;
        self
    }
}

/// An assembled result.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// `date` (Date32), `symbol` (dictionary over the global symbol dictionary), then the fields.
    pub batch: RecordBatch,
    /// The dates actually covered: the request clipped to what every involved table has loaded.
    pub covered: Option<(NaiveDate, NaiveDate)>,
    /// Each date with rows, and how many; the rows are in this order.
    pub rows_per_day: Vec<(NaiveDate, usize)>,
    /// What the shared layer gave, if it served any of the rows.
    pub shared: Option<SharedUse>,
    /// The store version read: reading it again returns this result.
    pub version: Version,
    /// The snapshot the request named, if it named one.
    pub snapshot: Option<String>,
}

/// How a read used the shared layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedUse {
    /// The layer's generation.
    pub generation: u64,
    /// The result's rows it served.
    pub rows: usize,
    /// Whether the result's columns are views of the layer's memory: nothing decoded, copied or
    /// allocated per row.
    pub views: bool,
}

/// A result's columns before they become a batch.
pub(crate) struct Columns {
    dates: ArrayRef,
    symbols: ArrayRef,
    fields: Vec<ArrayRef>,
    rows_per_day: Vec<(Day, usize)>,
    shared: Option<SharedUse>,
}

/// What a read needs beyond its request: a view of the store, what the config says about
/// reading, where decoded chunks come from, the shared layer when it may serve the read, and the
/// pool the result's buffers come from.
pub(crate) struct Reader<'a, C> {
    /// The catalog, symbols, days and marks the read sees.
    pub view: &'a View,
    /// Aliases, adjustments and the configured universes.
    pub rules: &'a ReadRules,
    /// Decoded chunks, day indexes and universes.
    pub chunks: &'a C,
    /// The shared layer and the generation it offers, when it may serve the read.
    pub shared: Option<(&'a SharedLayer, &'a LayerView)>,
    /// Where the result's buffers come from.
    pub pool: &'a OutputPool,
}

impl<'a, C: ChunkSource> Reader<'a, C> {
    /// Plans `request`: its names resolved, its cut and days fixed, its universe loaded.
    ///
    /// # Errors
    /// [`QueryError`] for bad arguments and unknown or ambiguous names, and store failures.
    pub fn plan(&self, request: &Request) -> Result<Plan<'a>, QueryError> {
        let universe = match &request.universe {
            Some(name) => Some(self.chunks.universe(name)?.ok_or_else(|| self.rules.no_universe(name))?),
            None => None,
        };
        plan::plan(self.view, self.rules, request, universe.as_ref())
    }

    /// Reads `request`: takes what it can from the shared layer, fetches the other chunks, and
    /// assembles them into buffers from the pool.
    ///
    /// # Errors
    /// As for [`Reader::plan`].
    pub fn read(&self, request: &Request) -> Result<QueryResult, QueryError> {
        let (view, chunks, pool) = (self.view, self.chunks, self.pool);
        let plan = self.plan(request)?;
        let store = |plan: &Plan<'_>| from_store(plan, view, chunks, pool, request.dates);
        let chosen = self.shared.and_then(|(layer, lv)| Some((layer, lv, layered::choose(&plan, view, lv)?)));
        let mut columns = match chosen {
            Some((layer, lv, choice)) => match layered::read(&plan, view, lv, &choice, request, store)? {
                Ok(columns) => {
                    layer.touch(choice.segment.id);
                    columns
                }
                Err(e) => {
                    layer.failed(&e);
                    store(&plan)?
                }
            },
            None => store(&plan)?,
        };
        if plan.adjust.is_some() {
            let divisors = divisors(&plan, view, chunks, || adjust::symbol_ranks(&columns.symbols))?;
            adjust::adjust_long(&columns.symbols, &mut columns.fields, &plan.adjusted, &divisors);
        }
        columns.fields.truncate(plan.outputs);
        if request.integer_nulls == IntegerNulls::NanFloat {
            for field in &mut columns.fields {
                if let Some(floats) = crate::types::nan_floats(field.as_ref()) {
                    *field = floats;
                    // Widened here, in this process's memory: not a view of the layer.
                    if let Some(shared) = columns.shared.as_mut() {
                        shared.views = false;
                    }
                }
            }
        }

        let mut schema_fields = vec![
            Field::new("date", columns.dates.data_type().clone(), false),
            Field::new("symbol", columns.symbols.data_type().clone(), false),
        ];
        schema_fields.extend(
            plan.output_fields()
                .into_iter()
                .zip(&columns.fields)
                .map(|((name, _), array)| Field::new(name, array.data_type().clone(), true)),
        );
        let mut arrays: Vec<ArrayRef> = vec![columns.dates, columns.symbols];
        arrays.extend(columns.fields);
        let batch =
            RecordBatch::try_new(Arc::new(Schema::new(schema_fields)), arrays).expect("columns match the schema");
        let rows_per_day = columns.rows_per_day.into_iter().map(|(day, rows)| (date_of(day), rows)).collect();
        let version = self.view.version;
        Ok(QueryResult { batch, covered: plan.covered, rows_per_day, shared: columns.shared, version, snapshot: None })
    }

    /// Reads `request` wide: each field as a date × symbol matrix, scattered from the chunks.
    ///
    /// # Errors
    /// As for [`Reader::plan`], and [`QueryError::InvalidArgument`] for a field that is not
    /// numeric.
    pub fn panel(&self, request: &Request) -> Result<Panel, QueryError> {
        let plan = self.plan(request)?;
        panel::check(&plan)?;
        Ok(panel::read_panel(&plan, self.view, self.chunks)?)
    }

    /// What [`Reader::read`] of `request` would return, without reading a chunk.
    ///
    /// # Errors
    /// As for [`Reader::plan`].
    pub fn outline(&self, request: &Request) -> Result<Outline, QueryError> {
        let plan = self.plan(request)?;
        Ok(outline::outline(&plan, self.chunks, self.view.symbols.len(), self.view.version)?)
    }
}

/// Forward adjustment's divisors per factor (none for backward), for the symbol ranks
/// `ranks` gives: the result's.
fn divisors(
    plan: &Plan<'_>,
    view: &View,
    chunks: &impl ChunkSource,
    ranks: impl FnOnce() -> Vec<usize>,
) -> Result<Vec<(usize, Vec<f64>)>, StoreError> {
    if plan.adjust != Some(Adjust::Forward) {
        return Ok(Vec::new());
    }
    let mut wanted = vec![false; view.ranking.rank.len()];
    for rank in ranks() {
        wanted[rank] = true;
    }
    let mut divisors: Vec<(usize, Vec<f64>)> = Vec::new();
    for &(_, factor) in &plan.adjusted {
        if !divisors.iter().any(|(f, _)| *f == factor) {
            divisors.push((factor, adjust::latest_factors(plan, view, chunks, factor, &wanted)?));
        }
    }
    Ok(divisors)
}

/// Fetches and assembles `plan` from the store.
fn from_store(
    plan: &Plan<'_>,
    view: &View,
    chunks: &impl ChunkSource,
    pool: &OutputPool,
    dates: DateLayout,
) -> Result<Columns, StoreError> {
    let assembled = assemble_plan(plan, view, chunks, pool, dates, false)?;
    let rows_per_day =
        plan.days.iter().zip(&assembled.rows_per_day).filter(|(_, &n)| n > 0).map(|(&d, &n)| (d, n)).collect();
    Ok(Columns {
        dates: assembled.dates,
        symbols: assembled.symbols,
        fields: assembled.fields,
        rows_per_day,
        shared: None,
    })
}

/// Fetches `plan`'s chunks from `chunks` and assembles them, with the row tables' presence if
/// asked.
pub(crate) fn assemble_plan(
    plan: &Plan<'_>,
    view: &View,
    chunks: &impl ChunkSource,
    pool: &OutputPool,
    dates: DateLayout,
    presence: bool,
) -> Result<Assembled, StoreError> {
    let fetched = fetch::fetch(plan, view, chunks)?;
    Ok(assemble::assemble(&inputs(plan, view, fetched, dates, presence), pool))
}

/// What the assemblers read: `plan`'s fetched chunks, its filters and `view`'s ranking.
fn inputs<'a>(
    plan: &'a Plan<'_>,
    view: &'a View,
    fetched: fetch::Fetched,
    dates: DateLayout,
    presence: bool,
) -> assemble::Inputs<'a> {
    let fields = plan
        .fields
        .iter()
        .zip(fetched.fields)
        .map(|(f, chunks)| (plan.table_index(f.table.id), f.field.dtype, chunks))
        .collect();
    assemble::Inputs {
        days: &plan.days,
        tables: fetched.tables,
        row_tables: (0..plan.row_tables).collect(),
        fields,
        symbols: plan.symbols.as_deref(),
        universe: plan.universe.as_deref(),
        ranking: &view.ranking,
        dates,
        presence,
    }
}
