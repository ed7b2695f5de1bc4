//! `cheetah._cheetah.Cache`: an open cache.

use std::path::PathBuf;
use std::sync::OnceLock;

use cheetah_core::chrono::NaiveDate;
use cheetah_core::{Cache as CoreCache, Config, DateLayout, Request, StoreError};
use pyo3::prelude::*;
use pyo3_arrow::PyTable;

use crate::gil::without_gil;

/// An open cache. Build it with `cheetah.open`, which wraps this class.
///
/// A reader opened before the first update has no store to open yet: each call then tries again
/// and answers "empty cache" until an update has created it.
#[pyclass(module = "cheetah._cheetah", frozen)]
pub struct Cache {
    config: Config,
    writer: bool,
    share: bool,
    inner: OnceLock<CoreCache>,
}

impl Cache {
    fn cache(&self) -> Result<&CoreCache, cheetah_core::Error> {
        if let Some(cache) = self.inner.get() {
            return Ok(cache);
        }
        let opened = CoreCache::builder(self.config.clone()).writer(self.writer).share(self.share).open()?;
        Ok(self.inner.get_or_init(|| opened))
    }
}

#[pymethods]
impl Cache {
    /// Opens the cache of the config at `path` (or the default config when `None`).
    #[new]
    #[pyo3(signature = (path=None, writer=false, share=true))]
    fn new(py: Python<'_>, path: Option<PathBuf>, writer: bool, share: bool) -> PyResult<Self> {
        let config = without_gil(py, || Config::discover(path.as_deref()).map_err(cheetah_core::Error::from))?;
        let cache = Self { config, writer, share, inner: OnceLock::new() };
        match py.detach(|| cache.cache().map(|_| ())) {
            Err(cheetah_core::Error::Store(StoreError::Missing { .. })) if !writer => Ok(cache),
            Err(e) => Err(crate::error::to_py(e)),
            Ok(()) => Ok(cache),
        }
    }

    /// Reads fields over `start..=end` (ISO dates). Returns the pyarrow table, the dates
    /// covered (ISO pair or `None`), and what the shared layer served (generation, rows,
    /// whether the columns are views of it) or `None`. With `dictionary_dates`, the `date`
    /// column is dictionary-encoded: a code per row into the dates that have rows.
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
    ) -> PyResult<(Bound<'py, PyAny>, Option<(String, String)>, Option<(u64, usize, bool)>)> {
        let start = parse_date(start)?;
        let end = parse_date(end)?;
        let dates = if dictionary_dates { DateLayout::Dictionary } else { DateLayout::Date32 };
        let mut request = Request::new(start, end, cols).dates(dates);
        if let Some(symbols) = symbols {
            request = request.symbols(symbols);
        }
        if let Some(base) = base {
            request = request.base(base);
        }
        let result = without_gil(py, || self.cache()?.get(&request))?;
        let covered = result.covered.map(|(s, e)| (s.to_string(), e.to_string()));
        let shared = result.shared.map(|s| (s.generation, s.rows, s.views));
        let schema = result.batch.schema();
        let table = PyTable::try_new(vec![result.batch], schema)?.into_pyarrow(py)?;
        Ok((table, covered, shared))
    }

    /// Warnings about the shared layer since the last call (it was missing, foreign or damaged,
    /// and reads fell back to the store).
    fn take_share_warnings(&self) -> Vec<String> {
        self.inner.get().map(CoreCache::take_share_warnings).unwrap_or_default()
    }

    /// Publishes `cols` (every cached field when `None`) over `start..=end` into the shared
    /// layer; returns the report as JSON.
    #[pyo3(signature = (start, end, cols=None))]
    fn publish_json(&self, py: Python<'_>, start: &str, end: &str, cols: Option<Vec<String>>) -> PyResult<String> {
        let (start, end) = (parse_date(start)?, parse_date(end)?);
        let report = without_gil(py, || self.cache()?.publish(start, end, cols.as_deref()))?;
        let segments = |list: &[cheetah_core::SegmentReport]| -> Vec<serde_json::Value> {
            list.iter()
                .map(|s| {
                    serde_json::json!({
                        "fields": s.fields, "first": s.first.map(|d| d.to_string()),
                        "last": s.last.map(|d| d.to_string()), "bytes": s.bytes,
                    })
                })
                .collect()
        };
        let (written, evicted) = (segments(&report.written), segments(&report.evicted));
        Ok(serde_json::json!({
            "generation": report.generation, "written": written, "evicted": evicted,
            "rows": report.rows, "bytes": report.bytes, "total_bytes": report.total_bytes,
        })
        .to_string())
    }

    /// The status of the store as JSON.
    fn status_json(&self, py: Python<'_>) -> PyResult<String> {
        let status = without_gil(py, || self.cache()?.status())?;
        Ok(serde_json::to_string(&status).expect("status serializes"))
    }

    /// Runs one update; needs `writer=True`. Returns the per-table reports as JSON, raising
    /// for the first failed table.
    fn update_json(&self, py: Python<'_>) -> PyResult<String> {
        let reports = without_gil(py, || {
            let report = self.cache()?.update()?;
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
        self.config.path.clone()
    }
}

fn parse_date(text: &str) -> PyResult<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        crate::error::QueryError::new_err(format!(
            "`{text}` is not a date; pass a date, datetime, Timestamp or \"YYYY-MM-DD\""
        ))
    })
}
