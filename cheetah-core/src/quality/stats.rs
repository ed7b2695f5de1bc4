//! The statistics the report is built from: a date's values as comparable keys and as numbers,
//! a robust centre and the spread on each side of it, and the typical value of the previous dates.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type};

/// Below this many values a share or a cross-section says too little to flag.
pub(super) const MIN_VALUES: usize = 10;

/// Each row's value as a key that is equal exactly when the values are, `None` for null.
pub(super) fn value_keys(array: &ArrayRef) -> Vec<Option<u64>> {
    match array.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Dictionary(..) => {
            let text = arrow::compute::cast(array, &DataType::Utf8).expect("text casts to Utf8");
            text.as_string::<i32>()
                .iter()
                .map(|v| {
                    v.map(|v| {
                        let mut hasher = std::collections::hash_map::DefaultHasher::new();
                        v.hash(&mut hasher);
                        hasher.finish()
                    })
                })
                .collect()
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 | DataType::Decimal128(..) => {
            // -0.0 equals 0.0, and every NaN equals every other.
            let numbers = numbers(array).expect("numeric");
            numbers
                .iter()
                .map(|v| {
                    v.map(|v| {
                        if v == 0.0 {
                            0
                        } else if v.is_nan() {
                            u64::MAX
                        } else {
                            v.to_bits()
                        }
                    })
                })
                .collect()
        }
        _ => {
            let integers = arrow::compute::cast(array, &DataType::Int64).expect("integers, dates, times, booleans");
            integers.as_primitive::<Int64Type>().iter().map(|v| v.map(|v| v as u64)).collect()
        }
    }
}

/// The values as float64, for a numeric array; `None` for other types.
pub(super) fn numbers(array: &ArrayRef) -> Option<arrow::array::Float64Array> {
    let numeric = array.data_type().is_numeric() || matches!(array.data_type(), DataType::Decimal128(..));
    numeric.then(|| {
        arrow::compute::cast(array, &DataType::Float64)
            .expect("numbers cast to float64")
            .as_primitive::<Float64Type>()
            .clone()
    })
}

/// Where a cross-section is centred and how far its values reach on each side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Spread {
    pub(super) centre: f64,
    below: f64,
    above: f64,
}

impl Spread {
    /// The median and the robust deviation on each side of it: 1.4826 × the median absolute
    /// deviation of the values below it, and of those above, each an estimate of the standard
    /// deviation of normal values that ignores up to half of them being wild. Measuring each
    /// side by its own values keeps a skewed but healthy field's long side quiet without
    /// blunting its short one. `None` when over half the values are equal: such a cross-section
    /// (a factor that is mostly 1) has no spread to measure distance by.
    pub(super) fn of(values: &mut [f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let centre = median(values);
        let mut distances: Vec<f64> = values.iter().map(|v| (v - centre).abs()).collect();
        let both = 1.4826 * median(&mut distances);
        if !(both > 0.0 && both.is_finite()) {
            return None;
        }
        // Each side's distances reuse the buffer: a date's cross-section is measured many times.
        let mut side = |keep: fn(f64, f64) -> bool| {
            distances.clear();
            distances.extend(values.iter().filter(|&&v| keep(v, centre)).map(|v| (v - centre).abs()));
            let scale = if distances.is_empty() { 0.0 } else { 1.4826 * median(&mut distances) };
            // A side too thin to measure (most values at the median) borrows the whole spread.
            if scale > 0.0 && scale.is_finite() {
                scale
            } else {
                both
            }
        };
        let below = side(|v, c| v <= c);
        Some(Self { centre, below, above: side(|v, c| v >= c) })
    }

    /// How many robust deviations of its side `value` lies from the centre.
    pub(super) fn deviations(&self, value: f64) -> f64 {
        let scale = if value < self.centre { self.below } else { self.above };
        (value - self.centre).abs() / scale
    }
}

/// The median; reorders `values`.
pub(super) fn median(values: &mut [f64]) -> f64 {
    let n = values.len();
    let (_, &mut upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        upper
    } else {
        let lower = values[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lower + upper) / 2.0
    }
}

/// The median of the last `window` values pushed: what a typical previous date looked like.
pub(super) struct Trailing {
    window: usize,
    values: VecDeque<f64>,
}

impl Trailing {
    pub(super) fn new(window: usize) -> Self {
        Self { window, values: VecDeque::with_capacity(window + 1) }
    }

    /// The median of the previous dates' values, `None` before the first.
    pub(super) fn typical(&self) -> Option<f64> {
        if self.values.is_empty() {
            return None;
        }
        let mut values: Vec<f64> = self.values.iter().copied().collect();
        Some(median(&mut values))
    }

    pub(super) fn push(&mut self, value: f64) {
        if self.values.len() == self.window {
            self.values.pop_front();
        }
        self.values.push_back(value);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn median_is_the_middle_of_the_sorted_values(values in prop::collection::vec(-1e6f64..1e6, 1..60)) {
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let n = sorted.len();
            let want = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
            prop_assert_eq!(median(&mut values.clone()), want);
        }
    }

    #[test]
    fn one_wild_value_leaves_the_spread_of_the_others() {
        let mut values: Vec<f64> = (0..101).map(|i| 10.0 + f64::from(i % 10)).collect();
        values[7] = 1e9;
        let spread = Spread::of(&mut values).unwrap();
        assert_eq!(spread.centre, 14.0);
        // Below 14: eleven 10s and ten each of 11 to 14, 2 from it at the middle. Above: 14 to 19
        // and the wild value, 2.5 from it at the middle.
        assert!((spread.deviations(17.0) - 3.0 / (1.4826 * 2.5)).abs() < 1e-9, "{spread:?}");
        assert!((spread.deviations(11.0) - 3.0 / (1.4826 * 2.0)).abs() < 1e-9, "{spread:?}");
        assert_eq!(Spread::of(&mut [3.0; 20]), None, "no spread, no outliers");
        let mut mostly_one: Vec<f64> = [vec![1.0; 15], vec![1.1; 5]].concat();
        assert_eq!(Spread::of(&mut mostly_one), None, "a factor that is mostly 1 has no spread");
    }

    #[test]
    fn each_side_is_measured_by_its_own_values() {
        // Long on the right: 1..=50 then every tenth value up to 500.
        let mut values: Vec<f64> = (1..=50).map(f64::from).chain((6..=50).map(|i| f64::from(i) * 10.0)).collect();
        let spread = Spread::of(&mut values).unwrap();
        let (low, high) = (spread.centre - 20.0, spread.centre + 20.0);
        assert!(spread.deviations(low) > spread.deviations(high), "the short side reaches less far: {spread:?}");
    }

    #[test]
    fn keys_are_equal_exactly_when_values_are() {
        let floats: ArrayRef = Arc::new(arrow::array::Float64Array::from(vec![Some(0.0), Some(-0.0), None, Some(1.5)]));
        let keys = value_keys(&floats);
        assert_eq!((keys[0], keys[2]), (keys[1], None));
        assert_ne!(keys[0], keys[3]);
        let text: ArrayRef = Arc::new(arrow::array::StringArray::from(vec![Some("a"), Some("a"), Some("b")]));
        let keys = value_keys(&text);
        assert!(keys[0] == keys[1] && keys[1] != keys[2]);
        let dates: ArrayRef = Arc::new(arrow::array::Date32Array::from(vec![Some(3), Some(3), Some(4)]));
        assert_eq!(value_keys(&dates), [Some(3), Some(3), Some(4)]);
        assert!(numbers(&dates).is_none() && numbers(&floats).is_some());
    }

    #[test]
    fn the_typical_day_is_the_median_of_the_window() {
        let mut trailing = Trailing::new(3);
        assert_eq!(trailing.typical(), None);
        for v in [10.0, 50.0, 20.0, 30.0] {
            trailing.push(v);
        }
        assert_eq!(trailing.typical(), Some(30.0), "the median of 50, 20, 30");
    }
}
