//! `cheetah drop`: a local table removed, with its chunks.

use std::path::Path;

use cheetah_core::Cache;

use super::load_config;

#[derive(clap::Args)]
pub struct Args {
    /// The local table to remove, with every date and field of it
    table: String,
}

pub fn run(config: Option<&Path>, args: Args) -> anyhow::Result<()> {
    let config = load_config(config)?;
    let cache = Cache::builder(config).share(false).open()?;
    let report = cache.drop_table(&args.table)?;
    println!("{}: dropped, with its {} dates", report.table, report.dates);
    Ok(())
}
