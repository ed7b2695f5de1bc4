//! The layer's files: the manifest, and the headers of the data files it names.
//!
//! A layer directory holds:
//! - `MANIFEST`: the current generation in postcard, behind a magic, the format and the body's
//!   length, and followed by the Adler-32 of all that (see [`encode_manifest`]). Every new process
//!   parses it before its first read, so it is binary: JSON took milliseconds. Each block in it is
//!   an entry of its rows, its files' bytes and the block's own postcard bytes, which a reader
//!   decodes when a read first needs that block (`blocks.rs`). It is written to `MANIFEST.tmp`
//!   and renamed into place, so a reader sees a whole one.
//! - Data files named `g{generation}-s{segment}-b{block}-{part}`, where the part is `rows` or
//!   `f{field id}`: a [`Header`] in the first page, then Arrow buffers, each at a page-aligned
//!   offset and padded to a whole page. A file is written once, before any manifest names it,
//!   and never changed after; a later generation that keeps its content names the same file.
//! - `g{generation}-view`: the publisher's view of the store written down ([`SavedView`]), a
//!   [`Header`] page then the view's bytes and their Adler-32.
//! - `used-s{segment}`: an empty file whose modification time readers set when they serve from
//!   the segment; the publisher evicts from the segment used least recently first.
//! - `LOCK`: held (flock) by the one process publishing.
//!
//! A segment's rows are cut into blocks of `block_rows` rows (the last may hold fewer), and each
//! block has its own files, so a refresh rewrites only the blocks whose rows changed. A full
//! block's buffers fill whole pages when `block_rows` is a multiple of 32,768, and a reader then
//! maps a column over many blocks as one contiguous run of memory.

use std::ops::{Deref, DerefMut};

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use crate::checksum::{adler32, fnv1a};
use crate::error::LayerError;
use crate::types::{Day, ValueType};

/// The layer's format. Version 1: whole segments. Version 2: segments cut into blocks of rows,
/// buffers page-aligned. Version 3: integer parts with nulls carry a float64 copy for pandas.
/// Version 4: the manifest names the publisher's view of the store ([`SavedView`]). Version 5:
/// the manifest is binary, and it and the saved view are checked with Adler-32. Version 6: each
/// block of the manifest is its own run of bytes, which a reader decodes on first use.
pub const LAYER_FORMAT_VERSION: u32 = 6;

/// The manifest's file name.
pub const MANIFEST: &str = "MANIFEST";
/// Where a manifest is written before it is renamed into place.
pub const MANIFEST_TMP: &str = "MANIFEST.tmp";
/// The publishers' lock file.
pub const LOCK: &str = "LOCK";

const MAGIC: [u8; 8] = *b"CHTLAYR\x01";
const MANIFEST_MAGIC: [u8; 8] = *b"CHTMANI\x01";
/// A manifest's magic, format and body length.
const MANIFEST_HEAD: usize = 20;
/// Bytes of the header that is checked.
pub const HEADER_BYTES: usize = 64;
/// Every buffer starts at a multiple of this, and takes whole multiples of it, so that it maps
/// on its own and beside the same buffer of the next block.
pub const PAGE: usize = 4096;

/// One generation of the layer, its blocks held as `B`: [`Blocks`] decoded, or a reader's
/// `LazyBlocks`, decoded on first use (`blocks.rs`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest<B = Blocks> {
    /// [`LAYER_FORMAT_VERSION`] of the writer.
    pub format: u32,
    /// The RocksDB identity of the store it was built from.
    pub store_identity: String,
    /// The store's directory, for messages.
    pub store_path: String,
    /// Increases with every manifest written.
    pub generation: u64,
    /// The store's journal position the oldest content reflects: nothing journaled before it is
    /// missing, and readers treat every day journaled since as changed.
    pub journal: u64,
    /// The position the newest content reflects: a reader whose view of the store is older must
    /// not use the layer, which may hold what that reader cannot see yet.
    pub journal_newest: u64,
    /// The symbol dictionary's length then; codes are ranks among these first symbols.
    pub symbols: usize,
    /// When it was written, in seconds since 1970.
    pub published: i64,
    /// The budget it was written under.
    pub budget: u64,
    /// The published segments.
    pub segments: Vec<Segment<B>>,
    /// The view of the store the content reflects, when the publisher's view was the store's
    /// latest version.
    pub view: Option<SavedView>,
}

/// The publisher's view of the store, written down, so that a new reader whose store's head
/// still names `version` plans its reads from it without opening the store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SavedView {
    /// The store version it is exactly.
    pub version: u64,
    /// Its file.
    pub file: FileRef,
    /// Its bytes in the file, followed by their Adler-32 (4 bytes, little-endian).
    pub span: Span,
}

/// A box of (date, symbol) rows over a date range with fields filled in: the union of the keys
/// of `tables` on each day, in symbol-text order, as a plain read of its fields lays them out.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Segment<B = Blocks> {
    /// Stable across generations; names its `used-s{id}` stamp.
    pub id: u64,
    /// The range asked for, inclusive. The content ends at the cut of its last build.
    pub start: Day,
    /// See `start`.
    pub end: Day,
    /// The daily tables whose keys make the rows.
    pub tables: Vec<u32>,
    /// Every day read, with its rows (possibly none), ascending.
    pub days: Vec<(Day, u64)>,
    /// Rows per block; every block but the last holds exactly this many.
    pub block_rows: u64,
    /// Bytes per date code: 2 or 4. A date's code is its ordinal among the days with rows.
    pub date_width: u8,
    /// Bytes per symbol code: 2 or 4. A symbol's code is its rank among the manifest's symbols.
    pub symbol_width: u8,
    /// The fields, in publish order.
    pub fields: Vec<FieldInfo>,
    /// The rows, block by block.
    pub blocks: B,
}

impl<B> Segment<B> {
    /// Rows over all days.
    pub fn total_rows(&self) -> u64 {
        self.days.iter().map(|&(_, n)| n).sum()
    }
}

impl Segment {
    /// Bytes of one field's files.
    pub fn field_bytes(&self, field: usize) -> u64 {
        self.blocks.iter().map(|b| b.fields[field].file.bytes).sum()
    }

    /// Its files, each once.
    pub fn files(&self) -> impl Iterator<Item = &FileRef> {
        self.blocks.iter().flat_map(|b| std::iter::once(&b.file).chain(b.fields.iter().map(|f| &f.file)))
    }

    /// The segment without field `i`.
    pub fn without_field(&mut self, i: usize) {
        self.fields.remove(i);
        for block in self.blocks.iter_mut() {
            block.fields.remove(i);
        }
    }
}

/// Every block decoded: what a publisher builds and edits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Blocks(pub Vec<Block>);

impl Deref for Blocks {
    type Target = Vec<Block>;
    fn deref(&self) -> &Vec<Block> {
        &self.0
    }
}

impl DerefMut for Blocks {
    fn deref_mut(&mut self) -> &mut Vec<Block> {
        &mut self.0
    }
}

impl From<Vec<Block>> for Blocks {
    fn from(blocks: Vec<Block>) -> Self {
        Self(blocks)
    }
}

/// One block as stored: its rows and its files' bytes, then the block in postcard. (postcard
/// writes a struct's fields in order, without their names.)
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Stored {
    pub rows: u64,
    pub bytes: u64,
    pub raw: Raw,
}

impl Stored {
    /// The block its bytes hold, if they hold one whose rows and bytes are the entry's.
    pub(super) fn decode(&self) -> Result<Block, String> {
        let block: Block = postcard::from_bytes(&self.raw.0).map_err(|e| e.to_string())?;
        if block.rows != self.rows || block.bytes() != self.bytes {
            return Err("its rows or bytes differ from what its entry says".into());
        }
        Ok(block)
    }
}

impl Serialize for Blocks {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for block in &self.0 {
            let raw = postcard::to_allocvec(block).map_err(serde::ser::Error::custom)?;
            seq.serialize_element(&Stored { rows: block.rows, bytes: block.bytes(), raw: Raw(raw.into()) })?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Blocks {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = Vec::<Stored>::deserialize(deserializer)?;
        let blocks = stored
            .iter()
            .enumerate()
            .map(|(k, entry)| entry.decode().map_err(|why| de::Error::custom(format!("block {k}: {why}"))))
            .collect::<Result<Vec<_>, D::Error>>()?;
        Ok(Self(blocks))
    }
}

/// Bytes that postcard reads as one run (a `Vec<u8>` would go through serde byte by byte).
#[derive(Debug)]
pub(super) struct Raw(pub Box<[u8]>);

impl Serialize for Raw {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Bytes;
        impl Visitor<'_> for Bytes {
            type Value = Raw;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a block's bytes")
            }
            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Raw, E> {
                Ok(Raw(bytes.into()))
            }
        }
        deserializer.deserialize_bytes(Bytes)
    }
}

/// One published field of a segment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FieldInfo {
    /// The field's id in the store's catalog.
    pub id: u32,
    /// Its table's id.
    pub table: u32,
    /// `table.field`, for status and messages.
    pub name: String,
    /// Its type when published; a field whose type changed is not served.
    pub dtype: ValueType,
}

/// A block of a segment's rows: their codes in one file, and each field's part in one file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Block {
    /// Its rows.
    pub rows: u64,
    /// The file of its codes and presence.
    pub file: FileRef,
    /// Per row, the ordinal of its day among the segment's days with rows.
    pub date_codes: Span,
    /// Per row, the rank of its symbol among the manifest's symbols.
    pub symbol_codes: Span,
    /// Per table of a segment of several, a bitmap of the rows it has; empty for one table.
    pub presence: Vec<Span>,
    /// Per field of the segment, in its order, the field's part.
    pub fields: Vec<FieldPart>,
}

impl Block {
    /// Bytes of its files.
    pub fn bytes(&self) -> u64 {
        self.file.bytes + self.fields.iter().map(|f| f.file.bytes).sum::<u64>()
    }
}

/// A field's Arrow buffers over one block's rows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FieldPart {
    /// The file.
    pub file: FileRef,
    /// The array's buffers, in Arrow's order for the type.
    pub buffers: Vec<Span>,
    /// Its validity bitmap, if it has nulls.
    pub validity: Option<Span>,
    /// For an integer field with nulls: its values as float64 with NaN at the nulls, the column
    /// pandas' numpy backend holds, so every process can map it instead of widening its own.
    pub widened: Option<Span>,
}

/// A data file as the manifest names it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    /// Its name in the layer directory.
    pub name: String,
    /// The generation that wrote it, as its header says.
    pub generation: u64,
    /// Its length, header included.
    pub bytes: u64,
}

/// A run of bytes in a data file.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Span {
    /// From the start of the file, a multiple of [`PAGE`].
    pub offset: u64,
    /// Its length.
    pub len: u64,
}

/// The start of every data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The generation that wrote it.
    pub generation: u64,
    /// The file's whole length.
    pub bytes: u64,
}

impl Header {
    /// The header's bytes: magic, format, generation and length (little-endian), the FNV-1a of
    /// those, then zeros.
    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut out = [0u8; HEADER_BYTES];
        out[..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&LAYER_FORMAT_VERSION.to_le_bytes());
        out[12..20].copy_from_slice(&self.generation.to_le_bytes());
        out[20..28].copy_from_slice(&self.bytes.to_le_bytes());
        let check = fnv1a(&out[..28]);
        out[28..36].copy_from_slice(&check.to_le_bytes());
        out
    }

    /// Reads a header, or says what is wrong with it.
    ///
    /// # Errors
    /// [`LayerError`] for a short, foreign, other-format or damaged header of the file `what`.
    pub fn decode(bytes: &[u8], what: &str) -> Result<Self, LayerError> {
        let bytes = bytes.get(..HEADER_BYTES).ok_or_else(|| LayerError::damaged(what, "shorter than its header"))?;
        if bytes[..8] != MAGIC {
            return Err(LayerError::damaged(what, "not a Cheetah layer file"));
        }
        let word = |range: std::ops::Range<usize>| u64::from_le_bytes(bytes[range].try_into().expect("8 bytes"));
        if word(28..36) != fnv1a(&bytes[..28]) {
            return Err(LayerError::damaged(what, "its header's checksum does not match"));
        }
        let format = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if format != LAYER_FORMAT_VERSION {
            return Err(LayerError::Format { what: what.to_string(), found: format, expected: LAYER_FORMAT_VERSION });
        }
        Ok(Self { generation: word(12..20), bytes: word(20..28) })
    }
}

/// The manifest as stored: [`MANIFEST_MAGIC`], the format (u32) and the body's length (u64),
/// the body in postcard, then the Adler-32 of everything before it (u32), all little-endian. The
/// format comes first so that a manifest of another build says which it is without parsing.
pub fn encode_manifest(manifest: &Manifest) -> Vec<u8> {
    let body = postcard::to_allocvec(manifest).expect("a manifest serializes");
    let mut out = Vec::with_capacity(MANIFEST_HEAD + body.len() + 4);
    out.extend_from_slice(&MANIFEST_MAGIC);
    out.extend_from_slice(&manifest.format.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    let check = adler32(&out);
    out.extend_from_slice(&check.to_le_bytes());
    out
}

/// Reads a stored manifest, or says what is wrong with it.
///
/// # Errors
/// [`LayerError`] for a truncated or damaged manifest, or one of another format.
pub fn decode_manifest<B: DeserializeOwned>(bytes: &[u8]) -> Result<Manifest<B>, LayerError> {
    let damaged = |why: &str| LayerError::damaged("its manifest", why);
    let other = |found: u32| LayerError::Format { what: "its manifest".into(), found, expected: LAYER_FORMAT_VERSION };
    if bytes.first() == Some(&b'{') {
        // Formats before 5 wrote JSON.
        #[derive(Deserialize)]
        struct Format {
            format: u32,
        }
        let json = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
        return Err(serde_json::from_slice::<Format>(json)
            .map_or_else(|_| damaged("not a Cheetah manifest"), |f| other(f.format)));
    }
    // A start of the magic alone is a manifest cut short.
    if !bytes.starts_with(&MANIFEST_MAGIC) && !MANIFEST_MAGIC.starts_with(bytes) {
        return Err(damaged("not a Cheetah manifest"));
    }
    if bytes.len() < MANIFEST_HEAD + 4 {
        return Err(damaged("truncated"));
    }
    let format = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let body = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let end = usize::try_from(body).ok().and_then(|b| b.checked_add(MANIFEST_HEAD));
    let Some(end) = end.filter(|&end| end + 4 == bytes.len()) else {
        return Err(damaged("its length does not match its header (truncated?)"));
    };
    if u32::from_le_bytes(bytes[end..].try_into().expect("4 bytes")) != adler32(&bytes[..end]) {
        return Err(damaged("its checksum does not match"));
    }
    if format != LAYER_FORMAT_VERSION {
        return Err(other(format));
    }
    let manifest: Manifest<B> =
        postcard::from_bytes(&bytes[MANIFEST_HEAD..end]).map_err(|e| LayerError::damaged("its manifest", e))?;
    if manifest.format != format {
        return Err(damaged("its body's format differs from its header's"));
    }
    Ok(manifest)
}

/// The name of the data file `part` of block `block` of `segment` written by `generation`.
pub fn file_name(generation: u64, segment: u64, block: usize, part: &str) -> String {
    format!("g{generation}-s{segment}-b{block}-{part}")
}

/// The name of the saved view of `generation`.
pub fn view_name(generation: u64) -> String {
    format!("g{generation}-view")
}

/// The name of a segment's use stamp.
pub fn stamp_name(segment: u64) -> String {
    format!("used-s{segment}")
}

/// Whether `name` is one of the files a publisher writes (and so may delete).
pub fn is_layer_file(name: &str) -> bool {
    name == MANIFEST_TMP
        || name.starts_with("used-s")
        || (name.starts_with('g')
            && (name.contains("-s") || name.ends_with("-view"))
            && name[1..].starts_with(|c: char| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest decoded whole, as a publisher reads it.
    fn decode(bytes: &[u8]) -> Result<Manifest, LayerError> {
        decode_manifest(bytes)
    }

    fn manifest() -> Manifest {
        Manifest {
            format: LAYER_FORMAT_VERSION,
            store_identity: "id".into(),
            store_path: "/s".into(),
            generation: 3,
            journal: 9,
            journal_newest: 9,
            symbols: 2,
            published: 0,
            budget: 1 << 20,
            segments: vec![],
            view: None,
        }
    }

    #[test]
    fn a_manifest_round_trips_and_any_damage_is_found() {
        let bytes = encode_manifest(&manifest());
        assert_eq!(decode(&bytes).unwrap(), manifest());
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "truncated at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[5] ^= 1;
        assert!(matches!(decode(&flipped), Err(LayerError::Damaged { .. })));
        let mut other = manifest();
        other.format = 99;
        let err = decode(&encode_manifest(&other)).unwrap_err();
        assert!(matches!(err, LayerError::Format { found: 99, .. }), "{err}");
        assert!(err.to_string().contains("layer format 99"), "{err}");
        let older = decode(b"{\"format\":4,\"generation\":1}\n00\n").unwrap_err();
        assert!(matches!(older, LayerError::Format { found: 4, .. }), "a JSON manifest of format 4: {older}");
        let mut body = bytes.clone();
        body[MANIFEST_HEAD + 2] ^= 0x10;
        assert!(matches!(decode(&body), Err(LayerError::Damaged { .. })));
    }

    #[test]
    fn a_header_round_trips_and_any_damage_is_found() {
        let header = Header { generation: 7, bytes: 4096 };
        let bytes = header.encode();
        assert_eq!(Header::decode(&bytes, "f").unwrap(), header);
        assert!(Header::decode(&bytes[..10], "f").is_err());
        for at in [0, 9, 13, 21, 30] {
            let mut damaged = bytes;
            damaged[at] ^= 0x40;
            assert!(Header::decode(&damaged, "f").is_err(), "byte {at}");
        }
    }

    #[test]
    fn only_the_publishers_own_files_are_layer_files() {
        assert!(is_layer_file(&file_name(12, 3, 0, "rows")) && is_layer_file(&file_name(1, 0, 9, "f17")));
        assert!(is_layer_file(&stamp_name(4)) && is_layer_file(MANIFEST_TMP) && is_layer_file(&view_name(3)));
        for foreign in ["MANIFEST", "LOCK", "notes.txt", "gossip-s", "g-s1"] {
            assert!(!is_layer_file(foreign), "{foreign}");
        }
    }
}
