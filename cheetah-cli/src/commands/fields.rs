//! `cheetah fields`: search the source's catalog.

use std::path::Path;

use cheetah_core::config::pattern_matches;
use cheetah_core::source::{list_columns, Source};
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
    let source = Source::new(config.source.clone());
    let connection = source.connect()?;
    let columns = list_columns(&connection, None, args.table.as_deref().unwrap_or("%"))?;
    // The cached set, if a store exists; a missing store just means nothing is cached yet.
    let catalog = Cache::builder(config.clone()).open().map(|c| c.catalog()).unwrap_or_default();
    let pattern = args.pattern.as_deref().unwrap_or("*");
    let pattern = if cheetah_core::config::is_glob(pattern) { pattern.to_string() } else { format!("*{pattern}*") };
    println!("{:<24} {:<32} {:<20} cached", "table", "column", "type");
    let mut shown = 0;
    for column in &columns {
        let qualified = format!("{}.{}", column.table, column.name);
        if !(pattern_matches(&pattern, &column.name) || pattern_matches(&pattern, &qualified)) {
            continue;
        }
        let cached = catalog.table(&column.table).and_then(|t| t.field(&column.name)).is_some();
        println!(
            "{:<24} {:<32} {:<20} {}",
            column.table,
            column.name,
            column.type_name,
            if cached { "yes" } else { "" }
        );
        shown += 1;
    }
    eprintln!("{shown} of {} columns match `{pattern}`", columns.len());
    Ok(())
}
