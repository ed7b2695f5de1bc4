//! `cheetah quality`: whether the source itself looks right, from the cached chunks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use cheetah_core::{Cache, Check, QualityReport};

use super::{load_config, CachedRange};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    range: CachedRange,
    /// Print the report as JSON: each table's flag counts and every flagged date
    #[arg(long)]
    json: bool,
    /// Also write the report as one self-contained HTML page
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

/// Flagged dates printed per table; `--json` and `--html` list more.
const PRINTED: usize = 40;

pub fn run(config: Option<&Path>, args: Args) -> anyhow::Result<()> {
    let range = args.range.dates()?;
    let config = load_config(config)?;
    let cache = Cache::builder(config).share(false).open()?;
    let started = std::time::Instant::now();
    let report = cache.quality(&args.range.tables, range)?;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(path) = &args.html {
        let title = format!("Cheetah data quality: {}", cache.config().path.display());
        std::fs::write(path, report.to_html(&title))
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json(&report, seconds))?);
    } else {
        print_text(&report, seconds);
    }
    Ok(())
}

fn counts(report: &QualityReport, table: usize) -> BTreeMap<&'static str, usize> {
    let mut counts: BTreeMap<&'static str, usize> = Check::ALL.iter().map(|c| (c.name(), 0)).collect();
    for m in report.metrics.iter().filter(|m| m.table == table && m.flag.is_some()) {
        *counts.entry(m.check.name()).or_default() += 1;
    }
    counts
}

fn json(report: &QualityReport, seconds: f64) -> serde_json::Value {
    let tables: Vec<serde_json::Value> = report
        .tables
        .iter()
        .enumerate()
        .map(|(t, table)| {
            serde_json::json!({
                "name": table.name,
                "kind": table.kind,
                "fields": table.fields,
                "flags": counts(report, t),
            })
        })
        .collect();
    serde_json::json!({
        "range": report.range,
        "settings": report.settings,
        "seconds": seconds,
        "tables": tables,
        "flags": report.flags().collect::<Vec<_>>(),
    })
}

fn print_text(report: &QualityReport, seconds: f64) {
    let flagged = report.metrics.iter().filter(|m| m.flag.is_some()).count();
    match report.range {
        Some((first, last)) => println!(
            "{first} .. {last}: {} tables, {} metrics, {flagged} flagged, in {seconds:.2} s",
            report.tables.len(),
            report.metrics.len()
        ),
        None => println!("nothing cached in the range: no table has dates there"),
    }
    let flags: Vec<_> = report.flags().collect();
    for (t, table) in report.tables.iter().enumerate() {
        let counts = counts(report, t);
        let summary: Vec<String> = counts.iter().filter(|(_, n)| **n > 0).map(|(c, n)| format!("{c} {n}")).collect();
        let summary = if summary.is_empty() { "nothing flagged".to_string() } else { summary.join(", ") };
        println!("\n{} ({:?}, {} fields): {summary}", table.name, table.kind, table.fields.len());
        let mine: Vec<_> = flags.iter().filter(|f| f.table == table.name).collect();
        for flag in mine.iter().take(PRINTED) {
            println!(
                "  {} {:<9} {:<20} {}",
                flag.date,
                flag.check.name(),
                flag.field.as_deref().unwrap_or("-"),
                flag.why
            );
        }
        if mine.len() > PRINTED {
            println!("  ... and {} more: --json or --html lists them all", mine.len() - PRINTED);
        }
    }
}
