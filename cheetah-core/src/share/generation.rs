//! One generation of the layer as a reader holds it: a validated manifest, whose files each read
//! maps copy-on-write afresh.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::{make_array, ArrayData, ArrayRef, PrimitiveArray};
use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, ScalarBuffer};
use arrow::datatypes::{Int16Type, Int32Type};
use memmap2::{MmapMut, MmapOptions};

use super::format::{decode_manifest, FieldFile, FileRef, Header, Manifest, Segment, Span, ALIGN, MANIFEST};
use crate::error::LayerError;
use crate::store::Store;
use crate::types::{Day, TableKind};
use crate::view::View;

/// A validated generation.
pub(crate) struct Generation {
    /// What it holds.
    pub manifest: Manifest,
    dir: PathBuf,
    /// The days changed in the store since the manifest's journal position, as of the last
    /// reader position asked about.
    dirty: Mutex<Option<(u64, Arc<Dirty>)>>,
}

/// A file mapped `MAP_PRIVATE` for one read: a frame made of it may be written in place, and the
/// write lands in pages private to that mapping, so no other process and no other result sees it.
/// Unwritten pages are the tmpfs file's own, shared by every process. The kernel keeps them
/// until the last mapping goes, even after the publisher unlinks the file.
struct Mapping(MmapMut);

impl Generation {
    /// Reads and checks the manifest in `dir` against the store with `identity`, and checks
    /// that every file it names has its length.
    ///
    /// # Errors
    /// [`LayerError`] saying what is missing, foreign, of another format, truncated or damaged.
    pub fn load(dir: &Path, identity: &str) -> Result<Self, LayerError> {
        let bytes = std::fs::read(dir.join(MANIFEST)).map_err(LayerError::Unreadable)?;
        let manifest = decode_manifest(&bytes)?;
        if manifest.store_identity != identity {
            return Err(LayerError::Foreign { store: manifest.store_path });
        }
        for segment in &manifest.segments {
            check_segment(dir, segment)?;
        }
        Ok(Self { manifest, dir: dir.to_path_buf(), dirty: Mutex::default() })
    }

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
        let mut days: HashMap<u32, Vec<Day>> = HashMap::new();
        for (table, day) in tail.days {
            days.entry(table).or_default().push(day);
        }
        for list in days.values_mut() {
            list.sort_unstable();
            list.dedup();
        }
        let dirty = Arc::new(Dirty { days });
        *cached = Some((position, Arc::clone(&dirty)));
        Ok(Some(dirty))
    }

    /// A field's column over every row of its segment, as mapped.
    ///
    /// # Errors
    /// [`LayerError`] when its file is gone or damaged.
    pub fn column(&self, segment: &Segment, field: &FieldFile) -> Result<ArrayRef, LayerError> {
        let rows = rows(segment)?;
        let mapping = self.map(&field.file)?;
        let buffers = field.buffers.iter().map(|&span| buffer(&mapping, span)).collect();
        let nulls = field.validity.map(|span| NullBuffer::new(BooleanBuffer::new(buffer(&mapping, span), 0, rows)));
        let data = ArrayData::builder(field.dtype.arrow())
            .len(rows)
            .buffers(buffers)
            .nulls(nulls)
            .build()
            .map_err(|e| LayerError::damaged(format!("field `{}` in {}", field.name, field.file.name), e))?;
        Ok(make_array(data))
    }

    /// A segment's per-row codes: its dates' ordinals, or its symbols' ranks.
    ///
    /// # Errors
    /// [`LayerError`] when its file is gone or damaged.
    pub fn codes(&self, segment: &Segment, span: Span, width: u8) -> Result<ArrayRef, LayerError> {
        let rows = rows(segment)?;
        let buffer = buffer(&self.map(&segment.rows.file)?, span);
        Ok(match width {
            2 => Arc::new(PrimitiveArray::<Int16Type>::new(ScalarBuffer::new(buffer, 0, rows), None)),
            _ => Arc::new(PrimitiveArray::<Int32Type>::new(ScalarBuffer::new(buffer, 0, rows), None)),
        })
    }

    /// Which of a segment's rows the `i`th of its tables has.
    ///
    /// # Errors
    /// [`LayerError`] when its file is gone or damaged.
    pub fn presence(&self, segment: &Segment, i: usize) -> Result<BooleanBuffer, LayerError> {
        let rows = rows(segment)?;
        let span = segment.rows.presence[i];
        Ok(BooleanBuffer::new(buffer(&self.map(&segment.rows.file)?, span), 0, rows))
    }

    fn map(&self, file: &FileRef) -> Result<Arc<Mapping>, LayerError> {
        let path = self.dir.join(&file.name);
        let missing = |source| LayerError::Missing { file: file.name.clone(), source };
        let handle = File::open(&path).map_err(missing)?;
        let len = handle.metadata().map_err(missing)?.len();
        if len != file.bytes {
            return Err(LayerError::Truncated { file: file.name.clone(), len, expected: file.bytes });
        }
        // SAFETY: layer files are written whole before a manifest names them and never written
        // again (the module's invariant), so the mapped bytes cannot change under the reader;
        // MAP_PRIVATE keeps any write through this mapping private to this process.
        let map = unsafe { MmapOptions::new().map_copy(&handle) }.map_err(missing)?;
        let header = Header::decode(&map, &file.name)?;
        if header != (Header { generation: file.generation, bytes: file.bytes }) {
            return Err(LayerError::Replaced { file: file.name.clone() });
        }
        Ok(Arc::new(Mapping(map)))
    }
}

/// What changed in the store since a generation was published.
#[derive(Debug, Default)]
pub(crate) struct Dirty {
    /// Per table id, the days written or deleted, ascending.
    days: HashMap<u32, Vec<Day>>,
}

impl Dirty {
    /// Whether `day` of a segment over `tables`, serving fields of the asof tables `asof`, may
    /// differ from the store: a daily table changed that day, or an asof table changed on or
    /// before it (an event counts from its day on).
    pub fn touches(&self, tables: &[u32], asof: &[u32], day: Day) -> bool {
        tables.iter().any(|t| self.days.get(t).is_some_and(|days| days.binary_search(&day).is_ok()))
            || asof.iter().any(|t| self.days.get(t).and_then(|days| days.first()).is_some_and(|&first| first <= day))
    }
}

/// The asof tables among `fields`' tables.
pub(crate) fn asof_tables(view: &View, fields: &[FieldFile]) -> Vec<u32> {
    let mut tables: Vec<u32> = fields
        .iter()
        .map(|f| f.table)
        .filter(|&t| view.catalog.tables.iter().any(|e| e.id == t && e.kind == TableKind::Asof))
        .collect();
    tables.sort_unstable();
    tables.dedup();
    tables
}

/// A segment's rows, as a length.
fn rows(segment: &Segment) -> Result<usize, LayerError> {
    usize::try_from(segment.total_rows()).map_err(|e| LayerError::damaged(format!("segment {}", segment.id), e))
}

/// A span of a mapping as an Arrow buffer that keeps the mapping alive.
fn buffer(mapping: &Arc<Mapping>, span: Span) -> Buffer {
    let (offset, len) = (span.offset as usize, span.len as usize);
    let ptr = NonNull::new(mapping.0.as_ptr().wrapping_add(offset).cast_mut()).expect("a mapping is never null");
    // SAFETY: `check_segment` proved the span lies inside the file, whose length the mapping
    // has; the Arc keeps the mapping alive as long as the buffer.
    unsafe { Buffer::from_custom_allocation(ptr, len, Arc::clone(mapping) as _) }
}

/// Checks that every span of `segment` lies inside its file, aligned, and sized for its rows,
/// and that each file has the length the manifest says.
fn check_segment(dir: &Path, segment: &Segment) -> Result<(), LayerError> {
    let rows = segment.total_rows();
    let bad =
        |what: &str| LayerError::damaged("its manifest", format!("segment {} is inconsistent ({what})", segment.id));
    if segment.days.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(bad("days out of order"));
    }
    let inside = |file: &FileRef, span: &Span| {
        span.offset % ALIGN as u64 == 0 && span.offset.checked_add(span.len).is_some_and(|end| end <= file.bytes)
    };
    let r = &segment.rows;
    let widths_ok = matches!(r.date_width, 2 | 4) && matches!(r.symbol_width, 2 | 4);
    if !widths_ok
        || r.date_codes.len != rows * u64::from(r.date_width)
        || r.symbol_codes.len != rows * u64::from(r.symbol_width)
        || !inside(&r.file, &r.date_codes)
        || !inside(&r.file, &r.symbol_codes)
        || r.presence.iter().any(|s| s.len < rows.div_ceil(8) || !inside(&r.file, s))
        || !(r.presence.is_empty() || r.presence.len() == segment.tables.len())
    {
        return Err(bad("rows"));
    }
    for field in &segment.fields {
        if field.buffers.iter().chain(&field.validity).any(|s| !inside(&field.file, s))
            || field.validity.is_some_and(|s| s.len < rows.div_ceil(8))
        {
            return Err(bad(&field.name));
        }
    }
    for file in std::iter::once(&r.file).chain(segment.fields.iter().map(|f| &f.file)) {
        let len = std::fs::metadata(dir.join(&file.name))
            .map_err(|source| LayerError::Missing { file: file.name.clone(), source })?
            .len();
        if len != file.bytes {
            return Err(LayerError::Truncated { file: file.name.clone(), len, expected: file.bytes });
        }
    }
    Ok(())
}
