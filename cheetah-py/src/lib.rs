//! The `cheetah._cheetah` extension module: registration only.

mod cache;
mod error;
mod gil;

use pyo3::prelude::*;

#[pymodule]
fn _cheetah(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<cache::Cache>()?;
    error::register(m)?;
    Ok(())
}
