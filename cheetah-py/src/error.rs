//! Python exceptions mirroring `cheetah_core::Error`: a `CheetahError` base with one subclass
//! per family, and distinct subclasses for the cases users handle differently.

use cheetah_core::{
    Error, QueryError as CoreQueryError, SourceError as CoreSourceError, StoreError as CoreStoreError,
    UpdateError as CoreUpdateError, WriteError as CoreWriteError,
};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

pyo3::create_exception!(cheetah, CheetahError, PyException, "Any Cheetah error.");
pyo3::create_exception!(cheetah, ConfigError, CheetahError, "A config file is missing, unreadable or invalid.");
pyo3::create_exception!(cheetah, SourceError, CheetahError, "The source database failed or lacks a configured name.");
pyo3::create_exception!(
    cheetah,
    StoreError,
    CheetahError,
    "The store is missing, locked, corrupt or of another format."
);
pyo3::create_exception!(cheetah, UpdateError, CheetahError, "An update failed.");
pyo3::create_exception!(
    cheetah,
    QueryError,
    CheetahError,
    "A read was asked something invalid, such as an unknown field."
);
pyo3::create_exception!(
    cheetah,
    ShareError,
    CheetahError,
    "Publishing into the shared layer failed: no [share], over its budget, or its file system is full."
);
pyo3::create_exception!(
    cheetah,
    VersionError,
    QueryError,
    "A version, moment or snapshot that cannot be read, or a snapshot name taken or unknown."
);
pyo3::create_exception!(
    cheetah,
    WriteError,
    CheetahError,
    "A frame that cannot be written into a local table: no (date, symbol) key, a duplicate or null key, an unsupported column, a name taken, a type conflict. Nothing was written."
);
pyo3::create_exception!(
    cheetah,
    StoreLocked,
    StoreError,
    "Another process (`cheetah update` or `serve`) holds the store's writer role."
);
pyo3::create_exception!(
    cheetah,
    CorruptChunk,
    StoreError,
    "A chunk failed to decode or is missing; `table`, `field` (None for the table's rows) and \
     `date` name it. `cheetah verify --repair` re-fetches it."
);

/// `EmptyCache`: nothing is cached yet. A missing store used to raise `StoreError` and a store
/// with no table `QueryError`, so it subclasses both and either `except` clause still catches it.
fn empty_cache(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    static TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    TYPE.get_or_try_init(py, || {
        let bases = PyTuple::new(py, [py.get_type::<StoreError>(), py.get_type::<QueryError>()])?;
        let namespace = PyDict::new(py);
        namespace.set_item("__module__", "cheetah")?;
        namespace.set_item(
            "__doc__",
            "Nothing is cached yet: run `cheetah update`, or wait for `cheetah serve`'s first round.",
        )?;
        let class = py.get_type::<PyType>().call1(("EmptyCache", bases, namespace))?;
        Ok::<_, PyErr>(class.cast_into::<PyType>()?.unbind())
    })
    .map(|t| t.bind(py))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("CheetahError", py.get_type::<CheetahError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("SourceError", py.get_type::<SourceError>())?;
    m.add("StoreError", py.get_type::<StoreError>())?;
    m.add("UpdateError", py.get_type::<UpdateError>())?;
    m.add("QueryError", py.get_type::<QueryError>())?;
    m.add("ShareError", py.get_type::<ShareError>())?;
    m.add("VersionError", py.get_type::<VersionError>())?;
    m.add("StoreLocked", py.get_type::<StoreLocked>())?;
    m.add("WriteError", py.get_type::<WriteError>())?;
    m.add("CorruptChunk", py.get_type::<CorruptChunk>())?;
    m.add("EmptyCache", empty_cache(py)?)?;
    Ok(())
}

/// The Python exception for a Cheetah error.
pub fn to_py(error: Error) -> PyErr {
    let message = error.to_string();
    match error {
        Error::Store(CoreStoreError::Missing { .. }) | Error::Query(CoreQueryError::Empty) => {
            Python::attach(|py| match empty_cache(py) {
                Ok(class) => PyErr::from_type(class.clone(), message),
                Err(e) => e,
            })
        }
        Error::Store(CoreStoreError::Locked { .. }) => StoreLocked::new_err(message),
        Error::Store(CoreStoreError::CorruptChunk { table, field, date, .. })
        | Error::Query(CoreQueryError::Store(CoreStoreError::CorruptChunk { table, field, date, .. })) => {
            Python::attach(|py| {
                let err = CorruptChunk::new_err(message);
                let value = err.value(py);
                let named = value
                    .setattr("table", table)
                    .and_then(|()| value.setattr("field", field))
                    .and_then(|()| value.setattr("date", date));
                match named {
                    Ok(()) => err,
                    Err(e) => e,
                }
            })
        }
        Error::Query(CoreQueryError::Store(CoreStoreError::Locked { .. })) => StoreLocked::new_err(message),
        Error::Version(_) | Error::Query(CoreQueryError::Version(_)) => VersionError::new_err(message),
        Error::Config(_)
        | Error::Source(CoreSourceError::Config(_))
        | Error::Update(CoreUpdateError::Source(CoreSourceError::Config(_))) => ConfigError::new_err(message),
        Error::Source(_) => SourceError::new_err(message),
        Error::Store(_) => StoreError::new_err(message),
        Error::Update(_) => UpdateError::new_err(message),
        Error::Query(_) => QueryError::new_err(message),
        Error::Share(_) => ShareError::new_err(message),
        Error::Write(CoreWriteError::Store(CoreStoreError::Locked { .. })) => StoreLocked::new_err(message),
        Error::Write(CoreWriteError::Store(_)) => StoreError::new_err(message),
        Error::Write(_) => WriteError::new_err(message),
        // Families added to the core later surface as the base class.
        _ => CheetahError::new_err(message),
    }
}
