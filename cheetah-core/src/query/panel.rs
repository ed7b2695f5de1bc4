//! Wide reads: each field as a date × symbol matrix, equal to the long read pivoted, but
//! scattered straight from the chunks.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray};
use arrow::buffer::ScalarBuffer;
use chrono::NaiveDate;

use super::adjust::{adjust_in_place, latest, Adjust};
use super::assemble::assemble_wide;
use super::fetch::{fetch, ChunkSource};
use super::plan::Plan;
use super::DateLayout;
use crate::error::{QueryError, StoreError};
use crate::types::{date_of, Day};
use crate::view::View;

/// A wide read.
#[derive(Debug, Clone)]
pub struct Panel {
    /// The matrices' rows: each date with rows, ascending.
    pub dates: Vec<Day>,
    /// The matrices' columns: each symbol with a row on any of the dates, in text order.
    pub symbols: StringArray,
    /// Per requested field: its name as requested, and its matrix in row-major order (dates ×
    /// symbols), NaN where there is no row or no value.
    pub fields: Vec<(String, ArrayRef)>,
    /// The dates covered: the request clipped to what every involved table has loaded.
    pub covered: Option<(NaiveDate, NaiveDate)>,
}

impl Panel {
    /// The first and last date with rows.
    pub fn span(&self) -> Option<(NaiveDate, NaiveDate)> {
        Some((date_of(*self.dates.first()?), date_of(*self.dates.last()?)))
    }
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
    if let Some(mode) = plan.adjust {
        for &(price, factor) in &plan.adjusted {
            let (prices, factors) = pair(&mut matrices, price, factor);
            let reference =
                (mode == Adjust::Forward).then(|| latest(factors, (0..factors.len()).map(|i| i % width), width));
            adjust_in_place(prices, factors, reference.as_deref(), |i| i % width);
        }
    }
    matrices.truncate(plan.outputs);
    let symbols = StringArray::from_iter_values(wide.ranks.iter().map(|&r| view.ranking.sorted.value(r as usize)));
    let fields = plan
        .fields
        .iter()
        .zip(matrices)
        .map(|(f, m)| (f.requested.clone(), Arc::new(Float64Array::new(ScalarBuffer::from(m), None)) as ArrayRef))
        .collect();
    Ok(Panel { dates: wide.days, symbols, fields, covered: plan.covered })
}

/// `matrices[price]` mutably beside `matrices[factor]`.
fn pair(matrices: &mut [Vec<f64>], price: usize, factor: usize) -> (&mut [f64], &[f64]) {
    if price < factor {
        let (low, high) = matrices.split_at_mut(factor);
        (&mut low[price], &high[0])
    } else {
        let (low, high) = matrices.split_at_mut(price);
        (&mut high[0], &low[factor])
    }
}
