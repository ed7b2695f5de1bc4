//! The chunk codec on one day of a 5,000-symbol market: encode and decode of a float column
//! (price-like and noise-like) and of a key chunk.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array};
use cheetah_core::internals::{decode_rows, decode_values, encode_rows, encode_values};
use cheetah_core::ValueType;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const ROWS: usize = 5_000;

/// A seeded xorshift, so runs compare like with like.
fn noise(seed: u64) -> impl Iterator<Item = f64> {
    let mut state = seed.max(1);
    std::iter::repeat_with(move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    })
}

fn columns() -> Vec<(&'static str, ArrayRef)> {
    let prices = noise(1).take(ROWS).map(|x| ((10.0 + 90.0 * x) * 100.0).round() / 100.0);
    let ratios = noise(2).take(ROWS).map(|x| x * 40.0 - 5.0);
    vec![
        ("price_2dp", Arc::new(Float64Array::from_iter_values(prices))),
        ("noise", Arc::new(Float64Array::from_iter_values(ratios))),
    ]
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("float64_chunk");
    group.throughput(Throughput::Bytes((ROWS * 8) as u64));
    for (name, column) in columns() {
        let encoded = encode_values(column.as_ref(), ValueType::Float64, 3);
        eprintln!(
            "{name}: {} rows -> {} bytes ({:.2} of raw)",
            ROWS,
            encoded.len(),
            encoded.len() as f64 / (ROWS * 8) as f64
        );
        group.bench_with_input(BenchmarkId::new("encode", name), &column, |b, column| {
            b.iter(|| encode_values(column.as_ref(), ValueType::Float64, 3))
        });
        group.bench_with_input(BenchmarkId::new("decode", name), &encoded, |b, encoded| {
            b.iter(|| decode_values(encoded, ValueType::Float64).expect("decodes"))
        });
    }
    group.finish();

    let ids: Vec<u32> = (0..ROWS as u32 * 2).step_by(2).collect();
    let keys = encode_rows(&ids, 3);
    let mut group = c.benchmark_group("key_chunk");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("encode", |b| b.iter(|| encode_rows(&ids, 3)));
    group.bench_function("decode", |b| b.iter(|| decode_rows(&keys).expect("decodes")));
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
