//! Dictionary codes, 8, 16 or 32 bits wide: whether each indexes its levels, in one pass the
//! compiler vectorises. Arrow's `DictionaryArray::try_new` checks one key at a time, which was
//! 7% of a repeated 10-million-row read.

use arrow::datatypes::DataType;

/// How wide a dictionary's codes are: as wide as pandas keeps a MultiIndex level's codes for
/// as many levels (`coerce_indexer_dtype`), so a frame takes them without a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Width {
    I8,
    I16,
    I32,
}

impl Width {
    /// The width of `date` codes into `levels` dates.
    pub(crate) fn of_dates(levels: usize) -> Self {
        if levels < i8::MAX as usize {
            Self::I8
        } else {
            Self::of_symbols(levels)
        }
    }

    /// The width of `symbol` codes into `levels` symbols: never 8 bits, as the shared layer's
    /// symbol codes are not, which a read joins to the store's.
    pub(crate) fn of_symbols(levels: usize) -> Self {
        if levels < i16::MAX as usize {
            Self::I16
        } else {
            Self::I32
        }
    }

    pub(crate) fn bytes(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 => 2,
            Self::I32 => 4,
        }
    }

    pub(crate) fn arrow(self) -> DataType {
        match self {
            Self::I8 => DataType::Int8,
            Self::I16 => DataType::Int16,
            Self::I32 => DataType::Int32,
        }
    }
}

/// Whether every one of `codes` is in `0..limit`.
pub(crate) fn i8_below(codes: &[i8], limit: usize) -> bool {
    max_unsigned(codes, |v| v as u8).is_none_or(|m| usize::from(m) < limit)
}

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
            let tiny: Vec<i8> = codes.iter().map(|&c| c as i8).collect();
            assert!(i8_below(&tiny, 7));
            for at in 0..len {
                for bad in [7, -1] {
                    let mut c = codes.clone();
                    c[at] = bad;
                    assert!(!i16_below(&c, 7), "{bad} at {at} of {len}");
                    let mut w = wide.clone();
                    w[at] = i32::from(bad);
                    assert!(!i32_below(&w, 7), "{bad} at {at} of {len}");
                    let mut t = tiny.clone();
                    t[at] = bad as i8;
                    assert!(!i8_below(&t, 7), "{bad} at {at} of {len}");
                }
            }
        }
        assert!(i32_below(&[i32::MAX - 1], i32::MAX as usize));
        assert!(!i16_below(&[0], 0), "nothing is below 0");
        assert!(i8_below(&[126], 127) && !i8_below(&[i8::MIN], 127));
    }
}
