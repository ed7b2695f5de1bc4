//! The plan of a read: what the request means against the catalog, decided before any chunk is
//! touched. Argument checks, field resolution, the base and asof rules, the tables involved, the
//! consistent cut and the days selected.

use chrono::NaiveDate;

use super::resolve::{resolve_fields, Aliases, ResolvedField};
use super::Request;
use crate::error::QueryError;
use crate::store::catalog::TableEntry;
use crate::types::{date_of, day_of, Day, TableKind};
use crate::view::View;

/// The marks as of one moment, kept in the view so a read's cut never runs ahead of the days the
/// view knows: a writer commits a day before the watermark that covers it, so marks read before
/// the journal bound only days the journal already lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MarkSnapshot {
    /// Watermark per table id.
    pub watermarks: std::collections::HashMap<u32, Day>,
    /// Fieldmark per field id still being backfilled.
    pub fieldmarks: std::collections::HashMap<u32, Day>,
}

impl MarkSnapshot {
    fn watermark(&self, table_id: u32) -> Option<Day> {
        self.watermarks.get(&table_id).copied()
    }

    fn fieldmark(&self, field_id: u32) -> Option<Day> {
        self.fieldmarks.get(&field_id).copied()
    }
}

/// A read, resolved and bounded.
#[derive(Debug, Clone)]
pub(crate) struct Plan<'v> {
    /// The requested fields, in request order.
    pub fields: Vec<ResolvedField<'v>>,
    /// Every table involved: the row tables first, then the other tables of the fields.
    pub tables: Vec<&'v TableEntry>,
    /// How many of `tables`, from the front, make the rows.
    pub row_tables: usize,
    /// The days to read, ascending: the row tables' cached days within the request and the cut.
    pub days: Vec<Day>,
    /// The dates covered: the request clipped to the cut; `None` when the cut is before `start`.
    pub covered: Option<(NaiveDate, NaiveDate)>,
    /// Keep only these symbol ids, sorted; unknown symbols are simply absent.
    pub symbols: Option<Vec<u32>>,
}

impl Plan<'_> {
    /// The same read over only `days`, a subset of [`Plan::days`].
    pub fn with_days(&self, days: &[Day]) -> Self {
        Self { days: days.to_vec(), ..self.clone() }
    }

    /// The index in [`Plan::tables`] of the table `table_id`.
    pub fn table_index(&self, table_id: u32) -> usize {
        self.tables.iter().position(|t| t.id == table_id).expect("every field's table is involved")
    }
}

fn is_asof(table: &TableEntry) -> bool {
    table.kind == TableKind::Asof
}

/// Plans `request` against `view`, bounded by `marks` (the view's own, outside tests).
///
/// # Errors
/// [`QueryError::InvalidArgument`] for a reversed range, no fields, an unknown or asof base, or
/// asof fields with no base; see [`resolve_fields`] for names.
pub(crate) fn plan<'v>(
    view: &'v View,
    aliases: &Aliases,
    marks: &MarkSnapshot,
    request: &Request,
) -> Result<Plan<'v>, QueryError> {
    if request.start > request.end {
        return Err(QueryError::InvalidArgument(format!(
            "start {} is after end {}; dates are inclusive, so pass start <= end",
            request.start, request.end
        )));
    }
    if request.cols.is_empty() {
        return Err(QueryError::InvalidArgument("no columns asked for; pass at least one field name".into()));
    }
    let catalog = &view.catalog;
    let fields = resolve_fields(catalog, aliases, &request.cols)?;
    let base = match &request.base {
        Some(name) => Some(catalog.table(name).ok_or_else(|| {
            QueryError::InvalidArgument(format!(
                "base table `{name}` is not cached; cached tables: {}",
                catalog.tables.iter().map(|t| format!("`{}`", t.name)).collect::<Vec<_>>().join(", ")
            ))
        })?),
        None => None,
    };
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

    let mut tables: Vec<&TableEntry> = Vec::new();
    let involve = |tables: &mut Vec<&'v TableEntry>, table: &'v TableEntry| {
        if !tables.iter().any(|t| t.id == table.id) {
            tables.push(table);
        }
    };
    match base {
        Some(table) => involve(&mut tables, table),
        None => fields.iter().filter(|f| !is_asof(f.table)).for_each(|f| involve(&mut tables, f.table)),
    }
    let row_tables = tables.len();
    fields.iter().for_each(|f| involve(&mut tables, f.table));

    // A consistent cut: never past the lowest watermark among the involved daily tables. An
    // asof table's watermark is its newest event, which may lie far behind (quarterly reports)
    // or ahead: its events count as of its last update, and never past a row's own date.
    let mut cut = day_of(request.end);
    for table in tables.iter().filter(|t| !is_asof(t)) {
        cut = cut.min(marks.watermark(table.id).unwrap_or(Day::MIN));
    }
    for f in fields.iter().filter(|f| !f.field.complete) {
        cut = cut.min(marks.fieldmark(f.field.id).unwrap_or(Day::MIN));
    }
    let start = day_of(request.start);
    let mut days: Vec<Day> = Vec::new();
    if start <= cut {
        for table in &tables[..row_tables] {
            let cached = view.days_of(table.id);
            let lo = cached.partition_point(|&d| d < start);
            let hi = cached.partition_point(|&d| d <= cut);
            days.extend_from_slice(&cached[lo..hi]);
        }
        days.sort_unstable();
        days.dedup();
    }
    let symbols = request.symbols.as_ref().map(|names| {
        let mut ids: Vec<u32> = names.iter().filter_map(|n| view.symbols.id(n)).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    });
    let covered = (start <= cut).then(|| (request.start, date_of(cut)));
    Ok(Plan { fields, tables, row_tables, days, covered, symbols })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;
    use crate::store::catalog::{Catalog, FieldEntry};
    use crate::store::symbols::SymbolDictionary;
    use crate::types::ValueType;
    use crate::view::SymbolRanking;

    fn field(id: u32, name: &str, complete: bool) -> FieldEntry {
        FieldEntry { id, name: name.into(), dtype: ValueType::Float64, complete }
    }

    /// `bar` (close, pe) on days 10..=14, `val` (pe) on 12..=16, `fund` (asof: revenue) events
    /// on 3 and 13; `val.pe` is still being backfilled.
    fn view() -> View {
        let table = |id, name: &str, kind, fields| TableEntry {
            id,
            name: name.into(),
            kind,
            fingerprint: Default::default(),
            fields,
        };
        let catalog = Catalog {
            next_id: 9,
            tables: vec![
                table(1, "bar", TableKind::Daily, vec![field(2, "close", true), field(3, "pe", true)]),
                table(4, "val", TableKind::Daily, vec![field(5, "pe", false), field(6, "mv", true)]),
                table(7, "fund", TableKind::Asof, vec![field(8, "revenue", true)]),
            ],
        };
        let symbols = SymbolDictionary::from_persisted(["B", "A", "C"].map(Arc::from).to_vec());
        let ranking = SymbolRanking::new(&symbols);
        let days = HashMap::from([(1, (10..=14).collect()), (4, (12..=16).collect()), (7, vec![3, 13])]);
        View { catalog, symbols, ranking, days, marks: MarkSnapshot::default() }
    }

    fn marks() -> MarkSnapshot {
        MarkSnapshot { watermarks: HashMap::from([(1, 14), (4, 16), (7, 13)]), fieldmarks: HashMap::from([(5, 15)]) }
    }

    fn request(start: Day, end: Day, cols: &[&str]) -> Request {
        Request::new(date_of(start), date_of(end), cols.iter().map(|c| c.to_string()).collect())
    }

    fn names<'p>(plan: &'p Plan<'_>) -> Vec<&'p str> {
        plan.tables.iter().map(|t| t.name.as_str()).collect()
    }

    #[test]
    fn rows_come_from_the_fields_daily_tables_and_stop_at_the_lowest_watermark() {
        let view = view();
        let plan = plan(&view, &Aliases::new(), &marks(), &request(0, 100, &["close", "mv", "revenue"])).unwrap();
        assert_eq!(names(&plan), ["bar", "val", "fund"]);
        assert_eq!(plan.row_tables, 2);
        assert_eq!(plan.days, (10..=14).collect::<Vec<_>>(), "the union of both, cut at bar's watermark 14");
        assert_eq!(plan.covered, Some((date_of(0), date_of(14))));
        assert_eq!(plan.fields.iter().map(|f| f.requested.as_str()).collect::<Vec<_>>(), ["close", "mv", "revenue"]);
    }

    #[test]
    fn a_field_being_backfilled_bounds_the_cut_by_its_fieldmark() {
        let view = view();
        let plan = plan(&view, &Aliases::new(), &marks(), &request(13, 100, &["val.pe"])).unwrap();
        assert_eq!(plan.days, [13, 14, 15]);
        assert_eq!(plan.covered, Some((date_of(13), date_of(15))));
    }

    #[test]
    fn a_base_table_makes_the_rows_and_an_asof_table_never_bounds_the_cut() {
        let view = view();
        let plan = plan(&view, &Aliases::new(), &marks(), &request(11, 100, &["revenue"]).base("val")).unwrap();
        assert_eq!(names(&plan), ["val", "fund"]);
        assert_eq!(plan.row_tables, 1);
        assert_eq!(plan.days, [12, 13, 14, 15, 16], "fund's watermark 13 does not cut");
    }

    #[test]
    fn a_range_before_anything_loaded_covers_nothing() {
        let view = view();
        let mut marks = marks();
        marks.watermarks.remove(&1);
        let plan = plan(&view, &Aliases::new(), &marks, &request(0, 100, &["close"])).unwrap();
        assert!(plan.days.is_empty());
        assert_eq!(plan.covered, None);
    }

    #[test]
    fn symbols_become_sorted_ids_and_unknown_ones_vanish() {
        let view = view();
        let request = request(0, 100, &["close"]).symbols(vec!["C".into(), "nope".into(), "B".into()]);
        let plan = plan(&view, &Aliases::new(), &marks(), &request).unwrap();
        assert_eq!(plan.symbols, Some(vec![0, 2]));
    }

    #[test]
    fn bad_requests_say_what_to_pass() {
        let view = view();
        let err = |r: Request| plan(&view, &Aliases::new(), &marks(), &r).unwrap_err().to_string();
        assert!(err(request(5, 4, &["close"])).contains("start <= end"));
        assert!(err(request(0, 9, &[])).contains("at least one"));
        assert!(err(request(0, 9, &["revenue"])).contains("base="));
        assert!(err(request(0, 9, &["close"]).base("fund")).contains("asof"));
        assert!(err(request(0, 9, &["close"]).base("nope")).contains("cached tables: `bar`, `val`, `fund`"));
        assert!(err(request(0, 9, &["pe"])).contains("ambiguous"));
        assert!(err(request(0, 9, &["clsoe"])).contains("like it: `bar.close`"));
    }

    #[test]
    fn aliases_name_their_column_and_keep_the_requested_name() {
        let view = view();
        let aliases = Aliases::from([("px".to_string(), "bar.close".to_string())]);
        let plan = plan(&view, &aliases, &marks(), &request(0, 100, &["px"])).unwrap();
        assert_eq!((plan.fields[0].requested.as_str(), plan.fields[0].field.id), ("px", 2));
    }
}
