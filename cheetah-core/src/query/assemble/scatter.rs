//! The scatter kernels: one date's chunk written into its rows of the output.

use arrow::array::{Array, ArrayRef, BooleanBufferBuilder, UInt32Array};
use arrow::buffer::BooleanBuffer;
use arrow::compute::take;

use super::NONE;
use crate::types::ValueType;

/// Values for rows with no source row: NaN for floats, so a float column reads as NaN in
/// pandas without consulting its validity; zero otherwise.
pub(super) fn fill_null(dtype: ValueType, values: &mut [u8]) {
    match dtype {
        ValueType::Float64 => fill_pattern(values, f64::NAN.to_le_bytes()),
        ValueType::Float32 => fill_pattern(values, f32::NAN.to_le_bytes()),
        _ => values.fill(0),
    }
}

/// Writes the null value of `dtype` into each row `valid` leaves unset: the rows the scatter
/// gave no value. Those holding a null value were filled as they were scattered; filling them
/// again is harmless, and there are few.
pub(super) fn fill_unset(dtype: ValueType, width: usize, values: &mut [u8], valid: &BooleanBuffer) {
    for row in (!valid).set_indices() {
        fill_null(dtype, &mut values[row * width..(row + 1) * width]);
    }
}

/// Fills `values` with copies of `pattern`; its width is a constant, so each copy is one store.
fn fill_pattern<const W: usize>(values: &mut [u8], pattern: [u8; W]) {
    for slot in values.chunks_exact_mut(W) {
        slot.copy_from_slice(&pattern);
    }
}

/// Copies `chunk`'s values to their rows, and marks the valid ones in `valid` unless the caller
/// already knows every row is valid.
pub(super) fn scatter(
    chunk: &dyn Array,
    dtype: ValueType,
    width: usize,
    dest: &[u32],
    values: &mut [u8],
    valid: Option<&mut BooleanBufferBuilder>,
) {
    let data = chunk.to_data();
    let src = &data.buffers()[0].as_slice()[data.offset() * width..(data.offset() + data.len()) * width];
    match width {
        1 => scatter_width::<1>(src, dest, values),
        2 => scatter_width::<2>(src, dest, values),
        4 => scatter_width::<4>(src, dest, values),
        8 => scatter_width::<8>(src, dest, values),
        16 => scatter_width::<16>(src, dest, values),
        other => unreachable!("no fixed-width type is {other} bytes wide"),
    }
    let Some(valid) = valid else { return };
    match chunk.nulls().filter(|n| n.null_count() > 0) {
        None => {
            for &p in dest.iter().filter(|&&p| p != NONE) {
                valid.set_bit(p as usize, true);
            }
        }
        Some(nulls) => {
            for (i, &p) in dest.iter().enumerate().filter(|(_, &p)| p != NONE) {
                let p = p as usize;
                if nulls.is_valid(i) {
                    valid.set_bit(p, true);
                } else {
                    fill_null(dtype, &mut values[p * width..(p + 1) * width]);
                }
            }
        }
    }
}

fn scatter_width<const W: usize>(src: &[u8], dest: &[u32], out: &mut [u8]) {
    for (value, &p) in src.chunks_exact(W).zip(dest) {
        if p != NONE {
            let p = p as usize * W;
            out[p..p + W].copy_from_slice(value);
        }
    }
}

/// Booleans and text: a `take` per date, concatenated at the end.
pub(super) fn take_day(chunk: Option<&ArrayRef>, dtype: ValueType, dest: &[u32], n: usize) -> ArrayRef {
    let Some(chunk) = chunk else { return dtype.null_array(n) };
    let mut source: Vec<Option<u32>> = vec![None; n];
    for (i, &p) in dest.iter().enumerate() {
        if p != NONE {
            source[p as usize] = Some(i as u32);
        }
    }
    take(chunk.as_ref(), &UInt32Array::from(source), None).expect("indices are in bounds")
}
