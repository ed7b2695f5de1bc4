//! Reads through the shared layer against the same reads from the store: a writer commits a
//! seeded market day by day, a reader publishes segments of it, and every request shape is read
//! both ways, with the layer exact and after the store moved on under it.

use std::path::Path;

use arrow::array::{Array, AsArray, StringArray};
use proptest::prelude::*;

use crate::testing::{config, Market, DAYS, FIRST};
use crate::types::{date_of, Day};
use crate::{Cache, DateLayout, QueryResult, Request};

struct Setup {
    _dir: tempfile::TempDir,
    market: Market,
    shared: Cache,
    plain: Cache,
}

/// One block per segment: these tests are of what a segment serves, views included.
fn setup(symbols: usize, seed: u64) -> Setup {
    setup_blocks(symbols, seed, 1 << 15)
}

/// A market of `symbols` published in blocks of `block_rows`.
fn setup_blocks(symbols: usize, seed: u64, block_rows: u64) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), "64MiB");
    config.share.as_mut().unwrap().block_rows = block_rows;
    let mut market = Market::new(&config.store.path, symbols, seed);
    for day in FIRST..FIRST + DAYS {
        market.commit(day);
    }
    // Members: every third symbol from the start, others joining and leaving over the days.
    let intervals = (0..14u8)
        .map(|s| {
            let (start, end) = match s % 3 {
                0 => (FIRST - 30, None),
                1 => (FIRST + Day::from(s), Some(FIRST + Day::from(s) + 7)),
                _ => (FIRST + 12, Some(FIRST + 40)),
            };
            crate::Interval { symbol: format!("S{s:02}"), start: date_of(start), end: end.map(date_of) }
        })
        .collect();
    let mut batch = market.store.batch();
    batch.put_universe("u", &crate::Universe::new(intervals, 0).unwrap());
    market.store.write(batch).unwrap();
    let shared = Cache::builder(config.clone()).open().unwrap();
    let plain = Cache::builder(config).share(false).open().unwrap();
    let (start, end) = (date_of(FIRST), date_of(FIRST + 365));
    shared.publish(start, end, None).unwrap();
    let bar = ["bar.close".to_string(), "bar.volume".to_string()];
    shared.publish(date_of(FIRST + 3), date_of(FIRST + 15), Some(&bar)).unwrap();
    Setup { _dir: dir, market, shared, plain }
}

/// Puts `bytes` in place as the layer's manifest, renamed over the old one as a publisher does.
fn replace_manifest(dir: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::write(dir.join("MANIFEST.new"), bytes).unwrap();
    std::fs::rename(dir.join("MANIFEST.new"), dir.join("MANIFEST")).unwrap();
}

const COLS: [&str; 6] = ["close", "volume", "name", "pe", "mv", "revenue"];

fn request(start: Day, len: Day, cols: &[bool], symbols: Option<Vec<u8>>, base: Option<bool>, dict: bool) -> Request {
    let cols: Vec<String> = COLS.iter().zip(cols).filter(|(_, &on)| on).map(|(c, _)| c.to_string()).collect();
    let mut request = Request::new(date_of(FIRST + start), date_of(FIRST + start + len), cols).dates(if dict {
        DateLayout::Dictionary
    } else {
        DateLayout::Date32
    });
    if let Some(symbols) = symbols {
        request = request.symbols(symbols.iter().map(|s| format!("S{s:02}")).chain(["nope".to_string()]).collect());
    }
    if let Some(bar) = base {
        request = request.base(if bar { "bar" } else { "val" });
    }
    request
}

/// Reads `request` both ways; they must be equal, and errors must be the same.
fn both(setup: &Setup, request: &Request) -> Option<QueryResult> {
    let plain = setup.plain.get(request);
    let shared = setup.shared.get(request);
    match (plain, shared) {
        (Ok(plain), Ok(shared)) => {
            assert_eq!(plain.batch.schema(), shared.batch.schema(), "{request:?}");
            for (i, (a, b)) in plain.batch.columns().iter().zip(shared.batch.columns()).enumerate() {
                assert_eq!(a.as_ref(), b.as_ref(), "column {i} of {request:?}");
            }
            assert_eq!(plain.rows_per_day, shared.rows_per_day, "{request:?}");
            assert_eq!(plain.covered, shared.covered);
            assert!(plain.shared.is_none());
            Some(shared)
        }
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string());
            None
        }
        (a, b) => panic!("{request:?}: from the store {a:?}, through the layer {b:?}"),
    }
}

fn arb_request() -> impl Strategy<Value = Request> {
    (
        -3..DAYS,
        0..DAYS + 4,
        prop::collection::vec(any::<bool>(), 6),
        prop::option::weighted(0.3, prop::collection::vec(0u8..14, 0..6)),
        prop::option::weighted(0.3, any::<bool>()),
        any::<bool>(),
        prop::option::weighted(0.3, Just("u")),
        prop::option::weighted(0.3, prop::sample::select(vec![crate::Adjust::Backward, crate::Adjust::Forward])),
    )
        .prop_map(|(start, len, cols, symbols, base, dict, universe, adjust)| {
            let mut request = request(start, len, &cols, symbols, base, dict);
            if let Some(universe) = universe {
                request = request.universe(universe);
            }
            if let Some(adjust) = adjust {
                request = request.adjust(adjust);
            }
            request
        })
}

thread_local! {
    /// Blocks of 64 rows: every read spans several.
    static SETUP: Setup = setup_blocks(12, 7, 64);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn reads_through_the_layer_equal_reads_from_the_store(request in arb_request()) {
        SETUP.with(|setup| { both(setup, &request); });
    }
}

#[test]
fn a_read_matching_a_segment_is_views_of_it() {
    let setup = setup(12, 11);
    let all = [true, true, true, true, true, false];
    let exact = request(0, DAYS, &all, None, None, true);
    let used = both(&setup, &exact).unwrap().shared.expect("served by the layer");
    assert!(used.views, "the whole segment, every row: views");
    let (one, two) = (setup.shared.get(&exact).unwrap().batch, setup.shared.get(&exact).unwrap().batch);
    let buffer = |b: &arrow::record_batch::RecordBatch| b.column(2).to_data().buffers()[0].clone();
    assert_ne!(
        buffer(&one).as_ptr(),
        buffer(&two).as_ptr(),
        "each result maps the file afresh: its writes stay its own"
    );
    assert_eq!(buffer(&one).as_slice(), buffer(&two).as_slice());

    let later = both(&setup, &request(4, 6, &all, None, None, true)).unwrap().shared.unwrap();
    assert!(later.views, "a later start slices the columns; only the date codes are rebuilt");
    let fewer_rows = both(&setup, &request(0, DAYS, &[true; 6], Some(vec![1, 2, 3]), None, true));
    assert!(!fewer_rows.unwrap().shared.unwrap().views, "a symbol filter copies the rows it keeps");
    let narrower = both(&setup, &request(0, DAYS, &[true, false, false, false, false, false], None, None, true));
    let narrower = narrower.unwrap().shared.unwrap();
    assert!(narrower.rows > 0);
}

#[test]
fn a_new_reader_reads_from_the_layer_alone_until_the_store_moves_on() {
    let mut setup = setup(12, 5);
    let config = setup.shared.config().clone();
    let reader = || Cache::builder(config.clone()).open().unwrap();
    let equal = |cache: &Cache, request: &Request| {
        let read = cache.get(request).unwrap();
        let plain = setup.plain.get(request).unwrap();
        assert_eq!((&read.batch, &read.rows_per_day), (&plain.batch, &plain.rows_per_day), "{request:?}");
        assert_eq!(read.version, plain.version, "{request:?}");
        read
    };
    let fresh = reader();
    let all = [true; 6];
    for r in [
        request(0, DAYS + 5, &all, None, None, true),
        request(2, 9, &all, Some(vec![0, 5, 11]), None, false),
        request(4, 20, &[true, true, false, false, true, true], None, Some(false), false),
    ] {
        assert!(equal(&fresh, &r).shared.is_some());
    }
    assert!(!fresh.store_is_open(), "the layer served every read alone");

    // What the layer cannot serve alone (a universe is read from the store) opens it.
    let universe = reader();
    equal(&universe, &request(0, DAYS, &all, None, None, false).universe("u"));
    assert!(universe.store_is_open());

    // The writer commits a day: the store's head moves past the saved view, so the next read
    // opens the store and sees the day.
    setup.market.commit(FIRST + DAYS);
    let read = equal(&fresh, &request(0, DAYS + 5, &all, None, None, true));
    assert!(fresh.store_is_open());
    assert_eq!(read.rows_per_day.last().unwrap().0, date_of(FIRST + DAYS));

    // Refreshed, the layer saves the store's view again, and new readers go without the store.
    setup.shared.refresh_share().unwrap();
    let again = reader();
    equal(&again, &request(0, DAYS + 5, &all, None, None, true));
    assert!(!again.store_is_open());

    // A damaged saved view, or a store without a head, is no harm: the store serves.
    let layer = config.share.as_ref().unwrap().path.clone();
    let generation: super::format::Manifest =
        super::format::decode_manifest(&std::fs::read(layer.join("MANIFEST")).unwrap()).unwrap();
    let view = generation.view.unwrap();
    let saved = layer.join(&view.file.name);
    let mut bytes = std::fs::read(&saved).unwrap();
    bytes[(view.span.offset + view.span.len / 2) as usize] ^= 0xff;
    std::fs::remove_file(&saved).unwrap();
    std::fs::write(&saved, &bytes).unwrap();
    let damaged = reader();
    equal(&damaged, &request(0, DAYS + 5, &all, None, None, true));
    assert!(damaged.store_is_open(), "a saved view that fails its checksum is not used");
    std::fs::remove_file(config.store.path.join(crate::store::head::HEAD)).unwrap();
    setup.market.commit(FIRST + DAYS + 1);
    setup.shared.refresh_share().unwrap();
    let headless = reader();
    equal(&headless, &request(0, DAYS + 5, &all, None, None, true));
    assert!(headless.store_is_open(), "without the store's head nothing says the layer is current");
}

#[test]
fn the_symbols_ahead_of_a_read_are_the_dictionary_it_returns() {
    let mut setup = setup(12, 5);
    let config = setup.shared.config().clone();
    let reader = || Cache::builder(config.clone()).open().unwrap();
    let dictionary = |cache: &Cache, request: &Request| {
        let read = cache.get(request).unwrap();
        let symbol = read.batch.column_by_name("symbol").unwrap();
        symbol.as_any_dictionary().values().as_any().downcast_ref::<StringArray>().unwrap().clone()
    };
    let all = [true; 6];
    let whole = request(0, DAYS, &all, None, None, true);

    // A new reader finds them in the layer's saved view, and the store stays closed.
    let fresh = reader();
    let ahead = fresh.symbols_ahead(&whole).expect("the layer's saved view");
    assert!(!fresh.store_is_open(), "finding them opened nothing");
    assert_eq!(ahead, dictionary(&fresh, &whole));
    assert!(!fresh.store_is_open());
    assert_eq!(ahead.len(), 12);

    // A reader holding the store finds them in its view; so does one without a layer.
    setup.market.commit(FIRST + DAYS);
    let moved = reader();
    assert_eq!(moved.symbols_ahead(&whole), None, "the layer is behind and the store unopened: none at hand");
    let read = dictionary(&moved, &whole);
    assert!(moved.store_is_open());
    assert_eq!(moved.symbols_ahead(&whole), Some(read));
    assert_eq!(setup.plain.symbols_ahead(&whole), Some(dictionary(&setup.plain, &whole)));

    // A past version's dictionary is its own: nothing is offered ahead.
    assert_eq!(moved.symbols_ahead(&whole.clone().as_of(crate::AsOf::Version(1))), None);
}

#[test]
fn days_the_store_changed_are_read_from_it_until_the_layer_is_refreshed() {
    let mut setup = setup(12, 13);
    let all = [true; 6];
    let exact = request(0, DAYS + 5, &all, None, None, true);
    assert!(both(&setup, &exact).unwrap().shared.unwrap().views);

    setup.market.commit(FIRST + DAYS);
    setup.market.rewrite(FIRST + DAYS - 3);
    setup.market.delete(FIRST + 5);
    setup.market.add_symbol("A00");
    setup.market.commit(FIRST + DAYS + 1);
    for start in [-2, 0, 4, 10] {
        for symbols in [None, Some(vec![0, 5, 11])] {
            for base in [None, Some(true), Some(false)] {
                let r = request(start, DAYS + 5, &all, symbols.clone(), base, start % 4 == 0);
                if let Some(result) = both(&setup, &r) {
                    assert!(result.shared.is_none_or(|s| !s.views), "a stale layer serves no views: {r:?}");
                }
            }
        }
    }

    let report = setup.shared.refresh_share().unwrap();
    assert_eq!(report.generation, Some(3), "one new generation after the two publishes");
    assert!(setup.shared.refresh_share().unwrap().generation.is_none(), "nothing changed since");
    let fresh = both(&setup, &exact).unwrap().shared.unwrap();
    assert!(fresh.views, "refreshed, the exact read is views again");
    for _ in 0..3 {
        let r = request(0, DAYS + 5, &[true, false, true, false, true, true], Some(vec![1, 4]), Some(false), false);
        both(&setup, &r);
    }
}

#[test]
fn a_removed_layer_or_a_damaged_one_is_ignored_with_one_warning() {
    let setup = setup(10, 17);
    let dir = setup.shared.config().share.as_ref().unwrap().path.clone();
    let exact = request(0, DAYS, &[true; 5].into_iter().chain([false]).collect::<Vec<_>>(), None, None, true);
    assert!(both(&setup, &exact).unwrap().shared.is_some());
    assert!(setup.shared.take_share_warnings().is_empty());

    let manifest = std::fs::read(dir.join("MANIFEST")).unwrap();
    let mut damaged = manifest.clone();
    damaged[40] ^= 0x11;
    replace_manifest(&dir, &damaged);
    for _ in 0..3 {
        assert!(both(&setup, &exact).unwrap().shared.is_none());
    }
    let warnings = setup.shared.take_share_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("damaged"), "{warnings:?}");

    // A truncated column file: the manifest is whole again, its file is not.
    replace_manifest(&dir, &manifest);
    let victim = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.contains("-s1-") && name.ends_with("-f2")
        })
        .unwrap();
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::remove_file(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    for _ in 0..2 {
        assert!(both(&setup, &exact).unwrap().shared.is_none());
    }
    let warnings = setup.shared.take_share_warnings();
    assert!(warnings.len() == 1 && warnings[0].contains("truncated"), "{warnings:?}");

    // Published from another store.
    let mut foreign = super::format::decode_manifest(&manifest).unwrap();
    foreign.store_identity = "elsewhere".into();
    replace_manifest(&dir, super::format::encode_manifest(&foreign));
    assert!(both(&setup, &exact).unwrap().shared.is_none());
    let warnings = setup.shared.take_share_warnings();
    assert!(warnings.len() == 1 && warnings[0].contains("another store"), "{warnings:?}");

    // Deleted whole; a publish makes it again.
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(both(&setup, &exact).unwrap().shared.is_none());
    assert_eq!(setup.shared.take_share_warnings().len(), 1);
    setup.shared.publish(date_of(FIRST), date_of(FIRST + DAYS), None).unwrap();
    assert!(both(&setup, &exact).unwrap().shared.unwrap().views);
}

#[test]
fn over_budget_the_fields_used_least_recently_go() {
    let dir = tempfile::tempdir().unwrap();
    let base = config(dir.path(), "1GiB");
    let mut market = Market::new(&base.store.path, 30, 5);
    for day in FIRST..FIRST + DAYS {
        market.commit(day);
    }
    let cols = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (early, late, third) = (
        (date_of(FIRST), date_of(FIRST + 9), cols(&["close", "pe"])),
        (date_of(FIRST + 10), date_of(FIRST + 19), cols(&["close", "pe"])),
        (date_of(FIRST + 5), date_of(FIRST + 23), cols(&["close", "pe", "mv"])),
    );
    // The sizes of the three segments and of the late one's last field, measured in a layer
    // of their own.
    let mut roomy = base.clone();
    roomy.share.as_mut().unwrap().path = dir.path().join("measure");
    let measure = Cache::builder(roomy).open().unwrap();
    for (start, end, cols) in [&early, &late, &third] {
        measure.publish(*start, *end, Some(cols)).unwrap();
    }
    let manifest =
        super::format::decode_manifest(&std::fs::read(dir.path().join("measure/MANIFEST")).unwrap()).unwrap();
    let bytes: Vec<u64> = manifest.segments.iter().map(super::format::Segment::bytes).collect();
    let late_pe = manifest.segments[1].field_bytes(1);

    let run = |budget: u64| {
        let mut config = base.clone();
        config.share.as_mut().unwrap().path = dir.path().join(format!("share-{budget}"));
        config.share.as_mut().unwrap().budget_bytes = budget;
        let cache = Cache::builder(config).open().unwrap();
        let first = cache.publish(early.0, early.1, Some(&early.2)).unwrap();
        let second = cache.publish(late.0, late.1, Some(&late.2)).unwrap();
        assert!(first.evicted.is_empty() && second.evicted.is_empty(), "two fit");
        // Reading the early one makes the late one the least recently used.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let read = cache.get(&Request::new(early.0, early.1, early.2.clone())).unwrap();
        assert!(read.shared.is_some());
        let report = cache.publish(third.0, third.1, Some(&third.2)).unwrap();
        let status = cache.share_status().unwrap();
        assert!(status.bytes <= budget, "{status:?}");
        (cache, report, status)
    };
    // Room for all but the late segment's last field: that field goes, the segment stays.
    let (_, report, status) = run(bytes.iter().sum::<u64>() - late_pe);
    assert_eq!(report.evicted.len(), 1, "{report:?}");
    assert_eq!(report.evicted[0].fields, ["val.pe"], "{report:?}");
    assert_eq!(report.evicted[0].bytes, late_pe);
    let late_now = status.segments.iter().find(|s| s.start == late.0).expect("the late segment stays");
    assert_eq!(late_now.fields, ["bar.close"]);

    // Room for the early and third only: the late segment goes whole.
    let (cache, report, status) = run(bytes[0] + bytes[2]);
    assert_eq!(report.evicted.len(), 1, "{report:?}");
    assert_eq!(report.evicted[0].fields, ["val.pe", "bar.close"], "{report:?}");
    let ranges: Vec<_> = status.segments.iter().map(|s| s.start).collect();
    assert!(ranges.contains(&early.0) && !ranges.contains(&late.0), "{ranges:?}");
    let err = cache.publish(date_of(FIRST), date_of(FIRST + DAYS), None).unwrap_err().to_string();
    assert!(err.contains("budget"), "{err}");
}

#[test]
fn a_layer_newer_than_the_readers_view_of_the_store_waits_for_it() {
    let setup = setup(10, 19);
    let dir = setup.shared.config().share.as_ref().unwrap().path.clone();
    let exact = request(0, DAYS, &[true, true, true, true, true, false], None, None, true);
    assert!(both(&setup, &exact).unwrap().shared.is_some());
    // Another publisher saw more of the store than this reader has: as if its content were
    // committed after the reader's snapshot.
    let mut manifest = super::format::decode_manifest(&std::fs::read(dir.join("MANIFEST")).unwrap()).unwrap();
    manifest.journal_newest += 1_000;
    replace_manifest(&dir, super::format::encode_manifest(&manifest));
    assert!(both(&setup, &exact).unwrap().shared.is_none(), "not used before the reader catches up");
    assert!(setup.shared.take_share_warnings().is_empty(), "and that is no fault");
}

/// A tmpfs of `bytes` mounted at `dir` for the life of the value, when this process may mount.
struct TinyTmpfs(std::path::PathBuf);

impl TinyTmpfs {
    fn mount(dir: &Path, bytes: usize) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| Self(dir.to_path_buf()))
    }
}

impl Drop for TinyTmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_tmpfs_fails_the_publish_and_readers_keep_what_was_published() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), "64MiB");
    config.share.as_mut().unwrap().block_rows = 1 << 15;
    let mut market = Market::new(&config.store.path, 40, 23);
    for day in FIRST..FIRST + DAYS {
        market.commit(day);
    }
    let Some(_tmpfs) = TinyTmpfs::mount(&config.share.as_ref().unwrap().path, 64 << 10) else {
        // Mounting needs root, which CI has.
        assert!(std::env::var_os("CI").is_none(), "CI runs as root and must be able to mount a tmpfs");
        eprintln!("SKIPPED a_full_tmpfs_fails_the_publish: this process may not mount a tmpfs");
        return;
    };
    let cache = Cache::builder(config.clone()).open().unwrap();
    let plain = Cache::builder(config).share(false).open().unwrap();
    let small = ["close".to_string()];
    cache.publish(date_of(FIRST), date_of(FIRST + 5), Some(&small)).unwrap();
    let err = cache.publish(date_of(FIRST), date_of(FIRST + DAYS), None).unwrap_err();
    assert!(matches!(err, crate::Error::Share(crate::ShareError::Full { .. })), "{err}");
    assert!(err.to_string().contains("enlarge the tmpfs"), "{err}");
    let request = Request::new(date_of(FIRST), date_of(FIRST + 5), small.to_vec());
    let (through_layer, from_store) = (cache.get(&request).unwrap(), plain.get(&request).unwrap());
    assert!(through_layer.shared.is_some_and(|s| s.views), "the generation before the failure still serves");
    assert_eq!(through_layer.batch, from_store.batch);
    let left: Vec<String> = std::fs::read_dir(&cache.config().share.as_ref().unwrap().path)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("g2-"))
        .collect();
    assert!(left.is_empty(), "the failed generation's files are removed: {left:?}");
}

#[test]
fn codes_damaged_inside_an_intact_file_fall_back_to_the_store() {
    // Symbol codes that rank nothing, and date codes each in range but not their rows' day.
    type Damage = (fn(&super::format::Block) -> super::format::Span, u8);
    let damages: [Damage; 2] = [(|b| b.symbol_codes, 0xFF), (|b| b.date_codes, 0)];
    for (seed, (span_of, byte)) in damages.into_iter().enumerate() {
        let setup = setup(10, 29 + seed as u64);
        let dir = setup.shared.config().share.as_ref().unwrap().path.clone();
        let manifest: super::format::Manifest =
            super::format::decode_manifest(&std::fs::read(dir.join("MANIFEST")).unwrap()).unwrap();
        // Rewritten under a new inode, as a layer file is never written in place; header and
        // size stay whole.
        let block = &manifest.segments[0].blocks[0];
        let path = dir.join(&block.file.name);
        let mut bytes = std::fs::read(&path).unwrap();
        let span = span_of(block);
        bytes[span.offset as usize..(span.offset + span.len) as usize].fill(byte);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let exact = request(0, DAYS, &[true, true, true, true, true, false], None, None, true);
        for symbols in [None, Some(vec![1, 2])] {
            let mut r = exact.clone();
            r.symbols = symbols.map(|s| s.iter().map(|i| format!("S{i:02}")).collect());
            assert!(both(&setup, &r).unwrap().shared.is_none(), "read from the store instead");
        }
        let warnings = setup.shared.take_share_warnings();
        assert!(!warnings.is_empty() && warnings[0].contains("codes are not the rows'"), "{warnings:?}");
    }
}

#[test]
fn a_publish_that_keeps_a_segment_leaves_the_rebuilt_one_views() {
    let mut setup = setup(12, 31);
    // A new date inside the whole-range segment only; republishing it keeps the bar segment
    // as it was. The rebuilt segment holds the new date and must serve it as views: nothing
    // journaled before this publish is stale any more.
    setup.market.commit(FIRST + DAYS);
    setup.shared.publish(date_of(FIRST), date_of(FIRST + 365), None).unwrap();
    let all = request(0, DAYS + 1, &[true, true, true, true, true, false], None, None, true);
    let served = both(&setup, &all).unwrap().shared.unwrap();
    assert!(served.views, "{served:?}");
    let bar_read = request(3, 12, &[true, true, false, false, false, false], None, None, true);
    assert!(both(&setup, &bar_read).unwrap().shared.unwrap().views, "the kept segment too");
}

#[test]
fn the_layer_serves_universe_and_adjusted_reads_equal_to_the_store() {
    SETUP.with(|setup| {
        for adjust in [None, Some(crate::Adjust::Backward), Some(crate::Adjust::Forward)] {
            let mut request =
                request(0, DAYS, &[true, true, false, true, false, false], None, None, true).universe("u");
            if let Some(adjust) = adjust {
                request = request.adjust(adjust);
            }
            let result = both(setup, &request).expect("reads");
            let shared = result.shared.expect("the layer served it");
            assert!(shared.rows > 0 && !shared.views, "filtered rows are copied out: {shared:?}");
            let everyone = Request { universe: None, ..request.clone() };
            assert!(result.batch.num_rows() < setup.plain.get(&everyone).unwrap().batch.num_rows(), "members only");
        }
    });
}

#[test]
fn a_reader_decodes_only_the_blocks_it_reads_and_a_bad_one_fails_only_reads_of_it() {
    use super::blocks::{BlockSource, LazyBlocks};
    use super::format::{decode_manifest, encode_manifest, Blocks, Manifest};
    use super::generation::Generation;
    use super::Codes;

    let setup = setup_blocks(10, 37, 64);
    let dir = setup.shared.config().share.as_ref().unwrap().path.clone();
    let mut manifest: Manifest = decode_manifest(&std::fs::read(dir.join("MANIFEST")).unwrap()).unwrap();
    let whole = manifest.segments.iter().position(|s| s.fields.len() > 2).expect("the whole-range segment");
    let last = manifest.segments[whole].blocks.len() - 1;
    assert!(last >= 3, "{} blocks", last + 1);

    let identity = manifest.store_identity.clone();
    let reader = Generation::<LazyBlocks>::load(&dir, &identity).unwrap();
    let segment = &reader.manifest.segments[whole];
    assert_eq!(segment.blocks.decoded(), 0, "loading decodes no block");
    assert_eq!(segment.bytes(), manifest.segments[whole].bytes(), "sizes come from the entries");
    reader.codes(segment, Codes::Dates, 0, 20).unwrap();
    assert_eq!(segment.blocks.decoded(), 1, "a read of the first rows decodes the first block only");

    // The last block loses a field's part: a publisher, loading every block, refuses the
    // manifest; a reader refuses only the reads that reach that block.
    manifest.segments[whole].blocks[last].fields.pop();
    replace_manifest(&dir, encode_manifest(&manifest));
    assert!(Generation::<Blocks>::load(&dir, &identity).is_err());
    let cols = [true, true, true, true, true, false];
    assert!(both(&setup, &request(0, 2, &cols, None, None, true)).unwrap().shared.is_some(), "early days");
    assert!(setup.shared.take_share_warnings().is_empty());
    assert!(both(&setup, &request(0, DAYS, &cols, None, None, true)).unwrap().shared.is_none(), "every day");
    let warnings = setup.shared.take_share_warnings();
    assert!(warnings.len() == 1 && warnings[0].contains("inconsistent"), "{warnings:?}");
}
