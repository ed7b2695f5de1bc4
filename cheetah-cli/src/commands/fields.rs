//! `cheetah fields`: search the source's catalog.

use std::path::Path;

use cheetah_core::Cache;

use super::load_config;

#[derive(clap::Args)]
pub struct Args {
    /// A name or glob matched against `column` and `table.column`, e.g. `pe*` or `valuation.*`
    pattern: Option<String>,
    /// Only this table
    #[arg(long)]
    table: Option<String>,
}

pub fn run(config: Option<&Path>, args: Args) -> anyhow::Result<()> {
    let config = load_config(config)?;
    let pattern = args.pattern.as_deref().unwrap_or("*");
    let fields = Cache::source_fields(&config, pattern, args.table.as_deref())?;
    println!("{:<24} {:<32} {:<20} cached", "table", "column", "type");
    for field in &fields {
        println!(
            "{:<24} {:<32} {:<20} {}",
            field.table,
            field.name,
            field.sql_type,
            if field.cached { "yes" } else { "" }
        );
    }
    let plural = if fields.len() == 1 { "" } else { "s" };
    eprintln!("{} column{plural} match `{pattern}`", fields.len());
    Ok(())
}
