//! The assembler: per-date chunks of several tables into one table keyed by (date, symbol).
//!
//! Rows of a date are the union of the row tables' symbols, in symbol-text order. Text order is
//! rank order: `rank[id]` is a symbol's position in the sorted dictionary, and a bitmap over
//! ranks gives a date's rows already sorted. Every output buffer is allocated once at its final
//! size and split into disjoint per-date slices, which are filled in parallel: no hash join, no
//! per-row allocation, no string comparison.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanBufferBuilder, Date32Array};
use arrow::buffer::BooleanBuffer;
use arrow::datatypes::DataType;
use rayon::prelude::*;

use self::buffers::{Codes, DayOut, FieldRest, FieldSlice, Output};
use self::scatter::{fill_null, fill_unset, scatter, take_day};
pub use self::wide::assemble_wide;
use super::membership::Membership;
use super::pool::OutputPool;
use crate::codes::Width;
use crate::types::{Day, ValueType};
use crate::view::SymbolRanking;

mod buffers;
mod scatter;
#[cfg(test)]
mod tests;
mod wide;

/// One table's row chunk (its sorted symbol ids) per date, aligned with [`Inputs::days`].
pub type TableRows = Vec<Option<Arc<[u32]>>>;

/// One field's value chunk per date, aligned with [`Inputs::days`].
pub type FieldChunks = Vec<Option<ArrayRef>>;

/// Everything the assembler reads, already fetched.
pub struct Inputs<'a> {
    /// The dates, ascending.
    pub days: &'a [Day],
    /// Key chunks of every involved table.
    pub tables: Vec<TableRows>,
    /// Indexes into `tables` of the tables whose keys make the rows.
    pub row_tables: Vec<usize>,
    /// Per field: its table (index into `tables`), type, and value chunk per date.
    pub fields: Vec<(usize, ValueType, FieldChunks)>,
    /// Keep only these symbol ids.
    pub symbols: Option<&'a [u32]>,
    /// Keep only the rows of each day's members.
    pub universe: Option<&'a Membership>,
    /// The dictionary order.
    pub ranking: &'a SymbolRanking,
    /// How the `date` column is laid out.
    pub dates: DateLayout,
    /// Whether to report which rows each row table has ([`Assembled::presence`]).
    pub presence: bool,
}

/// The layout of the `date` column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DateLayout {
    /// A Date32 per row.
    #[default]
    Date32,
    /// Dictionary-encoded: a code per row into the dates that have rows, the shape of a pandas
    /// MultiIndex level, its codes as wide as pandas keeps them.
    Dictionary,
}

impl DateLayout {
    /// The type of the `date` column of a read with `days` dates that have rows.
    pub fn date_type(self, days: usize) -> DataType {
        match self {
            DateLayout::Date32 => DataType::Date32,
            DateLayout::Dictionary => {
                DataType::Dictionary(Box::new(Width::of_dates(days).arrow()), Box::new(DataType::Date32))
            }
        }
    }
}

/// The type of the `symbol` column of a read whose codes index `symbols` symbols.
pub fn symbol_type(symbols: usize) -> DataType {
    DataType::Dictionary(Box::new(Width::of_symbols(symbols).arrow()), Box::new(DataType::Utf8))
}

/// The assembled columns: `date`, `symbol` codes into [`SymbolRanking::sorted`], the fields, and
/// rows per date.
pub struct Assembled {
    /// Date of each row, laid out as [`Inputs::dates`] asks.
    pub dates: ArrayRef,
    /// Symbol of each row, as a dictionary over the ranked symbols with the narrowest signed
    /// keys pandas would keep them in (Int16 below 32,767 symbols), so pandas takes them as they
    /// are.
    pub symbols: ArrayRef,
    /// One array per field.
    pub fields: Vec<ArrayRef>,
    /// Rows of each input date (zero for dates with no rows).
    pub rows_per_day: Vec<usize>,
    /// When [`Inputs::presence`] asks: per row table, in [`Inputs::row_tables`] order, which
    /// rows it has.
    pub presence: Vec<BooleanBuffer>,
}

const NONE: u32 = u32::MAX;

/// Assembles `inputs` into buffers taken from `pool`.
pub fn assemble(inputs: &Inputs<'_>, pool: &OutputPool) -> Assembled {
    let n_days = inputs.days.len();
    // Each date's rows as a set of ranks, built once and kept for the fill.
    let rows = day_rows(inputs);
    let counts: Vec<usize> = rows.par_iter().map(RankBits::count).collect();
    let total: usize = counts.iter().sum();

    let days_with_rows: Vec<Day> = inputs.days.iter().zip(&counts).filter(|(_, &n)| n > 0).map(|(&d, _)| d).collect();
    let mut dates = match inputs.dates {
        DateLayout::Date32 => Codes::wide(total, pool),
        DateLayout::Dictionary => Codes::dates(days_with_rows.len(), total, pool),
    };
    // The value each date's rows carry in the `date` buffer: the date, or its dictionary code.
    let mut ordinal = 0;
    let date_values: Vec<i32> = inputs
        .days
        .iter()
        .zip(&counts)
        .map(|(&day, &n)| match inputs.dates {
            DateLayout::Date32 => day,
            DateLayout::Dictionary => {
                ordinal += i32::from(n > 0);
                ordinal - 1
            }
        })
        .collect();
    let mut codes = Codes::symbols(inputs.ranking.rank.len(), total, pool);
    let mut outputs: Vec<Output> = inputs.fields.iter().map(|(_, dtype, _)| Output::new(*dtype, total, pool)).collect();

    // Disjoint per-date slices of every buffer.
    let mut days_out: Vec<DayOut<'_>> = Vec::with_capacity(n_days);
    {
        let mut date_rest = dates.slice();
        let mut code_rest = codes.slice();
        let mut field_rests: Vec<FieldRest<'_>> = outputs.iter_mut().map(Output::rest).collect();
        for &n in &counts {
            let date_head = date_rest.take(n);
            let code_head = code_rest.take(n);
            let fields = field_rests.iter_mut().map(|rest| rest.take(n)).collect();
            days_out.push(DayOut { dates: date_head, codes: code_head, fields });
        }
    }

    let per_day: Vec<(Vec<DayPart>, Vec<BooleanBuffer>)> = days_out
        .into_par_iter()
        .enumerate()
        .map_init(
            || Scratch::new(inputs.ranking.rank.len()),
            |scratch, (d, out)| fill_day(inputs, d, date_values[d], &rows[d], scratch, out),
        )
        .collect();

    let fields = outputs
        .into_iter()
        .enumerate()
        .map(|(f, output)| {
            output.finish(inputs.fields[f].1, total, per_day.iter().zip(&counts).map(|((day, _), &n)| (&day[f], n)))
        })
        .collect();
    let presence = (0..if inputs.presence { inputs.row_tables.len() } else { 0 })
        .map(|i| {
            let mut bits = BooleanBufferBuilder::new(total);
            for (_, day) in &per_day {
                bits.append_buffer(&day[i]);
            }
            bits.finish()
        })
        .collect();
    let symbols = codes.into_dictionary(Arc::new(inputs.ranking.sorted.clone()));
    let dates = match inputs.dates {
        DateLayout::Date32 => dates.into_dates(),
        DateLayout::Dictionary => dates.into_dictionary(Arc::new(Date32Array::from(days_with_rows))),
    };
    Assembled { dates, symbols, fields, rows_per_day: counts, presence }
}

/// Each date's rows as a set of ranks: the row tables' symbols, kept by the filters.
fn day_rows(inputs: &Inputs<'_>) -> Vec<RankBits> {
    let symbols = inputs.ranking.rank.len();
    let wanted = inputs.symbols.map(|ids| {
        let mut bits = RankBits::new(symbols);
        ids.iter().filter_map(|&id| inputs.ranking.rank.get(id as usize)).for_each(|&rank| bits.set(rank));
        bits
    });
    (0..inputs.days.len())
        .into_par_iter()
        .map(|d| {
            let mut bits = RankBits::new(symbols);
            row_bits(inputs, d, wanted.as_ref(), &mut bits);
            bits
        })
        .collect()
}

/// Sets `bits` to the ranks of the rows of date `d`.
fn row_bits(inputs: &Inputs<'_>, d: usize, wanted: Option<&RankBits>, bits: &mut RankBits) {
    bits.clear();
    for &t in &inputs.row_tables {
        if let Some(keys) = &inputs.tables[t][d] {
            // An id newer than the ranked dictionary belongs to a date committed after the
            // reader's snapshot; it is not part of this read.
            for rank in keys.iter().filter_map(|&id| inputs.ranking.rank.get(id as usize)) {
                bits.set(*rank);
            }
        }
    }
    if let Some(wanted) = wanted {
        bits.intersect(wanted);
    }
    if let Some(universe) = inputs.universe {
        let mut members = RankBits::new(inputs.ranking.rank.len());
        universe.for_each_member(inputs.days[d], |rank| members.set(rank));
        bits.intersect(&members);
    }
}

fn fill_day(
    inputs: &Inputs<'_>,
    d: usize,
    date_value: i32,
    rows: &RankBits,
    scratch: &mut Scratch,
    out: DayOut<'_>,
) -> (Vec<DayPart>, Vec<BooleanBuffer>) {
    let DayOut { mut dates, mut codes, mut fields } = out;
    let n = dates.len();
    let mut parts: Vec<DayPart> = inputs.fields.iter().map(|_| DayPart::AllValid).collect();
    if n == 0 {
        let empty = if inputs.presence {
            inputs.row_tables.iter().map(|_| BooleanBuffer::new_unset(0)).collect()
        } else {
            Vec::new()
        };
        return (parts, empty);
    }
    dates.fill(date_value);
    let mut j = 0;
    rows.for_each(|rank| {
        codes.set(j, rank as i32);
        scratch.position[rank as usize] = j as u32;
        j += 1;
    });

    for (t, keys) in inputs.tables.iter().enumerate() {
        if !inputs.fields.iter().any(|(ft, _, _)| *ft == t) {
            continue;
        }
        let keys = keys[d].as_deref().unwrap_or(&[]);
        scratch.dest.clear();
        let mut covered = 0;
        scratch.dest.extend(keys.iter().map(|&id| {
            let Some(&rank) = inputs.ranking.rank.get(id as usize) else { return NONE };
            if rows.get(rank) {
                covered += 1;
                scratch.position[rank as usize]
            } else {
                NONE
            }
        }));
        for (f, (ft, dtype, chunks)) in inputs.fields.iter().enumerate() {
            if *ft != t {
                continue;
            }
            let chunk = chunks[d].as_ref();
            match &mut fields[f] {
                FieldSlice::Fixed { width, values } => {
                    // Pooled buffers hold an earlier read's bytes: every slot is written, the
                    // rows without a value after the scatter rather than all rows before it.
                    let dense = covered == n && chunk.is_some_and(|c| c.null_count() == 0);
                    let mut valid = (!dense).then(|| {
                        let mut bits = BooleanBufferBuilder::new(n);
                        bits.append_n(n, false);
                        bits
                    });
                    match chunk {
                        Some(chunk) => scatter(chunk.as_ref(), *dtype, *width, &scratch.dest, values, valid.as_mut()),
                        None => fill_null(*dtype, values),
                    }
                    if let Some(mut valid) = valid {
                        let valid = valid.finish();
                        if chunk.is_some() {
                            fill_unset(*dtype, *width, values, &valid);
                        }
                        parts[f] = DayPart::Validity(valid);
                    }
                }
                FieldSlice::Taken => parts[f] = DayPart::Array(take_day(chunk, *dtype, &scratch.dest, n)),
            }
        }
    }
    let presence = if inputs.presence {
        inputs.row_tables.iter().map(|&t| presence(inputs, t, d, rows, scratch, n)).collect()
    } else {
        Vec::new()
    };
    (parts, presence)
}

/// Which of date `d`'s `n` rows table `t` has.
fn presence(inputs: &Inputs<'_>, t: usize, d: usize, rows: &RankBits, scratch: &Scratch, n: usize) -> BooleanBuffer {
    let mut bits = BooleanBufferBuilder::new(n);
    bits.append_n(n, false);
    for &id in inputs.tables[t][d].as_deref().unwrap_or(&[]) {
        if let Some(&rank) = inputs.ranking.rank.get(id as usize) {
            if rows.get(rank) {
                bits.set_bit(scratch.position[rank as usize] as usize, true);
            }
        }
    }
    bits.finish()
}

/// What one date adds to a field besides the values written in place.
pub(super) enum DayPart {
    /// Every row has a value (or the date has no rows).
    AllValid,
    /// Which rows have a value.
    Validity(BooleanBuffer),
    /// The date's array of a type assembled per date.
    Array(ArrayRef),
}

/// Per-thread scratch space.
struct Scratch {
    /// Output row of each rank present on the current date.
    position: Vec<u32>,
    /// Output row of each key of the current table, or [`NONE`].
    dest: Vec<u32>,
}

impl Scratch {
    fn new(symbols: usize) -> Self {
        Self { position: vec![0; symbols], dest: Vec::new() }
    }
}

/// A set of symbol ranks.
struct RankBits {
    words: Vec<u64>,
}

impl RankBits {
    fn new(symbols: usize) -> Self {
        Self { words: vec![0; symbols.div_ceil(64)] }
    }

    fn clear(&mut self) {
        self.words.fill(0);
    }

    fn set(&mut self, rank: u32) {
        self.words[rank as usize / 64] |= 1 << (rank % 64);
    }

    fn get(&self, rank: u32) -> bool {
        self.words[rank as usize / 64] & (1 << (rank % 64)) != 0
    }

    fn union(&mut self, other: &RankBits) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    fn intersect(&mut self, other: &RankBits) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= b;
        }
    }

    fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    fn for_each(&self, mut visit: impl FnMut(u32)) {
        for (w, &word) in self.words.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                visit(w as u32 * 64 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
    }
}
