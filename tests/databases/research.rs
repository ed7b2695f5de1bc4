//! Read-time research features against each source database: adjusted prices, a universe read
//! from the source's membership table, and panels, from the library and from the CLI.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int16Type};
use cheetah_core::{Adjust, Cache, Request, UpdateError};
use chrono::NaiveDate;

use crate::harness::{self, day, Db, Kind, Row};

const ADJUST: &str = "\n[table.adjust]\nfactor = \"px\"\nfields = [\"close\"]\n";

/// `(symbol, first day, end day)` membership intervals of universe `big`; `None`: still in.
const INTERVALS: [(&str, u32, Option<u32>); 5] =
    [("S000", 0, Some(6)), ("S000", 9, None), ("S002", 3, Some(14)), ("S005", 0, None), ("S099", 0, None)];

fn members_table(db: &Db) -> String {
    format!("u_{}", db.table)
}

fn create_members(db: &Db) {
    let table = members_table(db);
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!("CREATE TABLE {table} (idx VARCHAR(8), code VARCHAR(16), d_in DATE, d_out DATE)"));
    let values: Vec<String> = INTERVALS
        .iter()
        .map(|(s, a, b)| {
            let end = b.map_or("NULL".to_string(), |b| format!("'{}'", day(b)));
            format!("('big', '{s}', '{}', {end})", day(*a))
        })
        .collect();
    db.exec(&format!("INSERT INTO {table} VALUES {}, ('small', 'S001', '{}', NULL)", values.join(", "), day(0)));
}

fn universe_block(db: &Db) -> String {
    format!(
        "\n[[universe]]\nname = \"big\"\ntable = \"{}\"\nsymbol = \"code\"\nstart = \"d_in\"\nend = \"d_out\"\nwhere = \"idx = 'big'\"\n",
        members_table(db)
    )
}

fn is_member(symbol: &str, date: NaiveDate) -> bool {
    INTERVALS.iter().any(|&(s, a, b)| s == symbol && day(a) <= date && b.is_none_or(|b| date < day(b)))
}

/// Each row's (date, symbol) → close, from a read of `close`.
fn closes(result: &cheetah_core::QueryResult) -> BTreeMap<(NaiveDate, String), Option<f64>> {
    let batch = &result.batch;
    let dates = batch.column(0).as_primitive::<arrow::datatypes::Date32Type>();
    let symbols = batch.column(1).as_dictionary::<Int16Type>();
    let names = symbols.values().as_string::<i32>();
    let close = batch.column(2).as_primitive::<Float64Type>();
    (0..batch.num_rows())
        .map(|i| {
            let date = cheetah_core::internals::date_of(dates.value(i));
            let symbol = names.value(symbols.keys().value(i) as usize).to_string();
            ((date, symbol), close.is_valid(i).then(|| close.value(i)))
        })
        .collect()
}

/// close × px of `rows`, ÷ the symbol's last px in `dates` (every row of the read's dates)
/// when forward; `None` wherever an operand is.
fn adjusted(rows: &[&Row], dates: &[&Row], mode: Adjust) -> BTreeMap<(NaiveDate, String), Option<f64>> {
    let mut latest: BTreeMap<&str, f64> = BTreeMap::new();
    for row in dates {
        if let Some(px) = row.px {
            latest.insert(&row.symbol, px);
        }
    }
    rows.iter()
        .map(|r| {
            let divisor = match mode {
                Adjust::Backward => Some(1.0),
                Adjust::Forward => latest.get(r.symbol.as_str()).copied(),
            };
            let value = r.close.zip(r.px).zip(divisor).map(|((c, px), d)| c * px / d).filter(|v| !v.is_nan());
            ((r.date, r.symbol.clone()), value)
        })
        .collect()
}

fn assert_close(
    got: &BTreeMap<(NaiveDate, String), Option<f64>>,
    expected: &BTreeMap<(NaiveDate, String), Option<f64>>,
) {
    assert_eq!(got.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "the same rows");
    for (key, want) in expected {
        match (got[key], *want) {
            (Some(a), Some(b)) => assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0) || a == b, "{key:?}: {a} != {b}"),
            (a, b) => assert_eq!(a, b, "{key:?}"),
        }
    }
}

fn adjusted_prices_a_universe_and_panels_from_the_source(db: &Db) {
    let rows = db.seeded(20, 8, 41);
    create_members(db);
    let config = db.config(&["close", "px", "volume"], &format!("{ADJUST}{}", universe_block(db)));
    let cache = Cache::builder(config).writer(true).open().expect("open writer");
    let report = cache.update().expect("runs");
    let (name, universe) = &report.universes[0];
    assert_eq!((name.as_str(), universe.as_ref().expect("read").intervals), ("big", INTERVALS.len()));
    report.into_result().expect("updates");

    let (start, end) = (day(2), day(16));
    let in_range: Vec<&Row> = rows.iter().filter(|r| r.date >= start && r.date <= end).collect();
    for mode in [Adjust::Backward, Adjust::Forward] {
        let request = Request::new(start, end, vec!["close".into()]).adjust(mode);
        assert_close(&closes(&cache.get(&request).expect("reads")), &adjusted(&in_range, &in_range, mode));
    }

    let members: Vec<&Row> = in_range.iter().copied().filter(|r| is_member(&r.symbol, r.date)).collect();
    let request = Request::new(start, end, vec!["close".into()]).universe("big").adjust(Adjust::Forward);
    // The divisor is each symbol's latest factor on the read's dates, member or not then.
    assert_close(&closes(&cache.get(&request).expect("reads")), &adjusted(&members, &in_range, Adjust::Forward));
    assert_eq!(cache.members("big", day(10)).expect("members"), ["S000", "S002", "S005", "S099"]);
    assert_eq!(cache.members("big", day(14)).expect("members"), ["S000", "S005", "S099"]);

    // The panel: a row per date with rows, a column per symbol with rows, NaN elsewhere.
    let panel = cache.panel(&request).expect("panel");
    let expected = adjusted(&members, &in_range, Adjust::Forward);
    let symbols: Vec<&str> = panel.symbols.iter().map(Option::unwrap_or_default).collect();
    let mut wanted: Vec<&str> = members.iter().map(|r| r.symbol.as_str()).collect();
    wanted.sort_unstable();
    wanted.dedup();
    assert_eq!(symbols, wanted);
    let matrix = panel.fields[0].1.as_primitive::<Float64Type>().values();
    assert_eq!(matrix.len(), panel.dates.len() * symbols.len());
    for (r, &d) in panel.dates.iter().enumerate() {
        for (c, symbol) in symbols.iter().enumerate() {
            let cell = matrix[r * symbols.len() + c];
            match expected.get(&(d, symbol.to_string())).copied().flatten() {
                Some(v) => assert!((cell - v).abs() <= 1e-9 * v.abs().max(1.0), "{d} {symbol}: {cell} != {v}"),
                None => assert!(cell.is_nan(), "{d} {symbol}: {cell} where there is no value"),
            }
        }
    }

    // The CLI: a wide CSV with the universe and the adjustment.
    let out = db.dir.path().join("panel.csv");
    let (ok, _, stderr) = harness::cheetah(
        db,
        &[
            "get",
            "--start",
            &start.to_string(),
            "--end",
            &end.to_string(),
            "--cols",
            "close",
            "--universe",
            "big",
            "--adjust",
            "forward",
            "--wide",
            "--out",
            out.to_str().expect("utf-8"),
        ],
    );
    assert!(ok, "{stderr}");
    let text = std::fs::read_to_string(&out).expect("written");
    let header = text.lines().next().expect("a header");
    assert_eq!(header, format!("date,{}", symbols.join(",")));
    assert_eq!(text.lines().count(), panel.dates.len() + 1);
    let (ok, stdout, _) = harness::cheetah(db, &["universes", "big", "--date", &day(10).to_string()]);
    assert!(ok && stdout == "S000\nS002\nS005\nS099\n", "{stdout}");
    let (ok, _, stderr) = harness::cheetah(
        db,
        &["get", "--start", "2020-01-01", "--end", "2020-02-01", "--cols", "volume", "--universe", "nope"],
    );
    assert!(!ok && stderr.contains("universe `nope` is not configured; configured universes: `big`"), "{stderr}");

    // An overlapping interval in the source fails the universe's update; the cached one stays.
    let table = members_table(db);
    db.exec(&format!("INSERT INTO {table} VALUES ('big', 'S005', '{}', '{}')", day(4), day(8)));
    let report = cache.update().expect("runs");
    let err = report.universes[0].1.as_ref().expect_err("refused");
    assert!(matches!(err, UpdateError::BadUniverse { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "`S005` has overlapping intervals [{}, still a member) and [{}, {})",
            day(0),
            day(4),
            day(8)
        )),
        "{message}"
    );
    assert!(report.tables.iter().all(|(_, r)| r.is_ok()), "the tables still update");
    assert_eq!(cache.members("big", day(10)).expect("kept"), ["S000", "S002", "S005", "S099"]);
    drop(cache);
    if db.kind == Kind::Sqlite {
        let (ok, _, stderr) = harness::cheetah(db, &["update"]);
        assert!(!ok && stderr.contains("overlapping intervals"), "{stderr}");
    }
}

database_tests! {
    adjusted_prices_a_universe_and_panels_from_the_source => "research",
}
