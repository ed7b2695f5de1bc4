//! A published segment written block by block: whole when it is new, and on a refresh only in
//! the blocks whose rows changed. Appended dates rewrite the last block and add new ones, a
//! rewritten date rewrites the fields of its blocks whose content differs, and a date whose keys
//! changed rewrites every block from its own on. Every other block's files are named again.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int16Array, Int32Array};
use arrow::buffer::BooleanBuffer;
use arrow::datatypes::DataType;

use super::Cache;
use crate::error::{Error, QueryError, ShareError};
use crate::query::{self, dictionary_keys, narrow, DateLayout, HotStore, OutputPool, Request};
use crate::share::{Block, Blocks, Codes, FieldInfo, Generation, Publisher, Segment, PAGE};
use crate::types::{date_of, Day};
use crate::view::SymbolRanking;

/// Where a publish writes, and what its snapshot of the store saw.
pub(super) struct Output<'a> {
    pub publisher: &'a Publisher,
    pub generation: u64,
    /// The symbol dictionary's length in the snapshot.
    pub symbols: usize,
}

/// A run of a segment's days read from the store, laid out as a plain read lays them out.
pub(super) struct Rows {
    /// Every day read, with its rows.
    pub days: Vec<(Day, u64)>,
    /// The daily tables whose keys make the rows.
    pub tables: Vec<u32>,
    /// The fields, in the order asked.
    pub fields: Vec<FieldInfo>,
    /// Per row, its symbol's rank.
    pub symbols: ArrayRef,
    /// Per table, when there are several, which rows it has.
    pub presence: Vec<BooleanBuffer>,
    /// Per field, its column.
    pub columns: Vec<ArrayRef>,
}

impl Rows {
    /// The bytes its blocks take, `per` rows to a block, as [`Publisher`] writes them.
    pub fn bytes(&self, per: usize, symbol_width: u8) -> u64 {
        let pages = |n: usize| n.next_multiple_of(PAGE) as u64;
        let days_with_rows = self.days.iter().filter(|&&(_, n)| n > 0).count();
        let date_width = if narrow(days_with_rows) { 2 } else { 4 };
        let total = self.symbols.len();
        let mut bytes = 0;
        for at in (0..total).step_by(per.max(1)) {
            let n = (total - at).min(per);
            bytes += pages(PAGE)
                + pages(n * date_width)
                + pages(n * usize::from(symbol_width))
                + self.presence.len() as u64 * pages(n.div_ceil(8));
            for column in &self.columns {
                let part = column.slice(at, n);
                let values = match part.data_type() {
                    DataType::Boolean => pages(n.div_ceil(8)),
                    DataType::Utf8 => {
                        let offsets = part.as_string::<i32>().value_offsets();
                        pages((n + 1) * 4) + pages((offsets[n] - offsets[0]) as usize)
                    }
                    t => pages(n * t.primitive_width().unwrap_or(0)),
                };
                // With nulls: the validity, and for an integer its float64 copy.
                let nulls = match part.null_count() {
                    0 => 0,
                    _ if part.data_type().is_integer() => pages(n.div_ceil(8)) + pages(n * 8),
                    _ => pages(n.div_ceil(8)),
                };
                bytes += pages(PAGE) + values + nulls;
            }
        }
        bytes
    }
}

/// A segment as it will be, and how much of its rows is written anew.
pub(super) struct Rewrite {
    /// The segment.
    pub segment: Segment,
    /// Its blocks written anew, whole or in part.
    pub blocks: usize,
}

impl Cache {
    /// Reads days `first..=last` of `cols` from the store.
    ///
    /// # Errors
    /// Store failures; [`QueryError::InvalidArgument`] when symbols were committed since the
    /// publish's snapshot.
    pub(super) fn read_rows(&self, cols: &[String], first: Day, last: Day, symbols: usize) -> Result<Rows, Error> {
        // Publishing keeps no result buffers: they go to the layer's files.
        let pool = OutputPool::new(0);
        let rows = self.follower()?.read(&self.hot, |store, view| {
            if view.symbols.len() != symbols {
                return Err(QueryError::InvalidArgument(
                    "new symbols were committed while publishing; publish again".into(),
                ));
            }
            let request = Request::new(date_of(first), date_of(last), cols.to_vec()).dates(DateLayout::Dictionary);
            let plan = query::plan(view, &self.rules, &request, None)?;
            let chunks = HotStore { hot: &self.hot, store };
            let assembled =
                query::assemble_plan(&plan, view, &chunks, &pool, DateLayout::Dictionary, plan.row_tables > 1)?;
            Ok(Rows {
                days: plan.days.iter().zip(&assembled.rows_per_day).map(|(&d, &n)| (d, n as u64)).collect(),
                tables: plan.tables[..plan.row_tables].iter().map(|t| t.id).collect(),
                fields: plan
                    .fields
                    .iter()
                    .map(|f| FieldInfo {
                        id: f.field.id,
                        table: f.table.id,
                        name: format!("{}.{}", f.table.name, f.field.name),
                        dtype: f.field.dtype,
                    })
                    .collect(),
                symbols: dictionary_keys(&assembled.symbols),
                presence: assembled.presence,
                columns: assembled.fields,
            })
        })?;
        Ok(rows)
    }

    /// Writes a new segment `id` of `rows`, read over `start..=end`.
    ///
    /// # Errors
    /// [`crate::error::ShareError`] when a file cannot be written.
    pub(super) fn write_whole(
        &self,
        out: &Output<'_>,
        id: u64,
        (start, end): (Day, Day),
        rows: Rows,
    ) -> Result<Rewrite, Error> {
        let mut segment = Segment {
            id,
            start,
            end,
            tables: rows.tables.clone(),
            days: Vec::new(),
            block_rows: self.block_rows(),
            date_width: 2,
            symbol_width: if narrow(out.symbols) { 2 } else { 4 },
            fields: rows.fields.clone(),
            blocks: Blocks::default(),
        };
        let blocks = write_tail(out, &mut segment, 0, 0, rows)?;
        out.publisher.stamp(id)?;
        Ok(Rewrite { segment, blocks })
    }

    /// `old` brought up to the store: `days_now` are the days a read of its range plans now, and
    /// `changed` says whether the store rewrote a day since `old` was published. Old blocks are
    /// read from `current`, and recoded by `recode` when symbols were added since.
    ///
    /// # Errors
    /// Store failures; [`crate::error::ShareError`] when a file cannot be written, and
    /// [`ShareError::Unreadable`] when an old block cannot be read back.
    pub(super) fn rewrite(
        &self,
        out: &Output<'_>,
        current: &Generation<Blocks>,
        old: &Segment,
        days_now: &[Day],
        changed: impl Fn(Day) -> bool,
        recode: Option<&(SymbolRanking, SymbolRanking)>,
    ) -> Result<Rewrite, Error> {
        let per = old.block_rows as usize;
        let cols: Vec<String> = old.fields.iter().map(|f| f.name.clone()).collect();
        let mut segment = old.clone();
        let rows_before = prefix_rows(&old.days);
        // From here on the days differ: dates were appended, or a day came or went.
        let same = old.days.iter().zip(days_now).take_while(|((a, _), b)| a == *b).count();
        let mut tail_day = (same < old.days.len() || same < days_now.len()).then_some(same);
        let mut tail_block = tail_day.map(|d| rows_before[d] as usize / per);
        let mut candidates: Vec<usize> = Vec::new();
        for (i, &(day, n)) in old.days[..tail_day.unwrap_or(old.days.len())].iter().enumerate() {
            if changed(day) {
                let (lo, hi) = (rows_before[i] as usize, rows_before[i] as usize + n as usize);
                candidates.extend(lo / per..=(hi.max(lo + 1) - 1) / per);
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        let mut written = 0;
        for k in candidates {
            if tail_block.is_some_and(|t| k >= t) {
                break;
            }
            if k >= old.blocks.len() {
                (tail_day, tail_block) = (Some(first_day_at(&rows_before, k * per)), Some(k));
                break;
            }
            match self.patch(out, current, (old, &rows_before), k, &cols, recode)? {
                Some(block) => {
                    written += usize::from(block != old.blocks[k]);
                    segment.blocks[k] = block;
                }
                None => {
                    (tail_day, tail_block) = (Some(first_day_at(&rows_before, k * per)), Some(k));
                    break;
                }
            }
        }
        if let Some(recode) = recode {
            let end = tail_block.unwrap_or(old.blocks.len()).min(old.blocks.len());
            for k in 0..end {
                if segment.blocks[k] == old.blocks[k] {
                    segment.blocks[k] = recoded(out, current, old, k, recode)?;
                    written += 1;
                }
            }
        }
        if let (Some(day), Some(block)) = (tail_day, tail_block) {
            let first = first_day_at(&rows_before, block * per).min(day);
            let rows = match days_now.get(first) {
                Some(&from) => self.read_rows(&cols, from, old.end, out.symbols)?,
                None => empty_rows(old),
            };
            written += write_tail(out, &mut segment, block, first, rows)?;
        }
        Ok(Rewrite { segment, blocks: written })
    }

    /// Block `k` of `old` (whose rows before each day are `rows_before`) rewritten from the
    /// store where its fields' content differs, or `None` when its rows' keys changed.
    fn patch(
        &self,
        out: &Output<'_>,
        current: &Generation<Blocks>,
        (old, rows_before): (&Segment, &[u64]),
        k: usize,
        cols: &[String],
        recode: Option<&(SymbolRanking, SymbolRanking)>,
    ) -> Result<Option<Block>, Error> {
        let per = old.block_rows as usize;
        let (lo, n) = (k * per, old.blocks[k].rows as usize);
        let (a, b) = (first_day_at(rows_before, lo), last_day_before(rows_before, lo + n));
        let rows = self.read_rows(cols, old.days[a].0, old.days[b].0, out.symbols)?;
        if rows.days != old.days[a..=b] {
            return Ok(None);
        }
        let skip = lo - rows_before[a] as usize;
        let mut symbols = current.codes(old, Codes::Symbols, lo, n).map_err(ShareError::from)?;
        if let Some((from, to)) = recode {
            symbols = query::recode(&symbols, from, to).map_err(ShareError::from)?;
        }
        if symbols.to_data() != rows.symbols.slice(skip, n).to_data() {
            return Ok(None);
        }
        for (i, presence) in rows.presence.iter().enumerate() {
            if current.presence(old, i, lo, n).map_err(ShareError::from)? != presence.slice(skip, n) {
                return Ok(None);
            }
        }
        let mut block = match recode {
            Some(recode) => recoded(out, current, old, k, recode)?,
            None => old.blocks[k].clone(),
        };
        for (j, info) in old.fields.iter().enumerate() {
            let new = rows.columns[j].slice(skip, n);
            if current.column(old, j, lo, n, false).map_err(ShareError::from)?.to_data() != new.to_data() {
                block.fields[j] = out.publisher.write_field(out.generation, old.id, k, info.id, &new)?;
            }
        }
        Ok(Some(block))
    }

    fn block_rows(&self) -> u64 {
        self.config.share.as_ref().map_or(1 << 16, |s| s.block_rows)
    }
}

/// Block `k` of `old` with its symbol codes recoded from one ranking to another, its fields'
/// files kept.
fn recoded(
    out: &Output<'_>,
    current: &Generation<Blocks>,
    old: &Segment,
    k: usize,
    (from, to): &(SymbolRanking, SymbolRanking),
) -> Result<Block, Error> {
    let (lo, n) = (k * old.block_rows as usize, old.blocks[k].rows as usize);
    let dates = current.codes(old, Codes::Dates, lo, n).map_err(ShareError::from)?;
    let symbols = query::recode(&current.codes(old, Codes::Symbols, lo, n).map_err(ShareError::from)?, from, to)
        .map_err(ShareError::from)?;
    let presence =
        (0..old.blocks[k].presence.len()).map(|i| current.presence(old, i, lo, n)).collect::<Result<Vec<_>, _>>();
    let presence = presence.map_err(ShareError::from)?;
    let block = out.publisher.write_rows(out.generation, old.id, k, &dates, &symbols, &presence)?;
    Ok(Block { fields: old.blocks[k].fields.clone(), ..block })
}

/// Replaces the blocks of `segment` from block `from` on with `rows`, read from its day `first`
/// on, which holds the block's first row. Returns the blocks written.
fn write_tail(out: &Output<'_>, segment: &mut Segment, from: usize, first: usize, rows: Rows) -> Result<usize, Error> {
    let per = segment.block_rows as usize;
    segment.days.truncate(first);
    let kept_rows: u64 = segment.days.iter().map(|&(_, n)| n).sum();
    let skip = from * per - kept_rows as usize;
    let ordinal = segment.days.iter().filter(|&&(_, n)| n > 0).count();
    segment.days.extend_from_slice(&rows.days);
    let date_width = if narrow(segment.days.iter().filter(|&&(_, n)| n > 0).count()) { 2 } else { 4 };
    if date_width != segment.date_width && from > 0 {
        return Err(QueryError::InvalidArgument(format!(
            "segment {} now holds more dates than its date codes can count; publish it again",
            segment.id
        ))
        .into());
    }
    segment.date_width = date_width;
    segment.tables = rows.tables;
    segment.blocks.truncate(from);
    let dates = date_codes(&rows.days, ordinal, date_width);
    let total = rows.symbols.len();
    let mut k = from;
    let mut at = skip;
    while at < total {
        let n = (total - at).min(per);
        let presence: Vec<BooleanBuffer> = rows.presence.iter().map(|p| p.slice(at, n)).collect();
        let mut block = out.publisher.write_rows(
            out.generation,
            segment.id,
            k,
            &dates.slice(at, n),
            &rows.symbols.slice(at, n),
            &presence,
        )?;
        for (info, column) in segment.fields.iter().zip(&rows.columns) {
            block.fields.push(out.publisher.write_field(
                out.generation,
                segment.id,
                k,
                info.id,
                &column.slice(at, n),
            )?);
        }
        segment.blocks.push(block);
        (k, at) = (k + 1, at + n);
    }
    Ok(k - from)
}

/// Per row of `days`, its day's ordinal among the days with rows, counted from `first`.
fn date_codes(days: &[(Day, u64)], first: usize, width: u8) -> ArrayRef {
    let mut codes: Vec<i32> = Vec::with_capacity(days.iter().map(|&(_, n)| n as usize).sum());
    for (ordinal, &(_, n)) in (first..).zip(days.iter().filter(|&&(_, n)| n > 0)) {
        codes.extend(std::iter::repeat_n(ordinal as i32, n as usize));
    }
    match width {
        2 => Arc::new(Int16Array::from_iter_values(codes.into_iter().map(|c| c as i16))),
        _ => Arc::new(Int32Array::from(codes)),
    }
}

/// Rows before each day of `days`, and after the last.
fn prefix_rows(days: &[(Day, u64)]) -> Vec<u64> {
    let mut before = Vec::with_capacity(days.len() + 1);
    let mut sum = 0;
    for &(_, n) in days {
        before.push(sum);
        sum += n;
    }
    before.push(sum);
    before
}

/// The first day at row `row`: the day holding it, or the first of the days without rows that
/// sit just before it; past the last row, the first of the days without rows at the end.
fn first_day_at(rows_before: &[u64], row: usize) -> usize {
    let days = &rows_before[..rows_before.len() - 1];
    let p = days.partition_point(|&r| (r as usize) < row);
    if p < days.len() && rows_before[p] as usize == row {
        p
    } else {
        p.saturating_sub(1)
    }
}

/// The last day before row `row`: the day holding row `row - 1`, or, when `row` is past the last,
/// the last day.
fn last_day_before(rows_before: &[u64], row: usize) -> usize {
    let days = &rows_before[..rows_before.len() - 1];
    if row as u64 >= rows_before[days.len()] {
        return days.len().saturating_sub(1);
    }
    days.partition_point(|&r| (r as usize) < row).saturating_sub(1)
}

/// No rows, for a tail with no days left to read.
fn empty_rows(old: &Segment) -> Rows {
    let empty = |dtype: &arrow::datatypes::DataType| arrow::array::new_empty_array(dtype);
    let code =
        if old.symbol_width == 2 { arrow::datatypes::DataType::Int16 } else { arrow::datatypes::DataType::Int32 };
    Rows {
        days: Vec::new(),
        tables: old.tables.clone(),
        fields: old.fields.clone(),
        symbols: empty(&code),
        presence: old.blocks.first().map_or(Vec::new(), |b| vec![BooleanBuffer::new_unset(0); b.presence.len()]),
        columns: old.fields.iter().map(|f| empty(&f.dtype.arrow())).collect(),
    }
}
