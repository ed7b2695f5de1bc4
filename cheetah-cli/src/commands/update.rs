//! `cheetah update`: one update of every table, or of the tables of some sources.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::bail;
use cheetah_core::Cache;

use super::{load_config, stop_on_signals};
use crate::progress::terminal_bars;

#[derive(clap::Args)]
pub struct Args {
    /// Never draw a progress bar
    #[arg(long)]
    no_progress: bool,
    /// Only the tables and universes of this source (repeat for more); every source by default
    #[arg(long, value_name = "NAME")]
    source: Vec<String>,
}

pub fn run(config: Option<&Path>, args: Args) -> anyhow::Result<()> {
    let config = load_config(config)?;
    let cache = Cache::builder(config).writer(true).open()?;
    let progress = (!args.no_progress && std::io::stderr().is_terminal()).then(terminal_bars);
    let sources = (!args.source.is_empty()).then(|| args.source.into_iter().collect());
    let report = cache.update_with(&stop_on_signals()?, progress, sources)?;
    for (table, outcome) in &report.tables {
        match outcome {
            Ok(r) => println!(
                "{table}: {} dates, {} rows written in {:.1} s ({:.0} rows/s){}{}; watermark {}",
                r.dates,
                r.rows,
                r.seconds,
                r.rows as f64 / r.seconds.max(1e-9),
                if r.dates_deleted > 0 {
                    format!(", {} vanished dates deleted", r.dates_deleted)
                } else {
                    String::new()
                },
                if r.backfilled_dates > 0 {
                    format!(", added fields backfilled over {} dates", r.backfilled_dates)
                } else {
                    String::new()
                },
                r.watermark.map_or("none".to_string(), |w| w.to_string()),
            ),
            Err(e) => println!("{table}: FAILED: {e}"),
        }
    }
    for (universe, outcome) in &report.universes {
        match outcome {
            Ok(r) => println!(
                "universe {universe}: {} intervals of {} symbols read in {:.2} s",
                r.intervals, r.symbols, r.seconds
            ),
            Err(e) => println!("universe {universe}: FAILED: {e}"),
        }
    }
    let failed: Vec<&str> = report.failures().map(|(t, _)| t).collect();
    if !failed.is_empty() {
        let first = report.failures().next().map(|(_, e)| e.to_string()).unwrap_or_default();
        let of = report.tables.len() + report.universes.len();
        bail!("{} of {of} tables and universes failed ({}): {first}", failed.len(), failed.join(", "));
    }
    Ok(())
}
