//! Reads the shared layer serves: which segment serves a plan and over which of its days, and
//! the result put together from the segment's mapped columns and the store's assembly of the
//! days before and after them.
//!
//! The segment's columns become the result's as views when the read keeps every row of the
//! served days; otherwise the kept rows are copied out of the mapping (never decoded).

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Date32Array, DictionaryArray, Int16Array, Int32Array, PrimitiveArray};
use arrow::buffer::BooleanBuffer;
use arrow::compute::{cast_with_options, concat, filter, CastOptions};
use arrow::datatypes::{ArrowDictionaryKeyType, ArrowPrimitiveType, DataType, Int16Type, Int32Type, Int8Type};

use super::assemble::DateLayout;
use super::membership::Membership;
use super::plan::Plan;
use super::{Columns, IntegerNulls, Request, SharedUse};
use crate::codes::Width;
use crate::error::LayerError;
use crate::share::{asof_tables, Codes, LayerView, MappedSegment};
use crate::store::symbols::SymbolDictionary;
use crate::types::Day;
use crate::view::{SymbolRanking, View};

/// A segment that can serve part of a plan.
pub(crate) struct Choice<'g> {
    pub segment: &'g MappedSegment,
    /// The segment's column of each of the plan's fields, by place among its fields.
    fields: Vec<usize>,
    /// The plan's days the segment serves.
    pub served: Range<usize>,
    /// The segment's days that cover them.
    days: Range<usize>,
    /// When the plan's rows come from fewer tables than the segment's: their places among the
    /// segment's tables.
    presence: Option<Vec<usize>>,
}

/// The segment serving the most of `plan`'s days, if any can.
pub(crate) fn choose<'g>(plan: &Plan<'_>, view: &View, layer: &'g LayerView) -> Option<Choice<'g>> {
    let mut best: Option<Choice<'g>> = None;
    for segment in &layer.generation.manifest.segments {
        let Some(choice) = fit(plan, view, layer, segment) else { continue };
        let rank = |c: &Choice<'_>| (c.served.len(), c.presence.is_none());
        if best.as_ref().is_none_or(|b| rank(&choice) > rank(b)) {
            best = Some(choice);
        }
    }
    best
}

fn fit<'g>(plan: &Plan<'_>, view: &View, layer: &LayerView, segment: &'g MappedSegment) -> Option<Choice<'g>> {
    let fields = plan
        .fields
        .iter()
        .map(|f| segment.fields.iter().position(|p| p.id == f.field.id && p.dtype == f.field.dtype))
        .collect::<Option<Vec<_>>>()?;
    let places = plan.tables[..plan.row_tables]
        .iter()
        .map(|t| segment.tables.iter().position(|&id| id == t.id))
        .collect::<Option<Vec<usize>>>()?;
    let presence = (places.len() < segment.tables.len()).then_some(places);
    let last = segment.days.last()?.0;
    let asof = asof_tables(view, &segment.fields);
    let changed = |day: Day| layer.dirty.touches(&segment.tables, &asof, day);

    // The plan's days from the segment's first on, up to the first that changed since it was
    // published. A segment day the plan skips (no row of the plan's tables then) must be
    // unchanged too: its rows are kept out only by the presence published for it.
    let first = plan.days.partition_point(|&d| d < segment.days[0].0);
    let first_day = *plan.days.get(first)?;
    let (mut p, mut s) = (first, segment.days.partition_point(|&(d, _)| d < first_day));
    let start = s;
    'days: while p < plan.days.len() && plan.days[p] <= last {
        let day = plan.days[p];
        while segment.days[s].0 < day {
            if changed(segment.days[s].0) {
                break 'days;
            }
            s += 1;
        }
        if segment.days[s].0 != day {
            // A day the plan reads and the segment never saw: they disagree on what is cached.
            return None;
        }
        if changed(day) {
            break;
        }
        p += 1;
        s += 1;
    }
    (p > first).then_some(Choice { segment, fields, served: first..p, days: start..s, presence })
}

/// Reads `plan` with `choice` serving its days there, and `store` assembling the others. The
/// outer error is the store's; the inner one says what failed in the layer.
pub(crate) fn read(
    plan: &Plan<'_>,
    view: &View,
    layer: &LayerView,
    choice: &Choice<'_>,
    request: &Request,
    store: impl Fn(&Plan<'_>) -> Result<Columns, crate::error::StoreError>,
) -> Result<Result<Columns, LayerError>, crate::error::StoreError> {
    let layout = request.dates;
    let before = &plan.days[..choice.served.start];
    let after = &plan.days[choice.served.end..];
    // The layer's float64 copies serve only a result that is the layer's alone: joined to the
    // store's rows, every column is copied anyway.
    let widened = request.integer_nulls == IntegerNulls::NanFloat && before.is_empty() && after.is_empty();
    let part = match layer_part(plan, view, layer, choice, widened) {
        Ok(part) => part,
        Err(e) => return Ok(Err(e)),
    };
    let generation = layer.generation.manifest.generation;
    if before.is_empty() && after.is_empty() {
        let views = part.views;
        let dates = match part.dates {
            Some(dates) if layout == DateLayout::Dictionary => dates,
            _ => dates_column(&part.rows_per_day, layout),
        };
        let rows = part.symbols.len();
        return Ok(Ok(Columns {
            dates,
            symbols: part.symbols,
            fields: part.fields,
            rows_per_day: part.rows_per_day,
            shared: Some(SharedUse { generation, rows, views }),
        }));
    }

    let mut pieces: Vec<Columns> = Vec::with_capacity(3);
    if !before.is_empty() {
        pieces.push(store(&plan.with_days(before))?);
    }
    let rows = part.symbols.len();
    pieces.push(Columns {
        dates: dates_column(&part.rows_per_day, DateLayout::Date32),
        symbols: part.symbols,
        fields: part.fields,
        rows_per_day: part.rows_per_day,
        shared: None,
    });
    if !after.is_empty() {
        pieces.push(store(&plan.with_days(after))?);
    }
    let keys: Vec<ArrayRef> = pieces.iter().map(|p| dictionary_keys(&p.symbols)).collect();
    let joined = |arrays: Vec<&dyn Array>| {
        concat(&arrays).map_err(|e| LayerError::damaged("the layer's rows beside the store's", e))
    };
    let keys = match joined(keys.iter().map(AsRef::as_ref).collect()) {
        Ok(keys) => keys,
        Err(e) => return Ok(Err(e)),
    };
    let mut fields = Vec::with_capacity(plan.fields.len());
    for f in 0..plan.fields.len() {
        match joined(pieces.iter().map(|p| p.fields[f].as_ref()).collect()) {
            Ok(field) => fields.push(field),
            Err(e) => return Ok(Err(e)),
        }
    }
    let rows_per_day: Vec<(Day, usize)> = pieces.iter().flat_map(|p| p.rows_per_day.iter().copied()).collect();
    Ok(Ok(Columns {
        dates: dates_column(&rows_per_day, layout),
        // SAFETY: every part's codes rank the reader's symbols.
        symbols: unsafe { dictionary(keys, &view.ranking) },
        fields,
        rows_per_day,
        shared: Some(SharedUse { generation, rows, views: false }),
    }))
}

/// The rows the layer serves.
struct LayerPart {
    /// The `symbol` column: ranks in the reader's ranking, checked to index its symbols.
    symbols: ArrayRef,
    fields: Vec<ArrayRef>,
    rows_per_day: Vec<(Day, usize)>,
    /// The `date` codes, when they are the segment's own (a view).
    dates: Option<ArrayRef>,
    /// Whether the columns are views of the mapping.
    views: bool,
}

fn layer_part(
    plan: &Plan<'_>,
    view: &View,
    layer: &LayerView,
    choice: &Choice<'_>,
    widened: bool,
) -> Result<LayerPart, LayerError> {
    let (g, segment) = (&layer.generation, choice.segment);
    let rows_before = |end: usize| segment.days[..end].iter().map(|&(_, n)| n as usize).sum::<usize>();
    let lo = rows_before(choice.days.start);
    let n = rows_before(choice.days.end) - lo;
    let days = &segment.days[choice.days.clone()];
    let mut symbols = g.codes(segment, Codes::Symbols, lo, n)?;
    let mut fields =
        choice.fields.iter().map(|&f| g.column(segment, f, lo, n, widened)).collect::<Result<Vec<_>, _>>()?;
    let published = layer.generation.manifest.symbols;
    let old_ranking = (published != view.symbols.len()).then(|| ranking_of_first(&view.symbols, published));

    let mut keep: Option<BooleanBuffer> = None;
    if let Some(places) = &choice.presence {
        for &place in places {
            let has = g.presence(segment, place, lo, n)?;
            keep = Some(match keep {
                Some(k) => &k | &has,
                None => has,
            });
        }
    }
    if let Some(ids) = &plan.symbols {
        let rank = old_ranking.as_ref().map_or(&view.ranking.rank, |r| &r.rank);
        let mut wanted = vec![false; published];
        for &id in ids {
            if let Some(&r) = rank.get(id as usize).filter(|&&r| (r as usize) < published) {
                wanted[r as usize] = true;
            }
        }
        let by_symbol = match_codes(&symbols, |code| wanted.get(code).copied().unwrap_or(false));
        keep = Some(match keep {
            Some(k) => &k & &by_symbol,
            None => by_symbol,
        });
    }
    if let Some(universe) = &plan.universe {
        let members = members_by_code(universe, days, &symbols, view, old_ranking.as_ref(), published);
        keep = Some(match keep {
            Some(k) => &k & &members,
            None => members,
        });
    }
    let keep = keep.filter(|k| k.count_set_bits() < n);
    let mut rows_per_day: Vec<(Day, usize)> = Vec::with_capacity(days.len());
    let mut at = 0;
    for &(day, rows) in days {
        let rows = rows as usize;
        let kept = keep.as_ref().map_or(rows, |k| k.slice(at, rows).count_set_bits());
        if kept > 0 {
            rows_per_day.push((day, kept));
        }
        at += rows;
    }
    if let Some(keep) = &keep {
        let keep = arrow::array::BooleanArray::new(keep.clone(), None);
        let copy = |a: &ArrayRef| filter(a.as_ref(), &keep).map_err(|e| LayerError::damaged("a mapped column", e));
        symbols = copy(&symbols)?;
        fields = fields.iter().map(copy).collect::<Result<_, _>>()?;
    }
    if let Some(old) = &old_ranking {
        symbols = recode(&symbols, old, &view.ranking)?;
    }
    // SAFETY: the generation checked the codes below `published`, which the reader's symbols
    // reach; a recode or a filter keeps them ranks.
    let symbols = unsafe { dictionary(symbols, &view.ranking) };
    let views = keep.is_none() && old_ranking.is_none() && g.maps(segment, &choice.fields, lo, n);
    // The segment's date codes count its days with rows from its first; they are the result's
    // when the served rows start at its first such day and none is dropped. They are 16 or 32
    // bits wide: fewer dates than that width counts take them narrowed, a copy.
    let first_ordinal = segment.days[..choice.days.start].iter().filter(|&&(_, n)| n > 0).count();
    let width = Width::of_dates(rows_per_day.len()).arrow();
    let dates = (keep.is_none() && first_ordinal == 0)
        .then(|| g.codes(segment, Codes::Dates, lo, n))
        .transpose()?
        .map(|codes| {
            if codes.data_type() == &width {
                return Ok(codes);
            }
            cast_with_options(&codes, &width, &CastOptions { safe: false, ..Default::default() })
                .map_err(|e| LayerError::damaged("a segment's date codes", e))
        })
        .transpose()?
        // SAFETY: the generation checked them to be the ordinals of the served days, from the
        // first, and a narrowing cast that fits keeps them.
        .map(|codes| unsafe { date_dictionary(codes, rows_per_day.iter().map(|&(d, _)| d).collect()) });
    Ok(LayerPart { symbols, fields, rows_per_day, dates, views })
}

/// Which of the served rows (`days`' rows, coded as `codes`) are of a member of `universe` on
/// their day. The codes rank the first `published` symbols, in `old` when the reader's ranking
/// has moved on since.
fn members_by_code(
    universe: &Membership,
    days: &[(Day, u64)],
    codes: &ArrayRef,
    view: &View,
    old: Option<&SymbolRanking>,
    published: usize,
) -> BooleanBuffer {
    // The code of each of the reader's ranks, for the symbols the layer knows.
    let mut code_of = vec![u32::MAX; view.ranking.rank.len()];
    for id in 0..published.min(view.ranking.rank.len()) {
        code_of[view.ranking.rank[id] as usize] = old.map_or(view.ranking.rank[id], |o| o.rank[id]);
    }
    let mut member = vec![false; published];
    let mut keep = arrow::array::BooleanBufferBuilder::new(codes.len());
    let mut at = 0;
    for &(day, rows) in days {
        member.fill(false);
        universe.for_each_member(day, |rank| {
            if let Some(slot) = code_of.get(rank as usize).and_then(|&c| member.get_mut(c as usize)) {
                *slot = true;
            }
        });
        for i in at..at + rows as usize {
            keep.append(member.get(code_at(codes, i)).copied().unwrap_or(false));
        }
        at += rows as usize;
    }
    keep.finish()
}

/// The ranking the first `n` symbols of `symbols` had: the one a generation published with `n`
/// symbols coded its rows in (the dictionary only grows).
pub(crate) fn ranking_of_first(symbols: &SymbolDictionary, n: usize) -> SymbolRanking {
    let names = symbols.names();
    SymbolRanking::new(&SymbolDictionary::from_persisted(names[..n.min(names.len())].to_vec()))
}

/// Codes of `old` ranks as ranks of `new`, in `new`'s code width.
///
/// # Errors
/// A code that is no rank of `old`: the file holding it is damaged.
pub(crate) fn recode(codes: &ArrayRef, old: &SymbolRanking, new: &SymbolRanking) -> Result<ArrayRef, LayerError> {
    let mut by_rank = vec![0u32; old.rank.len()];
    for (id, &rank) in old.rank.iter().enumerate() {
        by_rank[rank as usize] = new.rank[id];
    }
    let ranks = (0..codes.len())
        .map(|i| {
            by_rank
                .get(code_at(codes, i))
                .copied()
                .ok_or_else(|| LayerError::damaged("a segment's symbol codes", "a code is out of range"))
        })
        .collect::<Result<Vec<u32>, _>>()?;
    Ok(if narrow(new.rank.len()) {
        Arc::new(Int16Array::from_iter_values(ranks.into_iter().map(|r| r as i16)))
    } else {
        Arc::new(Int32Array::from_iter_values(ranks.into_iter().map(|r| r as i32)))
    })
}

/// Code `i`; a negative one (only a damaged file has one) indexes nothing.
fn code_at(codes: &ArrayRef, i: usize) -> usize {
    let code = match codes.data_type() {
        DataType::Int8 => i32::from(codes.as_primitive::<Int8Type>().value(i)),
        DataType::Int16 => i32::from(codes.as_primitive::<Int16Type>().value(i)),
        _ => codes.as_primitive::<Int32Type>().value(i),
    };
    usize::try_from(code).unwrap_or(usize::MAX)
}

fn match_codes(codes: &ArrayRef, wanted: impl Fn(usize) -> bool) -> BooleanBuffer {
    BooleanBuffer::collect_bool(codes.len(), |i| wanted(code_at(codes, i)))
}

/// The keys of a dictionary column, sharing its buffer.
pub(crate) fn dictionary_keys(column: &ArrayRef) -> ArrayRef {
    arrow::array::make_array(column.as_any_dictionary().keys().to_data())
}

/// Whether symbol codes into `levels` symbols, or a segment's date codes into as many dates, are
/// 16 bits wide (else 32).
pub(crate) fn narrow(levels: usize) -> bool {
    Width::of_symbols(levels) == Width::I16
}

/// The `symbol` column of ranks `keys` into the reader's ranked symbols.
///
/// # Safety
/// As [`keyed`]: every key ranks one of the reader's symbols.
unsafe fn dictionary(keys: ArrayRef, ranking: &SymbolRanking) -> ArrayRef {
    // SAFETY: as the caller promises.
    unsafe { keyed(keys, Arc::new(ranking.sorted.clone())) }
}

/// Codes into `values` as a dictionary column, unchecked: a check here would pass over every
/// row of a read that maps its columns.
///
/// # Safety
/// The codes have no nulls and each is in `0..values.len()`.
unsafe fn keyed(codes: ArrayRef, values: ArrayRef) -> ArrayRef {
    debug_assert!(codes.null_count() == 0 && (0..codes.len()).all(|i| code_at(&codes, i) < values.len()));
    /// # Safety
    /// As [`keyed`], with codes of type `K`.
    unsafe fn typed<K: ArrowDictionaryKeyType>(codes: &ArrayRef, values: ArrayRef) -> ArrayRef {
        // SAFETY: as the caller promises.
        Arc::new(unsafe { DictionaryArray::new_unchecked(codes.as_primitive::<K>().clone(), values) })
    }
    // SAFETY: as the caller promises.
    unsafe {
        match codes.data_type() {
            DataType::Int8 => typed::<Int8Type>(&codes, values),
            DataType::Int16 => typed::<Int16Type>(&codes, values),
            _ => typed::<Int32Type>(&codes, values),
        }
    }
}

/// # Safety
/// As [`keyed`]: every code is the ordinal of one of `days`.
unsafe fn date_dictionary(codes: ArrayRef, days: Vec<Day>) -> ArrayRef {
    // SAFETY: as the caller promises.
    unsafe { keyed(codes, Arc::new(Date32Array::from(days))) }
}

/// The `date` column of rows laid out per `rows_per_day`.
pub(crate) fn dates_column(rows_per_day: &[(Day, usize)], layout: DateLayout) -> ArrayRef {
    let total: usize = rows_per_day.iter().map(|&(_, n)| n).sum();
    match layout {
        DateLayout::Date32 => {
            let mut days = Vec::with_capacity(total);
            for &(day, n) in rows_per_day {
                days.extend(std::iter::repeat_n(day, n));
            }
            Arc::new(Date32Array::from(days))
        }
        DateLayout::Dictionary => {
            let levels: Vec<Day> = rows_per_day.iter().map(|&(d, _)| d).collect();
            fn ordinals<T: ArrowPrimitiveType>(rows_per_day: &[(Day, usize)], total: usize) -> ArrayRef
            where
                T::Native: TryFrom<usize>,
            {
                let mut codes = Vec::with_capacity(total);
                for (ordinal, &(_, n)) in rows_per_day.iter().enumerate() {
                    let ordinal = T::Native::try_from(ordinal).ok().expect("the width holds every ordinal");
                    codes.extend(std::iter::repeat_n(ordinal, n));
                }
                Arc::new(PrimitiveArray::<T>::new(codes.into(), None))
            }
            let codes = match Width::of_dates(levels.len()) {
                Width::I8 => ordinals::<Int8Type>(rows_per_day, total),
                Width::I16 => ordinals::<Int16Type>(rows_per_day, total),
                Width::I32 => ordinals::<Int32Type>(rows_per_day, total),
            };
            // SAFETY: each code is the ordinal of its day, counted above.
            unsafe { date_dictionary(codes, levels) }
        }
    }
}
