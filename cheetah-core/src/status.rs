//! What the store holds, per table and field.

use chrono::{DateTime, NaiveDate, Utc};
use rayon::prelude::*;
use serde::Serialize;

use crate::error::StoreError;
use crate::store::{ChunkSpan, Store, FORMAT_VERSION};
use crate::types::date_of;
use crate::types::TableKind;

/// The whole store.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The store directory.
    pub store: String,
    /// The format version it is marked with; a writer marks an older store current.
    pub format_version: u32,
    /// Symbols in the dictionary.
    pub symbols: usize,
    /// Bytes of the store's files on disk.
    pub disk_bytes: u64,
    /// Every cached table.
    pub tables: Vec<TableStatus>,
    /// The shared layer, when the config has `[share]`.
    pub share: Option<crate::share::ShareStatus>,
    /// The versions the store keeps, its history and snapshots.
    pub versions: Option<VersionStatus>,
}

/// What the store keeps of its versions, for `cheetah status`.
#[derive(Debug, Clone, Serialize)]
pub struct VersionStatus {
    /// The newest version.
    pub latest: u64,
    /// When it was committed.
    pub latest_committed: DateTime<Utc>,
    /// The oldest version a read may name without a snapshot.
    pub oldest: u64,
    /// When it was committed: the oldest moment readable.
    pub oldest_committed: DateTime<Utc>,
    /// Versions readable from the oldest on.
    pub kept: u64,
    /// Bytes the history of replaced values holds.
    pub history_bytes: u64,
    /// `[store] keep_versions`, when set.
    pub keep_versions: Option<String>,
    /// The snapshots, by name.
    pub snapshots: Vec<crate::store::snapshots::Snapshot>,
}

/// One cached table.
#[derive(Debug, Clone, Serialize)]
pub struct TableStatus {
    /// Its name.
    pub name: String,
    /// Daily or asof.
    pub kind: TableKind,
    /// The name of the source it is read from; `None` for a local table, or one no longer
    /// configured.
    pub source: Option<String>,
    /// Written by researchers (`Cache.write`, `cheetah import`), not read from a source.
    pub local: bool,
    /// First cached date.
    pub first: Option<NaiveDate>,
    /// Last cached date.
    pub last: Option<NaiveDate>,
    /// Cached dates.
    pub dates: usize,
    /// Cached rows (keys).
    pub rows: u64,
    /// Compressed bytes of its row chunks.
    pub key_bytes: u64,
    /// The last date fully loaded.
    pub watermark: Option<NaiveDate>,
    /// When its last update finished (RFC 3339, UTC).
    pub last_update: Option<String>,
    /// Its fields.
    pub fields: Vec<FieldStatus>,
}

/// One cached field.
#[derive(Debug, Clone, Serialize)]
pub struct FieldStatus {
    /// Its name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub dtype: String,
    /// First date with a chunk.
    pub first: Option<NaiveDate>,
    /// Last date with a chunk.
    pub last: Option<NaiveDate>,
    /// Dates with a chunk.
    pub dates: usize,
    /// Rows over all chunks.
    pub rows: u64,
    /// Compressed bytes of its chunks.
    pub bytes: u64,
    /// False while a newly added field is still being backfilled.
    pub complete: bool,
}

/// Gathers the status of `store`.
///
/// # Errors
/// [`StoreError`] if the catalog or a chunk index cannot be read.
pub fn status(store: &Store) -> Result<Status, StoreError> {
    let catalog = store.catalog()?;
    let mut tables = Vec::with_capacity(catalog.tables.len());
    for table in &catalog.tables {
        let span: ChunkSpan = store.table_span(table.id)?;
        // Each field is a scan of its own key range: thousands of fields scan in parallel.
        let fields = table
            .fields
            .par_iter()
            .map(|field| {
                let f = store.field_span(field.id)?;
                Ok(FieldStatus {
                    name: field.name.clone(),
                    dtype: field.dtype.name(),
                    first: f.first.map(date_of),
                    last: f.last.map(date_of),
                    dates: f.chunks,
                    rows: f.rows,
                    bytes: f.bytes,
                    complete: field.complete,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        tables.push(TableStatus {
            name: table.name.clone(),
            kind: table.kind,
            source: None,
            local: table.is_local(),
            first: span.first.map(date_of),
            last: span.last.map(date_of),
            dates: span.chunks,
            rows: span.rows,
            key_bytes: span.bytes,
            watermark: store.watermark(table.id)?.map(date_of),
            last_update: store
                .last_updated(table.id)?
                .and_then(|t| DateTime::from_timestamp(t, 0))
                .map(|t| t.to_rfc3339()),
            fields,
        });
    }
    Ok(Status {
        store: store.path().display().to_string(),
        format_version: store.format_version()?.unwrap_or(FORMAT_VERSION),
        symbols: store.symbols()?.len(),
        disk_bytes: store.disk_bytes(),
        tables,
        share: None,
        versions: None,
    })
}
