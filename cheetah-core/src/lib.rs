//! Cheetah: an embedded cache of (date, symbol) tables from SQL databases.
//!
//! Column chunks keyed by (field, date) are stored zstd-compressed in RocksDB. An [`Updater`]
//! copies configured tables out of an ODBC source incrementally by date; a read assembles any
//! combination of cached fields into one Arrow table keyed by (date, symbol).
//!
//! ```no_run
//! use cheetah_core::{Cache, Config, DateLayout, Request};
//! use chrono::NaiveDate;
//!
//! # fn main() -> Result<(), cheetah_core::Error> {
//! let config = Config::discover(None)?;
//! let cache = Cache::builder(config).writer(true).open()?;
//! cache.update(false)?.into_result()?;
//! let result = cache.get(&Request {
//!     start: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
//!     end: NaiveDate::from_ymd_opt(2020, 12, 31).unwrap(),
//!     fields: vec!["close".into(), "pe".into()],
//!     symbols: None,
//!     base: None,
//!     dates: DateLayout::Date32,
//! })?;
//! println!("{} rows", result.batch.num_rows());
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod cache;
pub mod config;
pub mod error;
pub mod hot;
pub mod query;
pub mod source;
pub mod status;
pub mod store;
pub mod types;
pub mod update;
pub mod verify;

pub use cache::{Cache, CacheBuilder};
pub use config::Config;
pub use error::{Error, Result};
pub use query::{DateLayout, QueryResult, Request};
pub use update::{UpdateReport, Updater};

pub use arrow;
pub use chrono;
