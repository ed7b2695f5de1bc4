//! Low-cardinality chunks: a fixed-width chunk with at most 256 distinct values (an adjustment
//! factor, a rating, a flag stored as an integer) is stored as those values and a one-byte
//! index per row. Parquet's dictionary encoding wins on such columns; byte-shuffling does not
//! see that the same few values repeat.

use std::collections::HashMap;

/// A one-byte index addresses this many values.
const MAX_VALUES: usize = 256;

/// The distinct values of the valid rows of `bytes` (values of `width` bytes), in first-seen
/// order and concatenated, and each row's index into them; invalid rows take index 0. `None`
/// when there are more than 256 distinct values or no valid row.
pub fn encode(bytes: &[u8], width: usize, valid: impl Fn(usize) -> bool) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut seen: HashMap<&[u8], u8> = HashMap::with_capacity(MAX_VALUES);
    let mut values = Vec::new();
    let mut indices = Vec::with_capacity(bytes.len() / width);
    for (i, value) in bytes.chunks_exact(width).enumerate() {
        if !valid(i) {
            indices.push(0);
            continue;
        }
        let next = seen.len();
        let index = *seen.entry(value).or_insert_with(|| {
            values.extend_from_slice(value);
            next as u8
        });
        if seen.len() > MAX_VALUES {
            return None;
        }
        indices.push(index);
    }
    (!seen.is_empty()).then_some((values, indices))
}

/// Writes each row's value, `values[indices[i]]`, into `out`.
///
/// # Errors
/// An index past the values, which only corruption writes.
pub fn decode(values: &[u8], indices: &[u8], width: usize, out: &mut [u8]) -> Result<(), String> {
    for (slot, &index) in out.chunks_exact_mut(width).zip(indices) {
        let start = usize::from(index) * width;
        let value =
            values.get(start..start + width).ok_or_else(|| format!("dictionary index {index} is out of range"))?;
        slot.copy_from_slice(value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn few_values_are_indexed_in_first_seen_order() {
        let bytes: Vec<u8> = [7u16, 9, 7, 7, 3].iter().flat_map(|v| v.to_le_bytes()).collect();
        let (values, indices) = encode(&bytes, 2, |i| i != 1).unwrap();
        assert_eq!(values, [7, 0, 3, 0]);
        assert_eq!(indices, [0, 0, 0, 0, 1], "the invalid row takes index 0");
    }

    #[test]
    fn many_values_or_none_valid_are_not_a_dictionary() {
        let bytes: Vec<u8> = (0u16..300).flat_map(|v| v.to_le_bytes()).collect();
        assert!(encode(&bytes, 2, |_| true).is_none());
        assert!(encode(&bytes[..512], 2, |_| true).is_some(), "256 values fit");
        assert!(encode(&bytes, 2, |_| false).is_none());
    }

    #[test]
    fn a_bad_index_is_an_error() {
        let mut out = [0u8; 4];
        assert!(decode(&[1, 0], &[0, 1], 2, &mut out).unwrap_err().contains("out of range"));
    }

    proptest! {
        #[test]
        fn round_trips(values in prop::collection::vec(0u64..20, 0..300), width in prop::sample::select(vec![2usize, 4, 8])) {
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()[..width].to_vec()).collect();
            if let Some((dictionary, indices)) = encode(&bytes, width, |_| true) {
                let mut out = vec![0u8; bytes.len()];
                decode(&dictionary, &indices, width, &mut out).unwrap();
                prop_assert_eq!(out, bytes);
            } else {
                prop_assert!(values.is_empty());
            }
        }
    }
}
