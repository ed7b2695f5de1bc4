//! The one place the GIL is released: every call that may touch disk, ODBC or the assembler
//! runs through [`without_gil`], which also turns Cheetah errors into Python exceptions.

use pyo3::prelude::*;

use crate::error::to_py;

/// Runs `work` with the GIL released.
pub fn without_gil<T: Send>(
    py: Python<'_>,
    work: impl FnOnce() -> Result<T, cheetah_core::Error> + Send,
) -> PyResult<T> {
    py.detach(work).map_err(to_py)
}
