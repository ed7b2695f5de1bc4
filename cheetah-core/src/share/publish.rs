//! Publishing: segment files written whole under new names, a manifest renamed into place, and
//! the files no manifest names any more unlinked. One process publishes at a time (`LOCK`).
//!
//! A publisher killed at any point leaves either the old manifest, whose files it never touched,
//! or the new one, whose files were all written before it; files written for a manifest that
//! never got renamed into place are unlinked by the next publish.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use arrow::array::{Array, ArrayRef};
use arrow::buffer::BooleanBuffer;

use super::format::{
    encode_manifest, file_name, is_layer_file, stamp_name, FieldFile, FileRef, Header, Manifest, RowsFile, Segment,
    Span, ALIGN, HEADER_BYTES, LOCK, MANIFEST, MANIFEST_TMP,
};
use super::generation::Generation;
use crate::error::ShareError;
use crate::types::{Day, ValueType};

/// The content of one segment, assembled from the store.
pub(crate) struct SegmentContent {
    /// The range asked for.
    pub start: Day,
    /// See `start`.
    pub end: Day,
    /// The daily tables whose keys make the rows.
    pub tables: Vec<u32>,
    /// Every day read, with its rows.
    pub days: Vec<(Day, u64)>,
    /// Per row, its day's ordinal among the days with rows (Int16 or Int32).
    pub date_codes: ArrayRef,
    /// Per row, its symbol's rank (Int16 or Int32).
    pub symbol_codes: ArrayRef,
    /// Per table, when there are several, which rows it has.
    pub presence: Vec<BooleanBuffer>,
    /// The fields: id, table id, `table.field`, type and column.
    pub fields: Vec<(u32, u32, String, ValueType, ArrayRef)>,
}

impl SegmentContent {
    /// Bytes its files will take.
    pub fn bytes(&self) -> u64 {
        let padded = |n: usize| n.next_multiple_of(ALIGN) as u64;
        let rows = HEADER_BYTES as u64
            + [&self.date_codes, &self.symbol_codes]
                .iter()
                .map(|a| padded(a.to_data().buffers()[0].len()))
                .sum::<u64>()
            + self.presence.iter().map(|p| padded(p.values().len())).sum::<u64>();
        let fields: u64 = self
            .fields
            .iter()
            .map(|(.., array)| {
                let data = array.to_data();
                HEADER_BYTES as u64
                    + data.buffers().iter().map(|b| padded(b.len())).sum::<u64>()
                    + data.nulls().map_or(0, |n| padded(n.buffer().len()))
            })
            .sum();
        rows + fields
    }
}

/// What a publish or a refresh did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PublishReport {
    /// The generation now in place; `None` when nothing needed publishing.
    pub generation: Option<u64>,
    /// The segments written.
    pub written: Vec<SegmentReport>,
    /// The segments evicted to stay within the budget (their dates are those they held).
    pub evicted: Vec<SegmentReport>,
    /// Rows written.
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

    /// The manifest in place, if readers would use it; anything else is rebuilt from nothing.
    pub fn current(&self) -> Option<Manifest> {
        if !self.dir.join(MANIFEST).exists() {
            return None;
        }
        match Generation::load(&self.dir, &self.identity) {
            Ok(generation) => Some(generation.manifest),
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

    /// Chooses which of `others` to keep beside `needed` new bytes: the least recently used go
    /// first while the layer would exceed its budget. Returns those kept and those evicted.
    ///
    /// # Errors
    /// [`ShareError::OverBudget`] when `needed` alone exceeds the budget.
    pub fn make_room(&self, needed: u64, mut others: Vec<Segment>) -> Result<(Vec<Segment>, Vec<Segment>), ShareError> {
        if needed > self.budget {
            return Err(ShareError::OverBudget { path: self.dir.clone(), needed, budget: self.budget });
        }
        others.sort_by_key(|s| std::cmp::Reverse(self.last_used(s.id)));
        let mut evicted = Vec::new();
        while others.iter().map(Segment::bytes).sum::<u64>() + needed > self.budget {
            let gone = others.pop().expect("needed alone fits the budget");
            tracing::info!(
                layer = %self.dir.display(),
                segment = gone.id,
                bytes = gone.bytes(),
                fields = %field_names(&gone).join(","),
                "evicted the least recently used segment to stay within the budget"
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

    /// Writes the files of segment `id` for `generation`.
    ///
    /// # Errors
    /// [`ShareError::Full`] or [`ShareError::Io`]; the partial files are removed.
    pub fn write_segment(&self, generation: u64, id: u64, content: &SegmentContent) -> Result<Segment, ShareError> {
        let mut written = Vec::new();
        let result = self.write_files(generation, id, content, &mut written);
        if result.is_err() {
            for name in written {
                let _ = std::fs::remove_file(self.dir.join(name));
            }
        }
        result
    }

    fn write_files(
        &self,
        generation: u64,
        id: u64,
        content: &SegmentContent,
        written: &mut Vec<String>,
    ) -> Result<Segment, ShareError> {
        let width = |a: &ArrayRef| if a.data_type() == &arrow::datatypes::DataType::Int16 { 2 } else { 4 };
        let mut rows = DataFile::create(&self.dir, file_name(generation, id, "rows"), written)?;
        let date_codes = rows.put(&content.date_codes.to_data().buffers()[0])?;
        let symbol_codes = rows.put(&content.symbol_codes.to_data().buffers()[0])?;
        let presence = content.presence.iter().map(|p| rows.put(p.values())).collect::<Result<_, _>>()?;
        let rows = RowsFile {
            date_width: width(&content.date_codes),
            date_codes,
            symbol_width: width(&content.symbol_codes),
            symbol_codes,
            presence,
            file: rows.finish(generation)?,
        };
        let mut fields = Vec::with_capacity(content.fields.len());
        for (field, table, name, dtype, array) in &content.fields {
            let data = array.to_data();
            assert_eq!(data.offset(), 0, "assembled columns start at their first row");
            let mut file = DataFile::create(&self.dir, file_name(generation, id, &format!("f{field}")), written)?;
            let buffers = data.buffers().iter().map(|b| file.put(b)).collect::<Result<_, _>>()?;
            let validity = match data.nulls().filter(|n| n.null_count() > 0) {
                Some(nulls) => {
                    assert_eq!(nulls.offset(), 0, "assembled validity starts at its first row");
                    Some(file.put(nulls.buffer())?)
                }
                None => None,
            };
            fields.push(FieldFile {
                id: *field,
                table: *table,
                name: name.clone(),
                dtype: *dtype,
                buffers,
                validity,
                file: file.finish(generation)?,
            });
        }
        let stamp = self.dir.join(stamp_name(id));
        if !stamp.exists() {
            File::create(&stamp).map_err(|e| ShareError::io(&stamp, &e))?;
        }
        Ok(Segment {
            id,
            start: content.start,
            end: content.end,
            tables: content.tables.clone(),
            days: content.days.clone(),
            rows,
            fields,
        })
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
        let mut named: Vec<String> = Vec::new();
        for segment in &keep.segments {
            named.push(segment.rows.file.name.clone());
            named.extend(segment.fields.iter().map(|f| f.file.name.clone()));
            named.push(stamp_name(segment.id));
        }
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let Ok(name) = entry.file_name().into_string() else { continue };
            if is_layer_file(&name) && !named.contains(&name) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// A manifest of `segments` whose content reflects the store's journal positions
    /// `journal.0` (the oldest) to `journal.1` (the newest).
    pub fn manifest(&self, generation: u64, journal: (u64, u64), symbols: usize, segments: Vec<Segment>) -> Manifest {
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
        }
    }
}

/// The `table.field` names of a segment.
pub(crate) fn field_names(segment: &Segment) -> Vec<String> {
    segment.fields.iter().map(|f| f.name.clone()).collect()
}

/// A data file being written: its header's room first, then buffers at aligned offsets.
struct DataFile {
    path: PathBuf,
    name: String,
    out: BufWriter<File>,
    at: u64,
}

impl DataFile {
    fn create(dir: &Path, name: String, written: &mut Vec<String>) -> Result<Self, ShareError> {
        let path = dir.join(&name);
        // A file of this name could only be an orphan of a killed publish, but a reader might
        // map it: unlink it rather than truncate it.
        let _ = std::fs::remove_file(&path);
        let file =
            OpenOptions::new().write(true).create_new(true).open(&path).map_err(|e| ShareError::io(&path, &e))?;
        written.push(name.clone());
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&[0; HEADER_BYTES]).map_err(|e| ShareError::io(&path, &e))?;
        Ok(Self { path, name, out, at: HEADER_BYTES as u64 })
    }

    fn put(&mut self, bytes: &[u8]) -> Result<Span, ShareError> {
        let span = Span { offset: self.at, len: bytes.len() as u64 };
        let pad = (bytes.len().next_multiple_of(ALIGN) - bytes.len()) as u64;
        let io = |e: std::io::Error| ShareError::io(&self.path, &e);
        self.out.write_all(bytes).map_err(io)?;
        self.out.write_all(&[0; ALIGN][..pad as usize]).map_err(io)?;
        self.at += bytes.len() as u64 + pad;
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
