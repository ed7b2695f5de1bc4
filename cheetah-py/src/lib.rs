//! The `cheetah._cheetah` extension module: registration only.

mod cache;
mod cli;
mod error;
mod gil;
mod interrupt;
mod read;

use pyo3::prelude::*;

// The allocator of the `cheetah` binary, for the same reason: `serve` run by the console
// script encodes every Flight read into fresh buffers, which glibc would unmap on each free.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[pymodule]
fn _cheetah(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<cache::Cache>()?;
    m.add_function(wrap_pyfunction!(cli::run_cli, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    error::register(m)?;
    Ok(())
}
