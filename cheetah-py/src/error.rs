//! Python exceptions mirroring `cheetah_core::Error`: a `CheetahError` base with one subclass
//! per family.

use cheetah_core::Error;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

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

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("CheetahError", py.get_type::<CheetahError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("SourceError", py.get_type::<SourceError>())?;
    m.add("StoreError", py.get_type::<StoreError>())?;
    m.add("UpdateError", py.get_type::<UpdateError>())?;
    m.add("QueryError", py.get_type::<QueryError>())?;
    Ok(())
}

/// The Python exception for a Cheetah error.
pub fn to_py(error: Error) -> PyErr {
    let message = error.to_string();
    match error {
        Error::Config(_) => ConfigError::new_err(message),
        Error::Source(_) => SourceError::new_err(message),
        Error::Store(_) => StoreError::new_err(message),
        Error::Update(_) => UpdateError::new_err(message),
        Error::Query(_) => QueryError::new_err(message),
        // Families added to the core later surface as the base class.
        _ => CheetahError::new_err(message),
    }
}
