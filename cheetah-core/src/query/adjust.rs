//! Adjusted prices at read time: the store keeps raw prices, and a read multiplies them by the
//! factor of the same row (backward), divided by the symbol's latest factor in the read
//! (forward). A row without a factor has no adjusted price.

use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use arrow::buffer::{NullBuffer, ScalarBuffer};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int16Type, Int32Type};

/// How a read adjusts the price fields a table's `[table.adjust]` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Adjust {
    /// Price × the factor on the same row (后复权): comparable across the whole history.
    Backward,
    /// Price × the factor on the same row ÷ the symbol's latest factor in the read (前复权): the
    /// latest prices are as traded.
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

/// The latest factor of each group, scanning `factors` from the end: `groups[i]` is row `i`'s
/// group, and a group without a factor gets NaN.
pub(super) fn latest(factors: &[f64], groups: impl DoubleEndedIterator<Item = usize>, n_groups: usize) -> Vec<f64> {
    let mut latest = vec![f64::NAN; n_groups];
    for (&factor, group) in factors.iter().rev().zip(groups.rev()) {
        if latest[group].is_nan() && !factor.is_nan() {
            latest[group] = factor;
        }
    }
    latest
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
/// grouping rows by the keys of the `symbols` dictionary column for forward.
pub(super) fn adjust_long(mode: Adjust, symbols: &ArrayRef, fields: &mut [ArrayRef], pairs: &[(usize, usize)]) {
    // Forward groups rows by symbol; backward needs no codes.
    let codes: Vec<usize> = match mode {
        Adjust::Backward => Vec::new(),
        Adjust::Forward => {
            let keys = super::dictionary_keys(symbols);
            match keys.as_primitive_opt::<Int16Type>() {
                Some(k) => k.values().iter().map(|&c| c as usize).collect(),
                None => keys.as_primitive::<Int32Type>().values().iter().map(|&c| c as usize).collect(),
            }
        }
    };
    let levels = symbols.as_any_dictionary().values().len();
    let mut factors: Vec<(usize, Vec<f64>, Option<Vec<f64>>)> = Vec::new();
    for &(price, factor) in pairs {
        if !factors.iter().any(|(f, _, _)| *f == factor) {
            let values = as_float(&fields[factor]);
            let reference = (mode == Adjust::Forward).then(|| latest(&values, codes.iter().copied(), levels));
            factors.push((factor, values, reference));
        }
        let (_, values, reference) = factors.iter().find(|(f, _, _)| *f == factor).expect("pushed above");
        let mut prices = as_float(&fields[price]);
        adjust_in_place(&mut prices, values, reference.as_deref(), |i| codes[i]);
        fields[price] = float_column(prices);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_divides_by_each_symbols_latest_factor_and_a_missing_factor_is_missing() {
        // Rows by date then symbol: (d0, A), (d0, B), (d1, A), (d1, B).
        let factors = [1.0, 2.0, 2.0, f64::NAN];
        let groups = [0usize, 1, 0, 1];
        let reference = latest(&factors, groups.iter().copied(), 2);
        assert_eq!(reference, [2.0, 2.0], "B's latest factor is the last one present");
        let mut prices = vec![10.0, 20.0, 5.0, 21.0];
        adjust_in_place(&mut prices, &factors, Some(&reference), |i| groups[i]);
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
