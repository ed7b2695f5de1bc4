//! The assembler on 250 days of a 5,000-symbol market: the merge of two tables' symbol ids into
//! each day's rows, and the scatter of float fields into the output, for a table whose keys are
//! the rows (a dense copy) and one that covers 97% of them (a sparse scatter with NaN fill).

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array};
use cheetah_core::internals::Day;
use cheetah_core::internals::{assemble, DateLayout, Inputs, OutputPool, SymbolDictionary, SymbolRanking};
use cheetah_core::ValueType;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const SYMBOLS: u32 = 5_000;
const DAYS: usize = 250;

/// A seeded xorshift, so runs compare like with like.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Per day: the sorted ids of the symbols present with probability `keep`.
fn keys(noise: &mut Noise, keep: f64) -> Vec<Option<Arc<[u32]>>> {
    let threshold = (keep * u64::MAX as f64) as u64;
    (0..DAYS).map(|_| Some((0..SYMBOLS).filter(|_| noise.next() <= threshold).collect::<Vec<_>>().into())).collect()
}

fn values(noise: &mut Noise, keys: &[Option<Arc<[u32]>>]) -> Vec<Option<ArrayRef>> {
    keys.iter()
        .map(|k| {
            let n = k.as_ref().map_or(0, |k| k.len());
            Some(Arc::new(Float64Array::from_iter_values((0..n).map(|_| noise.next() as f64))) as ArrayRef)
        })
        .collect()
}

fn assembler(c: &mut Criterion) {
    let mut noise = Noise(7);
    // Ids in an order that is not text order, as a dictionary grown over years would be.
    let names: Vec<Arc<str>> = (0..SYMBOLS).map(|i| Arc::from(format!("{:06}", (i * 7_919) % SYMBOLS))).collect();
    let ranking = SymbolRanking::new(&SymbolDictionary::from_persisted(names));
    let days: Vec<Day> = (0..DAYS as Day).collect();
    let bar = keys(&mut noise, 0.99);
    let valuation: Vec<_> = bar
        .iter()
        .map(|k| k.as_ref().map(|k| k.iter().copied().filter(|_| noise.next() % 100 < 97).collect::<Vec<_>>().into()))
        .collect();
    let close = values(&mut noise, &bar);
    let pe = values(&mut noise, &valuation);
    let rows: u64 = bar.iter().flatten().map(|k| k.len() as u64).sum();

    let mut group = c.benchmark_group("assemble");
    group.throughput(Throughput::Elements(rows));
    group.sample_size(20);
    type Field = (usize, ValueType, Vec<Option<ArrayRef>>);
    let cases: [(&str, Vec<usize>, Vec<Field>); 3] = [
        ("merge_two_tables_no_fields", vec![0, 1], vec![]),
        ("scatter_dense_field", vec![0], vec![(0, ValueType::Float64, close.clone())]),
        (
            "merge_and_scatter_dense_and_sparse",
            vec![0, 1],
            vec![(0, ValueType::Float64, close.clone()), (1, ValueType::Float64, pe.clone())],
        ),
    ];
    for (name, row_tables, fields) in cases {
        let inputs = Inputs {
            days: &days,
            tables: vec![bar.clone(), valuation.clone()],
            row_tables,
            fields,
            symbols: None,
            universe: None,
            ranking: &ranking,
            dates: DateLayout::Date32,
            presence: false,
        };
        let pool = OutputPool::new(1 << 30);
        group.bench_function(BenchmarkId::from_parameter(name), |b| b.iter(|| assemble(&inputs, &pool)));
    }
    group.finish();
}

criterion_group!(benches, assembler);
criterion_main!(benches);
