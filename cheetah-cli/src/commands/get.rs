//! `cheetah get`: read fields over a date range to a file or the terminal.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema};
use cheetah_core::{Cache, Request};

use super::{load_config, DateRange};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    range: DateRange,
    /// Fields, comma-separated: `close,pe` or `valuation.pe`
    #[arg(long, value_delimiter = ',', required = true)]
    cols: Vec<String>,
    /// Keep only these symbols, comma-separated
    #[arg(long, value_delimiter = ',')]
    symbols: Option<Vec<String>>,
    /// Use this table's (date, symbol) keys as the rows
    #[arg(long)]
    base: Option<String>,
    /// Write to a .parquet or .csv file instead of printing
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(config: Option<&Path>, args: Args) -> anyhow::Result<()> {
    let config = load_config(config)?;
    let cache = Cache::builder(config).open()?;
    let mut request = Request::new(args.range.start, args.range.end, args.cols);
    if let Some(symbols) = args.symbols {
        request = request.symbols(symbols);
    }
    if let Some(base) = args.base {
        request = request.base(base);
    }
    let result = cache.get(&request)?;
    let batch = plain_symbols(&result.batch)?;
    let covered = result.covered.map_or("no cached dates".to_string(), |(s, e)| format!("dates {s} .. {e}"));
    match &args.out {
        Some(path) => {
            write_file(path, &batch)?;
            eprintln!("wrote {} rows to {} ({covered})", batch.num_rows(), path.display());
        }
        None => {
            const SHOWN: usize = 20;
            let head = batch.slice(0, batch.num_rows().min(SHOWN));
            println!("{}", arrow::util::pretty::pretty_format_batches(&[head])?);
            eprintln!(
                "{} rows ({covered}){}",
                batch.num_rows(),
                if batch.num_rows() > SHOWN { "; pass --out to get them all" } else { "" }
            );
        }
    }
    Ok(())
}

/// The symbol column as plain text, which every reader of CSV and Parquet understands.
fn plain_symbols(batch: &RecordBatch) -> anyhow::Result<RecordBatch> {
    let schema = batch.schema();
    let mut fields: Vec<Field> = Vec::with_capacity(schema.fields().len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if matches!(field.data_type(), DataType::Dictionary(..)) {
            columns.push(cast(column, &DataType::Utf8)?);
            fields.push(Field::new(field.name(), DataType::Utf8, field.is_nullable()));
        } else {
            columns.push(column.clone());
            fields.push(field.as_ref().clone());
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

fn write_file(path: &Path, batch: &RecordBatch) -> anyhow::Result<()> {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    match extension.as_str() {
        "parquet" => {
            let properties = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                .build();
            let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(properties))?;
            writer.write(batch)?;
            writer.close()?;
        }
        "csv" => {
            let mut writer = arrow::csv::Writer::new(file);
            writer.write(batch)?;
        }
        other => bail!("--out must end in .parquet or .csv, not `.{other}`"),
    }
    Ok(())
}
