//! What a reader learns of a layer block's content on first use: its codes checked and its
//! fields' nulls counted. A file never changes once a manifest names it, so one pass serves
//! every later read of the generation, which then maps its columns without touching a row.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::buffer::BooleanBuffer;
use arrow::datatypes::{Int16Type, Int32Type};

use super::blocks::BlockSource;
use super::format::Segment;
use crate::error::LayerError;

/// Which of a block's code runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Codes {
    /// The rows' day ordinals.
    Dates,
    /// The rows' symbol ranks.
    Symbols,
}

/// Per block of a generation, by segment id and index, what its first read learned.
#[derive(Debug, Default)]
pub(crate) struct Learned {
    blocks: Mutex<HashMap<(u64, usize), Facts>>,
}

impl Learned {
    /// Checks the codes of blocks `first..` that `codes` holds, joined, unless a read checked
    /// them before: date codes must be their rows' day ordinals, symbol codes rank fewer than
    /// `symbols`. The lock is not held while checking: two first reads may both check.
    pub fn check_codes<B: BlockSource>(
        &self,
        segment: &Segment<B>,
        which: Codes,
        first: usize,
        codes: &ArrayRef,
        symbols: usize,
    ) -> Result<(), LayerError> {
        let per = segment.block_rows as usize;
        let blocks = first..first + codes.len().div_ceil(per);
        let unchecked: Vec<usize> = {
            let learned = self.blocks.lock().unwrap_or_else(PoisonError::into_inner);
            blocks.filter(|&k| !learned.get(&(segment.id, k)).is_some_and(|facts| facts.checked(which))).collect()
        };
        for &k in &unchecked {
            let own = codes.slice((k - first) * per, segment.blocks.rows(k) as usize);
            let (sound, what) = match which {
                Codes::Dates => (dates_are_ordinals(segment, k, &own), "date"),
                Codes::Symbols => (codes_below(&own, symbols), "symbol"),
            };
            if !sound {
                return Err(LayerError::damaged(
                    &segment.block(k)?.file.name,
                    format!("its {what} codes are not the rows' (segment {}, block {k})", segment.id),
                ));
            }
        }
        let mut learned = self.blocks.lock().unwrap_or_else(PoisonError::into_inner);
        for k in unchecked {
            let facts = learned.entry((segment.id, k)).or_default();
            match which {
                Codes::Dates => facts.dates_checked = true,
                Codes::Symbols => facts.symbols_checked = true,
            }
        }
        Ok(())
    }

    /// The unset bits of `bits`, field `field`'s validity over whole blocks `first..` of
    /// `segment`, counted once per block.
    pub fn null_count<B: BlockSource>(
        &self,
        segment: &Segment<B>,
        field: usize,
        first: usize,
        bits: &BooleanBuffer,
    ) -> usize {
        let per = segment.block_rows as usize;
        let blocks = first..first + bits.len().div_ceil(per);
        let known: Vec<Option<usize>> = {
            let learned = self.blocks.lock().unwrap_or_else(PoisonError::into_inner);
            blocks
                .clone()
                .map(|k| learned.get(&(segment.id, k)).and_then(|facts| facts.nulls.get(&field).copied()))
                .collect()
        };
        let counts: Vec<usize> = blocks
            .clone()
            .zip(&known)
            .map(|(k, known)| {
                let rows = segment.blocks.rows(k) as usize;
                known.unwrap_or_else(|| rows - bits.slice((k - first) * per, rows).count_set_bits())
            })
            .collect();
        let mut learned = self.blocks.lock().unwrap_or_else(PoisonError::into_inner);
        for ((k, known), &count) in blocks.zip(&known).zip(&counts) {
            if known.is_none() {
                learned.entry((segment.id, k)).or_default().nulls.insert(field, count);
            }
        }
        counts.iter().sum()
    }
}

/// What the first read of one block learned of it.
#[derive(Debug, Default)]
struct Facts {
    /// Its date codes are the ordinals of its rows' days.
    dates_checked: bool,
    /// Its symbol codes rank the manifest's symbols.
    symbols_checked: bool,
    /// Nulls per field, by place among the segment's fields, once counted.
    nulls: HashMap<usize, usize>,
}

impl Facts {
    fn checked(&self, which: Codes) -> bool {
        match which {
            Codes::Dates => self.dates_checked,
            Codes::Symbols => self.symbols_checked,
        }
    }
}

/// Whether `codes`, block `k` of `segment`'s, are each row's day's ordinal among the segment's
/// days with rows.
fn dates_are_ordinals<B>(segment: &Segment<B>, k: usize, codes: &ArrayRef) -> bool {
    let start = k * segment.block_rows as usize;
    let end = start + codes.len();
    let runs = segment.days.iter().filter(|&&(_, rows)| rows > 0).scan(0, |row, &(_, rows)| {
        let run = *row..*row + rows as usize;
        *row = run.end;
        Some(run)
    });
    for (ordinal, run) in runs.enumerate() {
        if run.start >= end {
            break;
        }
        if run.end <= start {
            continue;
        }
        let (a, b) = (run.start.max(start) - start, run.end.min(end) - start);
        let same = match codes.as_primitive_opt::<Int16Type>() {
            Some(c) => c.values()[a..b].iter().all(|&v| v as usize == ordinal),
            None => codes.as_primitive::<Int32Type>().values()[a..b].iter().all(|&v| v as usize == ordinal),
        };
        if !same {
            return false;
        }
    }
    true
}

/// Whether every code is in `0..limit`.
fn codes_below(codes: &ArrayRef, limit: usize) -> bool {
    match codes.as_primitive_opt::<Int16Type>() {
        Some(c) => crate::codes::i16_below(c.values(), limit),
        None => crate::codes::i32_below(codes.as_primitive::<Int32Type>().values(), limit),
    }
}
