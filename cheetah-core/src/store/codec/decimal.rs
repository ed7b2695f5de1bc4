//! Decimal doubles: a Float64 chunk whose every value is an integer over a power of ten (prices
//! with two decimals, say) is stored as those integers, which compress several times better than
//! the doubles' noisy mantissas. The idea is ALP's (Afroozeh, Kuffó and Boncz, SIGMOD 2023),
//! without its exceptions: a chunk either round-trips bit for bit or stays plain doubles.

/// Exponents tried; larger ones leave integers too wide to gain anything.
const MAX_EXPONENT: usize = 10;
const POW10: [f64; MAX_EXPONENT + 1] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];
/// Integers up to 2^53 convert to f64 and back exactly.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

/// The smallest exponent `e` for which every valid value is `n / 10^e` for an integer `n`, bit
/// for bit as [`decode`] computes it, with the integers zigzag-encoded (so small negative
/// values stay small); invalid slots hold zero. `None` when no exponent fits, as for noise,
/// NaN, infinities and negative zero.
pub fn encode(values: &[f64], valid: impl Fn(usize) -> bool) -> Option<(u8, Vec<u64>)> {
    'exponent: for (e, &scale) in POW10.iter().enumerate() {
        let mut ints = Vec::with_capacity(values.len());
        for (i, &v) in values.iter().enumerate() {
            if !valid(i) {
                ints.push(0);
                continue;
            }
            let rounded = (v * scale).round();
            // NaN and infinities fail here too.
            if !rounded.is_finite() || rounded.abs() >= MAX_EXACT {
                continue 'exponent;
            }
            let n = rounded as i64;
            // Exactly what `decode` computes, so -0.0 (whose integer is 0) fails here.
            if (n as f64 / scale).to_bits() != v.to_bits() {
                continue 'exponent;
            }
            ints.push(zigzag(n));
        }
        return Some((e as u8, ints));
    }
    None
}

/// Turns the little-endian zigzag integers in `bytes` into the little-endian doubles they stand
/// for, in place.
///
/// # Errors
/// An exponent out of range, which only corruption writes.
pub fn decode(exponent: u8, bytes: &mut [u8]) -> Result<(), String> {
    let scale =
        *POW10.get(usize::from(exponent)).ok_or_else(|| format!("decimal exponent {exponent} is out of range"))?;
    for slot in bytes.chunks_exact_mut(8) {
        let n = unzigzag(u64::from_le_bytes(slot.try_into().expect("8 bytes")));
        // The same expression `encode` checked, so the same bits.
        slot.copy_from_slice(&(n as f64 / scale).to_le_bytes());
    }
    Ok(())
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    (z >> 1) as i64 ^ -((z & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(values: &[f64]) -> Option<u8> {
        let (e, ints) = encode(values, |_| true)?;
        let mut bytes: Vec<u8> = ints.iter().flat_map(|n| n.to_le_bytes()).collect();
        decode(e, &mut bytes).unwrap();
        let back: Vec<u64> = bytes.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().unwrap())).collect();
        assert_eq!(back, values.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        Some(e)
    }

    #[test]
    fn prices_take_the_smallest_exponent() {
        assert_eq!(round_trip(&[12.34, 0.1, -7.5, 100.0, 0.0]), Some(2));
        assert_eq!(round_trip(&[1.0, -3.0, 1e12]), Some(0));
        assert_eq!(round_trip(&[0.3, 0.30000000000000004]), None, "the second is not a short decimal");
    }

    #[test]
    fn specials_stay_plain() {
        for v in [f64::NAN, f64::INFINITY, -0.0, 1e300, f64::MIN_POSITIVE] {
            assert_eq!(encode(&[1.5, v], |_| true), None, "{v}");
        }
    }

    #[test]
    fn invalid_slots_are_not_examined() {
        let (e, ints) = encode(&[1.25, f64::NAN], |i| i == 0).unwrap();
        assert_eq!((e, ints), (2, vec![zigzag(125), 0]));
    }

    #[test]
    fn bad_exponent_is_an_error() {
        assert!(decode(11, &mut [0; 8]).is_err());
    }

    proptest! {
        #[test]
        fn any_doubles_round_trip_or_stay_plain(values in prop::collection::vec(any::<f64>(), 0..50)) {
            round_trip(&values);
        }

        #[test]
        fn rounded_doubles_are_decimal(cents in prop::collection::vec(-10_000_000i64..10_000_000, 1..50), e in 0usize..5) {
            let values: Vec<f64> = cents.iter().map(|&c| c as f64 / POW10[e]).collect();
            let found = round_trip(&values);
            prop_assert!(found.is_some_and(|f| usize::from(f) <= e));
        }

        #[test]
        fn zigzag_inverts(n in any::<i64>()) {
            prop_assert_eq!(unzigzag(zigzag(n)), n);
        }
    }
}
