//! The bytes of a store's chunks on one date, as the store holds them: what a commit that
//! rewrites that date replaces, for the storage figure of the versions benchmark.
//!
//!     chunk-bytes STORE_DIR 2025-12-31
//!
//! Prints one JSON line: `values` (every field's value chunk that date), `rows` (every table's
//! row chunk) and `chunks`. It opens the store as a reader, so a writer may hold it.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use cheetah_core::internals::{day_of, ChunkKind, Store};
use chrono::NaiveDate;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [store, date] = args.as_slice() else {
        bail!("usage: chunk-bytes STORE_DIR YYYY-MM-DD");
    };
    let date: NaiveDate = date.parse().with_context(|| format!("{date} is not a date (YYYY-MM-DD)"))?;
    let day = day_of(date);
    let store = Store::open_reader(&PathBuf::from(store))?;
    let catalog = store.catalog()?;
    let (mut values, mut rows, mut chunks) = (0u64, 0u64, 0usize);
    for table in &catalog.tables {
        let (n, bytes) = store.warm_chunks(ChunkKind::Rows, table.id, day, day)?;
        (rows, chunks) = (rows + bytes, chunks + n);
        for field in &table.fields {
            let (n, bytes) = store.warm_chunks(ChunkKind::Values, field.id, day, day)?;
            (values, chunks) = (values + bytes, chunks + n);
        }
    }
    println!(r#"{{"values": {values}, "rows": {rows}, "chunks": {chunks}}}"#);
    Ok(())
}
