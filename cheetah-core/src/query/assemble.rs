//! The assembler: per-date chunks of several tables into one table keyed by (date, symbol).
//!
//! Rows of a date are the union of the row tables' symbols, in symbol-text order. Text order is
//! rank order: `rank[id]` is a symbol's position in the sorted dictionary, and a bitmap over
//! ranks gives a date's rows already sorted. Every output buffer is allocated once at its final
//! size and split into disjoint per-date slices, which are filled in parallel: no hash join, no
//! per-row allocation, no string comparison.

use std::sync::Arc;

use arrow::array::{
    make_array, new_empty_array, Array, ArrayData, ArrayRef, BooleanBufferBuilder, Date32Array, DictionaryArray,
    PrimitiveArray, StringArray, UInt32Array,
};
use arrow::buffer::{BooleanBuffer, NullBuffer, ScalarBuffer};
use arrow::compute::{concat, take};
use arrow::datatypes::{Date32Type, Int16Type, Int32Type};
use rayon::prelude::*;

use super::pool::{Lease, OutputPool};
use crate::store::keys::Day;
use crate::store::symbols::SymbolDictionary;
use crate::types::ValueType;

/// The symbol dictionary in text order.
#[derive(Debug, Clone)]
pub struct SymbolRanking {
    /// `rank[id]` is the position of symbol `id` in text order.
    pub rank: Vec<u32>,
    /// Every symbol in text order: the `symbol` column's dictionary.
    pub sorted: StringArray,
}

impl SymbolRanking {
    /// Ranks every symbol of `symbols`.
    pub fn new(symbols: &SymbolDictionary) -> Self {
        let names = symbols.names();
        let mut order: Vec<u32> = (0..names.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| names[a as usize].cmp(&names[b as usize]));
        let mut rank = vec![0; names.len()];
        for (position, &id) in order.iter().enumerate() {
            rank[id as usize] = position as u32;
        }
        let sorted = StringArray::from_iter_values(order.iter().map(|&id| &*names[id as usize]));
        Self { rank, sorted }
    }

    fn len(&self) -> usize {
        self.rank.len()
    }
}

/// One table's key chunk per date, aligned with [`Inputs::days`].
pub type TableKeys = Vec<Option<Arc<[u32]>>>;

/// Everything the assembler reads, already fetched.
pub struct Inputs<'a> {
    /// The dates, ascending.
    pub days: &'a [Day],
    /// Key chunks of every involved table.
    pub tables: Vec<TableKeys>,
    /// Indexes into `tables` of the tables whose keys make the rows.
    pub row_tables: Vec<usize>,
    /// Per field: its table (index into `tables`), type, and value chunk per date.
    pub fields: Vec<(usize, ValueType, Vec<Option<ArrayRef>>)>,
    /// Keep only these symbol ids.
    pub symbols: Option<&'a [u32]>,
    /// The dictionary order.
    pub ranking: &'a SymbolRanking,
    /// How the `date` column is laid out.
    pub dates: DateLayout,
}

/// The layout of the `date` column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DateLayout {
    /// A Date32 per row.
    #[default]
    Date32,
    /// Dictionary-encoded: a code per row into the dates that have rows, the shape of a pandas
    /// MultiIndex level.
    Dictionary,
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
}

const NONE: u32 = u32::MAX;

/// Assembles `inputs` into buffers taken from `pool`.
pub fn assemble(inputs: &Inputs<'_>, pool: &OutputPool) -> Assembled {
    let n_days = inputs.days.len();
    let wanted = inputs.symbols.map(|ids| {
        let mut bits = RankBits::new(inputs.ranking.len());
        for &id in ids {
            if let Some(&rank) = inputs.ranking.rank.get(id as usize) {
                bits.set(rank);
            }
        }
        bits
    });
    // Each date's rows as a set of ranks, built once and kept for the fill.
    let rows: Vec<RankBits> = (0..n_days)
        .into_par_iter()
        .map(|d| {
            let mut bits = RankBits::new(inputs.ranking.len());
            row_bits(inputs, d, wanted.as_ref(), &mut bits);
            bits
        })
        .collect();
    let counts: Vec<usize> = rows.par_iter().map(RankBits::count).collect();
    let total: usize = counts.iter().sum();

    let days_with_rows: Vec<Day> = inputs.days.iter().zip(&counts).filter(|(_, &n)| n > 0).map(|(&d, _)| d).collect();
    let mut dates = match inputs.dates {
        DateLayout::Date32 => Codes::wide(total, pool),
        DateLayout::Dictionary => Codes::new(days_with_rows.len(), total, pool),
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
    let mut codes = Codes::new(inputs.ranking.len(), total, pool);
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

    let per_day: Vec<Vec<DayPart>> = days_out
        .into_par_iter()
        .enumerate()
        .map_init(
            || Scratch::new(inputs.ranking.len()),
            |scratch, (d, out)| fill_day(inputs, d, date_values[d], &rows[d], scratch, out),
        )
        .collect();

    let fields = outputs
        .into_iter()
        .enumerate()
        .map(|(f, output)| {
            output.finish(inputs.fields[f].1, total, per_day.iter().zip(&counts).map(|(day, &n)| (&day[f], n)))
        })
        .collect();
    let symbols = codes.into_dictionary(Arc::new(inputs.ranking.sorted.clone()));
    let dates = match inputs.dates {
        DateLayout::Date32 => dates.into_dates(),
        DateLayout::Dictionary => dates.into_dictionary(Arc::new(Date32Array::from(days_with_rows))),
    };
    Assembled { dates, symbols, fields, rows_per_day: counts }
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
}

fn fill_day(
    inputs: &Inputs<'_>,
    d: usize,
    date_value: i32,
    rows: &RankBits,
    scratch: &mut Scratch,
    out: DayOut<'_>,
) -> Vec<DayPart> {
    let DayOut { mut dates, mut codes, mut fields } = out;
    let n = dates.len();
    let mut parts: Vec<DayPart> = inputs.fields.iter().map(|_| DayPart::AllValid).collect();
    if n == 0 {
        return parts;
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
                    // Pooled buffers hold an earlier read's bytes: every slot is written.
                    let dense = covered == n && chunk.is_some_and(|c| c.null_count() == 0);
                    let mut valid = (!dense).then(|| {
                        fill_null(*dtype, values);
                        let mut bits = BooleanBufferBuilder::new(n);
                        bits.append_n(n, false);
                        bits
                    });
                    if let Some(chunk) = chunk {
                        scatter(chunk.as_ref(), *dtype, *width, &scratch.dest, values, valid.as_mut());
                    }
                    if let Some(mut valid) = valid {
                        parts[f] = DayPart::Validity(valid.finish());
                    }
                }
                FieldSlice::Taken => parts[f] = DayPart::Array(take_day(chunk, *dtype, &scratch.dest, n)),
            }
        }
    }
    parts
}

/// What one date adds to a field besides the values written in place.
enum DayPart {
    /// Every row has a value (or the date has no rows).
    AllValid,
    /// Which rows have a value.
    Validity(BooleanBuffer),
    /// The date's array of a type assembled per date.
    Array(ArrayRef),
}

/// Values for rows with no source row: NaN for floats, so a float column reads as NaN in
/// pandas without consulting its validity; zero otherwise.
fn fill_null(dtype: ValueType, values: &mut [u8]) {
    match dtype {
        ValueType::Float64 => fill_pattern(values, f64::NAN.to_le_bytes()),
        ValueType::Float32 => fill_pattern(values, f32::NAN.to_le_bytes()),
        _ => values.fill(0),
    }
}

/// Fills `values` with copies of `pattern`; its width is a constant, so each copy is one store.
fn fill_pattern<const W: usize>(values: &mut [u8], pattern: [u8; W]) {
    for slot in values.chunks_exact_mut(W) {
        slot.copy_from_slice(&pattern);
    }
}

/// Copies `chunk`'s values to their rows, and marks the valid ones in `valid` unless the caller
/// already knows every row is valid.
fn scatter(
    chunk: &dyn Array,
    dtype: ValueType,
    width: usize,
    dest: &[u32],
    values: &mut [u8],
    valid: Option<&mut BooleanBufferBuilder>,
) {
    let data = chunk.to_data();
    let src = &data.buffers()[0].as_slice()[data.offset() * width..(data.offset() + data.len()) * width];
    match width {
        1 => scatter_width::<1>(src, dest, values),
        2 => scatter_width::<2>(src, dest, values),
        4 => scatter_width::<4>(src, dest, values),
        8 => scatter_width::<8>(src, dest, values),
        16 => scatter_width::<16>(src, dest, values),
        other => unreachable!("no fixed-width type is {other} bytes wide"),
    }
    let Some(valid) = valid else { return };
    match chunk.nulls().filter(|n| n.null_count() > 0) {
        None => {
            for &p in dest.iter().filter(|&&p| p != NONE) {
                valid.set_bit(p as usize, true);
            }
        }
        Some(nulls) => {
            for (i, &p) in dest.iter().enumerate().filter(|(_, &p)| p != NONE) {
                let p = p as usize;
                if nulls.is_valid(i) {
                    valid.set_bit(p, true);
                } else {
                    fill_null(dtype, &mut values[p * width..(p + 1) * width]);
                }
            }
        }
    }
}

fn scatter_width<const W: usize>(src: &[u8], dest: &[u32], out: &mut [u8]) {
    for (value, &p) in src.chunks_exact(W).zip(dest) {
        if p != NONE {
            let p = p as usize * W;
            out[p..p + W].copy_from_slice(value);
        }
    }
}

/// Booleans and text: a `take` per date, concatenated at the end.
fn take_day(chunk: Option<&ArrayRef>, dtype: ValueType, dest: &[u32], n: usize) -> ArrayRef {
    let Some(chunk) = chunk else { return dtype.null_array(n) };
    let mut source: Vec<Option<u32>> = vec![None; n];
    for (i, &p) in dest.iter().enumerate() {
        if p != NONE {
            source[p as usize] = Some(i as u32);
        }
    }
    take(chunk.as_ref(), &UInt32Array::from(source), None).expect("indices are in bounds")
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

/// One field's output.
enum Output {
    /// Fixed-width values, written in place.
    Fixed { width: usize, values: Lease },
    /// Booleans and text, assembled per date.
    Taken,
}

enum FieldRest<'a> {
    Fixed { width: usize, values: &'a mut [u8] },
    Taken,
}

enum FieldSlice<'a> {
    Fixed { width: usize, values: &'a mut [u8] },
    Taken,
}

struct DayOut<'a> {
    dates: CodeSlice<'a>,
    codes: CodeSlice<'a>,
    fields: Vec<FieldSlice<'a>>,
}

/// A buffer of per-row integers, 16 or 32 bits wide: dictionary codes, or dates.
struct Codes {
    lease: Lease,
    narrow: bool,
    rows: usize,
}

impl Codes {
    /// Codes into a dictionary of `levels` values, 16 bits wide where pandas keeps 16-bit codes
    /// (below `i16::MAX` levels; it would narrow smaller ones further, copying only those).
    fn new(levels: usize, rows: usize, pool: &OutputPool) -> Self {
        let narrow = levels < i16::MAX as usize;
        Self { lease: pool.take(rows * if narrow { 2 } else { 4 }), narrow, rows }
    }

    fn wide(rows: usize, pool: &OutputPool) -> Self {
        Self { lease: pool.take(rows * 4), narrow: false, rows }
    }

    fn slice(&mut self) -> CodeSlice<'_> {
        if self.narrow {
            CodeSlice::Narrow(self.lease.typed_mut::<i16>())
        } else {
            CodeSlice::Wide(self.lease.typed_mut::<i32>())
        }
    }

    fn into_dictionary(self, values: ArrayRef) -> ArrayRef {
        let buffer = self.lease.into_buffer();
        if self.narrow {
            let keys = PrimitiveArray::<Int16Type>::new(ScalarBuffer::new(buffer, 0, self.rows), None);
            Arc::new(DictionaryArray::try_new(keys, values).expect("codes index the values"))
        } else {
            let keys = PrimitiveArray::<Int32Type>::new(ScalarBuffer::new(buffer, 0, self.rows), None);
            Arc::new(DictionaryArray::try_new(keys, values).expect("codes index the values"))
        }
    }

    fn into_dates(self) -> ArrayRef {
        debug_assert!(!self.narrow);
        Arc::new(PrimitiveArray::<Date32Type>::new(ScalarBuffer::new(self.lease.into_buffer(), 0, self.rows), None))
    }
}

/// Part of a [`Codes`] buffer.
enum CodeSlice<'a> {
    Narrow(&'a mut [i16]),
    Wide(&'a mut [i32]),
}

impl<'a> CodeSlice<'a> {
    fn len(&self) -> usize {
        match self {
            CodeSlice::Narrow(s) => s.len(),
            CodeSlice::Wide(s) => s.len(),
        }
    }

    /// Splits off the first `n` values.
    fn take(&mut self, n: usize) -> CodeSlice<'a> {
        match self {
            CodeSlice::Narrow(s) => {
                let (head, tail) = std::mem::take(s).split_at_mut(n);
                *s = tail;
                CodeSlice::Narrow(head)
            }
            CodeSlice::Wide(s) => {
                let (head, tail) = std::mem::take(s).split_at_mut(n);
                *s = tail;
                CodeSlice::Wide(head)
            }
        }
    }

    /// Sets row `j`; a narrow buffer holds codes of fewer than `i16::MAX` levels, so `value` fits.
    fn set(&mut self, j: usize, value: i32) {
        match self {
            CodeSlice::Narrow(s) => s[j] = value as i16,
            CodeSlice::Wide(s) => s[j] = value,
        }
    }

    fn fill(&mut self, value: i32) {
        match self {
            CodeSlice::Narrow(s) => s.fill(value as i16),
            CodeSlice::Wide(s) => s.fill(value),
        }
    }
}

impl Output {
    fn new(dtype: ValueType, rows: usize, pool: &OutputPool) -> Self {
        match (dtype, dtype.width()) {
            (ValueType::Bool, _) | (_, None) => Output::Taken,
            (_, Some(width)) => Output::Fixed { width, values: pool.take(rows * width) },
        }
    }

    fn rest(&mut self) -> FieldRest<'_> {
        match self {
            Output::Fixed { width, values } => FieldRest::Fixed { width: *width, values: values.typed_mut() },
            Output::Taken => FieldRest::Taken,
        }
    }

    /// The field's array from what each date added, with its row count.
    fn finish<'p>(self, dtype: ValueType, rows: usize, days: impl Iterator<Item = (&'p DayPart, usize)>) -> ArrayRef {
        match self {
            Output::Fixed { values, .. } => {
                let mut validity: Option<BooleanBufferBuilder> = None;
                let mut done = 0;
                for (part, n) in days {
                    if let DayPart::Validity(bits) = part {
                        let validity = validity.get_or_insert_with(|| {
                            let mut all = BooleanBufferBuilder::new(rows);
                            all.append_n(done, true);
                            all
                        });
                        validity.append_buffer(bits);
                    } else if let Some(validity) = &mut validity {
                        validity.append_n(n, true);
                    }
                    done += n;
                }
                let data = ArrayData::builder(dtype.arrow())
                    .len(rows)
                    .add_buffer(values.into_buffer())
                    .nulls(validity.map(|mut v| NullBuffer::new(v.finish())))
                    .build()
                    .expect("buffers sized for the rows");
                make_array(data)
            }
            Output::Taken => {
                let parts: Vec<&dyn Array> = days
                    .filter_map(|(part, _)| match part {
                        DayPart::Array(array) => Some(array.as_ref()),
                        _ => None,
                    })
                    .collect();
                if parts.is_empty() {
                    new_empty_array(&dtype.arrow())
                } else {
                    concat(&parts).expect("parts share one type")
                }
            }
        }
    }
}

impl<'a> FieldRest<'a> {
    fn take(&mut self, n: usize) -> FieldSlice<'a> {
        match self {
            FieldRest::Fixed { width, values } => {
                let (head, tail) = std::mem::take(values).split_at_mut(n * *width);
                *values = tail;
                FieldSlice::Fixed { width: *width, values: head }
            }
            FieldRest::Taken => FieldSlice::Taken,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use arrow::array::{AsArray, Float64Array, Int64Array};
    use arrow::compute::cast;
    use arrow::datatypes::DataType;
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    use proptest::prelude::*;

    use super::*;

    /// One table: per day, its (symbol id, value) rows; values are null where `None`.
    type Table = Vec<BTreeMap<u32, Option<i64>>>;

    fn symbols(names: &[String]) -> SymbolDictionary {
        SymbolDictionary::from_persisted(names.iter().map(|n| Arc::from(n.as_str())).collect())
    }

    /// The chunks Cheetah would store for `table`: sorted ids, and each value as an Int64, a
    /// Float64 and a text column.
    fn chunks(table: &Table) -> (TableKeys, [Vec<Option<ArrayRef>>; 3]) {
        let mut keys = Vec::new();
        let mut columns: [Vec<Option<ArrayRef>>; 3] = Default::default();
        for day in table {
            if day.is_empty() {
                keys.push(None);
                columns.iter_mut().for_each(|c| c.push(None));
                continue;
            }
            keys.push(Some(day.keys().copied().collect::<Vec<_>>().into()));
            let values: Vec<Option<i64>> = day.values().copied().collect();
            columns[0].push(Some(Arc::new(Int64Array::from(values.clone())) as ArrayRef));
            columns[1].push(Some(
                Arc::new(Float64Array::from_iter(values.iter().map(|v| v.map(|v| v as f64 / 4.0)))) as ArrayRef
            ));
            columns[2].push(Some(
                Arc::new(StringArray::from_iter(values.iter().map(|v| v.map(|v| format!("v{v}"))))) as ArrayRef
            ));
        }
        (keys, columns)
    }

    fn cell(array: &dyn Array, i: usize) -> Option<String> {
        if let Some(floats) = array.as_primitive_opt::<arrow::datatypes::Float64Type>() {
            // Nulls in float columns carry NaN, which pandas reads without the validity bitmap.
            let value = floats.values()[i];
            assert_eq!(array.is_null(i), value.is_nan(), "a float is null exactly when it is NaN");
        }
        array
            .is_valid(i)
            .then(|| ArrayFormatter::try_new(array, &FormatOptions::default()).unwrap().value(i).to_string())
    }

    fn arb_case() -> impl Strategy<Value = (Vec<String>, Vec<Table>, Vec<usize>, Option<Vec<u32>>)> {
        (2usize..40, 1usize..4, 1usize..6).prop_flat_map(|(n_symbols, n_tables, n_days)| {
            let names = prop::collection::btree_set("[A-Z]{1,3}", n_symbols).prop_map(|s| {
                let mut names: Vec<String> = s.into_iter().collect();
                // Ids in a scrambled order, so id order is not text order.
                names.reverse();
                let third = names.len() / 3;
                names.rotate_left(third);
                names
            });
            let n = n_symbols;
            let day = prop::collection::btree_map(0..n as u32, prop::option::weighted(0.8, -1000i64..1000), 0..n);
            let table = prop::collection::vec(day, n_days);
            let tables = prop::collection::vec(table, n_tables);
            let rows = prop::sample::subsequence((0..n_tables).collect::<Vec<_>>(), 1..=n_tables);
            let filter = prop::option::weighted(0.3, prop::collection::vec(0..n as u32 + 2, 0..n));
            (names, tables, rows, filter)
        })
    }

    proptest! {
        #[test]
        fn matches_a_naive_join((names, tables, row_tables, filter) in arb_case(), dictionary_dates in any::<bool>()) {
            let dictionary = symbols(&names);
            let ranking = SymbolRanking::new(&dictionary);
            let n_days = tables[0].len();
            let days: Vec<Day> = (0..n_days as Day).map(|d| 100 + d * 3).collect();
            let mut keys = Vec::new();
            let mut fields = Vec::new();
            for (t, table) in tables.iter().enumerate() {
                let (table_keys, columns) = chunks(table);
                keys.push(table_keys);
                for (column, dtype) in columns.into_iter().zip([ValueType::Int64, ValueType::Float64, ValueType::Utf8]) {
                    fields.push((t, dtype, column));
                }
            }
            let layout = if dictionary_dates { DateLayout::Dictionary } else { DateLayout::Date32 };
            let inputs = Inputs { days: &days, tables: keys, row_tables: row_tables.clone(), fields, symbols: filter.as_deref(), ranking: &ranking, dates: layout };
            let out = assemble(&inputs, &OutputPool::new(0));

            // The naive reference: per day, the union of the row tables' symbols as text,
            // sorted, filtered, with each table's value looked up by symbol.
            let mut expected: Vec<(Day, String, Vec<Option<String>>)> = Vec::new();
            for (d, &day) in days.iter().enumerate() {
                let mut rows: BTreeSet<&str> = BTreeSet::new();
                for &t in &row_tables {
                    rows.extend(tables[t][d].keys().map(|&id| names[id as usize].as_str()));
                }
                if let Some(filter) = &filter {
                    rows.retain(|s| filter.iter().any(|&id| names.get(id as usize).is_some_and(|n| n == s)));
                }
                for symbol in rows {
                    let id = names.iter().position(|n| n == symbol).unwrap() as u32;
                    let values = tables.iter().flat_map(|table| {
                        let v = table[d].get(&id).copied().flatten();
                        [v.map(|v| v.to_string()), v.map(|v| format!("{:?}", v as f64 / 4.0)), v.map(|v| format!("v{v}"))]
                    }).collect();
                    expected.push((day, symbol.to_string(), values));
                }
            }

            prop_assert_eq!(out.dates.len(), expected.len());
            prop_assert_eq!(out.rows_per_day.iter().sum::<usize>(), expected.len());
            prop_assert_eq!(matches!(out.dates.data_type(), DataType::Dictionary(..)), dictionary_dates);
            prop_assert_eq!(out.symbols.data_type(), &DataType::Dictionary(Box::new(DataType::Int16), Box::new(DataType::Utf8)));
            let dates = cast(&out.dates, &DataType::Date32).unwrap();
            let dates = dates.as_primitive::<arrow::datatypes::Date32Type>();
            let symbol_text = cast(&out.symbols, &DataType::Utf8).unwrap();
            let symbol_text = symbol_text.as_string::<i32>();
            for (i, (day, symbol, values)) in expected.iter().enumerate() {
                prop_assert_eq!(dates.value(i), *day);
                prop_assert_eq!(symbol_text.value(i), symbol.as_str());
                for (f, want) in values.iter().enumerate() {
                    let got = cell(out.fields[f].as_ref(), i);
                    prop_assert_eq!(&got, want, "field {} row {}", f, i);
                }
            }
        }
    }

    #[test]
    fn codes_widen_past_32768_symbols() {
        let names: Vec<String> = (0..40_000).map(|i| format!("S{i:05}")).collect();
        let ranking = SymbolRanking::new(&symbols(&names));
        let table: Table = vec![BTreeMap::from([(3, Some(1)), (39_999, Some(2))])];
        let (keys, [column, _, _]) = chunks(&table);
        let inputs = Inputs {
            days: &[7],
            tables: vec![keys],
            row_tables: vec![0],
            fields: vec![(0, ValueType::Int64, column)],
            symbols: None,
            ranking: &ranking,
            dates: DateLayout::Dictionary,
        };
        let out = assemble(&inputs, &OutputPool::new(0));
        assert_eq!(out.symbols.data_type(), &DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)));
        let text = cast(&out.symbols, &DataType::Utf8).unwrap();
        assert_eq!(text.as_string::<i32>().iter().collect::<Vec<_>>(), [Some("S00003"), Some("S39999")]);
        let dates = out.dates.as_any_dictionary();
        assert_eq!(dates.keys().to_data().buffers()[0].typed_data::<i16>(), [0, 0]);
        assert_eq!(dates.values().as_primitive::<arrow::datatypes::Date32Type>().values(), &[7]);
    }

    #[test]
    fn two_tables_assembled() {
        let names: Vec<String> = ["ZZ", "AA", "MM"].map(String::from).to_vec();
        let dictionary = symbols(&names);
        let ranking = SymbolRanking::new(&dictionary);
        let bar: Table = vec![BTreeMap::from([(0, Some(1)), (1, Some(2))]), BTreeMap::from([(2, Some(3))])];
        let valuation: Table = vec![BTreeMap::from([(1, None), (2, Some(7))]), BTreeMap::new()];
        let (bar_keys, [bar_close, _, _]) = chunks(&bar);
        let (val_keys, [_, val_pe, val_name]) = chunks(&valuation);
        let inputs = Inputs {
            days: &[18262, 18263],
            tables: vec![bar_keys, val_keys],
            row_tables: vec![0, 1],
            fields: vec![
                (0, ValueType::Int64, bar_close),
                (1, ValueType::Float64, val_pe),
                (1, ValueType::Utf8, val_name),
            ],
            symbols: None,
            ranking: &ranking,
            dates: DateLayout::Date32,
        };
        let out = assemble(&inputs, &OutputPool::new(0));
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("date", arrow::datatypes::DataType::Date32, false),
            arrow::datatypes::Field::new("symbol", out.symbols.data_type().clone(), false),
            arrow::datatypes::Field::new("close", arrow::datatypes::DataType::Int64, true),
            arrow::datatypes::Field::new("pe", arrow::datatypes::DataType::Float64, true),
            arrow::datatypes::Field::new("name", arrow::datatypes::DataType::Utf8, true),
        ]));
        let mut columns: Vec<ArrayRef> = vec![out.dates, out.symbols];
        columns.extend(out.fields);
        let batch = arrow::record_batch::RecordBatch::try_new(schema, columns).unwrap();
        insta::assert_snapshot!(arrow::util::pretty::pretty_format_batches(&[batch]).unwrap(), @r"
        +------------+--------+-------+------+------+
        | date       | symbol | close | pe   | name |
        +------------+--------+-------+------+------+
        | 2020-01-01 | AA     | 2     |      |      |
        | 2020-01-01 | MM     |       | 1.75 | v7   |
        | 2020-01-01 | ZZ     | 1     |      |      |
        | 2020-01-02 | MM     | 3     |      |      |
        +------------+--------+-------+------+------+
        ");
        assert_eq!(out.rows_per_day, [3, 1]);
    }
}
