//! The plan of a read: what the request means against the catalog, decided before any chunk is
//! touched. Argument checks, field resolution, the base and asof rules, the tables involved, the
//! consistent cut and the days selected.

use chrono::NaiveDate;

use std::sync::Arc;

use arrow::datatypes::DataType;

use super::membership::Membership;
use super::resolve::{resolve_fields, ReadRules, ResolvedField};
use super::{Adjust, Request};
use crate::error::QueryError;
use crate::store::catalog::TableEntry;
use crate::types::{date_of, day_of, Day, TableKind};
use crate::universe::Universe;
use crate::view::View;

/// A read, resolved and bounded.
#[derive(Debug, Clone)]
pub(crate) struct Plan<'v> {
    /// The requested fields, in request order, then the factors read only to adjust them.
    pub fields: Vec<ResolvedField<'v>>,
    /// How many of `fields`, from the front, are the output columns.
    pub outputs: usize,
    /// How the price fields are adjusted, if they are.
    pub adjust: Option<Adjust>,
    /// `(price, factor)`: indexes into `fields` of each adjusted output and of its factor.
    pub adjusted: Vec<(usize, usize)>,
    /// Keep only the rows of each day's members of this universe.
    pub universe: Option<Arc<Membership>>,
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

    /// The output columns after `date` and `symbol`: each name as requested, and its type (an
    /// adjusted price is a float64).
    pub fn output_fields(&self) -> Vec<(&str, DataType)> {
        self.fields[..self.outputs]
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let adjusted = self.adjusted.iter().any(|&(price, _)| price == i);
                (f.requested.as_str(), if adjusted { DataType::Float64 } else { f.field.dtype.arrow() })
            })
            .collect()
    }

    /// The index in [`Plan::tables`] of the table `table_id`.
    pub fn table_index(&self, table_id: u32) -> usize {
        self.tables.iter().position(|t| t.id == table_id).expect("every field's table is involved")
    }
}

fn is_asof(table: &TableEntry) -> bool {
    table.kind == TableKind::Asof
}

/// Plans `request` against `view`, bounded by its marks, keeping the members of `universe` (the
/// one `request` names, as stored).
///
/// # Errors
/// [`QueryError::InvalidArgument`] for a reversed range, no fields, an unknown or asof base,
/// asof fields with no base, or prices to adjust with no factor; see [`resolve_fields`] for
/// names.
pub(crate) fn plan<'v>(
    view: &'v View,
    rules: &ReadRules,
    request: &Request,
    universe: Option<&Universe>,
) -> Result<Plan<'v>, QueryError> {
    let marks = &view.marks;
    check_range(request.start, request.end)?;
    if request.cols.is_empty() {
        return Err(QueryError::InvalidArgument("no columns asked for; pass at least one field name".into()));
    }
    let catalog = &view.catalog;
    let mut fields = resolve_fields(catalog, &rules.aliases, &request.cols)?;
    let outputs = fields.len();
    let adjusted = match request.adjust {
        Some(mode) => factors(rules, mode, &mut fields)?,
        None => Vec::new(),
    };
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
    // or ahead: its events count as of its last update, and never past a row's own date. A
    // local table is written whole in one commit, so it has no half-loaded dates to cut, and a
    // factor not yet written for today leaves today's prices alone.
    let mut cut = day_of(request.end);
    for table in tables.iter().filter(|t| !is_asof(t) && !t.is_local()) {
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
    let universe = universe.map(|u| Arc::new(Membership::new(u, &view.ranking, |name| view.symbols.id(name))));
    Ok(Plan { fields, outputs, adjust: request.adjust, adjusted, universe, tables, row_tables, days, covered, symbols })
}

/// Finds the factor of each requested price field and appends the factors not requested to
/// `fields`; returns the `(price, factor)` pairs.
fn factors<'v>(
    rules: &ReadRules,
    mode: Adjust,
    fields: &mut Vec<ResolvedField<'v>>,
) -> Result<Vec<(usize, usize)>, QueryError> {
    if rules.adjust.is_empty() {
        return Err(QueryError::InvalidArgument(format!(
            "adjust=\"{}\" needs a table that names its adjustment factor: add [table.adjust] with factor = \"adj_factor\" and fields = [\"open\", \"high\", \"low\", \"close\"] (its price fields) to that table's [[table]] block",
            mode.name()
        )));
    }
    let mut pairs = Vec::new();
    for price in 0..fields.len() {
        let (table, field) = (fields[price].table, fields[price].field);
        let Some(rule) = rules.adjust.get(&table.name) else { continue };
        if !rule.fields.iter().any(|f| f.eq_ignore_ascii_case(&field.name)) {
            continue;
        }
        let factor = table.fields.iter().find(|f| f.name.eq_ignore_ascii_case(&rule.factor)).ok_or_else(|| {
            QueryError::InvalidArgument(format!(
                "the adjustment factor `{}` of table `{}` is not cached yet; run `cheetah update`",
                rule.factor, table.name
            ))
        })?;
        for (name, f) in [(&fields[price].requested, field), (&rule.factor, factor)] {
            if !f.dtype.is_number() {
                return Err(QueryError::InvalidArgument(format!(
                    "cannot adjust `{}`: `{name}` holds {:?}, not numbers; fix [table.adjust] of table `{}`",
                    fields[price].requested, f.dtype, table.name
                )));
            }
        }
        let at = match fields.iter().position(|f| f.field.id == factor.id) {
            Some(at) => at,
            None => {
                let requested = format!("{}.{}", table.name, factor.name);
                fields.push(ResolvedField { requested, table, field: factor });
                fields.len() - 1
            }
        };
        pairs.push((price, at));
    }
    Ok(pairs)
}

/// `start..=end` must run forwards.
///
/// # Errors
/// [`QueryError::InvalidArgument`] when `start` is after `end`.
pub(crate) fn check_range(start: chrono::NaiveDate, end: chrono::NaiveDate) -> Result<(), QueryError> {
    if start > end {
        return Err(QueryError::InvalidArgument(format!(
            "start {start} is after end {end}; dates are inclusive, so pass start <= end"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;
    use crate::store::catalog::{Catalog, FieldEntry};
    use crate::store::symbols::SymbolDictionary;
    use crate::store::MarkSnapshot;
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
        View { catalog, symbols, ranking, days, marks: marks(), version: crate::store::Version::first() }
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
        let plan = plan(&view, &ReadRules::default(), &request(0, 100, &["close", "mv", "revenue"]), None).unwrap();
        assert_eq!(names(&plan), ["bar", "val", "fund"]);
        assert_eq!(plan.row_tables, 2);
        assert_eq!(plan.days, (10..=14).collect::<Vec<_>>(), "the union of both, cut at bar's watermark 14");
        assert_eq!(plan.covered, Some((date_of(0), date_of(14))));
        assert_eq!(plan.fields.iter().map(|f| f.requested.as_str()).collect::<Vec<_>>(), ["close", "mv", "revenue"]);
    }

    #[test]
    fn a_field_being_backfilled_bounds_the_cut_by_its_fieldmark() {
        let view = view();
        let plan = plan(&view, &ReadRules::default(), &request(13, 100, &["val.pe"]), None).unwrap();
        assert_eq!(plan.days, [13, 14, 15]);
        assert_eq!(plan.covered, Some((date_of(13), date_of(15))));
    }

    #[test]
    fn a_base_table_makes_the_rows_and_an_asof_table_never_bounds_the_cut() {
        let view = view();
        let plan = plan(&view, &ReadRules::default(), &request(11, 100, &["revenue"]).base("val"), None).unwrap();
        assert_eq!(names(&plan), ["val", "fund"]);
        assert_eq!(plan.row_tables, 1);
        assert_eq!(plan.days, [12, 13, 14, 15, 16], "fund's watermark 13 does not cut");
    }

    #[test]
    fn a_range_before_anything_loaded_covers_nothing() {
        let mut view = view();
        view.marks.watermarks.remove(&1);
        let plan = plan(&view, &ReadRules::default(), &request(0, 100, &["close"]), None).unwrap();
        assert!(plan.days.is_empty());
        assert_eq!(plan.covered, None);
    }

    #[test]
    fn symbols_become_sorted_ids_and_unknown_ones_vanish() {
        let view = view();
        let request = request(0, 100, &["close"]).symbols(vec!["C".into(), "nope".into(), "B".into()]);
        let plan = plan(&view, &ReadRules::default(), &request, None).unwrap();
        assert_eq!(plan.symbols, Some(vec![0, 2]));
    }

    #[test]
    fn bad_requests_say_what_to_pass() {
        let view = view();
        let err = |r: Request| plan(&view, &ReadRules::default(), &r, None).unwrap_err().to_string();
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
        let rules = ReadRules { aliases: [("px".to_string(), "bar.close".to_string())].into(), ..ReadRules::default() };
        let plan = plan(&view, &rules, &request(0, 100, &["px"]), None).unwrap();
        assert_eq!((plan.fields[0].requested.as_str(), plan.fields[0].field.id), ("px", 2));
    }

    #[test]
    fn adjusting_reads_the_factor_beside_the_prices_without_returning_it() {
        let view = view();
        let adjust = crate::config::AdjustConfig { factor: "pe".into(), fields: vec!["close".into()] };
        let rules = ReadRules { adjust: [("bar".to_string(), adjust)].into(), ..ReadRules::default() };
        let asked = request(0, 100, &["close", "mv"]).adjust(Adjust::Forward);
        let planned = plan(&view, &rules, &asked, None).unwrap();
        let names: Vec<&str> = planned.fields.iter().map(|f| f.requested.as_str()).collect();
        assert_eq!(
            (names, planned.outputs, planned.adjusted.clone()),
            (vec!["close", "mv", "bar.pe"], 2, vec![(0, 2)])
        );
        assert_eq!(planned.output_fields().iter().map(|(n, _)| *n).collect::<Vec<_>>(), ["close", "mv"]);
        let both = plan(&view, &rules, &request(0, 100, &["bar.pe", "close"]).adjust(Adjust::Backward), None);
        assert_eq!(both.unwrap().adjusted, vec![(1, 0)], "a requested factor is read once");
        let err = plan(&view, &ReadRules::default(), &asked, None).unwrap_err().to_string();
        assert!(err.contains("add [table.adjust]"), "{err}");
    }
}
