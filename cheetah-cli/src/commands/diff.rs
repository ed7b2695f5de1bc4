//! `cheetah diff`: every cell that changed between two store versions.

use std::path::Path;

use anyhow::bail;
use arrow::array::Array;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use cheetah_core::{Cache, Diff};

use super::load_config;

#[derive(clap::Args)]
pub struct Args {
    /// The version to compare from: a version number, a snapshot's name or a moment
    #[arg(long, value_name = "VERSION|SNAPSHOT|MOMENT")]
    from: String,
    /// The version to compare to (default: the latest)
    #[arg(long, value_name = "VERSION|SNAPSHOT|MOMENT")]
    to: Option<String>,
    /// First date of the cells compared, inclusive (default: every date)
    #[arg(long)]
    start: Option<chrono::NaiveDate>,
    /// Last date, inclusive
    #[arg(long)]
    end: Option<chrono::NaiveDate>,
    /// Only these fields, comma-separated (default: every cached field)
    #[arg(long, value_delimiter = ',')]
    cols: Option<Vec<String>>,
    /// Print JSON: the versions and every changed cell
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV: table,field,date,symbol,old,new
    #[arg(long)]
    csv: bool,
}

pub fn run(config: Option<&Path>, args: Args) -> anyhow::Result<()> {
    if let (Some(start), Some(end)) = (args.start, args.end) {
        if start > end {
            bail!("--start {start} is after --end {end}");
        }
    }
    let config = load_config(config)?;
    let cache = Cache::builder(config).share(false).open()?;
    let from = cache.as_of(&args.from)?;
    let to = args.to.as_deref().map(|t| cache.as_of(t)).transpose()?;
    let diff = cache.diff(&from, to.as_ref(), (args.start, args.end), args.cols.as_deref())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&to_json(&diff)?)?);
    } else if args.csv {
        println!("table,field,date,symbol,old,new");
        for_each_cell(&diff, |table, field, date, symbol, old, new| {
            println!("{},{},{date},{},{},{}", csv(table), csv(field), csv(symbol), csv(old), csv(new));
        })?;
    } else {
        let mut shown = 0;
        for_each_cell(&diff, |table, field, date, symbol, old, new| {
            if shown < 40 {
                println!("{table}.{field} {date} {symbol}: {} -> {}", or_missing(old), or_missing(new));
            }
            shown += 1;
        })?;
        if shown > 40 {
            println!("... and {} more; --csv or --json lists them all", shown - 40);
        }
    }
    let skipped = if diff.skipped.is_empty() {
        String::new()
    } else {
        format!("; not compared (added or removed between them): {}", diff.skipped.join(", "))
    };
    eprintln!(
        "version {} ({}) to {} ({}): {} changed cells{skipped}",
        diff.from.number,
        diff.from.committed.to_rfc3339(),
        diff.to.number,
        diff.to.committed.to_rfc3339(),
        diff.cells()
    );
    Ok(())
}

/// Calls `visit(table, field, date, symbol, old, new)` for each cell, values as text (empty
/// when missing).
fn for_each_cell(
    diff: &Diff,
    mut visit: impl FnMut(&str, &str, chrono::NaiveDate, &str, &str, &str),
) -> anyhow::Result<()> {
    let options = FormatOptions::default();
    for field in &diff.fields {
        let (old, new) =
            (ArrayFormatter::try_new(&field.old, &options)?, ArrayFormatter::try_new(&field.new, &options)?);
        for i in 0..field.dates.len() {
            let text = |array: &dyn Array, formatter: &ArrayFormatter<'_>| {
                if array.is_valid(i) {
                    formatter.value(i).to_string()
                } else {
                    String::new()
                }
            };
            let (o, n) = (text(field.old.as_ref(), &old), text(field.new.as_ref(), &new));
            visit(&field.table, &field.field, field.dates[i], &field.symbols[i], &o, &n);
        }
    }
    Ok(())
}

fn or_missing(value: &str) -> &str {
    if value.is_empty() {
        "(missing)"
    } else {
        value
    }
}

/// A CSV field, quoted when it must be.
fn csv(value: &str) -> String {
    if value.contains([',', '"', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// The versions and every cell, values as JSON numbers, booleans or text (null when missing).
fn to_json(diff: &Diff) -> anyhow::Result<serde_json::Value> {
    let options = FormatOptions::default();
    let mut cells = Vec::new();
    for field in &diff.fields {
        let (old, new) =
            (ArrayFormatter::try_new(&field.old, &options)?, ArrayFormatter::try_new(&field.new, &options)?);
        for i in 0..field.dates.len() {
            cells.push(serde_json::json!({
                "table": field.table, "field": field.field, "date": field.dates[i], "symbol": field.symbols[i],
                "old": value(field.old.as_ref(), &old, i), "new": value(field.new.as_ref(), &new, i),
            }));
        }
    }
    Ok(serde_json::json!({
        "from": {"version": diff.from.number, "committed": diff.from.committed},
        "to": {"version": diff.to.number, "committed": diff.to.committed},
        "skipped": diff.skipped,
        "cells": cells,
    }))
}

/// Value `i` of `array` as JSON: a number or boolean as such, anything else as its text.
fn value(array: &dyn Array, formatter: &ArrayFormatter<'_>, i: usize) -> serde_json::Value {
    use arrow::datatypes::DataType;
    if array.is_null(i) {
        return serde_json::Value::Null;
    }
    let text = formatter.value(i).to_string();
    match array.data_type() {
        DataType::Boolean => serde_json::Value::Bool(text == "true"),
        t if t.is_integer() => text.parse::<i64>().map_or(serde_json::Value::String(text), Into::into),
        t if t.is_floating() => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(serde_json::Value::String(text), serde_json::Value::Number),
        _ => serde_json::Value::String(text),
    }
}
