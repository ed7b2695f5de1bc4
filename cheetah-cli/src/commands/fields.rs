//! `cheetah fields`: search the source's catalog.

use std::path::Path;

use anyhow::bail;
use cheetah_core::Cache;

use super::load_config;

#[derive(clap::Args)]
pub struct Args {
    /// A name or glob matched against `column` and `table.column`, e.g. `pe*` or `valuation.*`
    pattern: Option<String>,
    /// Only this table
    #[arg(long)]
    table: Option<String>,
    /// Only this source ([sources.NAME], or `default` for [source]); every source by default
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
}

pub fn run(config: Option<&Path>, args: Args) -> anyhow::Result<()> {
    let config = load_config(config)?;
    let pattern = args.pattern.as_deref().unwrap_or("*");
    let search = Cache::source_fields(&config, pattern, args.table.as_deref(), args.source.as_deref())?;
    let fields = &search.fields;
    println!("{:<12} {:<24} {:<32} {:<20} cached", "source", "table", "column", "type");
    for field in fields {
        println!(
            "{:<12} {:<24} {:<32} {:<20} {}",
            field.source,
            field.table,
            field.name,
            field.sql_type,
            if field.cached { "yes" } else { "" }
        );
    }
    let plural = if fields.len() == 1 { "" } else { "s" };
    eprintln!("{} column{plural} match `{pattern}`", fields.len());
    for (source, error) in &search.failed {
        eprintln!("source `{source}` was not searched: {error:#}");
    }
    if let Some((source, _)) = search.failed.first() {
        let more =
            if search.failed.len() > 1 { format!(" and {} more", search.failed.len() - 1) } else { String::new() };
        bail!("source `{source}`{more} could not be searched; the columns above are from the others");
    }
    Ok(())
}
