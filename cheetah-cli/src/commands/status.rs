//! `cheetah status`: what the store holds.

use std::path::Path;

use cheetah_core::Cache;

use super::{human_bytes, load_config};

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
}

pub fn run(config: Option<&Path>, args: Args) -> anyhow::Result<()> {
    let config = load_config(config)?;
    let cache = Cache::builder(config).open()?;
    let status = cache.status()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    println!(
        "store {} (format {}): {} symbols, {} on disk",
        status.store,
        status.format_version,
        status.symbols,
        human_bytes(status.disk_bytes)
    );
    let show = |d: Option<chrono::NaiveDate>| d.map_or("-".to_string(), |d| d.to_string());
    if let Some(v) = &status.versions {
        let moment = |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let keep = v.keep_versions.as_ref().map_or("all kept".to_string(), |k| format!("keep_versions {k}"));
        println!(
            "versions {} .. {} ({} kept, {keep}): readable from {}, latest {}; history {}; {} snapshots{}",
            v.oldest,
            v.latest,
            v.kept,
            moment(&v.oldest_committed),
            moment(&v.latest_committed),
            human_bytes(v.history_bytes),
            v.snapshots.len(),
            if v.snapshots.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    v.snapshots.iter().map(|s| format!("{} at {}", s.name, s.version)).collect::<Vec<_>>().join(", ")
                )
            }
        );
    }
    if let Some(share) = &status.share {
        let state = match (share.usable, share.generation) {
            (true, Some(g)) => format!("generation {g}, published {}", share.published.as_deref().unwrap_or("-")),
            _ => "nothing usable published: `cheetah warm` publishes".to_string(),
        };
        println!(
            "shared layer {}: {} of {} budget; {state}",
            share.path,
            human_bytes(share.bytes),
            human_bytes(share.budget)
        );
        for s in &share.segments {
            println!(
                "  {} .. {} ({} .. {} asked), {} rows, {}, last used {}: {}",
                show(s.first),
                show(s.last),
                s.start,
                s.end,
                s.rows,
                human_bytes(s.bytes),
                s.last_used.as_deref().unwrap_or("never"),
                s.fields.join(", ")
            );
        }
    }
    for t in &status.tables {
        println!(
            "\n{} ({:?}, {}): {} .. {}, {} dates, {} rows, watermark {}, last update {}",
            t.name,
            t.kind,
            match (&t.source, t.local) {
                (_, true) => "local: written by researchers".to_string(),
                (Some(source), false) => format!("source {source}"),
                (None, false) => "source - (no longer configured)".to_string(),
            },
            show(t.first),
            show(t.last),
            t.dates,
            t.rows,
            show(t.watermark),
            t.last_update.as_deref().unwrap_or("never"),
        );
        println!(
            "  {:<24} {:<14} {:<10} {:<10} {:>7} {:>12} {:>10}",
            "field", "type", "first", "last", "dates", "rows", "bytes"
        );
        for f in &t.fields {
            println!(
                "  {:<24} {:<14} {:<10} {:<10} {:>7} {:>12} {:>10}{}",
                f.name,
                f.dtype,
                show(f.first),
                show(f.last),
                f.dates,
                f.rows,
                human_bytes(f.bytes),
                if f.complete { "" } else { "  (backfilling)" }
            );
        }
    }
    Ok(())
}
