//! `cheetah._cheetah.Cache`: an open cache.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use cheetah_core::arrow::array::{RecordBatch, StringArray};
use cheetah_core::arrow::datatypes::{DataType, Field, Schema};
use cheetah_core::chrono::NaiveDate;
use cheetah_core::chrono::SecondsFormat;
use cheetah_core::{AsOf, Cache as CoreCache, Config, DateLayout, IntegerNulls, QueryResult, StoreError, Version};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3_arrow::ffi::to_array_pycapsules;
use pyo3_arrow::PyTable;

use crate::error::to_py;
use crate::gil::without_gil;
use crate::interrupt::{abandonable, abandonable_ahead, stoppable};
use crate::read::ReadArgs;

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
            Err(e) => Err(to_py(e)),
            Ok(()) => Ok(cache),
        }
    }

    /// Reads `read` (a `cheetah._reads.Read`). Returns the pyarrow table, the dates covered
    /// (a pair of dates or `None`), what the shared layer served (generation, rows, whether
    /// the columns are views of it) or `None`, and the version read (its number, its commit
    /// time as ISO text, the snapshot named). With `dictionary_dates`, the `date` column is
    /// dictionary-encoded: a code per row into the dates that have rows. With `nan_integers`, an
    /// integer field with nulls comes as float64 with NaN at them, as pandas' numpy backend
    /// holds it. `symbols`, if given, is called on this thread while a read through the store
    /// runs, with the `symbol` dictionary (a pyarrow array) the result will most likely hold; a
    /// read the shared layer serves whole is over too soon to call it.
    #[pyo3(signature = (read, dictionary_dates=false, nan_integers=false, symbols=None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        read: ReadArgs,
        dictionary_dates: bool,
        nan_integers: bool,
        symbols: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Got<'py>> {
        let dates = if dictionary_dates { DateLayout::Dictionary } else { DateLayout::Date32 };
        let nulls = if nan_integers { IntegerNulls::NanFloat } else { IntegerNulls::Validity };
        let request = read.request()?.dates(dates).integer_nulls(nulls);
        let cache = self.shared(py)?;
        // A read the shared layer serves whole takes milliseconds, and runs on this thread: a
        // thread of its own was about a quarter of a repeated one-month read. A read through
        // the store may take seconds, so it gets one that Ctrl-C can abandon.
        if let Some(result) = py.detach(|| cache.without_store(&request)).map_err(to_py)? {
            return got(py, result);
        }
        let wanted = symbols.is_some();
        let result = abandonable_ahead(
            py,
            move |ahead| {
                if let Some(sorted) = wanted.then(|| cache.symbols_ahead(&request)).flatten() {
                    ahead(sorted);
                }
                cache.through_store(&request)
            },
            |sorted: StringArray| match &symbols {
                Some(callback) => callback.call1((pyarrow_array(py, sorted)?,)).map(drop),
                None => Ok(()),
            },
        )?;
        got(py, result)
    }

    /// Reads `read` wide. Returns the dates with rows (days since 1970-01-01), the symbols with
    /// rows (sorted), a pyarrow table of one float64 column per field holding its date × symbol
    /// matrix in row-major order, the dates covered, and the version read.
    #[allow(clippy::type_complexity)]
    fn panel<'py>(
        &self,
        py: Python<'py>,
        read: ReadArgs,
    ) -> PyResult<(Vec<i64>, Vec<String>, Bound<'py, PyAny>, Option<(NaiveDate, NaiveDate)>, Lineage)> {
        let request = read.request()?;
        let cache = self.shared(py)?;
        let panel = abandonable(py, move || cache.panel(&request))?;
        let epoch = NaiveDate::default();
        let days = panel.dates.iter().map(|d| (*d - epoch).num_days()).collect();
        let symbols = panel.symbols.iter().map(|s| s.unwrap_or_default().to_string()).collect();
        let fields: Vec<Field> =
            panel.fields.iter().map(|(name, _)| Field::new(name, DataType::Float64, false)).collect();
        let schema = Arc::new(Schema::new(fields));
        let columns = panel.fields.into_iter().map(|(_, m)| m).collect();
        let batch = RecordBatch::try_new(schema, columns).expect("matrices match the schema");
        let table = pyarrow_table(py, batch)?;
        Ok((days, symbols, table, panel.covered, lineage(&panel.version, panel.snapshot)))
    }

    /// The configured universes as JSON: each with its intervals' count, symbols, first start,
    /// last member day (`None` while one is open) and when it was read, or `None` before then.
    fn universes_json(&self, py: Python<'_>) -> PyResult<String> {
        let universes = without_gil(py, || self.cache()?.universes())?;
        let listed: Vec<serde_json::Value> = universes
            .iter()
            .map(|(name, u)| serde_json::json!({"name": name, "read": u.as_ref().map(|u| u.summary())}))
            .collect();
        Ok(serde_json::Value::Array(listed).to_string())
    }

    /// The members of universe `name` on `date`, sorted.
    fn members(&self, py: Python<'_>, name: &str, date: NaiveDate) -> PyResult<Vec<String>> {
        without_gil(py, || self.cache()?.members(name, date))
    }

    /// Whether the cache has opened its store: a reader whose reads the shared layer served
    /// alone has not.
    fn store_is_open(&self) -> bool {
        self.inner.get().is_some_and(|cache| cache.store_is_open())
    }

    /// Warnings about the shared layer since the last call (it was missing, foreign or damaged,
    /// and reads fell back to the store).
    fn take_share_warnings(&self) -> Vec<String> {
        self.inner.get().map(|cache| cache.take_share_warnings()).unwrap_or_default()
    }

    /// Publishes `cols` (every cached field when `None`) over `start..=end` into the shared
    /// layer; returns the report as JSON.
    #[pyo3(signature = (start, end, cols=None))]
    fn publish_json(
        &self,
        py: Python<'_>,
        start: NaiveDate,
        end: NaiveDate,
        cols: Option<Vec<String>>,
    ) -> PyResult<String> {
        let report = without_gil(py, || self.cache()?.publish(start, end, cols.as_deref()))?;
        Ok(serde_json::to_string(&report).expect("a report serializes"))
    }

    /// The data-quality report of `tables` (every table when empty) over `start..=end`: a
    /// pyarrow table of its metrics, and its thresholds as JSON.
    #[pyo3(signature = (start=None, end=None, tables=Vec::new()))]
    fn quality<'py>(
        &self,
        py: Python<'py>,
        start: Option<NaiveDate>,
        end: Option<NaiveDate>,
        tables: Vec<String>,
    ) -> PyResult<(Bound<'py, PyAny>, String)> {
        let range = (start, end);
        let cache = self.shared(py)?;
        let report = abandonable(py, move || cache.quality(&tables, range))?;
        let table = pyarrow_table(py, report.to_arrow())?;
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
        let mut listed: Vec<serde_json::Value> = reports.iter().map(to_json).collect();
        listed.extend(universes.iter().map(to_json));
        Ok(serde_json::Value::Array(listed).to_string())
    }

    /// Writes `data` (a pyarrow table keyed by the columns `date` and `symbol`) into the
    /// local table `table`; returns the report as JSON.
    fn write(&self, py: Python<'_>, table: &str, data: PyTable, date: &str, symbol: &str) -> PyResult<String> {
        let (batches, _) = data.into_inner();
        // One commit: nothing to stop half-way, so Ctrl-C waits for it.
        let report = without_gil(py, || self.cache()?.write(table, batches, date, symbol))?;
        Ok(serde_json::to_string(&report).expect("a report serializes"))
    }

    /// Deletes the dates `start..=end` of local table `table`; returns the report as JSON.
    fn delete(&self, py: Python<'_>, table: &str, start: NaiveDate, end: NaiveDate) -> PyResult<String> {
        let report = without_gil(py, || self.cache()?.delete(table, start, end))?;
        Ok(serde_json::to_string(&report).expect("a report serializes"))
    }

    /// Drops local table `table`; returns the report as JSON.
    fn drop_table(&self, py: Python<'_>, table: &str) -> PyResult<String> {
        let report = without_gil(py, || self.cache()?.drop_table(table))?;
        Ok(serde_json::to_string(&report).expect("a report serializes"))
    }

    /// Names the current store version `name`; returns the snapshot as JSON.
    #[pyo3(signature = (name, note=None))]
    fn snapshot_json(&self, py: Python<'_>, name: &str, note: Option<&str>) -> PyResult<String> {
        let snapshot = without_gil(py, || self.cache()?.snapshot(name, note))?;
        Ok(serde_json::to_string(&snapshot).expect("a snapshot serializes"))
    }

    /// Every snapshot as JSON.
    fn snapshots_json(&self, py: Python<'_>) -> PyResult<String> {
        let snapshots = without_gil(py, || self.cache()?.snapshots())?;
        Ok(serde_json::to_string(&snapshots).expect("snapshots serialize"))
    }

    /// Deletes the snapshot `name`.
    fn delete_snapshot(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        without_gil(py, || self.cache()?.delete_snapshot(name).map(|_| ()))
    }

    /// The cells that changed from `from_` to `to` (each a version number, a snapshot's name
    /// or a moment; `to` the latest when `None`): per field with changes, its table, name and
    /// a pyarrow table of `date`, `symbol`, `old`, `new`; then the two versions and the fields
    /// not compared.
    #[pyo3(signature = (from_, to=None, start=None, end=None, cols=None))]
    #[allow(clippy::type_complexity)]
    fn diff<'py>(
        &self,
        py: Python<'py>,
        from_: VersionName,
        to: Option<VersionName>,
        start: Option<NaiveDate>,
        end: Option<NaiveDate>,
        cols: Option<Vec<String>>,
    ) -> PyResult<(Vec<(String, String, Bound<'py, PyAny>)>, Lineage, Lineage, Vec<String>)> {
        let cache = self.shared(py)?;
        let diff = abandonable(py, move || {
            let from = from_.as_of(&cache)?;
            let to = to.map(|t| t.as_of(&cache)).transpose()?;
            cache.diff(&from, to.as_ref(), (start, end), cols.as_deref())
        })?;
        let fields = diff
            .fields
            .iter()
            .map(|f| Ok((f.table.clone(), f.field.clone(), pyarrow_table(py, f.to_arrow())?)))
            .collect::<PyResult<Vec<_>>>()?;
        Ok((fields, lineage(&diff.from, None), lineage(&diff.to, None), diff.skipped))
    }

    /// The config file's path.
    #[getter]
    fn config_path(&self) -> PathBuf {
        self.config.path.clone()
    }

    /// The store's identity, made when it was created; a reader before the first update has
    /// none yet.
    fn identity(&self, py: Python<'_>) -> PyResult<String> {
        without_gil(py, || Ok(self.cache()?.identity()?))
    }
}

/// The version a read read, for `df.attrs["cheetah"]`: its number, its commit time as ISO text
/// (UTC), and the snapshot named.
type Lineage = (u64, String, Option<String>);

/// What `Cache.get` returns: the pyarrow table, the dates covered, what the shared layer served
/// and the version read.
type Got<'py> = (Bound<'py, PyAny>, Option<(NaiveDate, NaiveDate)>, Option<(u64, usize, bool)>, Lineage);

fn got(py: Python<'_>, result: QueryResult) -> PyResult<Got<'_>> {
    let shared = result.shared.map(|s| (s.generation, s.rows, s.views));
    let lineage = lineage(&result.version, result.snapshot);
    let table = pyarrow_table(py, result.batch)?;
    Ok((table, result.covered, shared, lineage))
}

/// `batch` as a pyarrow `Table`, through the Arrow C stream interface. (`pyarrow.table()`
/// would import pandas, to ask whether it was handed a DataFrame.)
fn pyarrow_table(py: Python<'_>, batch: RecordBatch) -> PyResult<Bound<'_, PyAny>> {
    let schema = batch.schema();
    let stream = PyTable::try_new(vec![batch], schema)?.into_pyobject(py)?;
    py.import(intern!(py, "pyarrow"))?
        .getattr(intern!(py, "RecordBatchReader"))?
        .call_method1(intern!(py, "from_stream"), (stream,))?
        .call_method0(intern!(py, "read_all"))
}

/// `array` as a pyarrow array, imported from its C data interface directly: `pyarrow.array`
/// first looks at what it is given in ways that load more of pyarrow in a new process.
fn pyarrow_array(py: Python<'_>, array: StringArray) -> PyResult<Bound<'_, PyAny>> {
    let field = Arc::new(Field::new("symbol", DataType::Utf8, false));
    let capsules = to_array_pycapsules(py, field, &array, None)?;
    py.import(intern!(py, "pyarrow"))?
        .getattr(intern!(py, "Array"))?
        .call_method1(intern!(py, "_import_from_c_capsule"), capsules)
}

fn lineage(version: &Version, snapshot: Option<String>) -> Lineage {
    (version.number, version.committed.to_rfc3339_opts(SecondsFormat::Micros, true), snapshot)
}

/// A version as Python names one for a diff: a number, or text (a snapshot's name or a moment).
#[derive(FromPyObject)]
enum VersionName {
    Number(u64),
    Text(String),
}

impl VersionName {
    fn as_of(&self, cache: &CoreCache) -> Result<AsOf, cheetah_core::Error> {
        match self {
            Self::Number(n) => Ok(AsOf::Version(*n)),
            Self::Text(text) => cache.as_of(text),
        }
    }
}

fn to_json(report: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(report).expect("a report serializes")
}
