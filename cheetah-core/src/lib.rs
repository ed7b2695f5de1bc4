//! Cheetah: an embedded cache of (date, symbol) tables from SQL databases.
//!
//! Column chunks keyed by (field, date) are stored zstd-compressed in RocksDB. An update copies
//! configured tables out of an ODBC source incrementally by date; a read assembles any
//! combination of cached fields into one Arrow table keyed by (date, symbol).
//!
//! ```no_run
//! use cheetah_core::{Cache, Config, Request};
//! use chrono::NaiveDate;
//!
//! # fn main() -> Result<(), cheetah_core::Error> {
//! let config = Config::discover(None)?;
//! let cache = Cache::builder(config).writer(true).open()?;
//! cache.update()?.into_result()?;
//! let start = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
//! let end = NaiveDate::from_ymd_opt(2020, 12, 31).unwrap();
//! let result = cache.get(&Request::new(start, end, vec!["close".into(), "pe".into()]))?;
//! println!("{} rows", result.batch.num_rows());
//! # Ok(())
//! # }
//! ```
//!
//! The layers, from the bottom:
//! - `store`: RocksDB, the chunk codec, the catalog, journal and marks; the on-disk format.
//! - `source`: the ODBC source: its catalog, queries, row streams and checksums.
//! - `update`: source rows into committed days of chunks.
//! - `local`: researchers' own tables, written from frames, and the inbox that hands a write to
//!   the writer process.
//! - `view`: a reader's view of the store, following the writer.
//! - `hot`: the per-process LRU of decoded chunks.
//! - `share`: the layer of decoded columns on a tmpfs that every process on the box maps.
//! - `query`: a read, as plan, fetch and assemble.
//! - `universe`: membership intervals, and which symbols were members on a date.
//! - `status`, `verify`: what the store holds, and whether it equals the source.
//! - `quality`: whether the source itself looks right, from the cached chunks.
//! - [`Cache`]: all of it behind one handle.
#![deny(missing_docs)]

mod cache;
mod checksum;
mod codes;
mod config;
mod diff;
mod error;
mod hot;
mod local;
mod quality;
mod query;
mod share;
mod source;
mod status;
mod store;
#[cfg(test)]
mod testing;
mod types;
mod universe;
mod update;
mod verify;
mod view;

pub use cache::{Cache, CacheBuilder, FieldSearch, SourceField, WarmReport};
pub use config::{
    AdjustConfig, Config, DecimalMode, FlightConfig, MissingPolicy, QualityConfig, ShareConfig, SourceConfig,
    StoreConfig, TableConfig, TlsFiles, UniverseConfig, DEFAULT_LOOKBACK, DEFAULT_SOURCE,
};
pub use diff::{Diff, FieldDiff};
pub use error::{
    ConfigError, Error, QueryError, Result, ShareError, SourceError, StoreError, UpdateError, VersionError, WriteError,
};
pub use local::{is_table_name, WriteReport};
pub use quality::{Check, Flag, Metric, QualityReport, TableQuality};
pub use query::{symbol_type, Adjust, AsOf, DateLayout, IntegerNulls, Outline, Panel, QueryResult, Request, SharedUse};
pub use share::{PublishReport, SegmentReport, SegmentStatus, ShareStatus, LAYER_FORMAT_VERSION};
pub use status::{FieldStatus, Status, TableStatus, VersionStatus};
pub use store::snapshots::Snapshot;
pub use store::{Version, FORMAT_VERSION};
pub use types::{TableKind, ValueType};
pub use universe::{Interval, Universe, UniverseSummary};
pub use update::{
    CatalogDiff, ProgressEvent, ProgressFn, ProgressTask, SourceOutcome, TableReport, UniverseReport, UpdateReport,
};
pub use verify::{Difference, TableVerification};

pub use arrow;
pub use chrono;

/// The internals the benchmarks and the fixture tools drive directly. Not a stable API.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod internals {
    pub use crate::query::{assemble, DateLayout, Inputs, OutputPool};
    pub use crate::share::format::decode_manifest;
    pub use crate::store::codec::{decode_rows, decode_values, encode_rows, encode_values};
    pub use crate::store::symbols::SymbolDictionary;
    pub use crate::store::{ChunkKind, Store};
    pub use crate::types::{date_of, day_of, Day};
    pub use crate::view::SymbolRanking;
}
