//! A segment's blocks as a manifest holds them. Each block is its own run of postcard bytes
//! behind its rows and its files' bytes, so a reader decodes and checks only the blocks its reads
//! touch ([`LazyBlocks`]): a new process's first read pays for what it reads, not for the
//! layer. A publisher, which rewrites the manifest anyway, holds them all decoded ([`Blocks`]).

use std::sync::OnceLock;

use arrow::datatypes::DataType;
use serde::{Deserialize, Deserializer};

use super::format::{Block, Blocks, FileRef, Segment, Span, Stored, PAGE};
use crate::error::LayerError;
use crate::types::ValueType;

/// Where a segment's blocks come from: decoded already, or decoded on first use.
pub trait BlockSource {
    /// How many blocks there are.
    fn len(&self) -> usize;
    /// Rows of block `k`, known without decoding it.
    fn rows(&self, k: usize) -> u64;
    /// Bytes of every block's files, known without decoding them.
    fn bytes(&self) -> u64;
    /// Block `k`. A block decoded here is first passed to `check`, and refused if it fails.
    ///
    /// # Errors
    /// [`LayerError::Damaged`] for bytes that are not a block, or a block `check` refuses.
    fn block(&self, k: usize, check: impl FnOnce(&Block) -> Result<(), LayerError>) -> Result<&Block, LayerError>;
    /// Whether blocks are decoded (and so checked) only when first used.
    const LAZY: bool;
}

impl BlockSource for Blocks {
    const LAZY: bool = false;

    fn len(&self) -> usize {
        self.0.len()
    }

    fn rows(&self, k: usize) -> u64 {
        self.0[k].rows
    }

    fn bytes(&self) -> u64 {
        self.0.iter().map(Block::bytes).sum()
    }

    fn block(&self, k: usize, _: impl FnOnce(&Block) -> Result<(), LayerError>) -> Result<&Block, LayerError> {
        self.0.get(k).ok_or_else(|| LayerError::damaged("its manifest", format!("no block {k}")))
    }
}

impl<B: BlockSource> Segment<B> {
    /// Bytes of its files.
    pub fn bytes(&self) -> u64 {
        self.blocks.bytes()
    }

    /// Block `k`; a lazy one is decoded and checked on first use.
    ///
    /// # Errors
    /// [`LayerError::Damaged`] for a block that is not one or does not fit the segment.
    pub fn block(&self, k: usize) -> Result<&Block, LayerError> {
        self.blocks.block(k, |block| check_block(self, block))
    }
}

/// Blocks decoded on first use: what a reader holds.
#[derive(Debug, Default)]
pub struct LazyBlocks {
    slots: Vec<Slot>,
}

#[derive(Debug)]
struct Slot {
    stored: Stored,
    block: OnceLock<Block>,
}

impl<'de> Deserialize<'de> for LazyBlocks {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = Vec::<Stored>::deserialize(deserializer)?;
        let slots = stored.into_iter().map(|stored| Slot { stored, block: OnceLock::new() }).collect();
        Ok(Self { slots })
    }
}

impl LazyBlocks {
    /// How many blocks a read has decoded so far.
    #[cfg(test)]
    pub fn decoded(&self) -> usize {
        self.slots.iter().filter(|s| s.block.get().is_some()).count()
    }
}

impl BlockSource for LazyBlocks {
    const LAZY: bool = true;

    fn len(&self) -> usize {
        self.slots.len()
    }

    fn rows(&self, k: usize) -> u64 {
        self.slots[k].stored.rows
    }

    fn bytes(&self) -> u64 {
        self.slots.iter().map(|s| s.stored.bytes).sum()
    }

    fn block(&self, k: usize, check: impl FnOnce(&Block) -> Result<(), LayerError>) -> Result<&Block, LayerError> {
        let slot = self.slots.get(k).ok_or_else(|| LayerError::damaged("its manifest", format!("no block {k}")))?;
        if let Some(block) = slot.block.get() {
            return Ok(block);
        }
        let block =
            slot.stored.decode().map_err(|why| LayerError::damaged("its manifest", format!("block {k}: {why}")))?;
        check(&block)?;
        // Two first reads may both decode it; either one's block is the same.
        Ok(slot.block.get_or_init(|| block))
    }
}

/// Checks a block of `segment`: every span lies inside its file, page-aligned and as long as its
/// rows need, its presence bitmaps (if any) are one per table, and it has a part for each field.
/// (Its rows were checked with the segment's, from the manifest's entries.)
pub(crate) fn check_block<B>(segment: &Segment<B>, block: &Block) -> Result<(), LayerError> {
    let bad =
        |what: &str| LayerError::damaged("its manifest", format!("segment {} is inconsistent ({what})", segment.id));
    let fits = |file: &FileRef, span: &Span, want: Option<u64>| {
        span.offset % PAGE as u64 == 0
            && span.offset >= PAGE as u64
            && span.offset.checked_add(span.len.next_multiple_of(PAGE as u64)).is_some_and(|end| end <= file.bytes)
            && want.is_none_or(|w| span.len == w)
    };
    let rows = block.rows;
    if !fits(&block.file, &block.date_codes, Some(rows * u64::from(segment.date_width)))
        || !fits(&block.file, &block.symbol_codes, Some(rows * u64::from(segment.symbol_width)))
        || block.presence.iter().any(|s| !fits(&block.file, s, Some(rows.div_ceil(8))))
        || !(block.presence.is_empty() || block.presence.len() == segment.tables.len())
        || block.fields.len() != segment.fields.len()
    {
        return Err(bad("rows"));
    }
    for (info, part) in segment.fields.iter().zip(&block.fields) {
        let dtype = info.dtype.arrow();
        let wanted_buffers = if info.dtype == ValueType::Utf8 { 2 } else { 1 };
        if part.buffers.len() != wanted_buffers
            || part.buffers.iter().enumerate().any(|(j, s)| !fits(&part.file, s, buffer_len(Some(&dtype), j, rows)))
            || part.validity.is_some_and(|s| !fits(&part.file, &s, buffer_len(None, 0, rows)))
            || part.widened.is_some_and(|s| {
                part.validity.is_none() || !dtype.is_integer() || !fits(&part.file, &s, Some(rows * 8))
            })
        {
            return Err(bad(&info.name));
        }
    }
    Ok(())
}

/// The exact bytes of a buffer of `rows` rows of `dtype`: values, or validity when `dtype` is
/// `None`; `None` when it varies (string data).
fn buffer_len(dtype: Option<&DataType>, j: usize, rows: u64) -> Option<u64> {
    match dtype {
        None | Some(DataType::Boolean) => Some(rows.div_ceil(8)),
        Some(DataType::Utf8) => (j == 0).then_some((rows + 1) * 4),
        Some(t) => t.primitive_width().map(|w| rows * w as u64),
    }
}
