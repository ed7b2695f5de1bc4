//! One generation of the layer as a reader holds it: a validated manifest, and its files, each
//! opened and checked once and mapped copy-on-write afresh for every read.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use arrow::array::{make_array, ArrayData, ArrayRef, PrimitiveArray};
use arrow::buffer::{BooleanBuffer, Buffer, MutableBuffer, NullBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Int16Type, Int32Type};
use serde::de::DeserializeOwned;

use super::blocks::{check_block, BlockSource, LazyBlocks};
use super::dirty::Dirty;
use super::format::{decode_manifest, Block, FileRef, Header, Manifest, Segment, Span, HEADER_BYTES, MANIFEST, PAGE};
use super::learned::{Codes, Learned};
use crate::error::LayerError;
use crate::store::Store;
use crate::types::ValueType;
use crate::view::View;

/// A validated generation, its blocks held as `B`: a reader's decoded on first use, a
/// publisher's all at once.
pub(crate) struct Generation<B = LazyBlocks> {
    /// What it holds.
    pub manifest: Manifest<B>,
    dir: PathBuf,
    /// The days changed in the store since the manifest's journal position, as of the last
    /// reader position asked about.
    dirty: Mutex<Option<(u64, Arc<Dirty>)>>,
    /// The files checked so far: a file a manifest names never changes, so one check of its
    /// length and header serves every read. They are not kept open: a read of many blocks
    /// would hold more descriptors than a process may have, and a mapping outlives its file's
    /// descriptor.
    checked: Mutex<HashSet<String>>,
    /// What the first read of each block, by segment id and index, learned of its content. It
    /// serves every later read for the same reason as `checked`, so a repeated read does not
    /// pass over the rows it maps.
    learned: Learned,
    /// The manifest's saved view, once read.
    saved_view: OnceLock<Option<Arc<View>>>,
}

/// A manifest or saved view, mapped to be decoded: the tmpfs's own pages, where reading the
/// file would fault in fresh memory for a copy (most of a new process's first look at the layer).
fn mapped(file: &File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: a file a manifest names, and the manifest itself, are never written after they
    // are installed by rename (the module's invariant), and the map is only read.
    unsafe { memmap2::Mmap::map(file) }
}

/// Pages mapped `MAP_PRIVATE` for one read: a frame made of them may be written in place, and
/// the write lands in pages private to that mapping, so no other process and no other result
/// sees it. Unwritten pages are the tmpfs files' own, shared by every process; the kernel keeps
/// them until the last mapping goes, even after the publisher unlinks the files.
struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the region is plain memory owned by this value; nothing aliases it mutably.
unsafe impl Send for Region {}
// SAFETY: as above; shared access only reads.
unsafe impl Sync for Region {}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: `ptr..ptr+len` is a mapping this value made and nothing else unmaps.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

impl<B: BlockSource + DeserializeOwned> Generation<B> {
    /// Reads and checks the manifest in `dir` against the store with `identity`. Lazy blocks
    /// and the data files are checked when a read first uses them.
    ///
    /// # Errors
    /// [`LayerError`] saying what is missing, foreign, of another format or damaged.
    pub fn load(dir: &Path, identity: &str) -> Result<Self, LayerError> {
        let bytes = File::open(dir.join(MANIFEST)).and_then(|file| mapped(&file)).map_err(LayerError::Unreadable)?;
        let manifest = decode_manifest::<B>(&bytes)?;
        if manifest.store_identity != identity {
            return Err(LayerError::Foreign { store: manifest.store_path });
        }
        for segment in &manifest.segments {
            check_segment(segment)?;
            // Decoded blocks are all checked now; lazy ones when first read.
            if !B::LAZY {
                for k in 0..segment.blocks.len() {
                    check_block(segment, segment.block(k)?)?;
                }
            }
        }
        Ok(Self {
            manifest,
            dir: dir.to_path_buf(),
            dirty: Mutex::default(),
            checked: Mutex::default(),
            learned: Learned::default(),
            saved_view: OnceLock::new(),
        })
    }
}

impl<B: BlockSource> Generation<B> {
    /// The days written or deleted in `store` since this generation was published, as of the
    /// store's journal position `position`; `None` when the store's journal no longer reaches
    /// back that far, so nothing can be trusted.
    ///
    /// # Errors
    /// [`LayerError::Store`].
    pub fn dirty(&self, store: &Store, position: u64) -> Result<Option<Arc<Dirty>>, LayerError> {
        let mut cached = self.dirty.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, dirty)) = cached.as_ref().filter(|(at, _)| *at == position) {
            debug_assert_eq!(*at, position);
            return Ok(Some(Arc::clone(dirty)));
        }
        let tail = store.journal_since(self.manifest.journal)?;
        if tail.fell_behind {
            return Ok(None);
        }
        let dirty = Arc::new(Dirty::of(tail.days));
        *cached = Some((position, Arc::clone(&dirty)));
        Ok(Some(dirty))
    }

    /// Field `field`'s column over rows `lo..lo + n` of `segment`. With `widened`, an integer
    /// column with nulls there comes as its published float64 copy when every block has one.
    ///
    /// # Errors
    /// [`LayerError`] when a file is gone or damaged.
    pub fn column(
        &self,
        segment: &Segment<B>,
        field: usize,
        lo: usize,
        n: usize,
        widened: bool,
    ) -> Result<ArrayRef, LayerError> {
        let info = &segment.fields[field];
        let (blocks, first, skip) = blocks_of(segment, lo, n)?;
        let damaged = |e| LayerError::damaged(format!("field `{}` of segment {}", info.name, segment.id), e);
        if info.dtype == ValueType::Utf8 && blocks.len() > 1 {
            // Offsets count from each block's own start: the blocks join by copying.
            let arrays = blocks
                .iter()
                .enumerate()
                .map(|(k, b)| {
                    self.column(segment, field, (first + k) * segment.block_rows as usize, b.rows as usize, false)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let refs: Vec<&dyn arrow::array::Array> = arrays.iter().map(AsRef::as_ref).collect();
            return Ok(arrow::compute::concat(&refs).map_err(damaged)?.slice(skip, n));
        }
        let rows: usize = blocks.iter().map(|b| b.rows as usize).sum();
        let whole = skip == 0 && n == rows;
        let nulls = if blocks.iter().all(|b| b.fields[field].validity.is_none()) {
            None
        } else if blocks.iter().all(|b| b.fields[field].validity.is_some()) {
            let spans: Vec<_> =
                blocks.iter().map(|b| (&b.fields[field].file, b.fields[field].validity.expect("checked"))).collect();
            let bits = BooleanBuffer::new(self.joined(&spans)?, 0, rows);
            let count = self.learned.null_count(segment, field, first, &bits);
            // SAFETY: `count` is the number of unset bits of `bits`, counted block by block.
            Some(unsafe { NullBuffer::new_unchecked(bits, count) })
        } else {
            let parts: Vec<_> =
                blocks.iter().map(|b| (&b.fields[field].file, b.fields[field].validity, b.rows)).collect();
            Some(NullBuffer::new(BooleanBuffer::new(self.bitmaps_or_ones(&parts)?, 0, rows)))
        };
        // Only where the rows served hold a null: elsewhere pandas keeps the integers.
        let floats = widened
            && blocks.iter().all(|b| b.fields[field].widened.is_some())
            && nulls
                .as_ref()
                .is_some_and(|bits| if whole { bits.null_count() } else { bits.slice(skip, n).null_count() } > 0);
        let (dtype, buffers) = if floats {
            let spans: Vec<_> =
                blocks.iter().map(|b| (&b.fields[field].file, b.fields[field].widened.expect("checked"))).collect();
            (DataType::Float64, vec![self.joined(&spans)?])
        } else {
            let parts = |j: usize| blocks.iter().map(move |b| (&b.fields[field].file, b.fields[field].buffers[j]));
            let buffers = (0..blocks[0].fields[field].buffers.len())
                .map(|j| self.joined(&parts(j).collect::<Vec<_>>()))
                .collect::<Result<Vec<_>, _>>()?;
            (info.dtype.arrow(), buffers)
        };
        let builder = ArrayData::builder(dtype).len(rows).buffers(buffers).nulls(nulls);
        let data = if info.dtype == ValueType::Utf8 {
            builder.build().map_err(damaged)?
        } else {
            // SAFETY: `check_segment` proved every buffer exactly as long as `rows` rows of the
            // type need, any bits are a value of a fixed-width type, and the null count is
            // exact. `build` would count the nulls again, a pass over every row mapped.
            unsafe { builder.build_unchecked() }
        };
        // A slice counts its nulls again: a read of whole blocks keeps the array as it is.
        Ok(if whole { make_array(data) } else { make_array(data).slice(skip, n) })
    }

    /// Whether rows `lo..lo + n` of `fields` of `segment` come as views of the mapped files,
    /// not copies: they lie in one block, or every buffer of a full block fills whole pages
    /// and no column joins a block with nulls to one without.
    pub fn maps(&self, segment: &Segment<B>, fields: &[usize], lo: usize, n: usize) -> bool {
        // Blocks that do not decode are not mapped: the read that follows says why.
        let Ok((blocks, ..)) = blocks_of(segment, lo, n) else { return false };
        blocks.len() == 1
            || (segment.block_rows as usize % (8 * PAGE) == 0
                && fields.iter().all(|&f| {
                    segment.fields[f].dtype != ValueType::Utf8
                        && (blocks.iter().all(|b| b.fields[f].validity.is_some())
                            || blocks.iter().all(|b| b.fields[f].validity.is_none()))
                }))
    }

    /// The date or symbol codes of rows `lo..lo + n` of `segment`. Date codes are checked to be
    /// the ordinals of the rows' days among the segment's days with rows, and symbol codes to
    /// rank the manifest's symbols, so a caller may index with them unchecked.
    ///
    /// # Errors
    /// [`LayerError`] when a file is gone or damaged.
    pub fn codes(&self, segment: &Segment<B>, which: Codes, lo: usize, n: usize) -> Result<ArrayRef, LayerError> {
        let (blocks, first, skip) = blocks_of(segment, lo, n)?;
        let (width, span): (u8, fn(&Block) -> Span) = match which {
            Codes::Dates => (segment.date_width, |b| b.date_codes),
            Codes::Symbols => (segment.symbol_width, |b| b.symbol_codes),
        };
        let buffer = self.joined(&blocks.iter().map(|b| (&b.file, span(b))).collect::<Vec<_>>())?;
        let rows = buffer.len() / usize::from(width);
        let all: ArrayRef = match width {
            2 => Arc::new(PrimitiveArray::<Int16Type>::new(ScalarBuffer::new(buffer, 0, rows), None)),
            _ => Arc::new(PrimitiveArray::<Int32Type>::new(ScalarBuffer::new(buffer, 0, rows), None)),
        };
        self.learned.check_codes(segment, which, first, &all, self.manifest.symbols)?;
        Ok(all.slice(skip, n))
    }

    /// Which of rows `lo..lo + n` of `segment` the `i`th of its tables has.
    ///
    /// # Errors
    /// [`LayerError`] when a file is gone or damaged.
    pub fn presence(&self, segment: &Segment<B>, i: usize, lo: usize, n: usize) -> Result<BooleanBuffer, LayerError> {
        let (blocks, _, skip) = blocks_of(segment, lo, n)?;
        let spans = blocks
            .iter()
            .map(|b| b.presence.get(i).map(|&span| (&b.file, span)))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| LayerError::damaged(&blocks[0].file.name, "a block lacks a table's presence"))?;
        let bits = self.joined(&spans)?;
        Ok(BooleanBuffer::new(bits, skip, n))
    }

    /// The bytes of `parts`, one per consecutive block, as one buffer: mapped as one run when
    /// each part but the last fills whole pages, copied otherwise.
    fn joined(&self, parts: &[(&FileRef, Span)]) -> Result<Buffer, LayerError> {
        let pages = |len: u64| (len as usize).next_multiple_of(PAGE);
        let whole = parts.iter().rev().skip(1).all(|(_, s)| s.len as usize % PAGE == 0);
        if !whole {
            let mut out = MutableBuffer::new(parts.iter().map(|(_, s)| s.len as usize).sum());
            for &(file, span) in parts {
                let start = out.len();
                out.resize(start + span.len as usize, 0);
                self.open(file)?
                    .read_exact_at(&mut out.as_slice_mut()[start..], span.offset)
                    .map_err(|e| LayerError::Missing { file: file.name.clone(), source: e })?;
            }
            return Ok(out.into());
        }
        let total: usize = parts.iter().map(|(_, s)| pages(s.len)).sum();
        if total == 0 {
            return Ok(Buffer::from_vec(Vec::<u8>::new()));
        }
        // One reservation, then each part mapped over its place in it.
        // SAFETY: a fresh anonymous mapping; nothing else refers to the range.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            let file = parts[0].0.name.clone();
            return Err(LayerError::Missing { file, source: std::io::Error::last_os_error() });
        }
        let region = Region { ptr: NonNull::new(base.cast()).expect("mmap succeeded"), len: total };
        let mut at = 0;
        for &(file, span) in parts {
            let handle = self.open(file)?;
            let len = pages(span.len);
            // SAFETY: the target lies inside the reservation this function owns; the file's
            // pages there are immutable (the module's invariant) and, MAP_PRIVATE, a write to
            // them stays in this process. `check_segment` and `open` proved the span inside
            // the file, and buffers are padded to whole pages, so no page lies past its end.
            let mapped = unsafe {
                libc::mmap(
                    region.ptr.as_ptr().add(at).cast(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_FIXED,
                    handle.as_raw_fd(),
                    span.offset as libc::off_t,
                )
            };
            if mapped == libc::MAP_FAILED {
                return Err(LayerError::Missing { file: file.name.clone(), source: std::io::Error::last_os_error() });
            }
            at += len;
        }
        let len =
            total - pages(parts.last().expect("some part").1.len) + parts.last().expect("some part").1.len as usize;
        let ptr = region.ptr;
        // SAFETY: `ptr..ptr+len` lies inside the region, which the Arc keeps mapped as long
        // as the buffer.
        Ok(unsafe { Buffer::from_custom_allocation(ptr, len, Arc::new(region) as _) })
    }

    /// Validity bitmaps of consecutive blocks joined by copying, all set for a block without one.
    fn bitmaps_or_ones(&self, parts: &[(&FileRef, Option<Span>, u64)]) -> Result<Buffer, LayerError> {
        let mut out = arrow::array::BooleanBufferBuilder::new(parts.iter().map(|p| p.2 as usize).sum());
        for &(file, span, rows) in parts {
            match span {
                Some(span) => {
                    let bits = self.joined(&[(file, span)])?;
                    out.append_buffer(&BooleanBuffer::new(bits, 0, rows as usize));
                }
                None => out.append_n(rows as usize, true),
            }
        }
        Ok(out.finish().into_inner())
    }

    /// The view of the store the manifest saved, read and checked once; `None` when it saved
    /// none or it does not check, after which readers open the store.
    pub fn saved_view(&self) -> Option<Arc<View>> {
        let read = || -> Result<Option<Arc<View>>, LayerError> {
            let Some(saved) = &self.manifest.view else { return Ok(None) };
            let damaged = |why: &str| LayerError::damaged(&saved.file.name, why);
            let missing = |source| LayerError::Missing { file: saved.file.name.clone(), source };
            let file = mapped(&self.open(&saved.file)?).map_err(missing)?;
            let bytes = usize::try_from(saved.span.offset)
                .ok()
                .and_then(|at| file.get(at..at.checked_add(saved.span.len as usize + 4)?))
                .ok_or_else(|| damaged("shorter than the manifest says"))?;
            let (view, check) = bytes.split_at(saved.span.len as usize);
            if u32::from_le_bytes(check.try_into().expect("4 bytes")) != crate::checksum::adler32(view) {
                return Err(damaged("its checksum does not match"));
            }
            let view = View::decode(view).ok_or_else(|| damaged("not a view of the store"))?;
            if view.version.number != saved.version {
                return Err(damaged("of another version than the manifest says"));
            }
            Ok(Some(Arc::new(view)))
        };
        self.saved_view
            .get_or_init(|| {
                read().unwrap_or_else(|e| {
                    tracing::warn!(layer = %self.dir.display(), "{e}; opening the store to read");
                    None
                })
            })
            .clone()
    }

    /// The file opened, checked against the manifest on first use.
    fn open(&self, file: &FileRef) -> Result<File, LayerError> {
        let missing = |source| LayerError::Missing { file: file.name.clone(), source };
        let handle = File::open(self.dir.join(&file.name)).map_err(missing)?;
        if self.checked.lock().unwrap_or_else(PoisonError::into_inner).contains(&file.name) {
            return Ok(handle);
        }
        let len = handle.metadata().map_err(missing)?.len();
        if len != file.bytes {
            return Err(LayerError::Truncated { file: file.name.clone(), len, expected: file.bytes });
        }
        let mut header = [0u8; HEADER_BYTES];
        handle.read_exact_at(&mut header, 0).map_err(missing)?;
        if Header::decode(&header, &file.name)? != (Header { generation: file.generation, bytes: file.bytes }) {
            return Err(LayerError::Replaced { file: file.name.clone() });
        }
        self.checked.lock().unwrap_or_else(PoisonError::into_inner).insert(file.name.clone());
        Ok(handle)
    }
}

/// The blocks holding rows `lo..lo + n` of `segment` (at least one), decoded, the first one's
/// index, and its rows before `lo`.
fn blocks_of<B: BlockSource>(
    segment: &Segment<B>,
    lo: usize,
    n: usize,
) -> Result<(Vec<&Block>, usize, usize), LayerError> {
    let per = segment.block_rows as usize;
    let last = (lo + n.max(1) - 1) / per;
    let last = last.min(segment.blocks.len().saturating_sub(1));
    let first = (lo / per).min(last);
    let blocks = (first..=last).map(|k| segment.block(k)).collect::<Result<_, _>>()?;
    Ok((blocks, first, lo - first * per))
}

/// Checks that `segment` is consistent: its days ordered, and its blocks cut at `block_rows`
/// and holding its rows, as the manifest's entries say. Each block's content is checked when it
/// is decoded ([`Segment::block`]).
fn check_segment<B: BlockSource>(segment: &Segment<B>) -> Result<(), LayerError> {
    let bad =
        |what: &str| LayerError::damaged("its manifest", format!("segment {} is inconsistent ({what})", segment.id));
    if segment.days.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(bad("days out of order"));
    }
    let per = segment.block_rows;
    if per == 0 || per % 64 != 0 || !matches!(segment.date_width, 2 | 4) || !matches!(segment.symbol_width, 2 | 4) {
        return Err(bad("block layout"));
    }
    let blocks = segment.blocks.len();
    let rows = |k| segment.blocks.rows(k);
    if (0..blocks).map(rows).sum::<u64>() != segment.total_rows()
        || (0..blocks).any(|k| rows(k) == 0 || (k + 1 < blocks && rows(k) != per))
    {
        return Err(bad("blocks"));
    }
    Ok(())
}
