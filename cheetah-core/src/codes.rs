//! Dictionary codes, 16 or 32 bits wide: whether each indexes its levels, in one pass the
//! compiler vectorises. Arrow's `DictionaryArray::try_new` checks one key at a time, which was
//! 7% of a repeated 10-million-row read.

/// Whether every one of `codes` is in `0..limit`.
pub(crate) fn i16_below(codes: &[i16], limit: usize) -> bool {
    max_unsigned(codes, |v| v as u16).is_none_or(|m| usize::from(m) < limit)
}

/// Whether every one of `codes` is in `0..limit`.
pub(crate) fn i32_below(codes: &[i32], limit: usize) -> bool {
    max_unsigned(codes, |v| v as u32).is_none_or(|m| (m as usize) < limit)
}

/// The largest of `values` as `unsigned` maps them, or `None` for none, in lanes the compiler
/// turns into vector instructions. Read as unsigned, a negative code is larger than any limit.
fn max_unsigned<T: Copy, U: Copy + Ord + Default>(values: &[T], unsigned: impl Fn(T) -> U) -> Option<U> {
    const LANES: usize = 32;
    let mut lanes = [U::default(); LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane = (*lane).max(unsigned(v));
        }
    }
    let tail = rest.iter().map(|&v| unsigned(v)).max();
    (!values.is_empty()).then(|| lanes.into_iter().chain(tail).max().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_at_or_over_the_limit_or_negative_is_refused_wherever_it_sits() {
        for len in [0usize, 1, 31, 32, 33, 100] {
            let codes: Vec<i16> = (0..len).map(|i| (i % 7) as i16).collect();
            assert!(i16_below(&codes, 7), "{len} codes below 7");
            let wide: Vec<i32> = codes.iter().map(|&c| i32::from(c)).collect();
            assert!(i32_below(&wide, 7));
            for at in 0..len {
                for bad in [7, -1] {
                    let mut c = codes.clone();
                    c[at] = bad;
                    assert!(!i16_below(&c, 7), "{bad} at {at} of {len}");
                    let mut w = wide.clone();
                    w[at] = i32::from(bad);
                    assert!(!i32_below(&w, 7), "{bad} at {at} of {len}");
                }
            }
        }
        assert!(i32_below(&[i32::MAX - 1], i32::MAX as usize));
        assert!(!i16_below(&[0], 0), "nothing is below 0");
    }
}
