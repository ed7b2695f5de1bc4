//! Publishing into the shared layer and keeping it current: what `cheetah warm` and `cheetah
//! serve` call.

use std::time::Instant;

use chrono::NaiveDate;

use super::refresh::{Output, Rewrite};
use super::Cache;
use crate::config::ShareConfig;
use crate::error::{Error, QueryError, ShareError};
use crate::query::{self, resolve_fields, Request};
use crate::share::publish::SegmentReport;
use crate::share::{asof_tables, FieldInfo, FileRef, PublishReport, Publisher, Segment, ShareStatus};
use crate::store::catalog::Catalog;
use crate::types::{date_of, day_of, Day, TableKind};

/// A segment to have in the next generation.
struct Wanted {
    /// Its id, kept from the segment it replaces.
    id: u64,
    start: Day,
    end: Day,
    /// `table.field` of every field, in publish order.
    cols: Vec<String>,
    /// What is published now, without the fields no longer cached; `None` for a new segment.
    old: Option<Segment>,
    /// How it is brought up to the store.
    work: Work,
}

/// What a segment needs.
enum Work {
    /// Nothing: the store changed nothing it holds.
    Nothing,
    /// Its changed blocks rewritten: `days_now` a read of its range plans now, `changed` the
    /// daily tables' rewritten days, and `asof_from` the first day an asof table changed.
    Blocks { days_now: Vec<Day>, changed: Vec<Day>, asof_from: Option<Day> },
    /// All of it written again.
    Whole,
}

impl Cache {
    /// Publishes `cols` (every cached field when `None`) over `start..=end` into the shared layer
    /// of the config's `[share]`, as one segment: the union of their daily tables' keys with the
    /// fields filled in. A segment of the same range and tables gains the fields; what else is
    /// published is brought up to date, and the least recently used segments are evicted if the
    /// budget needs it.
    ///
    /// # Errors
    /// [`ShareError`] for a missing `[share]`, the budget or a full file system; unknown names
    /// as for [`Cache::get`]; store failures.
    pub fn publish(&self, start: NaiveDate, end: NaiveDate, cols: Option<&[String]>) -> Result<PublishReport, Error> {
        let share = self.share_config()?;
        if start > end {
            return Err(QueryError::InvalidArgument(format!("start {start} is after end {end}")).into());
        }
        self.refresh()?;
        let cols = {
            let view = self.follower()?.view();
            let all: Vec<String>;
            let names = match cols {
                Some(cols) => cols,
                None => {
                    all = view
                        .catalog
                        .tables
                        .iter()
                        .flat_map(|t| t.fields.iter().map(|f| qualified(&t.name, &f.name)))
                        .collect();
                    &all
                }
            };
            let fields = resolve_fields(&view.catalog, &self.rules.aliases, names)?;
            if fields.iter().all(|f| f.table.kind == TableKind::Asof) {
                return Err(QueryError::InvalidArgument(
                    "publish at least one field of a daily table: asof fields are aligned to its rows".into(),
                )
                .into());
            }
            fields.iter().map(|f| qualified(&f.table.name, &f.field.name)).collect::<Vec<_>>()
        };
        self.republish(share, Some((day_of(start), day_of(end), cols)))
    }

    /// Brings what the shared layer holds up to the store: new dates within each segment's
    /// range, dates the store rewrote (a lookback correction, a repair), fields removed from the
    /// cache. Returns an empty report when nothing changed, or without `[share]`.
    ///
    /// # Errors
    /// As for [`Cache::publish`].
    pub fn refresh_share(&self) -> Result<PublishReport, Error> {
        let Some(share) = self.config.share.as_ref() else { return Ok(PublishReport::default()) };
        self.refresh()?;
        self.republish(share, None)
    }

    /// What the shared layer holds, when the config has `[share]`.
    pub fn share_status(&self) -> Option<ShareStatus> {
        let share = self.config.share.as_ref()?;
        let identity = self.identity().ok()?;
        Some(crate::share::SharedLayer::new(share.path.clone(), identity).status(share.budget_bytes))
    }

    /// Warnings about the shared layer given since the last call (it was missing, foreign or
    /// damaged, and reads fell back to the store), for callers that show them their own way.
    pub fn take_share_warnings(&self) -> Vec<String> {
        self.shared.as_ref().map(|s| s.take_warnings()).unwrap_or_default()
    }

    fn share_config(&self) -> Result<&ShareConfig, ShareError> {
        self.config.share.as_ref().ok_or_else(|| ShareError::NotConfigured { config: self.config.path.clone() })
    }

    /// Writes a new generation holding what is published, brought up to date, and `add`.
    fn republish(&self, share: &ShareConfig, add: Option<(Day, Day, Vec<String>)>) -> Result<PublishReport, Error> {
        let started = Instant::now();
        let store_path = self.config.store.path.display().to_string();
        let identity = self.identity()?;
        let publisher = Publisher::open(&share.path, share.budget_bytes, identity, store_path)?;
        let current = publisher.current();
        let manifest = current.as_ref().map(|g| &g.manifest);

        // One snapshot decides what changed; every block written later reflects at least its
        // journal position.
        let (position, symbols, mut wanted, recode, saved) = self.follower()?.read(&self.hot, |store, view| {
            let position = store.journal_end()?;
            // Written down only when it is exactly the store's latest version, as `position` is.
            let saved = (view.version.number == store.latest_version()?).then(|| (view.version.number, view.encode()));
            let symbols = view.symbols.len();
            let tail = match manifest {
                Some(m) => Some(store.journal_since(m.journal)?),
                None => None,
            };
            let published = manifest.map_or(symbols, |m| m.symbols);
            let recode = (published < symbols)
                .then(|| (query::ranking_of_first(&view.symbols, published), view.ranking.clone()));
            let mut wanted = Vec::new();
            for segment in manifest.iter().flat_map(|m| &m.segments) {
                let mut kept = segment.clone();
                for i in (0..segment.fields.len()).rev() {
                    if !field_alive(&view.catalog, &segment.fields[i]) {
                        kept.without_field(i);
                    }
                }
                if kept.fields.is_empty() {
                    continue;
                }
                let cols: Vec<String> = kept.fields.iter().map(|f| f.name.clone()).collect();
                let request = Request::new(date_of(segment.start), date_of(segment.end), cols.clone());
                let days_now = query::plan(view, &self.rules, &request, None)?.days;
                let asof = asof_tables(view, &kept.fields);
                let whole = tail.as_ref().is_none_or(|t| t.fell_behind)
                    || published > symbols
                    || query::narrow(published) != query::narrow(symbols)
                    || segment.block_rows != share.block_rows;
                let last = segment.days.last().map_or(segment.end, |&(d, _)| d);
                let (mut changed, mut asof_from) = (Vec::new(), None::<Day>);
                for &(table, day) in tail.iter().flat_map(|t| &t.days) {
                    if asof.contains(&table) && day <= last {
                        asof_from = Some(asof_from.map_or(day, |d| d.min(day)));
                    } else if segment.tables.contains(&table) && (segment.start..=segment.end).contains(&day) {
                        changed.push(day);
                    }
                }
                changed.sort_unstable();
                changed.dedup();
                let same = days_now.iter().eq(segment.days.iter().map(|(d, _)| d));
                let work = if whole {
                    Work::Whole
                } else if changed.is_empty() && asof_from.is_none() && same && recode.is_none() {
                    Work::Nothing
                } else {
                    Work::Blocks { days_now, changed, asof_from }
                };
                let pruned = kept.fields.len() < segment.fields.len();
                wanted.push((
                    Wanted { id: segment.id, start: segment.start, end: segment.end, cols, old: Some(kept), work },
                    pruned,
                ));
            }
            Ok((position, symbols, wanted, recode, saved))
        })?;
        // A version that changed nothing published still moves the store's head past the saved
        // view: a new generation with the same segments saves the current one.
        let view_behind = manifest.is_some_and(|m| {
            saved.as_ref().is_some_and(|(version, _)| m.view.as_ref().map(|v| v.version) != Some(*version))
        });
        let changed = wanted.iter().any(|(w, pruned)| *pruned || !matches!(w.work, Work::Nothing));
        let mut wanted: Vec<Wanted> = wanted.drain(..).map(|(w, _)| w).collect();

        let mut added: Option<usize> = None;
        if let Some((start, end, cols)) = add {
            let tables = self.daily_tables_of(&cols)?;
            let same = wanted.iter().position(|w| {
                w.start == start && w.end == end && self.daily_tables_of(&w.cols).ok().as_ref() == Some(&tables)
            });
            let at = match same {
                Some(at) => {
                    let w = &mut wanted[at];
                    for col in cols {
                        if !w.cols.contains(&col) {
                            w.cols.push(col);
                            w.work = Work::Whole;
                        }
                    }
                    at
                }
                None => {
                    let id = wanted
                        .iter()
                        .map(|w| w.id + 1)
                        .chain(manifest.iter().flat_map(|m| m.segments.iter().map(|s| s.id + 1)))
                        .max()
                        .unwrap_or(1);
                    wanted.push(Wanted { id, start, end, cols, old: None, work: Work::Whole });
                    wanted.len() - 1
                }
            };
            added = Some(at);
        } else if !changed && !view_behind {
            if let Some(m) = manifest {
                publisher.collect(m);
            }
            return Ok(PublishReport {
                total_bytes: manifest.map_or(0, |m| m.segments.iter().map(Segment::bytes).sum()),
                ..Default::default()
            });
        }

        let generation = publisher.next_generation(manifest);
        let out = Output { publisher: &publisher, generation, symbols };
        let mut report = PublishReport::default();
        // The segment asked for is read first: its size decides what else fits.
        let mut rows = match added.map(|at| &wanted[at]) {
            Some(w) => Some(self.read_rows(&w.cols, w.start, w.end, symbols)?),
            None => None,
        };
        let symbol_width = if query::narrow(symbols) { 2 } else { 4 };
        let needed = rows.as_ref().map_or(0, |r| r.bytes(share.block_rows as usize, symbol_width));
        let others: Vec<Segment> =
            wanted.iter().enumerate().filter(|&(i, _)| Some(i) != added).filter_map(|(_, w)| w.old.clone()).collect();
        let (keep, evicted) = publisher.make_room(needed, others)?;
        publisher.check_free(needed)?;
        report.evicted = evicted;

        let mut segments: Vec<Segment> = Vec::new();
        let write = || -> Result<(), Error> {
            for (i, w) in wanted.into_iter().enumerate() {
                let range = (w.start, w.end);
                let rewrite = if Some(i) == added {
                    self.write_whole(&out, w.id, range, rows.take().expect("read above"))?
                } else {
                    let Some(kept) = keep.iter().find(|k| k.id == w.id) else { continue };
                    let cols: Vec<String> = kept.fields.iter().map(|f| f.name.clone()).collect();
                    match (&w.work, &current) {
                        (Work::Nothing, _) => Rewrite { segment: kept.clone(), blocks: 0 },
                        (Work::Blocks { days_now, changed, asof_from }, Some(current)) => {
                            let changed =
                                |d: Day| changed.binary_search(&d).is_ok() || asof_from.is_some_and(|from| d >= from);
                            match self.rewrite(&out, current, kept, days_now, changed, recode.as_ref()) {
                                Err(Error::Share(ShareError::Unreadable(e))) => {
                                    tracing::warn!(layer = %share.path.display(), segment = w.id, "{e}; writing the segment whole");
                                    let rows = self.read_rows(&cols, w.start, w.end, symbols)?;
                                    self.write_whole(&out, w.id, range, rows)?
                                }
                                rewritten => rewritten?,
                            }
                        }
                        _ => self.write_whole(&out, w.id, range, self.read_rows(&cols, w.start, w.end, symbols)?)?,
                    }
                };
                if rewrite.blocks > 0 {
                    let fresh = |f: &&FileRef| f.generation == generation;
                    let mut written = SegmentReport::of(&rewrite.segment);
                    written.bytes = rewrite.segment.files().filter(fresh).map(|f| f.bytes).sum();
                    report.rows += rewrite
                        .segment
                        .blocks
                        .iter()
                        .filter(|b| std::iter::once(&b.file).chain(b.fields.iter().map(|f| &f.file)).any(|f| fresh(&f)))
                        .map(|b| b.rows)
                        .sum::<u64>();
                    report.bytes += written.bytes;
                    report.blocks += rewrite.blocks as u64;
                    report.written.push(written);
                }
                segments.push(rewrite.segment);
            }
            Ok(())
        };
        // A block kept as it was is unchanged in the store up to `position` (checked above), so
        // every segment is exact as of `position`; a kept one may also hold what a publisher
        // with a newer view saw, which readers behind that must not use.
        let span = |segments: &[Segment]| match manifest {
            Some(m) if segments.iter().any(|s| s.files().any(|f| f.generation != generation)) => {
                (position, position.max(m.journal_newest))
            }
            _ => (position, position),
        };
        let save_view = |span: (u64, u64)| match saved {
            Some((version, bytes)) if span.0 == span.1 => publisher.write_view(generation, version, &bytes).map(Some),
            _ => Ok(None),
        };
        let view = write().and_then(|()| Ok(save_view(span(&segments))?));
        let view = match view {
            Ok(view) => view,
            Err(e) => {
                // What this publish wrote is named by no manifest: unlink it now, not next round.
                publisher.collect(manifest.unwrap_or(&publisher.manifest(0, (0, 0), 0, Vec::new(), None)));
                return Err(e);
            }
        };
        report.total_bytes = segments.iter().map(Segment::bytes).sum();
        report.bytes += view.as_ref().map_or(0, |v| v.file.bytes);
        let next = publisher.manifest(generation, span(&segments), symbols, segments, view);
        publisher.install(&next)?;
        report.generation = Some(generation);
        tracing::info!(
            layer = %share.path.display(),
            generation,
            segments = report.written.len(),
            blocks = report.blocks,
            rows = report.rows,
            bytes = report.bytes,
            evicted = report.evicted.len(),
            seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
            "published the shared layer"
        );
        Ok(report)
    }

    /// The distinct daily tables of `cols`, in order of first appearance: a segment's rows.
    fn daily_tables_of(&self, cols: &[String]) -> Result<Vec<u32>, QueryError> {
        let view = self.follower()?.view();
        let mut tables = Vec::new();
        for f in resolve_fields(&view.catalog, &self.rules.aliases, cols)? {
            if f.table.kind == TableKind::Daily && !tables.contains(&f.table.id) {
                tables.push(f.table.id);
            }
        }
        Ok(tables)
    }
}

fn qualified(table: &str, field: &str) -> String {
    format!("{table}.{field}")
}

/// Whether a published field is still cached, under the same id and type.
fn field_alive(catalog: &Catalog, field: &FieldInfo) -> bool {
    catalog.tables.iter().any(|t| t.fields.iter().any(|f| f.id == field.id && f.dtype == field.dtype))
}
