//! `cheetah._cheetah.Cache`: an open cache.

use std::path::PathBuf;

use cheetah_core::chrono::NaiveDate;
use cheetah_core::{Cache as CoreCache, Config, DateLayout, Request};
use pyo3::prelude::*;
use pyo3_arrow::PyTable;

use crate::gil::without_gil;

/// An open cache. Build it with `cheetah.open`, which wraps this class.
#[pyclass(module = "cheetah._cheetah", frozen)]
pub struct Cache {
    inner: CoreCache,
}

#[pymethods]
impl Cache {
    /// Opens the cache of the config at `path` (or the default config when `None`).
    #[new]
    #[pyo3(signature = (path=None, writer=false))]
    fn new(py: Python<'_>, path: Option<PathBuf>, writer: bool) -> PyResult<Self> {
        let inner = without_gil(py, || {
            let config = Config::discover(path.as_deref())?;
            CoreCache::builder(config).writer(writer).open()
        })?;
        Ok(Self { inner })
    }

    /// Reads fields over `start..=end` (ISO dates). Returns the pyarrow table and the dates
    /// covered (ISO pair or `None`). With `dictionary_dates`, the `date` column is
    /// dictionary-encoded: a code per row into the dates that have rows.
    #[pyo3(signature = (start, end, cols, symbols=None, base=None, dictionary_dates=false))]
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn get<'py>(
        &self,
        py: Python<'py>,
        start: &str,
        end: &str,
        cols: Vec<String>,
        symbols: Option<Vec<String>>,
        base: Option<String>,
        dictionary_dates: bool,
    ) -> PyResult<(Bound<'py, PyAny>, Option<(String, String)>)> {
        let start = parse_date(start)?;
        let end = parse_date(end)?;
        let dates = if dictionary_dates { DateLayout::Dictionary } else { DateLayout::Date32 };
        let request = Request { start, end, fields: cols, symbols, base, dates };
        let result = without_gil(py, || self.inner.get(&request))?;
        let covered = result.covered.map(|(s, e)| (s.to_string(), e.to_string()));
        let schema = result.batch.schema();
        let table = PyTable::try_new(vec![result.batch], schema)?.into_pyarrow(py)?;
        Ok((table, covered))
    }

    /// The status of the store as JSON.
    fn status_json(&self, py: Python<'_>) -> PyResult<String> {
        let status = without_gil(py, || self.inner.status())?;
        Ok(serde_json::to_string(&status).expect("status serializes"))
    }

    /// Runs one update; needs `writer=True`. Returns the per-table reports as JSON, raising
    /// for the first failed table.
    fn update_json(&self, py: Python<'_>) -> PyResult<String> {
        let reports = without_gil(py, || {
            let report = self.inner.update(false)?;
            report.into_result().map_err(cheetah_core::Error::from)
        })?;
        let reports: Vec<serde_json::Value> = reports
            .iter()
            .map(|r| {
                serde_json::json!({
                    "table": r.table, "dates": r.dates, "rows": r.rows,
                    "dates_deleted": r.dates_deleted, "watermark": r.watermark.map(|w| w.to_string()),
                    "seconds": r.seconds,
                })
            })
            .collect();
        Ok(serde_json::Value::Array(reports).to_string())
    }

    /// The config file's path.
    #[getter]
    fn config_path(&self) -> PathBuf {
        self.inner.config().path.clone()
    }
}

fn parse_date(text: &str) -> PyResult<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        crate::error::QueryError::new_err(format!(
            "`{text}` is not a date; pass a date, datetime, Timestamp or \"YYYY-MM-DD\""
        ))
    })
}
