//! The baseline for the backfill figure: a bare arrow-odbc read of a query's rows, with nothing
//! done to them.
//!
//!     odbc-read [--max-text-size BYTES] "Driver={PostgreSQL Unicode};Server=…" "SELECT … ORDER BY trade_date"
//!
//! Prints one JSON line: rows, batches and seconds. Batches are bounded as Cheetah's updater
//! bounds them (50,000 rows or 16 MiB), text buffers hold `--max-text-size` bytes (Cheetah's
//! default, 4,096, unless given), and double columns are read as Float64 (psqlODBC reports them
//! as FLOAT(17), which arrow-odbc would narrow to Float32).

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use arrow::datatypes::{DataType, Field, Schema};
use arrow_odbc::odbc_api::{ConnectionOptions, Environment};
use arrow_odbc::{arrow_schema_from, OdbcReaderBuilder};

fn main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut max_text_size = 4096;
    if args.first().is_some_and(|a| a == "--max-text-size") && args.len() > 1 {
        max_text_size = args[1].parse().context("--max-text-size takes a number of bytes")?;
        args.drain(..2);
    }
    let [connection_string, sql] = args.as_slice() else {
        bail!("usage: odbc-read [--max-text-size BYTES] CONNECTION_STRING SQL");
    };
    static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();
    let started = Instant::now();
    let environment = ENVIRONMENT.get_or_init(|| Environment::new().expect("an ODBC environment"));
    let connection = environment.connect_with_connection_string(connection_string, ConnectionOptions::default())?;
    let mut cursor =
        connection.into_cursor(sql, (), None).map_err(|e| e.error)?.context("the query returned no result set")?;
    let inferred = arrow_schema_from(&mut cursor, None, false)?;
    let widened: Vec<Field> = inferred
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Float32 => f.as_ref().clone().with_data_type(DataType::Float64),
            _ => f.as_ref().clone(),
        })
        .collect();
    let reader = OdbcReaderBuilder::new()
        .with_schema(Arc::new(Schema::new(widened)))
        .with_max_num_rows_per_batch(50_000)
        .with_max_bytes_per_batch(16 << 20)
        .with_max_text_size(max_text_size)
        .build(cursor)?
        .into_concurrent()?;
    let (mut rows, mut batches) = (0usize, 0usize);
    for batch in reader {
        rows += batch?.num_rows();
        batches += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("{{\"rows\": {rows}, \"batches\": {batches}, \"seconds\": {seconds:.3}}}");
    Ok(())
}
