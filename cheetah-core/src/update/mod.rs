//! The updater: brings every configured table from its watermark up to the source's newest date.
//!
//! Per table, one run:
//! 1. checks the config against the source's catalog and reconciles the store's catalog (new,
//!    removed and re-typed fields; a rebuilt table when its settings changed), then sweeps the
//!    chunks of ids the catalog dropped;
//! 2. backfills newly added fields alone, over the dates already cached;
//! 3. re-fetches the last `lookback` cached dates and every newer one, replacing each date whole
//!    in one atomic batch with the watermark, and deleting cached dates the source no longer has.
//!
//! A failure ends that table's run; what was committed stays readable and the next run resumes.
//!
//! Tables run side by side, as many at once as the busiest source has `connections`; every
//! fetch of a source shares that source's connections and windows. Each store write happens in
//! the store's writing turn, one date at a time, so a table's dates commit whole and in order
//! whatever the other tables do.

mod chunks;
mod days;
mod progress;
mod reconcile;
mod universes;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use chrono::NaiveDate;

pub use self::chunks::{encode_aligned, encode_day, encode_keyed, DayChunks};
pub use self::days::DaySplitter;
pub use self::progress::{ProgressEvent, ProgressFn, ProgressTask};
pub use self::reconcile::{reconcile, CatalogDiff};
pub use self::universes::UniverseReport;

use self::progress::Reporter;
use crate::config::{Config, TableConfig};
use crate::error::{StoreError, UpdateError};
use crate::source::{self, ResolvedTable, Source, Sources, WindowedRows};
use crate::store::catalog::{FieldEntry, TableEntry};
use crate::store::symbols::SymbolDictionary;
use crate::store::Store;
use crate::types::{date_of, day_of, Day};

/// What one table's run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TableReport {
    /// The table.
    pub table: String,
    /// What changed in the catalog.
    pub changes: CatalogDiff,
    /// Dates written (new or replaced).
    pub dates: usize,
    /// Rows written.
    pub rows: u64,
    /// Cached dates deleted because the source no longer has them.
    pub dates_deleted: usize,
    /// Dates written while backfilling added fields.
    pub backfilled_dates: usize,
    /// The watermark after the run.
    pub watermark: Option<NaiveDate>,
    /// Wall time.
    pub seconds: f64,
}

/// The outcome of every table of a run.
#[derive(Debug, Default)]
pub struct UpdateReport {
    /// Each table with its report or error, in config order.
    pub tables: Vec<(String, Result<TableReport, UpdateError>)>,
    /// Each universe with its report or error, in config order.
    pub universes: Vec<(String, Result<UniverseReport, UpdateError>)>,
    /// Each source the run read, with how its tables and universes went.
    pub sources: BTreeMap<String, SourceOutcome>,
}

/// How the tables and universes of one source went in a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceOutcome {
    /// Tables and universes run.
    pub ran: usize,
    /// Those that failed, other than by being interrupted.
    pub failed: usize,
    /// Those stopped by the stop flag.
    pub interrupted: usize,
}

impl UpdateReport {
    fn count(&mut self, source: &str, error: Option<&UpdateError>) {
        let outcome = self.sources.entry(source.to_string()).or_default();
        outcome.ran += 1;
        let interrupted = error.is_some_and(|e| matches!(e, UpdateError::Interrupted));
        outcome.failed += usize::from(error.is_some() && !interrupted);
        outcome.interrupted += usize::from(interrupted);
    }

    /// The reports, or the first failure. Tables after a failed one were still updated.
    ///
    /// # Errors
    /// The first table's error.
    pub fn into_result(self) -> Result<Vec<TableReport>, UpdateError> {
        if let Some((_, Err(e))) = self.universes.into_iter().find(|(_, r)| r.is_err()) {
            let tables: Result<Vec<TableReport>, UpdateError> = self.tables.into_iter().map(|(_, r)| r).collect();
            return tables.and(Err(e));
        }
        self.tables.into_iter().map(|(_, r)| r).collect()
    }

    /// The tables and universes that failed.
    pub fn failures(&self) -> impl Iterator<Item = (&str, &UpdateError)> {
        let tables = self.tables.iter().filter_map(|(name, r)| r.as_ref().err().map(|e| (name.as_str(), e)));
        let universes = self.universes.iter().filter_map(|(name, r)| r.as_ref().err().map(|e| (name.as_str(), e)));
        tables.chain(universes)
    }
}

/// Runs updates of one store from one config.
pub struct Updater<'a> {
    config: &'a Config,
    store: &'a Store,
    sources: Sources,
    only: Option<BTreeSet<String>>,
    /// The store's symbols; used in a [`Turn`] only.
    symbols: Mutex<SymbolDictionary>,
    stop: Arc<AtomicBool>,
    progress: Option<ProgressFn>,
}

/// The store's writing turn, held for one commit or one catalog change, with the symbol
/// dictionary as of it.
struct Turn<'u> {
    symbols: MutexGuard<'u, SymbolDictionary>,
    _writing: MutexGuard<'u, ()>,
}

impl Turn<'_> {
    /// Adds a day's chunks and the symbols they introduced to `batch`.
    fn stage_day(&self, batch: &mut crate::store::StoreBatch<'_>, table: &TableEntry, chunks: DayChunks) {
        batch.put_day(table.id, chunks.day, chunks.rows, chunks.ids);
        for (field, (id, chunk)) in table.fields.iter().zip(chunks.values) {
            debug_assert_eq!(field.id, id, "chunks are encoded in the table's field order");
            batch.put_values(table.id, field, chunks.day, chunk);
        }
        batch.put_new_symbols(&self.symbols);
    }

    fn commit(&mut self, store: &Store, batch: crate::store::StoreBatch<'_>) -> Result<(), StoreError> {
        store.write(batch)?;
        self.symbols.mark_persisted();
        Ok(())
    }
}

impl<'a> Updater<'a> {
    /// An updater writing `store` from `config`'s sources.
    ///
    /// # Errors
    /// [`StoreError::ReadOnly`] if `store` was opened for reading, or a failure to load the
    /// symbol dictionary.
    pub fn new(config: &'a Config, store: &'a Store) -> Result<Self, StoreError> {
        if !store.is_writer() {
            return Err(StoreError::ReadOnly { path: store.path().to_path_buf() });
        }
        Ok(Self {
            config,
            store,
            sources: Sources::new(config),
            only: None,
            symbols: Mutex::new(store.symbols()?),
            stop: Arc::new(AtomicBool::new(false)),
            progress: None,
        })
    }

    /// Stops the run between dates once `flag` is set; the current date is committed or
    /// abandoned whole.
    pub fn stop_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = flag;
        self
    }

    /// Runs only the tables and universes read from these sources; every source when `None`.
    pub fn only_sources(mut self, sources: Option<BTreeSet<String>>) -> Self {
        self.only = sources;
        self
    }

    /// Reports progress to `callback`.
    pub fn on_progress(mut self, callback: Option<ProgressFn>) -> Self {
        self.progress = callback;
        self
    }

    /// Updates every configured table, then every universe, of the sources it runs. A source
    /// that fails fails only its own tables and universes; the others go on.
    pub fn run(&mut self) -> UpdateReport {
        let mut report = UpdateReport::default();
        let config = self.config;
        let runs = |source: &str| self.only.as_ref().is_none_or(|only| only.contains(source));
        let tables: Vec<&TableConfig> = config.tables.iter().filter(|t| runs(&t.source)).collect();
        let universes: Vec<_> = config.universes.iter().filter(|u| runs(&u.source)).collect();
        for (table, outcome) in tables.iter().zip(self.run_tables(&tables)) {
            report.count(&table.source, outcome.as_ref().err());
            report.tables.push((table.name.clone(), outcome));
        }
        for universe in universes {
            let outcome = if self.stop.load(Ordering::Relaxed) {
                Err(UpdateError::Interrupted)
            } else {
                self.run_universe(universe)
            };
            match &outcome {
                Ok(r) => {
                    tracing::info!(universe = %r.universe, intervals = r.intervals, symbols = r.symbols, "universe updated")
                }
                Err(UpdateError::Interrupted) => {}
                Err(e) => tracing::error!(universe = %universe.name, source = %universe.source, "update failed: {e}"),
            }
            report.count(&universe.source, outcome.as_ref().err());
            report.universes.push((universe.name.clone(), outcome));
        }
        if let Err(e) = self.drop_unconfigured_universes() {
            tracing::error!("deleting universes no longer in the config failed: {e}");
        }
        // An interrupted run returns at once; the next one merges.
        let tidied = if self.stop.load(Ordering::Relaxed) { Ok(None) } else { self.store.tidy() };
        match tidied {
            Ok(Some(files)) => tracing::info!(files, "merged the store's small table files, which every reader opens"),
            Ok(None) => {}
            // Only readers' open time depends on it: the update itself succeeded.
            Err(e) => tracing::warn!("merging the store's small table files failed: {e}"),
        }
        report
    }

    /// Runs `tables` side by side, as many at once as the busiest of their sources has
    /// connections, taking them in config order; their outcomes in that order.
    fn run_tables(&self, tables: &[&TableConfig]) -> Vec<Result<TableReport, UpdateError>> {
        let busiest = tables.iter().map(|t| self.sources.get(&t.source).config().connections).max();
        let workers = busiest.unwrap_or(1).min(tables.len());
        let next = AtomicUsize::new(0);
        let outcomes: Vec<Mutex<Option<Result<TableReport, UpdateError>>>> =
            tables.iter().map(|_| Mutex::default()).collect();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(table) = tables.get(index) else { break };
                    let outcome = self.run_table(table);
                    match &outcome {
                        Ok(r) => tracing::info!(
                            table = %r.table,
                            source = %table.source,
                            dates = r.dates,
                            rows = r.rows,
                            watermark = ?r.watermark,
                            seconds = format!("{:.2}", r.seconds),
                            "table updated"
                        ),
                        Err(e) => tracing::error!(table = %table.name, source = %table.source, "update failed: {e}"),
                    }
                    *outcomes[index].lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
                });
            }
        });
        outcomes
            .into_iter()
            .map(|o| o.into_inner().unwrap_or_else(PoisonError::into_inner).expect("every table ran"))
            .collect()
    }

    /// Takes the store's writing turn (a local write, or another table, may have committed
    /// since this one's last) and learns the symbols committed meanwhile.
    fn turn(&self) -> Result<Turn<'_>, StoreError> {
        let writing = self.store.exclusive();
        let mut symbols = self.symbols.lock().unwrap_or_else(PoisonError::into_inner);
        // A turn interns and commits together: symbols still unpersisted are a failed turn's,
        // and a local write may since have given their ids to others.
        symbols.forget_unpersisted();
        self.store.load_new_symbols(&mut symbols)?;
        Ok(Turn { symbols, _writing: writing })
    }

    /// A connection to `source` counted in its budget, once one is free; an interruption
    /// stops the wait.
    fn connect(&self, source: &Source) -> Result<source::Counted, UpdateError> {
        let stopped = || self.stop.load(Ordering::Relaxed);
        source.connect_counted(&stopped)?.ok_or(UpdateError::Interrupted)
    }

    /// The source named `name`, cloned so that it outlives borrows of the updater.
    fn source(&self, name: &str) -> Source {
        self.sources.get(name).clone()
    }

    /// Updates one table.
    ///
    /// # Errors
    /// A source failure, a store failure, duplicate keys, or an interruption. Every date
    /// committed before it stays readable.
    pub fn run_table(&self, table: &TableConfig) -> Result<TableReport, UpdateError> {
        let started = Instant::now();
        let source = self.source(&table.source);
        // Only this table's run changes its catalog entry: the fields cached now stay so.
        let catalog = self.store.catalog()?;
        refuse_local(&catalog, &table.name)?;
        let resolved = {
            let counted = self.connect(&source)?;
            source::resolve(&source, &counted.connection, table, &cached_fields(&catalog, &table.name))?
        };
        let (mut entry, changes) = {
            let _turn = self.turn()?;
            let mut catalog = self.store.catalog()?;
            let has_data = match catalog.table(&table.name) {
                Some(entry) => self.store.watermark(entry.id)?.is_some(),
                None => false,
            };
            let changes = reconcile(&mut catalog, &resolved, has_data);
            if changes.any() {
                log_changes(&table.name, &changes);
                let mut batch = self.store.batch();
                batch.put_catalog(&catalog);
                if changes.drops_ids() {
                    batch.mark_sweep_pending();
                }
                self.store.write(batch)?;
            }
            // Walking every id is the costliest part of an update with nothing new to fetch, so
            // it runs only while dropped ids await it (across a crash too: the mark is in the
            // store).
            if self.store.sweep_pending()? {
                let swept = self.store.sweep(&catalog)?;
                if !swept.is_empty() {
                    tracing::info!(table = %table.name, ids = ?swept, "deleted the chunks of dropped fields and compacted their space");
                }
            }
            (catalog.table(&table.name).expect("reconciled").clone(), changes)
        };
        let mut report = TableReport { table: table.name.clone(), changes, ..TableReport::default() };

        if let Some(watermark) = self.store.watermark(entry.id)? {
            let incomplete: Vec<FieldEntry> = entry.fields.iter().filter(|f| !f.complete).cloned().collect();
            if !incomplete.is_empty() {
                report.backfilled_dates = self.backfill(&resolved, &entry, &incomplete, watermark)?;
                let _turn = self.turn()?;
                let mut catalog = self.store.catalog()?;
                let mut batch = self.store.batch();
                let stored = catalog.tables.iter_mut().find(|t| t.id == entry.id).expect("present");
                for field in stored.fields.iter_mut().filter(|f| !f.complete) {
                    field.complete = true;
                    batch.delete_fieldmark(field.id);
                }
                batch.put_catalog(&catalog);
                self.store.write(batch)?;
                entry = catalog.table(&table.name).expect("present").clone();
            }
        }

        self.fetch_new(&source, &resolved, &entry, &mut report)?;
        report.watermark = self.store.watermark(entry.id)?.map(date_of);
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Re-fetches the lookback dates and fetches every newer one. One connection answers the
    /// date span and is closed before the rows stream over the source's `connections`.
    fn fetch_new(
        &self,
        source: &Source,
        table: &ResolvedTable,
        entry: &TableEntry,
        report: &mut TableReport,
    ) -> Result<(), UpdateError> {
        let config = &table.config;
        let watermark = self.store.watermark(entry.id)?;
        let from = match watermark {
            None => config.start,
            Some(mark) if config.lookback == 0 => date_of(mark).succ_opt().unwrap_or(date_of(mark)),
            Some(mark) => self.store.nth_latest_day(entry.id, mark, config.lookback)?.map_or(date_of(mark), date_of),
        }
        .max(config.start);
        let span = {
            let counted = self.connect(source)?;
            source::date_span(source, &counted.connection, table, from)?
        };
        let newest = span.map(|(_, newest)| newest);
        let to = newest.into_iter().chain(watermark.map(date_of)).max();
        let Some(to) = to.filter(|to| *to >= from) else {
            tracing::info!(table = %config.name, "no dates at or after {from} in the source");
            return Ok(());
        };
        // Cached dates in the range that the fetch does not return have vanished from the source.
        let mut stale: VecDeque<Day> = self.store.days(entry.id, day_of(from), day_of(to))?.into();
        let mut high_water = watermark.unwrap_or(Day::MIN);
        let progress = Reporter::start(self.progress.as_ref(), &config.name, ProgressTask::NewDates, from, to);

        if let Some((oldest, newest)) = span {
            // Starting at the oldest row skips an empty stretch without sizing windows on it.
            let stream = WindowedRows::new(
                source,
                table,
                &field_list(&entry.fields),
                (from.max(oldest), newest),
                self.stop.clone(),
            );
            for day_rows in DaySplitter::new(stream, &config.name) {
                if self.stop.load(Ordering::Relaxed) {
                    return Err(UpdateError::Interrupted);
                }
                let day_rows = day_rows?;
                let mut turn = self.turn()?;
                let chunks = encode_day(&day_rows, entry, &mut turn.symbols, self.store.compression_level())?;
                let mut batch = self.store.batch();
                while stale.front().is_some_and(|&d| d <= chunks.day) {
                    let day = stale.pop_front().expect("checked");
                    if day < chunks.day {
                        batch.delete_day(entry, day);
                        report.dates_deleted += 1;
                    }
                }
                let (day, rows) = (chunks.day, chunks.rows);
                turn.stage_day(&mut batch, entry, chunks);
                high_water = high_water.max(day);
                batch.put_watermark(entry.id, high_water);
                turn.commit(self.store, batch)?;
                drop(turn);
                report.dates += 1;
                report.rows += rows as u64;
                progress.committed(date_of(day), rows);
            }
        }
        let _turn = self.turn()?;
        let mut batch = self.store.batch();
        for day in stale.drain(..) {
            batch.delete_day(entry, day);
            report.dates_deleted += 1;
        }
        batch.put_watermark(entry.id, high_water.max(day_of(to)));
        batch.put_updated(entry.id, chrono::Utc::now().timestamp());
        self.store.write(batch)?;
        Ok(())
    }

    /// Re-fetches `dates` of `table` from the source, each replaced whole in one atomic batch; a
    /// date the source no longer has is deleted. Watermarks do not move. Returns the dates
    /// rewritten.
    ///
    /// # Errors
    /// [`UpdateError::CatalogChanged`] when the source or config changed since the last update,
    /// a source or store failure, or an interruption; the dates repaired before it stay.
    pub fn repair(&self, table: &TableConfig, dates: &[NaiveDate]) -> Result<usize, UpdateError> {
        let source = self.source(&table.source);
        let catalog = self.store.catalog()?;
        refuse_local(&catalog, &table.name)?;
        let resolved = {
            let counted = self.connect(&source)?;
            source::resolve(&source, &counted.connection, table, &cached_fields(&catalog, &table.name))?
        };
        let Some(entry) = catalog.table(&table.name) else { return Ok(0) };
        if reconcile(&mut catalog.clone(), &resolved, true).any() {
            return Err(UpdateError::CatalogChanged { table: table.name.clone() });
        }
        let mut dates = dates.to_vec();
        dates.sort_unstable();
        dates.dedup();
        for &date in &dates {
            if self.stop.load(Ordering::Relaxed) {
                return Err(UpdateError::Interrupted);
            }
            let stream =
                WindowedRows::new(&source, &resolved, &field_list(&entry.fields), (date, date), self.stop.clone());
            let rows = DaySplitter::new(stream, &table.name).next().transpose()?;
            let mut turn = self.turn()?;
            let mut batch = self.store.batch();
            match rows {
                Some(rows) => {
                    let chunks = encode_day(&rows, entry, &mut turn.symbols, self.store.compression_level())?;
                    turn.stage_day(&mut batch, entry, chunks);
                }
                None => batch.delete_day(entry, day_of(date)),
            }
            turn.commit(self.store, batch)?;
            tracing::info!(table = %table.name, %date, "re-fetched");
        }
        Ok(dates.len())
    }

    /// Fills newly added fields over the dates already cached, aligned to the cached keys.
    /// Returns the number of dates written.
    fn backfill(
        &self,
        table: &ResolvedTable,
        entry: &TableEntry,
        fields: &[FieldEntry],
        watermark: Day,
    ) -> Result<usize, UpdateError> {
        let mut resume = Day::MAX;
        for field in fields {
            let from = match self.store.fieldmark(field.id)? {
                Some(mark) => mark.saturating_add(1),
                None => Day::MIN,
            };
            resume = resume.min(from);
        }
        let cached: Vec<Day> = self.store.days(entry.id, resume, watermark)?;
        let (Some(&first), Some(&last)) = (cached.first(), cached.last()) else {
            return Ok(0);
        };
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        tracing::info!(table = %table.config.name, fields = ?names, from = %date_of(first), to = %date_of(last), "backfilling added fields");
        let source = self.source(&table.config.source);
        let stream =
            WindowedRows::new(&source, table, &field_list(fields), (date_of(first), date_of(last)), self.stop.clone());
        let mut source_days = DaySplitter::new(stream, &table.config.name).peekable();
        let progress = Reporter::start(
            self.progress.as_ref(),
            &table.config.name,
            ProgressTask::AddedFields,
            date_of(first),
            date_of(last),
        );
        for &day in &cached {
            if self.stop.load(Ordering::Relaxed) {
                return Err(UpdateError::Interrupted);
            }
            while source_days.next_if(|d| d.as_ref().is_ok_and(|d| d.day < day)).is_some() {}
            let rows = match source_days.next_if(|d| d.as_ref().map_or(true, |d| d.day == day)) {
                Some(result) => Some(result?),
                None => None,
            };
            let turn = self.turn()?;
            let ids = self.store.rows(entry, day)?.unwrap_or_else(|| Arc::from([]));
            let chunks = encode_aligned(rows.as_ref(), &ids, fields, &turn.symbols, self.store.compression_level());
            let mut batch = self.store.batch();
            for (field, (id, chunk)) in fields.iter().zip(chunks) {
                debug_assert_eq!(field.id, id, "chunks are encoded in the fields' order");
                batch.put_values(entry.id, field, day, chunk);
                batch.put_fieldmark(field.id, day);
            }
            self.store.write(batch)?;
            progress.committed(date_of(day), ids.len());
        }
        Ok(cached.len())
    }
}

/// A configured table may not take the name of a local one: its update would replace what a
/// researcher wrote.
fn refuse_local(catalog: &crate::store::catalog::Catalog, table: &str) -> Result<(), UpdateError> {
    match catalog.table(table) {
        Some(entry) if entry.is_local() => Err(UpdateError::LocalTable { table: table.to_string() }),
        _ => Ok(()),
    }
}

/// The (name, type) of every field the store holds for table `name`.
pub fn cached_fields(catalog: &crate::store::catalog::Catalog, name: &str) -> Vec<(String, crate::types::ValueType)> {
    catalog.table(name).map_or_else(Vec::new, |t| t.fields.iter().map(|f| (f.name.clone(), f.dtype)).collect())
}

/// The (name, type) pairs a fetch selects.
fn field_list(fields: &[FieldEntry]) -> Vec<(String, crate::types::ValueType)> {
    fields.iter().map(|f| (f.name.clone(), f.dtype)).collect()
}

fn log_changes(table: &str, changes: &CatalogDiff) {
    if changes.created {
        tracing::info!(table, "new table: backfilling from its start date");
    }
    if !changes.invalidated.is_empty() {
        tracing::warn!(table, settings = ?changes.invalidated, "table settings changed: its cache is invalidated and rebuilt");
    }
    if !changes.added.is_empty() {
        tracing::info!(table, fields = ?changes.added, "fields added: backfilling them alone");
    }
    if !changes.retyped.is_empty() {
        tracing::warn!(table, fields = ?changes.retyped, "field types changed in the source: re-fetching those fields");
    }
    if !changes.removed.is_empty() {
        tracing::info!(table, fields = ?changes.removed, "fields removed: deleting their chunks");
    }
}
