//! Wide reads: each field as a date × symbol matrix, equal to the long read pivoted, but
//! scattered straight from the chunks.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray};
use arrow::buffer::ScalarBuffer;
use chrono::NaiveDate;

use super::adjust::adjust_pairs;
use super::assemble::assemble_wide;
use super::fetch::{fetch, ChunkSource};
use super::plan::Plan;
use super::DateLayout;
use crate::error::{QueryError, StoreError};
use crate::store::Version;
use crate::types::date_of;
use crate::view::View;

/// A wide read.
#[derive(Debug, Clone)]
pub struct Panel {
    /// The matrices' rows: each date with rows, ascending.
    pub dates: Vec<NaiveDate>,
    /// The matrices' columns: each symbol with a row on any of the dates, in text order.
    pub symbols: StringArray,
    /// Per requested field: its name as requested, and its matrix in row-major order (dates ×
    /// symbols), NaN where there is no row or no value.
    pub fields: Vec<(String, ArrayRef)>,
    /// The dates covered: the request clipped to what every involved table has loaded.
    pub covered: Option<(NaiveDate, NaiveDate)>,
    /// The store version read.
    pub version: Version,
    /// The snapshot the request named, if it named one.
    pub snapshot: Option<String>,
}

/// Checks that every output of `plan` is numeric: a panel holds float64 cells.
///
/// # Errors
/// [`QueryError::InvalidArgument`] naming the first field that is not.
pub(crate) fn check(plan: &Plan<'_>) -> Result<(), QueryError> {
    match plan.fields[..plan.outputs].iter().find(|f| !f.field.dtype.is_number()) {
        None => Ok(()),
        Some(f) => Err(QueryError::InvalidArgument(format!(
            "a panel holds numbers, and `{}` holds {:?}; read it with get_data(...)[\"{}\"].unstack(\"symbol\")",
            f.requested, f.field.dtype, f.requested
        ))),
    }
}

/// Reads `plan` wide from `chunks`.
pub(crate) fn read_panel(plan: &Plan<'_>, view: &View, chunks: &impl ChunkSource) -> Result<Panel, StoreError> {
    let wide = assemble_wide(&super::inputs(plan, view, fetch(plan, view, chunks)?, DateLayout::Date32, false));
    let width = wide.ranks.len();
    let mut matrices = wide.fields;
    if plan.adjust.is_some() {
        let divisors = super::divisors(plan, view, chunks, || wide.ranks.iter().map(|&r| r as usize).collect())?;
        // A cell's symbol is its column; the divisors are by rank.
        let divisors: Vec<(usize, Vec<f64>)> =
            divisors.into_iter().map(|(f, d)| (f, wide.ranks.iter().map(|&r| d[r as usize]).collect())).collect();
        adjust_pairs(&mut matrices, &plan.adjusted, &divisors, |i| i % width);
    }
    matrices.truncate(plan.outputs);
    let symbols = StringArray::from_iter_values(wide.ranks.iter().map(|&r| view.ranking.sorted.value(r as usize)));
    let fields = plan
        .fields
        .iter()
        .zip(matrices)
        .map(|(f, m)| (f.requested.clone(), Arc::new(Float64Array::new(ScalarBuffer::from(m), None)) as ArrayRef))
        .collect();
    let dates = wide.days.into_iter().map(date_of).collect();
    Ok(Panel { dates, symbols, fields, covered: plan.covered, version: view.version, snapshot: None })
}
