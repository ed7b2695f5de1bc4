//! Publishing into the shared layer and keeping it current: what `cheetah warm` and `cheetah
//! serve` call.

use std::time::Instant;

use chrono::NaiveDate;

use super::Cache;
use crate::config::ShareConfig;
use crate::error::{Error, QueryError, ShareError};
use crate::query::{self, resolve_fields, DateLayout, HotStore, OutputPool, Request};
use crate::share::publish::{self, SegmentReport};
use crate::share::{asof_tables, PublishReport, Publisher, Segment, ShareStatus};
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
    /// What is published now, if it is still exact.
    clean: Option<Segment>,
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
            let view = self.follower.view();
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
        let identity = self.follower.store().identity().ok()?;
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
        let identity = self.follower.store().identity()?;
        let publisher = Publisher::open(&share.path, share.budget_bytes, identity, store_path)?;
        let current = publisher.current();

        // One snapshot decides what is still exact; every segment built later reflects at least
        // its journal position.
        let (position, symbols, mut wanted, changed) = self.follower.read(&self.hot, |store, view| {
            let position = store.journal_end()?;
            let symbols = view.symbols.len();
            let tail = match &current {
                Some(m) => Some(store.journal_since(m.journal)?),
                None => None,
            };
            let mut changed = false;
            let mut wanted = Vec::new();
            for segment in current.iter().flat_map(|m| &m.segments) {
                let alive: Vec<&crate::share::FieldFile> =
                    segment.fields.iter().filter(|f| field_alive(&view.catalog, f)).collect();
                changed |= alive.len() < segment.fields.len();
                if alive.is_empty() {
                    continue;
                }
                let cols: Vec<String> = alive.iter().map(|f| f.name.clone()).collect();
                let request = Request::new(date_of(segment.start), date_of(segment.end), cols.clone());
                let days_now = query::plan(view, &self.rules, &request, None)?.days;
                let asof = asof_tables(view, &segment.fields);
                let mut watched = segment.tables.clone();
                watched.extend(&asof);
                let exact = current.as_ref().is_some_and(|m| m.symbols == symbols)
                    && tail.as_ref().is_some_and(|t| {
                        !t.fell_behind
                            && !t.days.iter().any(|&(table, day)| {
                                watched.contains(&table) && (day <= segment.end || asof.contains(&table))
                            })
                    })
                    && days_now.iter().eq(segment.days.iter().map(|(d, _)| d));
                changed |= !exact;
                let mut kept = segment.clone();
                kept.fields.retain(|f| field_alive(&view.catalog, f));
                wanted.push(Wanted {
                    id: segment.id,
                    start: segment.start,
                    end: segment.end,
                    cols,
                    clean: exact.then_some(kept),
                });
            }
            Ok((position, symbols, wanted, changed))
        })?;

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
                            w.clean = None;
                        }
                    }
                    at
                }
                None => {
                    let id = wanted
                        .iter()
                        .map(|w| w.id + 1)
                        .chain(current.iter().flat_map(|m| m.segments.iter().map(|s| s.id + 1)))
                        .max()
                        .unwrap_or(1);
                    wanted.push(Wanted { id, start, end, cols, clean: None });
                    wanted.len() - 1
                }
            };
            added = Some(at);
        } else if !changed {
            if let Some(current) = &current {
                publisher.collect(current);
            }
            return Ok(PublishReport {
                total_bytes: current.map_or(0, |m| m.segments.iter().map(Segment::bytes).sum()),
                ..Default::default()
            });
        }

        let generation = publisher.next_generation(current.as_ref());
        let mut report = PublishReport::default();
        // The segment asked for is built first: its size decides what else fits.
        let content = added.map(|at| self.build(&wanted[at], symbols)).transpose()?;
        let needed = content.as_ref().map_or(0, publish::SegmentContent::bytes);
        let published = |id: u64| current.iter().flat_map(|m| &m.segments).find(|s| s.id == id).cloned();
        let others: Vec<Segment> =
            wanted.iter().enumerate().filter(|&(i, _)| Some(i) != added).filter_map(|(_, w)| published(w.id)).collect();
        let (keep, evicted) = publisher.make_room(needed, others)?;
        let rewritten: u64 = wanted
            .iter()
            .filter(|w| w.clean.is_none() && keep.iter().any(|k| k.id == w.id))
            .map(|w| published(w.id).map_or(0, |s| s.bytes()))
            .sum();
        publisher.check_free(needed + rewritten)?;
        report.evicted = evicted.iter().map(SegmentReport::of).collect();

        let mut segments: Vec<Segment> = Vec::new();
        for (i, w) in wanted.into_iter().enumerate() {
            let segment = if Some(i) == added {
                publisher.write_segment(generation, w.id, content.as_ref().expect("built above"))?
            } else if !keep.iter().any(|k| k.id == w.id) {
                continue;
            } else if let Some(clean) = w.clean {
                clean
            } else {
                publisher.write_segment(generation, w.id, &self.build(&w, symbols)?)?
            };
            segments.push(segment);
        }
        for segment in &segments {
            if segment.rows.file.generation == generation {
                report.written.push(SegmentReport::of(segment));
                report.rows += segment.total_rows();
                report.bytes += segment.bytes();
            }
        }
        report.total_bytes = segments.iter().map(Segment::bytes).sum();
        // A segment kept as it was is unchanged in the store up to `position` (checked above), so
        // every segment is exact as of `position`; a kept one may also hold what a publisher
        // with a newer view saw, which readers behind that must not use.
        let span = match &current {
            Some(m) if segments.iter().any(|s| s.rows.file.generation != generation) => {
                (position, position.max(m.journal_newest))
            }
            _ => (position, position),
        };
        let manifest = publisher.manifest(generation, span, symbols, segments);
        publisher.install(&manifest)?;
        report.generation = Some(generation);
        tracing::info!(
            layer = %share.path.display(),
            generation,
            segments = report.written.len(),
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
        let view = self.follower.view();
        let mut tables = Vec::new();
        for f in resolve_fields(&view.catalog, &self.rules.aliases, cols)? {
            if f.table.kind == TableKind::Daily && !tables.contains(&f.table.id) {
                tables.push(f.table.id);
            }
        }
        Ok(tables)
    }

    /// Assembles a segment's content from the store, read the way a plain read would lay it out.
    fn build(&self, wanted: &Wanted, symbols: usize) -> Result<publish::SegmentContent, Error> {
        // Publishing keeps no result buffers: they go to the layer's files.
        let pool = OutputPool::new(0);
        let content = self.follower.read(&self.hot, |store, view| {
            if view.symbols.len() != symbols {
                return Err(QueryError::InvalidArgument(
                    "new symbols were committed while publishing; publish again".into(),
                ));
            }
            let request = Request::new(date_of(wanted.start), date_of(wanted.end), wanted.cols.clone())
                .dates(DateLayout::Dictionary);
            let plan = query::plan(view, &self.rules, &request, None)?;
            let chunks = HotStore { hot: &self.hot, store };
            let assembled =
                query::assemble_plan(&plan, view, &chunks, &pool, DateLayout::Dictionary, plan.row_tables > 1)?;
            let keys = query::dictionary_keys;
            Ok(publish::SegmentContent {
                start: wanted.start,
                end: wanted.end,
                tables: plan.tables[..plan.row_tables].iter().map(|t| t.id).collect(),
                days: plan.days.iter().zip(&assembled.rows_per_day).map(|(&d, &n)| (d, n as u64)).collect(),
                date_codes: keys(&assembled.dates),
                symbol_codes: keys(&assembled.symbols),
                presence: assembled.presence,
                fields: plan
                    .fields
                    .iter()
                    .zip(assembled.fields)
                    .map(|(f, array)| {
                        (f.field.id, f.table.id, qualified(&f.table.name, &f.field.name), f.field.dtype, array)
                    })
                    .collect(),
            })
        })?;
        Ok(content)
    }
}

fn qualified(table: &str, field: &str) -> String {
    format!("{table}.{field}")
}

/// Whether a published field is still cached, under the same id and type.
fn field_alive(catalog: &Catalog, field: &crate::share::FieldFile) -> bool {
    catalog.tables.iter().any(|t| t.fields.iter().any(|f| f.id == field.id && f.dtype == field.dtype))
}
