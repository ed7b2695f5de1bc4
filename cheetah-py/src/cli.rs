//! The `cheetah` console script: the same command the `cheetah-cli` binary runs.

use pyo3::prelude::*;

/// Runs the `cheetah` command with `argv` (the program's name first) and returns its exit
/// status. It owns the process, as a command does: only the console script calls it.
#[pyfunction]
pub fn run_cli(py: Python<'_>, argv: Vec<String>) -> u8 {
    py.detach(|| cheetah_cli::run(argv))
}
