//! The shared layer's upkeep: what one `serve` round writes to keep a published layer current.
//!
//!     layer-upkeep WORK_DIR TMPFS_DIR [YEARS]
//!
//! Writes a local table of 48 fields (40 doubles and 8 integers with nulls) over `YEARS` (10)
//! years of weekdays and 1,000 symbols, with listings, delistings and suspended days, into a
//! store in `WORK_DIR`. Then, for layers of 6, 12 and all 48 fields on `TMPFS_DIR`, it times a
//! whole publish and three refreshes (what a `serve` round runs after its update): after one new
//! date, after a lookback that recommits the last five dates unchanged, and after a correction
//! of 1% of one date three years back. Prints one JSON line per layer.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use arrow::array::{ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use cheetah_core::{Cache, Config, PublishReport};
use chrono::{Datelike, NaiveDate, Weekday};

const SYMBOLS: u32 = 1000;
const FIELDS: usize = 48;
const INTEGERS: usize = 8;
const TABLE: &str = "factors";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (work, tmpfs, years) = match args.as_slice() {
        [work, tmpfs] => (PathBuf::from(work), PathBuf::from(tmpfs), 10),
        [work, tmpfs, years] => (PathBuf::from(work), PathBuf::from(tmpfs), years.parse().context("YEARS")?),
        _ => bail!("usage: layer-upkeep WORK_DIR TMPFS_DIR [YEARS]"),
    };
    let first = NaiveDate::from_ymd_opt(2015, 1, 1).expect("a date");
    let dates: Vec<NaiveDate> = first
        .iter_days()
        .take_while(|d| d.year() < 2015 + years)
        .filter(|d| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
        .collect();
    let next = dates.last().expect("dates").succ_opt().expect("a date");
    std::fs::create_dir_all(&work)?;
    let _ = std::fs::remove_dir_all(work.join("store"));
    let writer = Cache::builder(config(&work, &tmpfs, 0)?).writer(true).open()?;
    let started = Instant::now();
    for year in dates.chunk_by(|a, b| a.year() == b.year()) {
        writer.write(TABLE, vec![frame(year, 0.0)], "date", "symbol")?;
    }
    eprintln!("wrote {} dates of {FIELDS} fields in {:.1} s", dates.len(), started.elapsed().as_secs_f64());

    let all: Vec<String> = (0..FIELDS).map(name).collect();
    let mut rounds = Vec::new();
    for fields in [6, 12, FIELDS] {
        let cache = Cache::builder(config(&work, &tmpfs, fields)?).open()?;
        let layer = cache.config().share.as_ref().expect("[share]").path.clone();
        let _ = std::fs::remove_dir_all(&layer);
        let cols: Vec<String> = all[..fields].iter().map(|c| format!("{TABLE}.{c}")).collect();
        let started = Instant::now();
        let whole = cache.publish(first, next + chrono::Days::new(365), Some(&cols))?;
        let whole_seconds = started.elapsed().as_secs_f64();
        rounds.push((fields, cache, layer, whole, whole_seconds));
    }
    // One new date, then the rounds of each layer.
    writer.write(TABLE, vec![frame(&[next], 0.0)], "date", "symbol")?;
    let appended = refresh_all(&mut rounds)?;
    // The lookback: the last five dates recommitted as they are.
    let last5: Vec<NaiveDate> = dates[dates.len() - 4..].iter().copied().chain([next]).collect();
    writer.write(TABLE, vec![frame(&last5, 0.0)], "date", "symbol")?;
    let lookback = refresh_all(&mut rounds)?;
    // A correction of 1% of one date's values, three years back.
    let old = dates[dates.len().saturating_sub(3 * 261)];
    writer.write(TABLE, vec![frame(&[old], 0.01)], "date", "symbol")?;
    let corrected = refresh_all(&mut rounds)?;

    for (i, (fields, _, layer, whole, whole_seconds)) in rounds.iter().enumerate() {
        let (a, l, c) = (&appended[i], &lookback[i], &corrected[i]);
        println!(
            "{}",
            serde_json::json!({
                "fields": fields,
                "dates": dates.len() + 1,
                "rows": whole.rows,
                "layer_bytes": a.0.total_bytes,
                "whole_bytes": whole.bytes,
                "whole_seconds": whole_seconds,
                "append_bytes": a.0.bytes,
                "append_blocks": a.0.blocks,
                "append_seconds": a.1,
                "append_peak": a.2,
                "lookback_bytes": l.0.bytes,
                "lookback_seconds": l.1,
                "correct_bytes": c.0.bytes,
                "correct_blocks": c.0.blocks,
                "correct_seconds": c.1,
                "layer": layer.display().to_string(),
            })
        );
    }
    Ok(())
}

/// Refreshes every layer; per layer, the report, its seconds, and the tmpfs peak as a multiple
/// of the layer after: everything a round writes is in place before anything is unlinked.
fn refresh_all(rounds: &mut [(usize, Cache, PathBuf, PublishReport, f64)]) -> Result<Vec<(PublishReport, f64, f64)>> {
    let mut out = Vec::new();
    for (_, cache, layer, ..) in rounds.iter() {
        let before = dir_bytes(layer);
        let started = Instant::now();
        let report = cache.refresh_share()?;
        let seconds = started.elapsed().as_secs_f64();
        let peak = (before + report.bytes) as f64 / report.total_bytes.max(1) as f64;
        out.push((report, seconds, peak));
    }
    Ok(out)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).into_iter().flatten().flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()
}

fn name(i: usize) -> String {
    if i < INTEGERS {
        format!("i{i:02}")
    } else {
        format!("f{i:02}")
    }
}

/// A config whose [share] is `tmpfs/upkeep-{fields}`.
fn config(work: &Path, tmpfs: &Path, fields: usize) -> Result<Config> {
    let text = format!(
        r#"
[store]
path = "{work}/store"
[source]
odbc = "Driver={{SQLite3}};Database={work}/none.db;NoCreat=1;"
[share]
path = "{tmpfs}/upkeep-{fields}"
budget = "8GiB"
[[table]]
name = "unused"
date = "d"
symbol = "s"
fields = ["*"]
start = "2015-01-01"
"#,
        work = work.display(),
        tmpfs = tmpfs.display(),
    );
    Ok(Config::parse(&work.join("upkeep.toml"), &text)?)
}

/// A cheap deterministic hash of a few numbers.
fn mix(parts: &[u64]) -> u64 {
    parts.iter().fold(0x9e37_79b9_7f4a_7c15, |h, &p| (h ^ p).wrapping_mul(0x0100_0000_01b3).rotate_left(23))
}

/// The rows of `dates`: symbol `s` is listed from a date in the first three years for a third
/// of them, delisted in the last five for a tenth, and suspended 1% of its days (its integers
/// null then). Values move a `shift` share of cells when `shift` is not zero.
fn frame(dates: &[NaiveDate], shift: f64) -> RecordBatch {
    let epoch = NaiveDate::from_ymd_opt(2015, 1, 1).expect("a date");
    let (mut day, mut symbol) = (Vec::new(), Vec::new());
    for d in dates {
        let n = (*d - epoch).num_days() as u64;
        for s in 0..SYMBOLS {
            let listed = if s % 3 == 0 { mix(&[u64::from(s), 1]) % 780 } else { 0 };
            let delisted = if s % 10 == 7 { 1300 + mix(&[u64::from(s), 2]) % 1800 } else { u64::MAX };
            if (listed..delisted).contains(&n) {
                day.push(n as i32 + 16436);
                symbol.push(s);
            }
        }
    }
    let suspended = |i: usize| mix(&[u64::from(symbol[i]), day[i] as u64, 3]) % 100 == 0;
    let moved = |i: usize, f: usize| shift > 0.0 && mix(&[u64::from(symbol[i]), f as u64, 4]) % 100 == 0;
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(day.clone())),
        Arc::new(StringArray::from_iter_values(symbol.iter().map(|s| format!("S{s:04}")))),
    ];
    let mut fields = vec![Field::new("date", DataType::Date32, false), Field::new("symbol", DataType::Utf8, false)];
    for f in 0..FIELDS {
        let value = |i: usize| {
            let base = (mix(&[u64::from(symbol[i]), day[i] as u64, f as u64]) % 100_000) as f64 / 100.0;
            if moved(i, f) {
                base + shift
            } else {
                base
            }
        };
        if f < INTEGERS {
            columns.push(Arc::new(Int64Array::from_iter(
                (0..day.len()).map(|i| (!suspended(i)).then(|| (value(i) * 100.0) as i64)),
            )));
            fields.push(Field::new(name(f), DataType::Int64, true));
        } else {
            let missing = |i: usize| mix(&[u64::from(symbol[i]), day[i] as u64, f as u64, 5]) % 50 == 0;
            columns.push(Arc::new(Float64Array::from_iter((0..day.len()).map(|i| (!missing(i)).then(|| value(i))))));
            fields.push(Field::new(name(f), DataType::Float64, true));
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("columns of one length")
}
