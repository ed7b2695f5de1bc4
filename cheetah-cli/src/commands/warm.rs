//! `cheetah warm`: make sure a range is cached; then publish it into the shared layer of
//! `[share]`, or without one, pull its chunks into the OS page cache.

use std::path::Path;
use std::time::Instant;

use anyhow::bail;
use cheetah_core::{Cache, Error, StoreError};

use super::{human_bytes, load_config, DateRange};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    range: DateRange,
    /// Only these fields, comma-separated [default: every cached field]; with [share], one
    /// segment of the shared layer holds them, with the union of their daily tables' rows
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
    // Tables that failed to update (their source down) are warmed as far as they are cached,
    // and the command fails at the end, naming them.
    let mut not_updated: Vec<String> = Vec::new();
    if loaded.is_none_or(|through| through < end) && !args.no_update {
        eprintln!("the cache ends before {end}: updating first");
        match Cache::builder(config.clone()).writer(true).open() {
            Ok(writer) => {
                let report = writer.update()?;
                for (name, error) in report.failures() {
                    eprintln!("{name} was not updated: {error}; warming what it has cached");
                    not_updated.push(name.to_string());
                }
            }
            // `cheetah serve` is the writer: it brings the range in, and keeps what is
            // published current.
            Err(Error::Store(StoreError::Locked { .. })) => {
                eprintln!("another process (cheetah serve?) is updating the store: using what it has committed");
            }
            Err(e) => return Err(e.into()),
        }
    }

    let cache = Cache::builder(config).open()?;
    let started = Instant::now();
    if let Some(share) = &cache.config().share {
        let report = cache.publish(start, end, args.cols.as_deref())?;
        let seconds = started.elapsed().as_secs_f64();
        let show = |d: Option<chrono::NaiveDate>| d.map_or("-".to_string(), |d| d.to_string());
        for s in &report.written {
            println!(
                "published {} .. {}, {}: {}",
                show(s.first),
                show(s.last),
                human_bytes(s.bytes),
                s.fields.join(", ")
            );
        }
        for s in &report.evicted {
            println!(
                "evicted, used least recently, over the budget: {} .. {}, {}: {}",
                show(s.first),
                show(s.last),
                human_bytes(s.bytes),
                s.fields.join(", ")
            );
        }
        println!(
            "shared layer {} generation {}: wrote {} blocks of {} rows, {} in {seconds:.2} s ({}/s); it holds {} of {}",
            share.path.display(),
            report.generation.map_or("-".to_string(), |g| g.to_string()),
            report.blocks,
            report.rows,
            human_bytes(report.bytes),
            human_bytes((report.bytes as f64 / seconds.max(1e-9)) as u64),
            human_bytes(report.total_bytes),
            human_bytes(share.budget_bytes),
        );
        return updated(&not_updated);
    }
    let warmed = cache.warm(start, end, args.cols.as_deref())?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "warmed {} chunks, {} in {seconds:.2} s ({}/s), {start} .. {end}",
        warmed.chunks,
        human_bytes(warmed.bytes),
        human_bytes((warmed.bytes as f64 / seconds.max(1e-9)) as u64),
    );
    updated(&not_updated)
}

/// Fails when some tables could not be updated before warming.
fn updated(not_updated: &[String]) -> anyhow::Result<()> {
    if not_updated.is_empty() {
        return Ok(());
    }
    bail!(
        "{} could not be updated (above); the rest was warmed, and these as far as they were cached",
        not_updated.join(", ")
    )
}
