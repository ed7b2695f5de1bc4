//! `cheetah warm`: make sure a range is cached, and pull its chunks into the OS page cache.

use std::path::Path;
use std::time::Instant;

use anyhow::bail;
use cheetah_core::query::resolve_fields;
use cheetah_core::store::keys::{date_of, day_of};
use cheetah_core::store::ChunkKind;
use cheetah_core::Cache;
use chrono::NaiveDate;

use super::{human_bytes, load_config, DateRange};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    range: DateRange,
    /// Only these fields, comma-separated [default: every cached field]
    #[arg(long, value_delimiter = ',')]
    cols: Option<Vec<String>>,
    /// Never fetch from the source, even if the range is not fully cached
    #[arg(long)]
    no_update: bool,
}

pub fn run(config: Option<&Path>, args: Args) -> anyhow::Result<()> {
    if args.range.start > args.range.end {
        bail!("--start {} is after --end {}", args.range.start, args.range.end);
    }
    let config = load_config(config)?;
    let behind = needs_update(&config, args.range.end)?;
    if behind && !args.no_update {
        eprintln!("the cache ends before {}: updating first", args.range.end);
        let writer = Cache::builder(config.clone()).writer(true).open()?;
        writer.update(false)?.into_result()?;
    }

    let cache = Cache::builder(config).open()?;
    let catalog = cache.catalog();
    let wanted: Vec<(ChunkKind, u32)> = match &args.cols {
        Some(cols) => {
            let fields = resolve_fields(&catalog, &cache.aliases(), cols)?;
            let mut ids: Vec<(ChunkKind, u32)> = fields.iter().map(|f| (ChunkKind::Values, f.field.id)).collect();
            for f in &fields {
                if !ids.contains(&(ChunkKind::Keys, f.table.id)) {
                    ids.push((ChunkKind::Keys, f.table.id));
                }
            }
            ids
        }
        None => catalog
            .tables
            .iter()
            .flat_map(|t| {
                std::iter::once((ChunkKind::Keys, t.id)).chain(t.fields.iter().map(|f| (ChunkKind::Values, f.id)))
            })
            .collect(),
    };
    let started = Instant::now();
    let store = cache.store();
    let (mut chunks, mut bytes) = (0, 0);
    for (kind, id) in wanted {
        let (c, b) = store.touch_chunks(kind, id, day_of(args.range.start), day_of(args.range.end))?;
        chunks += c;
        bytes += b;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "warmed {chunks} chunks, {} in {seconds:.2} s ({}/s), {} .. {}",
        human_bytes(bytes),
        human_bytes((bytes as f64 / seconds.max(1e-9)) as u64),
        args.range.start,
        args.range.end
    );
    Ok(())
}

/// Whether some configured table is not cached, or not loaded up to `end`.
fn needs_update(config: &cheetah_core::Config, end: NaiveDate) -> anyhow::Result<bool> {
    let Ok(cache) = Cache::builder(config.clone()).open() else { return Ok(true) };
    let catalog = cache.catalog();
    let store = cache.store();
    for table in &config.tables {
        let loaded = match catalog.table(&table.name) {
            Some(entry) => store.watermark(entry.id)?.map(date_of),
            None => None,
        };
        if loaded.is_none_or(|w| w < end) {
            return Ok(true);
        }
    }
    Ok(false)
}
