//! Publishing: block files written under new names, a manifest renamed into place, and the
//! files no manifest names any more unlinked. One process publishes at a time (`LOCK`).
//!
//! A publisher killed at any point leaves either the old manifest, whose files it never touched,
//! or the new one, whose files were all written before it; files written for a manifest that
//! never got renamed into place are unlinked by the next publish.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use arrow::array::{Array, ArrayData, ArrayRef, AsArray, MutableArrayData};
use arrow::buffer::BooleanBuffer;
use arrow::datatypes::DataType;

use super::format::{
    encode_manifest, file_name, is_layer_file, stamp_name, view_name, Block, Blocks, FieldPart, FileRef, Header,
    Manifest, SavedView, Segment, Span, LOCK, MANIFEST, MANIFEST_TMP, PAGE,
};
use super::generation::Generation;
use crate::checksum::adler32;
use crate::error::ShareError;

/// What a publish or a refresh did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PublishReport {
    /// The generation now in place; `None` when nothing needed publishing.
    pub generation: Option<u64>,
    /// The segments written, whole or in part; `bytes` counts what was written.
    pub written: Vec<SegmentReport>,
    /// The fields evicted to stay within the budget, by segment (their dates are those they
    /// held); `bytes` counts what was freed.
    pub evicted: Vec<SegmentReport>,
    /// Blocks written, whole or in part.
    pub blocks: u64,
    /// Rows of the blocks written.
    pub rows: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Bytes the layer holds now.
    pub total_bytes: u64,
}

/// A segment a publish wrote or evicted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SegmentReport {
    /// Its fields, as `table.field`.
    pub fields: Vec<String>,
    /// The first date it holds.
    pub first: Option<chrono::NaiveDate>,
    /// The last date it holds.
    pub last: Option<chrono::NaiveDate>,
    /// Its bytes.
    pub bytes: u64,
}

impl SegmentReport {
    pub(crate) fn of(segment: &Segment) -> Self {
        Self {
            fields: field_names(segment),
            first: segment.days.first().map(|&(d, _)| crate::types::date_of(d)),
            last: segment.days.last().map(|&(d, _)| crate::types::date_of(d)),
            bytes: segment.bytes(),
        }
    }
}

/// The one process allowed to publish into a layer directory, for as long as it lives.
pub(crate) struct Publisher {
    dir: PathBuf,
    budget: u64,
    identity: String,
    store_path: String,
    _lock: File,
}

impl Publisher {
    /// Creates the directory if needed and takes its lock, waiting for another publisher.
    ///
    /// # Errors
    /// [`ShareError::Io`] when the directory cannot be created or locked.
    pub fn open(dir: &Path, budget: u64, identity: String, store_path: String) -> Result<Self, ShareError> {
        let io = |e: std::io::Error| ShareError::io(dir, &e);
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(LOCK)).map_err(io)?;
        // SAFETY: flock on a file descriptor this function owns.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io(std::io::Error::last_os_error()));
        }
        Ok(Self { dir: dir.to_path_buf(), budget, identity, store_path, _lock: lock })
    }

    /// The generation in place, if readers would use it; anything else is rebuilt from nothing.
    pub fn current(&self) -> Option<Generation<Blocks>> {
        if !self.dir.join(MANIFEST).exists() {
            return None;
        }
        match Generation::load(&self.dir, &self.identity) {
            Ok(generation) => Some(generation),
            Err(e) => {
                tracing::warn!(layer = %self.dir.display(), "replacing the shared layer: {e}");
                None
            }
        }
    }

    /// A generation number above every one this directory has seen, so no new file takes the
    /// name of one a reader may still map.
    pub fn next_generation(&self, current: Option<&Manifest>) -> u64 {
        let on_disk = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|name| name.strip_prefix('g')?.split('-').next()?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        on_disk.max(current.map_or(0, |m| m.generation)) + 1
    }

    /// Chooses what of `others` to keep beside `needed` new bytes: while the layer would exceed
    /// its budget, fields go one at a time, last published first, from the segment used least
    /// recently, and a segment left with no field goes whole. Returns what is kept, and a
    /// report of each segment's evicted fields.
    ///
    /// # Errors
    /// [`ShareError::OverBudget`] when `needed` alone exceeds the budget.
    pub fn make_room(
        &self,
        needed: u64,
        mut others: Vec<Segment>,
    ) -> Result<(Vec<Segment>, Vec<SegmentReport>), ShareError> {
        if needed > self.budget {
            return Err(ShareError::OverBudget { path: self.dir.clone(), needed, budget: self.budget });
        }
        others.sort_by_key(|s| std::cmp::Reverse(self.last_used(s.id)));
        let mut evicted = Vec::new();
        let mut held: u64 = others.iter().map(Segment::bytes).sum();
        while held + needed > self.budget {
            let segment = others.last_mut().expect("needed alone fits the budget");
            let mut gone = SegmentReport { fields: Vec::new(), bytes: 0, ..SegmentReport::of(segment) };
            while held + needed > self.budget && segment.fields.len() > 1 {
                let field = segment.fields.len() - 1;
                let bytes = segment.field_bytes(field);
                gone.fields.push(segment.fields[field].name.clone());
                gone.bytes += bytes;
                held -= bytes;
                segment.without_field(field);
            }
            if held + needed > self.budget {
                let segment = others.pop().expect("the segment above");
                gone.fields.extend(field_names(&segment));
                gone.bytes += segment.bytes();
                held -= segment.bytes();
            }
            tracing::info!(
                layer = %self.dir.display(),
                bytes = gone.bytes,
                fields = %gone.fields.join(","),
                "evicted the fields used least recently to stay within the budget"
            );
            evicted.push(gone);
        }
        Ok((others, evicted))
    }

    /// Checks that the file system has room for `bytes` more. Files a reader still maps stay
    /// until it lets go, so the room is what is free now, not what the budget leaves.
    ///
    /// # Errors
    /// [`ShareError::Full`].
    pub fn check_free(&self, bytes: u64) -> Result<(), ShareError> {
        let free = free_bytes(&self.dir).map_err(|e| ShareError::io(&self.dir, &e))?;
        if bytes > free {
            tracing::error!(layer = %self.dir.display(), needed = bytes, free, "the shared layer's file system is full");
            return Err(ShareError::Full {
                path: self.dir.clone(),
                detail: format!("{bytes} bytes needed, {free} free"),
            });
        }
        Ok(())
    }

    fn last_used(&self, segment: u64) -> std::time::SystemTime {
        std::fs::metadata(self.dir.join(stamp_name(segment)))
            .and_then(|m| m.modified())
            .unwrap_or(std::time::UNIX_EPOCH)
    }

    /// Writes the rows file of block `index` of `segment` for `generation`: the block's date and
    /// symbol codes, and per table of several, which rows it has.
    ///
    /// # Errors
    /// [`ShareError::Io`], for example when the file system is full.
    pub fn write_rows(
        &self,
        generation: u64,
        segment: u64,
        index: usize,
        date_codes: &ArrayRef,
        symbol_codes: &ArrayRef,
        presence: &[BooleanBuffer],
    ) -> Result<Block, ShareError> {
        let rows = symbol_codes.len() as u64;
        let mut file = DataFile::create(&self.dir, file_name(generation, segment, index, "rows"))?;
        let codes = |a: &ArrayRef| {
            a.to_data().buffers()[0]
                .slice_with_length(0, a.len() * a.data_type().primitive_width().expect("integer codes"))
        };
        let date_codes = file.put(&codes(date_codes))?;
        let symbol_codes = file.put(&codes(symbol_codes))?;
        let bits = rows.div_ceil(8) as usize;
        let presence = presence.iter().map(|p| file.put(&p.sliced()[..bits])).collect::<Result<_, _>>()?;
        Ok(Block { rows, file: file.finish(generation)?, date_codes, symbol_codes, presence, fields: Vec::new() })
    }

    /// Writes field `field`'s part of block `index` of `segment` for `generation`.
    ///
    /// # Errors
    /// [`ShareError::Io`], for example when the file system is full.
    pub fn write_field(
        &self,
        generation: u64,
        segment: u64,
        index: usize,
        field: u32,
        array: &ArrayRef,
    ) -> Result<FieldPart, ShareError> {
        let data = starting_at_zero(array);
        let rows = data.len();
        // Exactly the bytes the rows need: a full block's buffer then joins the next block's.
        let lengths: Vec<usize> = match data.data_type() {
            DataType::Boolean => vec![rows.div_ceil(8)],
            DataType::Utf8 => vec![(rows + 1) * 4, data.buffers()[0].typed_data::<i32>()[rows] as usize],
            t => vec![rows * t.primitive_width().expect("a fixed-width type")],
        };
        let mut file = DataFile::create(&self.dir, file_name(generation, segment, index, &format!("f{field}")))?;
        let buffers =
            data.buffers().iter().zip(lengths).map(|(b, len)| file.put(&b[..len])).collect::<Result<_, _>>()?;
        let validity = match data.nulls().filter(|n| n.null_count() > 0) {
            Some(nulls) => Some(file.put(&nulls.inner().sliced()[..rows.div_ceil(8)])?),
            None => None,
        };
        let widened = match crate::types::nan_floats(array.as_ref()) {
            Some(floats) => Some(file.put(floats.to_data().buffers()[0].as_slice())?),
            None => None,
        };
        Ok(FieldPart { buffers, validity, widened, file: file.finish(generation)? })
    }

    /// Writes `view`, the encoding of the publisher's view of the store at `version`, for
    /// `generation`.
    ///
    /// # Errors
    /// [`ShareError::Io`], for example when the file system is full.
    pub fn write_view(&self, generation: u64, version: u64, view: &[u8]) -> Result<SavedView, ShareError> {
        let mut file = DataFile::create(&self.dir, view_name(generation))?;
        let mut bytes = view.to_vec();
        bytes.extend_from_slice(&adler32(view).to_le_bytes());
        let mut span = file.put(&bytes)?;
        span.len = view.len() as u64;
        Ok(SavedView { version, file: file.finish(generation)?, span })
    }

    /// Creates the use stamp of `segment` if it has none.
    ///
    /// # Errors
    /// [`ShareError::Io`].
    pub fn stamp(&self, segment: u64) -> Result<(), ShareError> {
        let stamp = self.dir.join(stamp_name(segment));
        if !stamp.exists() {
            File::create(&stamp).map_err(|e| ShareError::io(&stamp, &e))?;
        }
        Ok(())
    }

    /// Renames `manifest` into place, then unlinks every layer file it does not name.
    ///
    /// # Errors
    /// [`ShareError::Full`] or [`ShareError::Io`]; the manifest in place is then unchanged.
    pub fn install(&self, manifest: &Manifest) -> Result<(), ShareError> {
        let tmp = self.dir.join(MANIFEST_TMP);
        let write = || -> std::io::Result<()> {
            let _ = std::fs::remove_file(&tmp);
            let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            file.write_all(&encode_manifest(manifest))?;
            std::fs::rename(&tmp, self.dir.join(MANIFEST))
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            ShareError::io(&self.dir, &e)
        })?;
        self.collect(manifest);
        Ok(())
    }

    /// Unlinks the layer files `keep` does not name. Readers that map one keep its pages.
    pub fn collect(&self, keep: &Manifest) {
        let mut named: std::collections::HashSet<String> = std::collections::HashSet::new();
        for segment in &keep.segments {
            named.extend(segment.files().map(|f| f.name.clone()));
            named.insert(stamp_name(segment.id));
        }
        named.extend(keep.view.iter().map(|v| v.file.name.clone()));
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let Ok(name) = entry.file_name().into_string() else { continue };
            if is_layer_file(&name) && !named.contains(&name) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// A manifest of `segments` whose content reflects the store's journal positions
    /// `journal.0` (the oldest) to `journal.1` (the newest), and `view` when it is exactly that
    /// content's view of the store.
    pub fn manifest(
        &self,
        generation: u64,
        journal: (u64, u64),
        symbols: usize,
        segments: Vec<Segment>,
        view: Option<SavedView>,
    ) -> Manifest {
        let (journal, journal_newest) = journal;
        Manifest {
            format: super::LAYER_FORMAT_VERSION,
            store_identity: self.identity.clone(),
            store_path: self.store_path.clone(),
            generation,
            journal,
            journal_newest,
            symbols,
            published: chrono::Utc::now().timestamp(),
            budget: self.budget,
            segments,
            view,
        }
    }
}

/// The `table.field` names of a segment.
pub(crate) fn field_names(segment: &Segment) -> Vec<String> {
    segment.fields.iter().map(|f| f.name.clone()).collect()
}

/// `array`'s data with its values, offsets and validity starting at its first row, as a file
/// stores them: a slice that starts mid-buffer (strings, booleans) is copied.
fn starting_at_zero(array: &ArrayRef) -> ArrayData {
    let data = array.to_data();
    let strings_shifted = array.as_string_opt::<i32>().is_some_and(|s| s.value_offsets().first() != Some(&0));
    if data.offset() == 0 && !strings_shifted {
        return data;
    }
    let mut copy = MutableArrayData::new(vec![&data], false, data.len());
    copy.try_extend(0, 0, data.len()).expect("a copy of an array as long as itself");
    copy.freeze()
}

/// A data file being written: its header's page first, then buffers at page-aligned offsets.
struct DataFile {
    path: PathBuf,
    name: String,
    out: BufWriter<File>,
    at: u64,
}

impl DataFile {
    fn create(dir: &Path, name: String) -> Result<Self, ShareError> {
        let path = dir.join(&name);
        // A file of this name could only be an orphan of a killed publish, but a reader might
        // map it: unlink it rather than truncate it.
        let _ = std::fs::remove_file(&path);
        let file =
            OpenOptions::new().write(true).create_new(true).open(&path).map_err(|e| ShareError::io(&path, &e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&[0; PAGE]).map_err(|e| ShareError::io(&path, &e))?;
        Ok(Self { path, name, out, at: PAGE as u64 })
    }

    fn put(&mut self, bytes: &[u8]) -> Result<Span, ShareError> {
        const ZEROS: [u8; PAGE] = [0; PAGE];
        let span = Span { offset: self.at, len: bytes.len() as u64 };
        let pad = bytes.len().next_multiple_of(PAGE) - bytes.len();
        let io = |e: std::io::Error| ShareError::io(&self.path, &e);
        self.out.write_all(bytes).map_err(io)?;
        self.out.write_all(&ZEROS[..pad]).map_err(io)?;
        self.at += (bytes.len() + pad) as u64;
        Ok(span)
    }

    fn finish(self, generation: u64) -> Result<FileRef, ShareError> {
        use std::os::unix::fs::FileExt;
        let io = |e: std::io::Error| ShareError::io(&self.path, &e);
        let file = self.out.into_inner().map_err(|e| io(e.into_error()))?;
        let header = Header { generation, bytes: self.at };
        // The header goes in last, over the zeros written first: a file a kill cut short has
        // no valid header, and no manifest names it yet.
        file.write_all_at(&header.encode(), 0).map_err(io)?;
        Ok(FileRef { name: self.name, generation, bytes: self.at })
    }
}

/// Bytes free on the file system holding `dir`, for an unprivileged writer.
fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is NUL-terminated and `stats` is large enough for statvfs to fill.
    if unsafe { libc::statvfs(path.as_ptr(), stats.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs succeeded, so it filled `stats`.
    let stats = unsafe { stats.assume_init() };
    Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
}
