//! The chunk codec: one column of one date to bytes and back.
//!
//! Every chunk is an 11-byte header followed by one zstd frame with a content checksum:
//!
//! | bytes | meaning |
//! |---|---|
//! | 0 | codec version (1) |
//! | 1 | type tag ([`ValueType::tag`]; [`ROWS_TAG`] for a row chunk) |
//! | 2..6 | rows, u32 LE |
//! | 6 | flags: bit 0 = a validity bitmap is present; bit 1 = decimal doubles; bit 2 = a dictionary |
//! | 7..11 | uncompressed length, u32 LE |
//!
//! The uncompressed payload is the validity bitmap (if present, LSB-first like Arrow's) followed
//! by the values. Fixed-width values are byte-shuffled (all first bytes, then all second bytes,
//! ...) because float noise compresses badly otherwise. A fixed-width chunk with at most 256
//! distinct values (see [`dictionary`]) is stored as a one-byte count less one, the values, and
//! a one-byte index per row instead; doubles that are all short decimals (see [`decimal`]) as a
//! one-byte exponent and shuffled zigzag integers. Text is shuffled u32 lengths followed by the
//! UTF-8 bytes; booleans are a bitmap. A row chunk holds the sorted symbol ids as shuffled u32
//! deltas.
//!
//! The bytes are a function of the column's content alone: a null slot is stored as zero
//! whatever the array held under it, so a commit can tell an unchanged re-fetch by its bytes.
//!
//! Decoding never panics: any bytes either decode to a valid array or give an error.

use std::cell::RefCell;
use std::sync::Arc;

use arrow::array::{make_array, Array, ArrayData, ArrayRef, AsArray};
use arrow::buffer::{Buffer, MutableBuffer};

use crate::types::ValueType;

mod decimal;
mod dictionary;

/// The codec version in byte 0 of every chunk.
pub const CODEC_VERSION: u8 = 1;
/// The type tag of row chunks.
pub const ROWS_TAG: u8 = 0;
const HEADER_LEN: usize = 11;
const HAS_NULLS: u8 = 1;
const DECIMAL: u8 = 2;
const DICTIONARY: u8 = 4;
/// No chunk decompresses to more than this; a larger claim is corruption.
const MAX_RAW_LEN: usize = 1 << 31;

/// Encodes a column. The array's type must be `dtype.arrow()`.
pub fn encode_values(array: &dyn Array, dtype: ValueType, level: i32) -> Vec<u8> {
    debug_assert_eq!(array.data_type(), &dtype.arrow());
    let rows = array.len();
    let mut raw = Vec::new();
    let mut flags = 0;
    let nulls = array.nulls().filter(|n| n.null_count() > 0);
    if let Some(nulls) = nulls {
        flags |= HAS_NULLS;
        raw.extend_from_slice(&nulls.inner().sliced().as_slice()[..rows.div_ceil(8)]);
        if rows % 8 != 0 {
            *raw.last_mut().expect("rows > 0") &= (1u8 << (rows % 8)) - 1;
        }
    }
    let fixed = dtype.width().map(|width| {
        let data = array.to_data();
        (width, data.buffers()[0].slice_with_length(data.offset() * width, rows * width))
    });
    let is_valid = |i: usize| nulls.is_none_or(|n| n.is_valid(i));
    let indexed = fixed
        .as_ref()
        .filter(|(width, _)| *width >= 2)
        .and_then(|(width, bytes)| dictionary::encode(bytes.as_slice(), *width, is_valid));
    let decimals = match dtype {
        ValueType::Float64 if indexed.is_none() => {
            let floats = array.as_primitive::<arrow::datatypes::Float64Type>().values();
            decimal::encode(floats, is_valid)
        }
        _ => None,
    };
    match (fixed, indexed, decimals) {
        (Some((width, _)), Some((values, indices)), _) => {
            flags |= DICTIONARY;
            raw.push(u8::try_from(values.len() / width - 1).expect("at most 256 values"));
            raw.extend_from_slice(&values);
            raw.extend_from_slice(&indices);
        }
        (Some(_), None, Some((exponent, ints))) => {
            flags |= DECIMAL;
            raw.push(exponent);
            let bytes: Vec<u8> = ints.iter().flat_map(|n| n.to_le_bytes()).collect();
            shuffle(&bytes, 8, &mut raw);
        }
        (Some((width, bytes)), None, None) if nulls.is_some() => {
            let mut canonical = bytes.as_slice().to_vec();
            for (i, value) in canonical.chunks_exact_mut(width).enumerate() {
                if !is_valid(i) {
                    value.fill(0);
                }
            }
            shuffle(&canonical, width, &mut raw);
        }
        (Some((width, bytes)), None, None) => shuffle(bytes.as_slice(), width, &mut raw),
        (None, ..) if dtype == ValueType::Bool => {
            raw.extend_from_slice(&array.as_boolean().values().sliced().as_slice()[..rows.div_ceil(8)]);
        }
        (None, ..) => {
            let text = array.as_string::<i32>();
            let offsets = text.value_offsets();
            let lengths: Vec<u8> = offsets.windows(2).flat_map(|w| ((w[1] - w[0]) as u32).to_le_bytes()).collect();
            shuffle(&lengths, 4, &mut raw);
            raw.extend_from_slice(&text.values()[offsets[0] as usize..offsets[rows] as usize]);
        }
    }
    frame(dtype.tag(), rows, flags, &raw, level)
}

/// Decodes a column chunk written by [`encode_values`] for a field of type `dtype`.
///
/// # Errors
/// A description of what is wrong with the bytes.
pub fn decode_values(bytes: &[u8], dtype: ValueType) -> Result<ArrayRef, String> {
    let (header, raw) = unframe(bytes, dtype.tag())?;
    let rows = header.rows;
    let mut rest = raw.as_slice();
    let nulls = if header.flags & HAS_NULLS != 0 {
        let (bitmap, tail) = split(rest, rows.div_ceil(8), "validity bitmap")?;
        rest = tail;
        Some(Buffer::from_slice_ref(bitmap))
    } else {
        None
    };
    let builder = ArrayData::builder(dtype.arrow()).len(rows).null_bit_buffer(nulls);
    if header.flags & DECIMAL != 0 && header.flags & DICTIONARY != 0 {
        return Err("chunk claims two encodings".into());
    }
    let builder = match (dtype, dtype.width()) {
        (ValueType::Float64, Some(width)) if header.flags & DECIMAL != 0 => {
            let (exponent, tail) = split(rest, 1, "decimal exponent")?;
            let (ints, tail) = split(tail, rows * width, "values")?;
            rest = tail;
            let mut buffer = MutableBuffer::from_len_zeroed(ints.len());
            unshuffle(ints, width, buffer.as_slice_mut());
            decimal::decode(exponent[0], buffer.as_slice_mut())?;
            builder.add_buffer(buffer.into())
        }
        _ if header.flags & DECIMAL != 0 => return Err(format!("decimal flag on a {} chunk", dtype.arrow())),
        (_, Some(width)) if header.flags & DICTIONARY != 0 => {
            let (count, tail) = split(rest, 1, "dictionary size")?;
            let (values, tail) = split(tail, (usize::from(count[0]) + 1) * width, "dictionary values")?;
            let (indices, tail) = split(tail, rows, "dictionary indices")?;
            rest = tail;
            let mut buffer = MutableBuffer::from_len_zeroed(rows * width);
            dictionary::decode(values, indices, width, buffer.as_slice_mut())?;
            builder.add_buffer(buffer.into())
        }
        _ if header.flags & DICTIONARY != 0 => return Err(format!("dictionary flag on a {} chunk", dtype.arrow())),
        (_, Some(width)) => {
            let (values, tail) = split(rest, rows * width, "values")?;
            rest = tail;
            let mut buffer = MutableBuffer::from_len_zeroed(values.len());
            unshuffle(values, width, buffer.as_slice_mut());
            builder.add_buffer(buffer.into())
        }
        (ValueType::Bool, None) => {
            let (bits, tail) = split(rest, rows.div_ceil(8), "values")?;
            rest = tail;
            builder.add_buffer(Buffer::from_slice_ref(bits))
        }
        (_, None) => {
            let (shuffled, tail) = split(rest, rows * 4, "text lengths")?;
            let mut lengths = vec![0u8; shuffled.len()];
            unshuffle(shuffled, 4, &mut lengths);
            let mut offsets = MutableBuffer::new((rows + 1) * 4);
            let mut end: i64 = 0;
            offsets.push(0i32);
            for length in lengths.chunks_exact(4) {
                end += i64::from(u32::from_le_bytes([length[0], length[1], length[2], length[3]]));
                let offset = i32::try_from(end).map_err(|_| "text longer than 2 GiB".to_string())?;
                offsets.push(offset);
            }
            let (text, tail) = split(tail, end as usize, "text bytes")?;
            rest = tail;
            builder.add_buffer(offsets.into()).add_buffer(Buffer::from_slice_ref(text))
        }
    };
    if !rest.is_empty() {
        return Err(format!("{} unexpected trailing bytes", rest.len()));
    }
    let data = builder.build().map_err(|e| format!("invalid column: {e}"))?;
    Ok(make_array(data))
}

/// Encodes a strictly increasing list of symbol ids.
pub fn encode_rows(ids: &[u32], level: i32) -> Vec<u8> {
    debug_assert!(ids.windows(2).all(|w| w[0] < w[1]), "symbol ids must be sorted and unique");
    let mut previous = 0;
    let deltas: Vec<u8> = ids
        .iter()
        .flat_map(|&id| {
            let delta = id - previous;
            previous = id;
            delta.to_le_bytes()
        })
        .collect();
    let mut raw = Vec::with_capacity(deltas.len());
    shuffle(&deltas, 4, &mut raw);
    frame(ROWS_TAG, ids.len(), 0, &raw, level)
}

/// Decodes a row chunk written by [`encode_rows`].
///
/// # Errors
/// A description of what is wrong with the bytes, including ids that are not strictly increasing.
pub fn decode_rows(bytes: &[u8]) -> Result<Arc<[u32]>, String> {
    let (header, raw) = unframe(bytes, ROWS_TAG)?;
    if raw.len() != header.rows * 4 {
        return Err(format!("{} bytes of ids for {} rows", raw.len(), header.rows));
    }
    let mut deltas = vec![0u8; raw.len()];
    unshuffle(&raw, 4, &mut deltas);
    let mut ids = Vec::with_capacity(header.rows);
    let mut id: u32 = 0;
    for (i, delta) in deltas.chunks_exact(4).enumerate() {
        let delta = u32::from_le_bytes([delta[0], delta[1], delta[2], delta[3]]);
        if i > 0 && delta == 0 {
            return Err("symbol ids are not strictly increasing".into());
        }
        id = id.checked_add(delta).ok_or("symbol id overflows")?;
        ids.push(id);
    }
    Ok(ids.into())
}

/// The row count of a chunk, read from its header without decompressing.
pub fn chunk_rows(bytes: &[u8]) -> Option<usize> {
    parse_header(bytes).ok().map(|h| h.rows)
}

struct Header {
    rows: usize,
    flags: u8,
    raw_len: usize,
}

fn parse_header(bytes: &[u8]) -> Result<Header, String> {
    let header: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| format!("chunk of {} bytes is shorter than its header", bytes.len()))?;
    if header[0] != CODEC_VERSION {
        return Err(format!("unknown codec version {}", header[0]));
    }
    Ok(Header {
        rows: u32::from_le_bytes([header[2], header[3], header[4], header[5]]) as usize,
        flags: header[6],
        raw_len: u32::from_le_bytes([header[7], header[8], header[9], header[10]]) as usize,
    })
}

fn frame(tag: u8, rows: usize, flags: u8, raw: &[u8], level: i32) -> Vec<u8> {
    let rows = u32::try_from(rows).expect("a chunk holds fewer than 2^32 rows");
    let raw_len = u32::try_from(raw.len()).expect("a chunk is smaller than 4 GiB");
    let mut out = Vec::with_capacity(HEADER_LEN + raw.len() / 2 + 64);
    out.push(CODEC_VERSION);
    out.push(tag);
    out.extend_from_slice(&rows.to_le_bytes());
    out.push(flags);
    out.extend_from_slice(&raw_len.to_le_bytes());
    COMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().is_none_or(|(l, _)| *l != level) {
            let mut compressor = zstd::bulk::Compressor::new(level).expect("zstd context");
            compressor.include_checksum(true).expect("zstd checksum flag");
            *cell = Some((level, compressor));
        }
        let (_, compressor) = cell.as_mut().expect("set above");
        let compressed = compressor.compress(raw).expect("zstd compression of an in-memory buffer");
        out.extend_from_slice(&compressed);
    });
    out
}

fn unframe(bytes: &[u8], expected_tag: u8) -> Result<(Header, Vec<u8>), String> {
    let header = parse_header(bytes)?;
    if bytes[1] != expected_tag {
        return Err(format!("chunk has type tag {}, expected {expected_tag}", bytes[1]));
    }
    if header.raw_len > MAX_RAW_LEN {
        return Err(format!("chunk claims {} uncompressed bytes", header.raw_len));
    }
    let frame = &bytes[HEADER_LEN..];
    match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(size)) if size == header.raw_len as u64 => {}
        _ => return Err("zstd frame does not match the header's length".into()),
    }
    let raw =
        DECOMPRESSOR.with(|d| d.borrow_mut().decompress(frame, header.raw_len).map_err(|e| format!("zstd: {e}")))?;
    if raw.len() != header.raw_len {
        return Err(format!("decompressed {} bytes, header says {}", raw.len(), header.raw_len));
    }
    Ok((header, raw))
}

fn split<'a>(bytes: &'a [u8], len: usize, what: &str) -> Result<(&'a [u8], &'a [u8]), String> {
    if bytes.len() < len {
        return Err(format!("{what}: need {len} bytes, chunk has {}", bytes.len()));
    }
    Ok(bytes.split_at(len))
}

thread_local! {
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<zstd::bulk::Decompressor<'static>> =
        RefCell::new(zstd::bulk::Decompressor::new().expect("zstd context"));
}

/// Appends `src` (values of `width` bytes) to `out` as byte planes.
fn shuffle(src: &[u8], width: usize, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + src.len(), 0);
    if width == 1 {
        out[start..].copy_from_slice(src);
        return;
    }
    let n = src.len() / width;
    let dst = &mut out[start..];
    for (plane, dst_plane) in dst.chunks_exact_mut(n.max(1)).enumerate().take(width) {
        for (d, value) in dst_plane.iter_mut().zip(src.chunks_exact(width)) {
            *d = value[plane];
        }
    }
}

/// The inverse of [`shuffle`]: `dst.len() == src.len()`.
fn unshuffle(src: &[u8], width: usize, dst: &mut [u8]) {
    if width == 1 {
        dst.copy_from_slice(src);
        return;
    }
    let n = src.len() / width;
    for (plane, src_plane) in src.chunks_exact(n.max(1)).enumerate().take(width) {
        for (value, s) in dst.chunks_exact_mut(width).zip(src_plane) {
            value[plane] = *s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    use proptest::prelude::*;

    const ALL_TYPES: [ValueType; 15] = [
        ValueType::Bool,
        ValueType::Int8,
        ValueType::UInt8,
        ValueType::Int16,
        ValueType::Int32,
        ValueType::Int64,
        ValueType::Float32,
        ValueType::Float64,
        ValueType::Date32,
        ValueType::Timestamp(0),
        ValueType::Timestamp(1),
        ValueType::Timestamp(2),
        ValueType::Timestamp(3),
        ValueType::Utf8,
        ValueType::Decimal128(18, 4),
    ];

    fn round_trip(array: ArrayRef, dtype: ValueType) {
        let bytes = encode_values(array.as_ref(), dtype, 3);
        let decoded = decode_values(&bytes, dtype).unwrap();
        assert_eq!(decoded.as_ref(), array.as_ref());
        assert_eq!(chunk_rows(&bytes), Some(array.len()));
    }

    #[test]
    fn what_lies_under_a_null_does_not_change_the_bytes() {
        // Noise no decimal or dictionary encoding takes, so the values are stored as they are.
        let noise = |i: u64| f64::from_bits(0x3ff0_0000_0000_0000 | i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 12);
        let valid: Vec<bool> = (0..300).map(|i| i % 7 != 3).collect();
        let under_null = |garbage: f64| -> ArrayRef {
            let values: Vec<f64> = (0..300).map(|i| if valid[i as usize] { noise(i) } else { garbage }).collect();
            let data = ArrayData::builder(ValueType::Float64.arrow())
                .len(300)
                .add_buffer(Buffer::from_slice_ref(&values))
                .null_bit_buffer(Some(arrow::buffer::BooleanBuffer::from(valid.clone()).into_inner()))
                .build()
                .unwrap();
            make_array(data)
        };
        let (zeros, garbage) = (under_null(0.0), under_null(12345.678));
        assert_eq!(zeros.as_ref(), garbage.as_ref(), "the same column");
        assert_eq!(
            encode_values(zeros.as_ref(), ValueType::Float64, 3),
            encode_values(garbage.as_ref(), ValueType::Float64, 3)
        );
        round_trip(garbage, ValueType::Float64);
    }

    proptest! {
        #[test]
        fn floats_round_trip(values in prop::collection::vec(prop::option::weighted(0.9, any::<f64>().prop_filter("NaN != NaN", |v| !v.is_nan())), 0..300)) {
            round_trip(Arc::new(Float64Array::from(values)), ValueType::Float64);
        }

        #[test]
        fn decimal_floats_round_trip(cents in prop::collection::vec(prop::option::weighted(0.9, -1_000_000i64..1_000_000), 0..300)) {
            let values = Float64Array::from_iter(cents.iter().map(|c| c.map(|c| c as f64 / 100.0)));
            let bytes = encode_values(&values, ValueType::Float64, 3);
            // Up to 256 distinct values make a dictionary, which wins over decimals.
            prop_assert!(values.null_count() == values.len() || bytes[6] & (DECIMAL | DICTIONARY) != 0, "not plain doubles");
            round_trip(Arc::new(values), ValueType::Float64);
        }

        #[test]
        fn ints_round_trip(values in prop::collection::vec(prop::option::of(any::<i64>()), 0..300)) {
            round_trip(Arc::new(Int64Array::from(values)), ValueType::Int64);
        }

        #[test]
        fn bools_round_trip(values in prop::collection::vec(prop::option::of(any::<bool>()), 0..300)) {
            round_trip(Arc::new(BooleanArray::from(values)), ValueType::Bool);
        }

        #[test]
        fn text_round_trips(values in prop::collection::vec(prop::option::of(".{0,12}"), 0..100)) {
            round_trip(Arc::new(StringArray::from(values)), ValueType::Utf8);
        }

        #[test]
        fn sliced_arrays_encode_their_slice(values in prop::collection::vec(prop::option::of(any::<i64>()), 2..200), cut in 0usize..100) {
            let full = Int64Array::from(values.clone());
            let offset = cut % values.len();
            let sliced = full.slice(offset, values.len() - offset);
            round_trip(Arc::new(sliced), ValueType::Int64);
            let text = StringArray::from(values.iter().map(|v| v.map(|v| v.to_string())).collect::<Vec<_>>());
            round_trip(Arc::new(text.slice(offset, values.len() - offset)), ValueType::Utf8);
            let bools = BooleanArray::from(values.iter().map(|v| v.map(|v| v % 3 == 0)).collect::<Vec<_>>());
            round_trip(Arc::new(bools.slice(offset, values.len() - offset)), ValueType::Bool);
        }

        #[test]
        fn keys_round_trip(mut ids in prop::collection::vec(any::<u32>(), 0..500)) {
            ids.sort_unstable();
            ids.dedup();
            prop_assert_eq!(&*decode_rows(&encode_rows(&ids, 3)).unwrap(), ids.as_slice());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_rows(&bytes);
            for dtype in [ValueType::Float64, ValueType::Utf8, ValueType::Bool, ValueType::Decimal128(10, 2)] {
                let _ = decode_values(&bytes, dtype);
            }
        }

        /// The decoder's fuzz target: a well-formed header and zstd frame around an arbitrary
        /// payload, for every type and flag combination, so the bytes reach the decoders behind
        /// the frame checks (bitmaps, dictionaries, decimals, text offsets and UTF-8).
        #[test]
        fn arbitrary_payloads_in_valid_frames_never_panic(
            payload in prop::collection::vec(any::<u8>(), 0..400),
            divisor in 1usize..18,
            flags in 0u8..8,
            type_index in 0usize..ALL_TYPES.len(),
        ) {
            // Row counts that divide the payload, so lengths often line up and decoding runs on.
            let rows = payload.len() / divisor;
            let dtype = ALL_TYPES[type_index];
            let bytes = frame(dtype.tag(), rows, flags, &payload, 1);
            if let Ok(array) = decode_values(&bytes, dtype) {
                prop_assert_eq!(array.len(), rows);
                prop_assert_eq!(array.data_type(), &dtype.arrow());
                array.to_data().validate_full().map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            let keys = frame(ROWS_TAG, rows, flags, &payload, 1);
            if let Ok(ids) = decode_rows(&keys) {
                prop_assert!(ids.windows(2).all(|w| w[0] < w[1]), "key ids strictly increase");
            }
        }

        #[test]
        fn flipped_bytes_are_errors_not_wrong_data(values in prop::collection::vec(any::<i64>(), 1..100), at in any::<usize>(), bit in 0u8..8) {
            let array: ArrayRef = Arc::new(Int64Array::from(values));
            let mut bytes = encode_values(array.as_ref(), ValueType::Int64, 3);
            let at = at % bytes.len();
            bytes[at] ^= 1 << bit;
            if let Ok(decoded) = decode_values(&bytes, ValueType::Int64) {
                // Only the flags byte may flip harmlessly into "bitmap present", which then
                // cannot parse, so any successful decode must be the original data.
                prop_assert_eq!(decoded.as_ref(), array.as_ref());
            }
        }
    }

    #[test]
    fn other_types_round_trip() {
        round_trip(Arc::new(Date32Array::from(vec![Some(0), None, Some(-5), Some(20000)])), ValueType::Date32);
        round_trip(Arc::new(TimestampMicrosecondArray::from(vec![Some(1), None, Some(-7)])), ValueType::Timestamp(2));
        let decimals =
            Decimal128Array::from(vec![Some(12345), None, Some(-1)]).with_precision_and_scale(10, 2).unwrap();
        round_trip(Arc::new(decimals), ValueType::Decimal128(10, 2));
    }

    #[test]
    fn decimal_doubles_compress_better_than_noise() {
        let prices: Vec<f64> = (0..5000u32).map(|i| f64::from(i.wrapping_mul(7919) % 20_000 + 100) / 100.0).collect();
        let decimal = encode_values(&Float64Array::from(prices.clone()), ValueType::Float64, 3);
        let noisy: Vec<f64> = prices.iter().map(|p| p * (1.0 + f64::EPSILON)).collect();
        let plain = encode_values(&Float64Array::from(noisy), ValueType::Float64, 3);
        assert_eq!(decimal[6] & DECIMAL, DECIMAL);
        assert_eq!(plain[6] & DECIMAL, 0);
        assert!(decimal.len() * 2 < plain.len(), "{} vs {}", decimal.len(), plain.len());
    }

    #[test]
    fn few_distinct_values_are_a_dictionary() {
        let factors: Vec<Option<f64>> =
            (0..5000u32).map(|i| (i % 97 != 0).then(|| 1.1f64.powi((i.wrapping_mul(7919) % 9) as i32))).collect();
        let array: ArrayRef = Arc::new(Float64Array::from(factors.clone()));
        let indexed = encode_values(array.as_ref(), ValueType::Float64, 3);
        assert_eq!(indexed[6] & DICTIONARY, DICTIONARY);
        let noisy: Vec<Option<f64>> = factors.iter().enumerate().map(|(i, v)| v.map(|v| v + i as f64 * 1e-9)).collect();
        let plain = encode_values(&Float64Array::from(noisy), ValueType::Float64, 3);
        assert_eq!(plain[6] & DICTIONARY, 0);
        assert!(indexed.len() * 4 < plain.len(), "{} vs {}", indexed.len(), plain.len());
        round_trip(array, ValueType::Float64);
        round_trip(Arc::new(Date32Array::from(vec![Some(3), None, Some(3), Some(9)])), ValueType::Date32);
    }

    #[test]
    fn two_encodings_are_an_error() {
        let mut bytes = encode_values(&Float64Array::from(vec![1.25, 2.5]), ValueType::Float64, 3);
        bytes[6] |= DECIMAL | DICTIONARY;
        assert!(decode_values(&bytes, ValueType::Float64).unwrap_err().contains("two encodings"));
    }

    #[test]
    fn dictionary_flag_on_text_is_an_error() {
        let mut bytes = encode_values(&StringArray::from(vec!["a"]), ValueType::Utf8, 3);
        bytes[6] |= DICTIONARY;
        assert!(decode_values(&bytes, ValueType::Utf8).unwrap_err().contains("dictionary flag"));
    }

    #[test]
    fn decimal_flag_on_other_types_is_an_error() {
        // More distinct values than a dictionary holds, so the chunk is plain.
        let mut bytes = encode_values(&Int64Array::from_iter_values(0..300), ValueType::Int64, 3);
        bytes[6] |= DECIMAL;
        assert!(decode_values(&bytes, ValueType::Int64).unwrap_err().contains("decimal flag"));
    }

    #[test]
    fn wrong_type_is_an_error() {
        let bytes = encode_values(&Float64Array::from(vec![1.0]), ValueType::Float64, 3);
        let err = decode_values(&bytes, ValueType::Int64).unwrap_err();
        assert!(err.contains("type tag"), "{err}");
    }

    #[test]
    fn shuffle_is_byte_planes() {
        let mut out = Vec::new();
        shuffle(&[1, 2, 3, 4, 5, 6], 2, &mut out);
        assert_eq!(out, [1, 3, 5, 2, 4, 6]);
        let mut back = [0; 6];
        unshuffle(&out, 2, &mut back);
        assert_eq!(back, [1, 2, 3, 4, 5, 6]);
    }
}
