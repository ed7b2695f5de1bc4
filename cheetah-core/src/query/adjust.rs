//! Adjusted prices at read time: the store keeps raw prices, and a read multiplies them by the
//! factor of the same row (backward), divided by the symbol's latest factor on the read's dates
//! (forward). A row without a factor has no adjusted price.

use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use arrow::buffer::{NullBuffer, ScalarBuffer};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int16Type, Int32Type};

use super::fetch::ChunkSource;
use super::plan::Plan;
use crate::error::StoreError;
use crate::view::View;

/// How a read adjusts the price fields a table's `[table.adjust]` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Adjust {
    /// Price × the factor on the same row (后复权): comparable across the whole history.
    Backward,
    /// Price × the factor on the same row ÷ the symbol's latest factor on the read's dates
    /// (前复权): the latest prices are as traded.
    Forward,
}

impl Adjust {
    /// The name `adjust=` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Backward => "backward",
            Self::Forward => "forward",
        }
    }
}

impl FromStr for Adjust {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "backward" => Ok(Self::Backward),
            "forward" => Ok(Self::Forward),
            _ => Err(format!("adjust = {text:?} is not a way to adjust; pass \"backward\", \"forward\", or none")),
        }
    }
}

/// A numeric column as float64 values, NaN where null.
pub(super) fn as_float(column: &ArrayRef) -> Vec<f64> {
    let floats = match column.data_type() {
        DataType::Float64 => column.clone(),
        _ => cast(column, &DataType::Float64).expect("numeric columns cast to float64"),
    };
    let floats = floats.as_primitive::<Float64Type>();
    match floats.nulls().filter(|n| n.null_count() > 0) {
        None => floats.values().to_vec(),
        Some(nulls) => {
            floats.values().iter().zip(nulls.iter()).map(|(&v, valid)| if valid { v } else { f64::NAN }).collect()
        }
    }
}

/// Days of the factor read at a time, newest first, while symbols still lack their latest.
const LATEST_BATCH: usize = 16;

/// Forward adjustment's divisors: per symbol rank, the latest factor `plan.fields[factor]` has
/// on the plan's days, for the ranks `wanted` marks (NaN for a symbol with none). Taken from the
/// factor's table whatever `symbols=` or `universe=` keep, so a symbol's adjusted price on a
/// date depends only on the read's dates.
///
/// # Errors
/// [`StoreError`] reading the chunks.
pub(super) fn latest_factors(
    plan: &Plan<'_>,
    view: &View,
    chunks: &impl ChunkSource,
    factor: usize,
    wanted: &[bool],
) -> Result<Vec<f64>, StoreError> {
    let (table, field) = (plan.fields[factor].table, plan.fields[factor].field);
    let mut latest = vec![f64::NAN; wanted.len()];
    let mut missing = wanted.iter().filter(|&&w| w).count();
    for days in plan.days.rchunks(LATEST_BATCH) {
        if missing == 0 {
            break;
        }
        let rows = chunks.rows(table, days)?;
        let values = chunks.values(table, field, days)?;
        for (keys, values) in rows.iter().zip(&values).rev() {
            let (Some(keys), Some(values)) = (keys, values) else { continue };
            let values = as_float(values);
            for (&id, &value) in keys.iter().zip(&values) {
                let Some(&rank) = view.ranking.rank.get(id as usize) else { continue };
                let rank = rank as usize;
                if wanted[rank] && latest[rank].is_nan() && !value.is_nan() {
                    latest[rank] = value;
                    missing -= 1;
                }
            }
        }
    }
    Ok(latest)
}

/// Adjusts `matrices` (or columns) in place: each `(price, factor)` pair's prices by its
/// factors, and by `divisors[factor]` when forward.
pub(super) fn adjust_pairs(
    matrices: &mut [Vec<f64>],
    pairs: &[(usize, usize)],
    divisors: &[(usize, Vec<f64>)],
    group: impl Fn(usize) -> usize + Copy,
) {
    for &(price, factor) in pairs {
        let reference = divisors.iter().find(|(f, _)| *f == factor).map(|(_, d)| d.as_slice());
        let (prices, factors) = pair(matrices, price, factor);
        adjust_in_place(prices, factors, reference, group);
    }
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

/// `prices` × `factors`, ÷ `reference[group(i)]` for row `i` when forward; NaN wherever an
/// operand is.
pub(super) fn adjust_in_place(
    prices: &mut [f64],
    factors: &[f64],
    reference: Option<&[f64]>,
    group: impl Fn(usize) -> usize,
) {
    match reference {
        None => prices.iter_mut().zip(factors).for_each(|(p, f)| *p *= f),
        Some(reference) => {
            for (i, (p, f)) in prices.iter_mut().zip(factors).enumerate() {
                *p = *p * f / reference[group(i)];
            }
        }
    }
}

/// A float64 column of `values`, null where NaN: a missing adjusted price is null, as a missing
/// raw one is.
pub(super) fn float_column(values: Vec<f64>) -> ArrayRef {
    let nulls = NullBuffer::from_iter(values.iter().map(|v| !v.is_nan()));
    let nulls = (nulls.null_count() > 0).then_some(nulls);
    Arc::new(Float64Array::new(ScalarBuffer::from(values), nulls))
}

/// Adjusts the long columns: `fields[price]` by `fields[factor]` for each `(price, factor)`,
/// and for forward by the divisors of `divisors` (per factor, by symbol rank), grouping rows by
/// the keys of the `symbols` dictionary column.
pub(super) fn adjust_long(
    symbols: &ArrayRef,
    fields: &mut [ArrayRef],
    pairs: &[(usize, usize)],
    divisors: &[(usize, Vec<f64>)],
) {
    let codes = if divisors.is_empty() { Vec::new() } else { symbol_ranks(symbols) };
    let mut columns: Vec<Vec<f64>> = vec![Vec::new(); fields.len()];
    for &(price, factor) in pairs {
        for at in [price, factor] {
            if columns[at].is_empty() {
                columns[at] = as_float(&fields[at]);
            }
        }
    }
    adjust_pairs(&mut columns, pairs, divisors, |i| codes[i]);
    for &(price, _) in pairs {
        fields[price] = float_column(std::mem::take(&mut columns[price]));
    }
}

/// The symbol rank of each row of a `symbol` dictionary column.
pub(super) fn symbol_ranks(symbols: &ArrayRef) -> Vec<usize> {
    let keys = super::dictionary_keys(symbols);
    match keys.as_primitive_opt::<Int16Type>() {
        Some(k) => k.values().iter().map(|&c| c as usize).collect(),
        None => keys.as_primitive::<Int32Type>().values().iter().map(|&c| c as usize).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_divides_by_the_divisor_and_a_missing_factor_is_missing() {
        // Rows by date then symbol: (d0, A), (d0, B), (d1, A), (d1, B).
        let factors = [1.0, 2.0, 2.0, f64::NAN];
        let groups = [0usize, 1, 0, 1];
        let divisors = [2.0, 2.0];
        let mut prices = vec![10.0, 20.0, 5.0, 21.0];
        adjust_in_place(&mut prices, &factors, Some(&divisors), |i| groups[i]);
        assert_eq!(prices[..3], [5.0, 20.0, 5.0]);
        assert!(prices[3].is_nan());
        let mut prices = vec![10.0, 20.0, 5.0, 21.0];
        adjust_in_place(&mut prices, &factors, None, |i| groups[i]);
        assert_eq!(prices[..3], [10.0, 40.0, 10.0]);
        assert_eq!(float_column(prices).null_count(), 1);
        assert!("Sideways".parse::<Adjust>().unwrap_err().contains("\"backward\", \"forward\""));
        assert_eq!("Forward".parse::<Adjust>(), Ok(Adjust::Forward));
    }
}
