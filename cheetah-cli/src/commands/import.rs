//! `cheetah import`: a Parquet or CSV file into a local table, streamed a batch at a time.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema};
use cheetah_core::{Cache, Error, WriteError};

use super::load_config;

/// Rows read and written at a time: one write, one store version each.
const BATCH_ROWS: usize = 1_000_000;

#[derive(clap::Args)]
pub struct Args {
    /// The local table to create or extend
    table: String,
    /// A Parquet (.parquet, .pq) or CSV (.csv, with a header line) file
    file: PathBuf,
    /// The column holding the dates (dates, midnight timestamps or YYYY-MM-DD text)
    #[arg(long, default_value = "date", value_name = "COLUMN")]
    date_col: String,
    /// The column holding the symbols
    #[arg(long, default_value = "symbol", value_name = "COLUMN")]
    symbol_col: String,
}

pub fn run(config: Option<&Path>, args: Args) -> anyhow::Result<()> {
    let config = load_config(config)?;
    let cache = Cache::builder(config).share(false).open()?;
    let csv = match args.file.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("parquet" | "pq") => false,
        Some("csv") => true,
        _ => bail!("{}: import reads Parquet (.parquet, .pq) or CSV (.csv) files", args.file.display()),
    };
    let file = File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let batches: Box<dyn Iterator<Item = Result<RecordBatch, Error>>> = if csv {
        Box::new(csv_batches(file, &args)?)
    } else {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .with_context(|| format!("{} is not a Parquet file", args.file.display()))?
            .with_batch_size(BATCH_ROWS)
            .build()?;
        let path = args.file.display().to_string();
        Box::new(reader.map(move |batch| batch.map_err(|e| unreadable(&path, &e))))
    };
    let report = cache
        .import(&args.table, batches, &args.date_col, &args.symbol_col, |_, rows| eprintln!("{rows} rows read"))
        .map_err(|e| on_line(e, csv))?;
    let mut what = vec![format!("{} rows over {} dates", report.rows, report.dates)];
    if report.created {
        what.push("created".into());
    }
    if !report.added.is_empty() {
        what.push(format!("fields added: {}", report.added.join(", ")));
    }
    if let Some(version) = report.version {
        what.push(format!("store version {version}"));
    }
    println!("{}: {}", report.table, what.join("; "));
    Ok(())
}

/// Batches of a CSV file with a header line, its types inferred from the first lines; the key
/// columns are read as text, so a bad date is reported with its line.
fn csv_batches(file: File, args: &Args) -> anyhow::Result<impl Iterator<Item = Result<RecordBatch, Error>>> {
    let format = arrow::csv::reader::Format::default().with_header(true);
    let (inferred, _) = format
        .infer_schema(&file, Some(10_000))
        .with_context(|| format!("{} does not read as CSV with a header line", args.file.display()))?;
    let fields: Vec<Field> = inferred
        .fields()
        .iter()
        .map(|f| {
            if f.name() == &args.date_col || f.name() == &args.symbol_col {
                Field::new(f.name(), DataType::Utf8, true)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    use std::io::Seek;
    let mut file = file;
    file.rewind()?;
    let reader = arrow::csv::ReaderBuilder::new(Arc::new(Schema::new(fields)))
        .with_format(format)
        .with_batch_size(BATCH_ROWS)
        .build(file)?;
    let path = args.file.display().to_string();
    Ok(reader.map(move |batch| batch.map_err(|e| unreadable(&path, &e))))
}

fn unreadable(path: &str, e: &arrow::error::ArrowError) -> Error {
    WriteError::Frame { message: format!("{path}: {e}") }.into()
}

/// A bad key in a CSV named by its line: the header is line 1.
fn on_line(e: Error, csv: bool) -> anyhow::Error {
    match e {
        Error::Write(WriteError::BadDate { column, row, value }) if csv => {
            anyhow::anyhow!(
                "line {}: `{column}` is {value:?}, not a date (YYYY-MM-DD); nothing of that batch was written",
                row + 2
            )
        }
        Error::Write(WriteError::NullKey { column, row }) if csv => {
            anyhow::anyhow!(
                "line {}: `{column}` is empty: every row needs a date and a symbol; nothing of that batch was written",
                row + 2
            )
        }
        other => other.into(),
    }
}
