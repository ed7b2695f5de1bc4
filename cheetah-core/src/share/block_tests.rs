//! The layer in blocks: a refresh writes only the blocks the store changed, and whatever the
//! store went through, every read through the layer equals the same read from the store.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;

use super::format::{Manifest, Segment};
use crate::testing::{config, Market, DAYS, FIRST};
use crate::types::{date_of, Day};
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type};

use crate::{Cache, DateLayout, IntegerNulls, QueryResult, Request};

struct Setup {
    _dir: tempfile::TempDir,
    market: Market,
    shared: Cache,
    plain: Cache,
}

/// A market of `symbols` over `DAYS` days, published in blocks of `block_rows` as one segment
/// over a year of every field, and one of two bar fields over a fortnight.
fn setup(symbols: usize, block_rows: u64) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), "256MiB");
    config.share.as_mut().unwrap().block_rows = block_rows;
    let mut market = Market::new(&config.store.path, symbols, 41);
    for day in FIRST..FIRST + DAYS {
        market.commit(day);
    }
    let shared = Cache::builder(config.clone()).open().unwrap();
    let plain = Cache::builder(config).share(false).open().unwrap();
    shared.publish(date_of(FIRST), date_of(FIRST + 365), None).unwrap();
    let bar = ["bar.close".to_string(), "bar.volume".to_string()];
    shared.publish(date_of(FIRST + 3), date_of(FIRST + 15), Some(&bar)).unwrap();
    Setup { _dir: dir, market, shared, plain }
}

fn manifest(dir: &Path) -> Manifest {
    super::format::decode_manifest(&std::fs::read(dir.join("MANIFEST")).unwrap()).unwrap()
}

fn layer_dir(setup: &Setup) -> std::path::PathBuf {
    setup.shared.config().share.as_ref().unwrap().path.clone()
}

/// Every layer file in `dir`, with its length.
fn files(dir: &Path) -> BTreeMap<String, u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.metadata().ok()?.len())))
        .filter(|(name, _)| name.starts_with('g'))
        .collect()
}

const COLS: [&str; 6] = ["close", "volume", "name", "pe", "mv", "revenue"];

/// Reads `request` both ways and checks they are equal.
fn both(setup: &Setup, request: &Request) -> QueryResult {
    let plain = setup.plain.get(request).unwrap();
    let shared = setup.shared.get(request).unwrap();
    assert_eq!(plain.batch, shared.batch, "{request:?}");
    assert_eq!(plain.rows_per_day, shared.rows_per_day, "{request:?}");
    // A new reader, which reads from the layer alone while the store's head allows it.
    let new = Cache::builder(setup.shared.config().clone()).open().unwrap().get(request).unwrap();
    // A column's null count, learned once per block and reused, is what its bits say.
    for column in shared.batch.columns().iter().chain(new.batch.columns()) {
        let counted = column.nulls().map_or(0, |n| n.len() - n.inner().count_set_bits());
        assert_eq!(column.null_count(), counted, "{request:?}");
    }
    assert_eq!((plain.batch, plain.rows_per_day), (new.batch, new.rows_per_day), "a new reader: {request:?}");
    shared
}

/// Reads of every shape over the days published: the whole segment, a late start, a symbol
/// filter, a base table, fewer fields.
fn check_reads(setup: &Setup, days: Day, dropped: bool) {
    let end = date_of(FIRST + days);
    let all: Vec<String> = COLS.iter().filter(|&&c| !(dropped && c == "mv")).map(|c| c.to_string()).collect();
    let exact = both(setup, &Request::new(date_of(FIRST), end, all.clone()).dates(DateLayout::Dictionary));
    both(setup, &Request::new(date_of(FIRST), end, all.clone()).integer_nulls(IntegerNulls::NanFloat));
    let served = exact.shared.expect("a refreshed layer serves the whole segment");
    assert_eq!(served.rows, exact.batch.num_rows(), "every row from the layer: nothing is stale");
    for start in [1, 7, days - 2] {
        both(setup, &Request::new(date_of(FIRST + start), end, all.clone()));
    }
    let symbols = vec!["S01".to_string(), "S07".to_string(), "A00".to_string()];
    both(setup, &Request::new(date_of(FIRST), end, all[..4].to_vec()).symbols(symbols));
    both(setup, &Request::new(date_of(FIRST + 2), end, vec!["pe".into(), "close".into()]).base("val"));
    both(setup, &Request::new(date_of(FIRST + 3), date_of(FIRST + 15), vec!["close".into(), "volume".into()]));
}

#[derive(Debug, Clone)]
enum Step {
    /// Commits the next date.
    Append,
    /// Recommits a past date with other keys.
    Rewrite(Day),
    /// Corrects a past date's values, keeping its keys.
    Correct(Day),
    /// Recommits a past date as it is: a lookback that finds nothing new.
    Unchanged(Day),
    /// Deletes a past date of `val`.
    Delete(Day),
    /// Lists a new symbol.
    AddSymbol,
    /// Drops `val.mv` from the cache.
    DropField,
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Append),
        2 => (0..DAYS).prop_map(Step::Rewrite),
        3 => (0..DAYS).prop_map(Step::Correct),
        2 => (0..DAYS).prop_map(Step::Unchanged),
        1 => (0..DAYS).prop_map(Step::Delete),
        1 => Just(Step::AddSymbol),
        1 => Just(Step::DropField),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn after_any_changes_and_a_refresh_reads_through_the_layer_equal_the_store(
        steps in prop::collection::vec(arb_step(), 1..7)
    ) {
        let mut setup = setup(12, 64);
        let mut days = DAYS;
        let mut symbols = 0;
        let mut dropped = false;
        for step in steps {
            match step {
                Step::Append => {
                    setup.market.commit(FIRST + days);
                    days += 1;
                }
                Step::Rewrite(d) => setup.market.rewrite(FIRST + d),
                Step::Correct(d) => setup.market.correct(FIRST + d, 0.25),
                Step::Unchanged(d) => {
                    let before = manifest(&layer_dir(&setup)).generation;
                    let version = setup.market.store.latest_version().unwrap();
                    setup.market.correct(FIRST + d, 0.0);
                    let report = setup.shared.refresh_share().unwrap();
                    prop_assert_eq!(report.blocks, 0, "an unchanged lookback writes no block: {:?}", report);
                    if setup.market.store.latest_version().unwrap() == version {
                        prop_assert!(report.generation.is_none(), "nor anything else: {:?}", report);
                        prop_assert_eq!(manifest(&layer_dir(&setup)).generation, before);
                    }
                    // Otherwise it moved a watermark: a new generation names the same blocks
                    // and saves the store's new view.
                }
                Step::Delete(d) => setup.market.delete(FIRST + d),
                Step::AddSymbol => {
                    setup.market.add_symbol(&format!("A{symbols:02}"));
                    symbols += 1;
                }
                Step::DropField => {
                    setup.market.drop_field(7);
                    dropped = true;
                }
            }
            setup.shared.refresh_share().unwrap();
            check_reads(&setup, days, dropped);
        }
    }
}

#[test]
fn a_new_date_writes_only_the_last_block_and_an_unchanged_lookback_nothing() {
    let mut setup = setup(12, 64);
    let dir = layer_dir(&setup);
    let before = files(&dir);
    let old = manifest(&dir);
    setup.market.commit(FIRST + DAYS);
    let report = setup.shared.refresh_share().unwrap();
    let generation = report.generation.expect("a new date is published");
    let after = files(&dir);
    let new: BTreeMap<&String, &u64> =
        after.iter().filter(|(name, _)| name.starts_with(&format!("g{generation}-"))).collect();
    let whole = manifest(&dir).segments.iter().map(Segment::bytes).sum::<u64>();
    let written: u64 = new.values().copied().sum();
    assert_eq!(written, report.bytes, "the report counts what was written");
    let segment = old.segments.iter().find(|s| s.start == FIRST).unwrap();
    let last = segment.blocks.len() - 1;
    assert!(new.contains_key(&super::format::view_name(generation)), "the view is saved with the generation");
    for name in new.keys().filter(|name| name.contains("-s")) {
        let block: usize = name.split("-b").nth(1).unwrap().split('-').next().unwrap().parse().unwrap();
        assert!(name.contains("-s1-") && block >= last, "only the year segment's last blocks: {name}");
    }
    assert!(written * 4 < whole, "{written} of {whole} bytes written");
    // Every file of the blocks before the last is the one published before.
    for name in before.keys().filter(|n| n.contains("-s1-") && !n.contains(&format!("-b{last}-"))) {
        assert!(after.contains_key(name), "{name} is kept");
    }
    check_reads(&setup, DAYS + 1, false);

    // The lookback recommits the last five dates as they are.
    for d in DAYS - 4..=DAYS {
        setup.market.correct(FIRST + d, 0.0);
    }
    let report = setup.shared.refresh_share().unwrap();
    assert!(report.generation.is_none() && report.bytes == 0, "{report:?}");
    assert_eq!(files(&dir), after);
}

#[test]
fn a_corrected_date_rewrites_only_its_blocks_changed_fields() {
    let mut setup = setup(12, 64);
    let dir = layer_dir(&setup);
    let old = manifest(&dir);
    let day = FIRST + 3;
    setup.market.correct(day, 1.0);
    let report = setup.shared.refresh_share().unwrap();
    let generation = report.generation.unwrap();
    let segment = old.segments.iter().find(|s| s.start == FIRST).unwrap();
    // The blocks holding the day's rows.
    let before: u64 = segment.days.iter().take_while(|&&(d, _)| d < day).map(|&(_, n)| n).sum();
    let rows = segment.days.iter().find(|&&(d, _)| d == day).unwrap().1;
    let blocks = (before / 64)..=((before + rows - 1) / 64);
    let new: Vec<String> =
        files(&dir).into_keys().filter(|name| name.starts_with(&format!("g{generation}-"))).collect();
    assert!(!new.is_empty());
    for name in new.iter().filter(|name| name.contains("-s")) {
        let block: u64 = name.split("-b").nth(1).unwrap().split('-').next().unwrap().parse().unwrap();
        // An asof event (fund.revenue, f9) holds from its day on, into later blocks.
        let asof = name.ends_with("-f9") && block >= *blocks.start();
        assert!(blocks.contains(&block) || asof, "{name} outside blocks {blocks:?}");
        // Floats moved; the integer volume, the names and the rows' keys did not.
        assert!(!name.ends_with("-rows") && !name.ends_with("-f3") && !name.ends_with("-f4"), "{name}");
    }
    assert!(report.blocks as usize <= new.len());
    check_reads(&setup, DAYS, false);
}

#[test]
fn a_column_over_blocks_of_whole_pages_is_one_view_of_the_files() {
    // 2,000 symbols make about 40,000 rows: two blocks of 32,768.
    let setup = setup(2000, 1 << 15);
    let dir = layer_dir(&setup);
    let segment = manifest(&dir).segments.into_iter().find(|s| s.start == FIRST).unwrap();
    assert!(segment.blocks.len() >= 2, "{} blocks", segment.blocks.len());
    let cols: Vec<String> = ["close", "volume", "pe"].iter().map(|c| c.to_string()).collect();
    for (start, end) in [(0, DAYS - 1), (5, 20)] {
        let request = Request::new(date_of(FIRST + start), date_of(FIRST + end), cols.clone());
        let result = both(&setup, &request);
        let used = result.shared.expect("served by the layer");
        assert!(used.views && used.rows == result.batch.num_rows(), "{used:?}");
    }
    // Two results map the files afresh: a write into one stays its own.
    let request = Request::new(date_of(FIRST), date_of(FIRST + DAYS - 1), cols);
    let (one, two) = (setup.shared.get(&request).unwrap().batch, setup.shared.get(&request).unwrap().batch);
    let values = |b: &arrow::record_batch::RecordBatch| b.column(2).to_data().buffers()[0].clone();
    assert_ne!(values(&one).as_ptr(), values(&two).as_ptr());
    assert_eq!(values(&one).as_slice(), values(&two).as_slice());
}

#[test]
fn an_integer_with_nulls_comes_as_the_layers_float64_copy_when_pandas_asks_for_it() {
    let setup = setup(2000, 1 << 15);
    let cols: Vec<String> = ["close", "volume", "pe"].iter().map(|c| c.to_string()).collect();
    let request = Request::new(date_of(FIRST), date_of(FIRST + DAYS - 1), cols).integer_nulls(IntegerNulls::NanFloat);
    let plain = setup.plain.get(&request).unwrap();
    let shared = setup.shared.get(&request).unwrap();
    // `volume` is null where only `val` has the row: float64, NaN there, the validity kept.
    let volume = shared.batch.column(3);
    assert_eq!(volume.data_type(), &DataType::Float64);
    assert!(volume.null_count() > 0);
    assert_eq!(plain.batch, shared.batch);
    let used = shared.shared.expect("served by the layer");
    assert!(used.views && used.rows == shared.batch.num_rows(), "{used:?}");
    let floats = volume.as_primitive::<Float64Type>();
    let integers = setup.plain.get(&Request { integer_nulls: IntegerNulls::Validity, ..request.clone() }).unwrap();
    let integers = integers.batch.column(3).as_primitive::<Int64Type>().clone();
    for i in 0..floats.len() {
        match integers.is_valid(i) {
            true => assert_eq!(floats.values()[i], integers.value(i) as f64),
            false => assert!(floats.values()[i].is_nan()),
        }
    }

    // Rows of `bar` alone have no null `volume`: it stays an integer, as pandas keeps it.
    let bar = Request::new(date_of(FIRST + 3), date_of(FIRST + 15), vec!["close".into(), "volume".into()])
        .integer_nulls(IntegerNulls::NanFloat);
    let shared = setup.shared.get(&bar).unwrap();
    assert_eq!(shared.batch.column(3).data_type(), &DataType::Int64);
    assert_eq!(setup.plain.get(&bar).unwrap().batch, shared.batch);
    assert!(shared.shared.is_some_and(|s| s.views));
}
