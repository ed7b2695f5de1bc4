//! `cheetah verify`: compares the cache with the source date by date, and with `--repair`
//! re-fetches exactly the dates that differ.

use std::path::Path;

use anyhow::bail;
use cheetah_core::{Cache, TableVerification};

use super::{load_config, stop_on_signals, CachedRange};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    range: CachedRange,
    /// Re-fetch the dates that differ, each in one atomic batch, then compare them again
    #[arg(long)]
    repair: bool,
}

pub fn run(config: Option<&Path>, args: Args) -> anyhow::Result<()> {
    let range = args.range.dates()?;
    let config = load_config(config)?;
    let cache = Cache::builder(config).writer(args.repair).open()?;
    let checks = cache.verify(&args.range.tables, range)?;
    print_checks(&checks);
    let differing: usize = checks.iter().map(|c| c.differences.len()).sum();
    if differing == 0 {
        return Ok(());
    }
    let damaged: Vec<&str> =
        checks.iter().filter(|c| c.local && !c.differences.is_empty()).map(|c| c.table.as_str()).collect();
    if !damaged.is_empty() {
        bail!(
            "local tables {} have chunks that do not read, and no source to repair them from: write those dates again",
            damaged.join(", ")
        );
    }
    if !args.repair {
        bail!("{differing} dates differ from the source; `cheetah verify --repair` re-fetches them");
    }
    let stop = stop_on_signals()?;
    let mut left = 0;
    for check in checks.iter().filter(|c| !c.differences.is_empty()) {
        let dates: Vec<_> = check.differences.iter().map(|d| d.date).collect();
        let repaired = cache.repair(&check.table, &dates, &stop)?;
        println!("{}: re-fetched {repaired} dates", check.table);
        let range = (dates.first().copied(), dates.last().copied());
        for again in cache.verify(std::slice::from_ref(&check.table), range)? {
            let still: Vec<_> = again.differences.iter().filter(|d| dates.contains(&d.date)).collect();
            for difference in &still {
                println!("{}: {} still differs: {}", again.table, difference.date, difference.findings.join("; "));
            }
            left += still.len();
        }
    }
    // Published dates that were re-fetched change in the shared layer too.
    if let Some(generation) = cache.refresh_share()?.generation {
        println!("the shared layer now holds the repaired dates (generation {generation})");
    }
    if left > 0 {
        bail!("{left} dates still differ after the repair; the source may be changing under it: run verify again");
    }
    println!("repaired {differing} dates; the cache matches the source");
    Ok(())
}

fn print_checks(checks: &[TableVerification]) {
    for check in checks {
        let Some((from, to)) = check.range else {
            println!("{}: nothing cached to compare", check.table);
            continue;
        };
        let verdict = match (check.local, check.differences.len()) {
            (false, 0) => "all match".to_string(),
            (false, n) => format!("{n} differ"),
            (true, 0) => "a local table, with no source to compare: every chunk reads".to_string(),
            (true, n) => format!("a local table, with no source to compare: {n} dates have chunks that do not read"),
        };
        println!("{}: {} dates from {from} to {to}, {} fields: {verdict}", check.table, check.dates, check.fields);
        for difference in &check.differences {
            for finding in &difference.findings {
                println!("  {} {finding}", difference.date);
            }
        }
    }
}
