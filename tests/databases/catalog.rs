//! Fields chosen by pattern as the source's columns come and go, and aliases.

use cheetah_core::Config;

use crate::harness::{self, cheetah, day, read_all, Column, Db};

/// Creates the test's table `(date, symbol, f01, f02, g01)` with `days` dates of 3 symbols;
/// a value is `day * 100 + symbol + column / 10`.
fn create(db: &Db, days: u32) {
    let double = db.sql_type(Column::Close);
    db.exec(&format!("DROP TABLE IF EXISTS {}", db.table));
    db.exec(&format!(
        "CREATE TABLE {} (date DATE, symbol VARCHAR(16), f01 {double}, f02 {double}, g01 {double})",
        db.table
    ));
    insert_days(db, 0..days);
}

fn insert_days(db: &Db, days: std::ops::Range<u32>) {
    insert(db, days, &[1, 2, 3]);
}

/// Rows of `days` with the columns numbered `columns` (1 = f01, 2 = f02, 3 = g01).
fn insert(db: &Db, days: std::ops::Range<u32>, columns: &[u32]) {
    let names: Vec<&str> = columns.iter().map(|c| ["f01", "f02", "g01"][*c as usize - 1]).collect();
    let rows: Vec<String> = days
        .flat_map(|d| {
            (0..3).map(move |s| {
                let values: Vec<String> =
                    columns.iter().map(|&c| format!("{:?}", f64::from(d * 100 + s) + f64::from(c) / 10.0)).collect();
                format!("('{}', 'S{s}', {})", day(d), values.join(", "))
            })
        })
        .collect();
    db.exec(&format!("INSERT INTO {} (date, symbol, {}) VALUES {}", db.table, names.join(", "), rows.join(", ")));
}

fn write_config(db: &Db, extra: &str) -> Config {
    let text = format!(
        "[store]\npath = \"store\"\n\n[source]\nodbc = {:?}\n\n[[table]]\nname = \"{}\"\ndate = \"date\"\nsymbol = \"symbol\"\nfields = [\"f*\"]\nstart = \"2020-01-01\"\nlookback = 1\n{extra}\n",
        db.cheetah_connection_string(),
        db.table
    );
    std::fs::write(db.config_path(), text).expect("config");
    Config::load(&db.config_path()).expect("valid config")
}

/// A column's values over every cached date, `None` for null.
fn column(db: &Db, name: &str) -> Vec<Option<f64>> {
    use arrow::array::AsArray;
    let result = read_all(&harness::reader(db), &[name]);
    let values = result.batch.column(2).as_primitive::<arrow::datatypes::Float64Type>();
    (0..values.len()).map(|i| (!arrow::array::Array::is_null(values, i)).then(|| values.value(i))).collect()
}

fn expected(days: std::ops::Range<u32>, c: u32) -> Vec<Option<f64>> {
    days.flat_map(|d| (0..3).map(move |s| Some(f64::from(d * 100 + s) + f64::from(c) / 10.0))).collect()
}

fn a_column_added_to_the_source_that_matches_a_pattern_is_cached_and_backfilled(db: &Db) {
    create(db, 6);
    write_config(db, "");
    let (ok, _, stderr) = cheetah(db, &["update"]);
    assert!(ok, "{stderr}");
    let cached: Vec<String> = harness::reader(db).store().catalog().expect("catalog").tables[0]
        .fields
        .iter()
        .map(|f| f.name.clone())
        .collect();
    assert_eq!(cached, ["f01", "f02"], "g01 does not match f*");

    let double = db.sql_type(Column::Close);
    db.exec(&format!("ALTER TABLE {} ADD f03 {double}", db.table));
    db.exec(&format!("UPDATE {} SET f03 = f01 * 2", db.table));
    let (ok, stdout, stderr) = cheetah(db, &["update"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("added fields backfilled over 6 dates"), "{stdout}");
    let doubled: Vec<Option<f64>> = expected(0..6, 1).into_iter().map(|v| v.map(|v| v * 2.0)).collect();
    assert_eq!(column(db, "f03"), doubled, "f03 backfilled over every cached date");
}

fn a_vanished_column_is_an_error_or_a_warning_and_its_cached_dates_stay_readable(db: &Db) {
    create(db, 6);
    write_config(db, "alias = { \"first\" = \"f01\" }");
    let (ok, _, stderr) = cheetah(db, &["update"]);
    assert!(ok, "{stderr}");
    assert_eq!(column(db, "first"), expected(0..6, 1), "an alias reads its column");
    assert_eq!(column(db, "f02"), expected(0..6, 2));

    db.exec(&format!("ALTER TABLE {} DROP COLUMN f02", db.table));
    insert(db, 6..8, &[1, 3]);
    let (ok, _, stderr) = cheetah(db, &["update"]);
    assert!(!ok, "the default policy fails the table");
    assert!(stderr.contains("vanished from the source: f02") && stderr.contains("on_missing"), "{stderr}");
    assert_eq!(column(db, "f02"), expected(0..6, 2), "its cached dates stay readable");

    write_config(db, "alias = { \"first\" = \"f01\" }\non_missing = \"warn\"");
    let (ok, _, stderr) = cheetah(db, &["update"]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("vanished from the source"), "a warning: {stderr}");
    let mut want = expected(0..5, 2);
    // The lookback date and the new ones are fetched without it.
    want.extend(std::iter::repeat_n(None, 9));
    assert_eq!(column(db, "f02"), want);
    assert_eq!(column(db, "f01"), expected(0..8, 1));
    let (ok, stdout, stderr) = cheetah(db, &["verify"]);
    assert!(ok, "verify skips the vanished column: {stdout}{stderr}");
}

database_tests! {
    a_column_added_to_the_source_that_matches_a_pattern_is_cached_and_backfilled => "pattern_added",
    a_vanished_column_is_an_error_or_a_warning_and_its_cached_dates_stay_readable => "pattern_vanished",
}
