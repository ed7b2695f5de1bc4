//! `cheetah get`: read fields over a date range, long or as a panel, to a file or the terminal.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use arrow::array::{Array, ArrayRef, AsArray, Date32Array, Float64Array, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Date32Type, Field, Float64Type, Schema};
use cheetah_core::{Adjust, AsOf, Cache, Panel, Request};

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
    /// Adjust the price fields of tables with [table.adjust]: backward (price × factor) or
    /// forward (÷ each symbol's latest factor on the read's dates)
    #[arg(long, value_name = "HOW")]
    adjust: Option<Adjust>,
    /// Keep only the rows of this universe's members on each date
    #[arg(long)]
    universe: Option<String>,
    /// Read the store as it was: a version number, or a moment (`2026-03-01`,
    /// `2026-03-01T16:00:00Z`; without a zone, UTC)
    #[arg(long, value_name = "VERSION|MOMENT", conflicts_with = "snapshot")]
    known_at: Option<String>,
    /// Read the version this snapshot pins
    #[arg(long, value_name = "NAME")]
    snapshot: Option<String>,
    /// Write one field as a panel: a `date` column, then one column per symbol
    #[arg(long)]
    wide: bool,
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
    if let Some(adjust) = args.adjust {
        request = request.adjust(adjust);
    }
    if let Some(universe) = args.universe {
        request = request.universe(universe);
    }
    if let Some(as_of) = as_of(args.known_at.as_deref(), args.snapshot)? {
        request = request.as_of(as_of);
    }
    let (batch, covered, version, snapshot) = if args.wide {
        if request.cols.len() != 1 {
            bail!("--wide writes one field's panel; pass one field in --cols, not {}", request.cols.len());
        }
        let panel = cache.panel(&request)?;
        (wide_batch(&panel)?, panel.covered, panel.version, panel.snapshot)
    } else {
        let result = cache.get(&request)?;
        (plain_symbols(&result.batch)?, result.covered, result.version, result.snapshot)
    };
    let covered = covered.map_or("no cached dates".to_string(), |(s, e)| format!("dates {s} .. {e}"));
    let named = snapshot.map_or(String::new(), |name| format!("snapshot {name}, "));
    eprintln!("{named}version {} (committed {})", version.number, version.committed.to_rfc3339());
    match &args.out {
        Some(path) => {
            write_file(path, &batch)?;
            eprintln!("wrote {} rows to {} ({covered})", batch.num_rows(), path.display());
        }
        None => {
            const SHOWN: usize = 20;
            // A panel's first symbols only: hundreds of columns do not fit a terminal.
            const SHOWN_COLUMNS: usize = 9;
            let shown: Vec<usize> =
                (0..batch.num_columns().min(if args.wide { SHOWN_COLUMNS } else { usize::MAX })).collect();
            let head = batch.project(&shown)?.slice(0, batch.num_rows().min(SHOWN));
            println!("{}", arrow::util::pretty::pretty_format_batches(&[head])?);
            let symbols = if args.wide { format!(" x {} symbols", batch.num_columns() - 1) } else { String::new() };
            let clipped = batch.num_rows() > SHOWN || shown.len() < batch.num_columns();
            eprintln!(
                "{} rows{symbols} ({covered}){}",
                batch.num_rows(),
                if clipped { "; pass --out to get them all" } else { "" }
            );
        }
    }
    Ok(())
}

/// The version `--known-at` or `--snapshot` names.
pub fn as_of(known_at: Option<&str>, snapshot: Option<String>) -> anyhow::Result<Option<AsOf>> {
    Ok(match (known_at, snapshot) {
        (Some(_), Some(_)) => bail!("{}", cheetah_core::VersionError::Both),
        (Some(text), None) => Some(match text.trim().parse::<u64>() {
            Ok(number) => AsOf::Version(number),
            Err(_) => AsOf::moment(text)?,
        }),
        (None, Some(name)) => Some(AsOf::Snapshot(name)),
        (None, None) => None,
    })
}

/// A panel of one field as a batch: `date`, then a column per symbol.
fn wide_batch(panel: &Panel) -> anyhow::Result<RecordBatch> {
    let (_, matrix) = &panel.fields[0];
    let matrix = matrix.as_primitive::<Float64Type>().values();
    let width = panel.symbols.len();
    let mut fields = vec![Field::new("date", DataType::Date32, false)];
    let dates = panel.dates.iter().map(|&d| Date32Type::from_naive_date(d));
    let mut columns: Vec<ArrayRef> = vec![Arc::new(Date32Array::from_iter_values(dates))];
    for (c, symbol) in panel.symbols.iter().enumerate() {
        fields.push(Field::new(symbol.unwrap_or_default(), DataType::Float64, true));
        let values = (0..panel.dates.len()).map(|r| Some(matrix[r * width + c]).filter(|v| !v.is_nan()));
        columns.push(Arc::new(Float64Array::from_iter(values)));
    }
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(panel.dates.len()));
    Ok(RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)?)
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
