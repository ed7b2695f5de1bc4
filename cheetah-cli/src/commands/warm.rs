//! `cheetah warm`: make sure a range is cached, and pull its chunks into the OS page cache.

use std::path::Path;
use std::time::Instant;

use anyhow::bail;
use cheetah_core::Cache;

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
    let (start, end) = (args.range.start, args.range.end);
    if start > end {
        bail!("--start {start} is after --end {end}");
    }
    let config = load_config(config)?;
    // A missing store has loaded nothing.
    let loaded = Cache::builder(config.clone()).open().ok().map(|c| c.loaded_through()).transpose()?.flatten();
    if loaded.is_none_or(|through| through < end) && !args.no_update {
        eprintln!("the cache ends before {end}: updating first");
        let writer = Cache::builder(config.clone()).writer(true).open()?;
        writer.update()?.into_result()?;
    }

    let cache = Cache::builder(config).open()?;
    let started = Instant::now();
    let warmed = cache.warm(start, end, args.cols.as_deref())?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "warmed {} chunks, {} in {seconds:.2} s ({}/s), {start} .. {end}",
        warmed.chunks,
        human_bytes(warmed.bytes),
        human_bytes((warmed.bytes as f64 / seconds.max(1e-9)) as u64),
    );
    Ok(())
}
