//! `cheetah._cheetah.Cache`: an open cache.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use cheetah_core::arrow::array::RecordBatch;
use cheetah_core::arrow::datatypes::{DataType, Field, Schema};
use cheetah_core::chrono::NaiveDate;
use cheetah_core::{date_of, Adjust, Cache as CoreCache, Config, DateLayout, Request, StoreError};
use pyo3::prelude::*;
use pyo3_arrow::PyTable;

use crate::gil::without_gil;
use crate::interrupt::{abandonable, stoppable};

/// An open cache. Build it with `cheetah.open`, which wraps this class.
///
/// A reader opened before the first update has no store to open yet: each call then tries again
/// and answers "empty cache" until an update has created it.
#[pyclass(module = "cheetah._cheetah", frozen)]
pub struct Cache {
    config: Config,
    writer: bool,
    share: bool,
    inner: OnceLock<Arc<CoreCache>>,
}

impl Cache {
    fn cache(&self) -> Result<&Arc<CoreCache>, cheetah_core::Error> {
        if let Some(cache) = self.inner.get() {
            return Ok(cache);
        }
        let opened = CoreCache::builder(self.config.clone()).writer(self.writer).share(self.share).open()?;
        Ok(self.inner.get_or_init(|| Arc::new(opened)))
    }

    /// The open cache, for work that runs on a thread of its own.
    fn shared(&self, py: Python<'_>) -> PyResult<Arc<CoreCache>> {
        without_gil(py, || self.cache().cloned())
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
    #[pyo3(signature = (start, end, cols, symbols=None, base=None, adjust=None, universe=None, dictionary_dates=false))]
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn get<'py>(
        &self,
        py: Python<'py>,
        start: &str,
        end: &str,
        cols: Vec<String>,
        symbols: Option<Vec<String>>,
        base: Option<String>,
        adjust: Option<&str>,
        universe: Option<String>,
        dictionary_dates: bool,
    ) -> PyResult<(Bound<'py, PyAny>, Option<(String, String)>, Option<(u64, usize, bool)>)> {
        let dates = if dictionary_dates { DateLayout::Dictionary } else { DateLayout::Date32 };
        let request = request(start, end, cols, symbols, base, adjust, universe)?.dates(dates);
        let cache = self.shared(py)?;
        let result = abandonable(py, move || cache.get(&request))?;
        let covered = result.covered.map(|(s, e)| (s.to_string(), e.to_string()));
        let shared = result.shared.map(|s| (s.generation, s.rows, s.views));
        let schema = result.batch.schema();
        let table = PyTable::try_new(vec![result.batch], schema)?.into_pyarrow(py)?;
        Ok((table, covered, shared))
    }

    /// Reads fields over `start..=end` wide. Returns the dates with rows (days since
    /// 1970-01-01), the symbols with rows (sorted), a pyarrow table of one float64 column per
    /// field holding its date × symbol matrix in row-major order, and the dates covered.
    #[pyo3(signature = (start, end, cols, symbols=None, base=None, adjust=None, universe=None))]
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn panel<'py>(
        &self,
        py: Python<'py>,
        start: &str,
        end: &str,
        cols: Vec<String>,
        symbols: Option<Vec<String>>,
        base: Option<String>,
        adjust: Option<&str>,
        universe: Option<String>,
    ) -> PyResult<(Vec<i32>, Vec<String>, Bound<'py, PyAny>, Option<(String, String)>)> {
        let request = request(start, end, cols, symbols, base, adjust, universe)?;
        let cache = self.shared(py)?;
        let panel = abandonable(py, move || cache.panel(&request))?;
        let covered = panel.covered.map(|(s, e)| (s.to_string(), e.to_string()));
        let symbols = panel.symbols.iter().map(|s| s.unwrap_or_default().to_string()).collect();
        let fields: Vec<Field> =
            panel.fields.iter().map(|(name, _)| Field::new(name, DataType::Float64, false)).collect();
        let schema = Arc::new(Schema::new(fields));
        let columns = panel.fields.into_iter().map(|(_, m)| m).collect();
        let batch = RecordBatch::try_new(schema.clone(), columns).expect("matrices match the schema");
        let table = PyTable::try_new(vec![batch], schema)?.into_pyarrow(py)?;
        Ok((panel.dates, symbols, table, covered))
    }

    /// The configured universes as JSON: each with its intervals' count, symbols, first start,
    /// last member day (`None` while one is open) and when it was read, or `None` before then.
    fn universes_json(&self, py: Python<'_>) -> PyResult<String> {
        let universes = without_gil(py, || self.cache()?.universes())?;
        let listed: Vec<serde_json::Value> = universes
            .iter()
            .map(|(name, u)| {
                let read = u.as_ref().map(|u| {
                    let span = u.span();
                    serde_json::json!({
                        "intervals": u.intervals.len(), "symbols": u.symbols(),
                        "first": span.map(|(f, _)| date_of(f).to_string()),
                        "last": span.and_then(|(_, l)| l).map(|l| date_of(l).to_string()),
                        "updated": u.updated,
                    })
                });
                serde_json::json!({"name": name, "read": read})
            })
            .collect();
        Ok(serde_json::Value::Array(listed).to_string())
    }

    /// The members of universe `name` on `date`, sorted.
    fn members(&self, py: Python<'_>, name: &str, date: &str) -> PyResult<Vec<String>> {
        let date = parse_date(date)?;
        without_gil(py, || self.cache()?.members(name, date))
    }

    /// Warnings about the shared layer since the last call (it was missing, foreign or damaged,
    /// and reads fell back to the store).
    fn take_share_warnings(&self) -> Vec<String> {
        self.inner.get().map(|cache| cache.take_share_warnings()).unwrap_or_default()
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

    /// The data-quality report of `tables` (every table when empty) over `start..=end`: a
    /// pyarrow table of its metrics, and its thresholds as JSON.
    #[pyo3(signature = (start=None, end=None, tables=Vec::new()))]
    fn quality<'py>(
        &self,
        py: Python<'py>,
        start: Option<&str>,
        end: Option<&str>,
        tables: Vec<String>,
    ) -> PyResult<(Bound<'py, PyAny>, String)> {
        let range = (start.map(parse_date).transpose()?, end.map(parse_date).transpose()?);
        let cache = self.shared(py)?;
        let report = abandonable(py, move || cache.quality(&tables, range))?;
        let batch = report.to_arrow();
        let schema = batch.schema();
        let table = PyTable::try_new(vec![batch], schema)?.into_pyarrow(py)?;
        Ok((table, serde_json::to_string(&report.settings).expect("settings serialize")))
    }

    /// The status of the store as JSON.
    fn status_json(&self, py: Python<'_>) -> PyResult<String> {
        let status = without_gil(py, || self.cache()?.status())?;
        Ok(serde_json::to_string(&status).expect("status serializes"))
    }

    /// Runs one update; needs `writer=True`. Returns the per-table reports, then the
    /// per-universe ones, as JSON, raising for the first failure. `progress` is called on this
    /// thread with each progress event as a dict. Ctrl-C (or an exception from `progress`)
    /// stops the update between dates and is raised once it has stopped.
    #[pyo3(signature = (progress=None))]
    fn update_json(&self, py: Python<'_>, progress: Option<Bound<'_, PyAny>>) -> PyResult<String> {
        let cache = self.shared(py)?;
        let (reports, universes) = stoppable(py, progress, move |stop, progress| {
            let report = cache.update_with(&stop, progress, None)?;
            let universes: Vec<_> = report.universes.iter().filter_map(|(_, r)| r.as_ref().ok().cloned()).collect();
            Ok::<_, cheetah_core::Error>((report.into_result()?, universes))
        })?;
        let mut reports: Vec<serde_json::Value> = reports
            .iter()
            .map(|r| {
                serde_json::json!({
                    "table": r.table, "dates": r.dates, "rows": r.rows,
                    "dates_deleted": r.dates_deleted, "watermark": r.watermark.map(|w| w.to_string()),
                    "seconds": r.seconds,
                })
            })
            .collect();
        reports.extend(universes.iter().map(|u| {
            serde_json::json!({"universe": u.universe, "intervals": u.intervals, "symbols": u.symbols, "seconds": u.seconds})
        }));
        Ok(serde_json::Value::Array(reports).to_string())
    }

    /// The config file's path.
    #[getter]
    fn config_path(&self) -> PathBuf {
        self.config.path.clone()
    }
}

/// The request the read methods' arguments name.
fn request(
    start: &str,
    end: &str,
    cols: Vec<String>,
    symbols: Option<Vec<String>>,
    base: Option<String>,
    adjust: Option<&str>,
    universe: Option<String>,
) -> PyResult<Request> {
    let mut request = Request::new(parse_date(start)?, parse_date(end)?, cols);
    if let Some(symbols) = symbols {
        request = request.symbols(symbols);
    }
    if let Some(base) = base {
        request = request.base(base);
    }
    if let Some(adjust) = adjust {
        request = request.adjust(adjust.parse::<Adjust>().map_err(crate::error::QueryError::new_err)?);
    }
    if let Some(universe) = universe {
        request = request.universe(universe);
    }
    Ok(request)
}

fn parse_date(text: &str) -> PyResult<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        crate::error::QueryError::new_err(format!(
            "`{text}` is not a date; pass a date, datetime, Timestamp or \"YYYY-MM-DD\""
        ))
    })
}
