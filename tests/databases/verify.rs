//! `cheetah verify` and `verify --repair` against changes planted in the source, and a chunk
//! corrupted on disk.

use std::collections::BTreeSet;

use cheetah_core::internals::day_of;
use cheetah_core::internals::Store;
use chrono::NaiveDate;

use crate::harness::{self, assert_matches, cheetah, day, market, model, Db, Row, FIELDS};

/// The dates `verify` printed findings for.
fn differing_dates(stdout: &str) -> BTreeSet<NaiveDate> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .filter_map(|l| NaiveDate::parse_from_str(l.get(..10)?, "%Y-%m-%d").ok())
        .collect()
}

/// The first row of `rows` on `date` for which `pick` holds.
fn row_on(rows: &mut [Row], date: NaiveDate, pick: impl Fn(&Row) -> bool) -> &mut Row {
    rows.iter_mut().find(|r| r.date == date && pick(r)).expect("a row to change")
}

/// Writes garbage over one value chunk, as a failing disk would.
fn corrupt_chunk(db: &Db, field: &str, date: NaiveDate) {
    let store = Store::open_writer(&db.store_path(), 3).expect("open the store");
    let catalog = store.catalog().expect("catalog");
    let table = &catalog.tables[0];
    let field = table.field(field).expect("cached field");
    let mut batch = store.batch();
    batch.put_values(table.id, field, day_of(date), b"\x01\x00\x00\x00 not a chunk");
    store.write(batch).expect("write");
}

fn verify_finds_changes_outside_lookback_and_repair_refetches_exactly_those(db: &Db) {
    let mut rows = db.seeded(20, 12, 5);
    db.config(&FIELDS, "lookback = 2");
    let (ok, _, stderr) = cheetah(db, &["update"]);
    assert!(ok, "{stderr}");
    let (ok, stdout, stderr) = cheetah(db, &["verify"]);
    assert!(ok, "a fresh cache matches its source: {stdout}{stderr}");
    assert!(stdout.contains("20 dates") && stdout.contains("all match"), "{stdout}");

    // Four changes the lookback (the last 2 dates) never re-fetches.
    let t = &db.table;
    let changed = row_on(&mut rows, day(3), |r| r.close.is_some());
    changed.close = Some(changed.close.expect("some") + 0.25);
    db.exec(&format!(
        "UPDATE {t} SET close = {:?} WHERE date = '{}' AND symbol = '{}'",
        changed.close.expect("some"),
        changed.date,
        changed.symbol
    ));
    let gone = row_on(&mut rows, day(6), |_| true).clone();
    rows.retain(|r| (r.date, &r.symbol) != (gone.date, &gone.symbol));
    db.exec(&format!("DELETE FROM {t} WHERE date = '{}' AND symbol = '{}'", gone.date, gone.symbol));
    let mut added = market(9, 1, 1, 77).remove(0);
    added.symbol = "S999".into();
    db.insert(std::slice::from_ref(&added));
    rows.push(added);
    let retyped = row_on(&mut rows, day(12), |r| r.name.is_some());
    retyped.name = Some("a longer name than before".into());
    db.exec(&format!(
        "UPDATE {t} SET name = 'a longer name than before' WHERE date = '{}' AND symbol = '{}'",
        retyped.date, retyped.symbol
    ));
    corrupt_chunk(db, "volume", day(15));

    let err = harness::read_all_result(&harness::reader(db), &FIELDS).expect_err("a corrupt chunk fails the read");
    let message = err.to_string();
    assert!(
        message.contains("`volume`") && message.contains(&day(15).to_string()) && message.contains("verify --repair"),
        "the error names the field and date and says what to do: {message}"
    );

    let (ok, stdout, stderr) = cheetah(db, &["verify"]);
    assert!(!ok, "differences fail verify: {stdout}");
    assert!(stderr.contains("5 dates differ"), "{stderr}");
    let planted: BTreeSet<NaiveDate> = [day(3), day(6), day(9), day(12), day(15)].into();
    assert_eq!(differing_dates(&stdout), planted, "{stdout}");
    assert!(stdout.contains("rows: source") && stdout.contains("unreadable"), "{stdout}");

    let (ok, stdout, stderr) = cheetah(db, &["verify", "--repair"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("re-fetched 5 dates"), "{stdout}");
    let (ok, stdout, stderr) = cheetah(db, &["verify"]);
    assert!(ok, "{stdout}{stderr}");
    assert_matches(&harness::reader(db), &FIELDS, &model(&rows), None);

    // A range and a table narrow the comparison.
    let (ok, stdout, _) =
        cheetah(db, &["verify", "--start", &day(2).to_string(), "--end", &day(4).to_string(), "--table", t]);
    assert!(ok && stdout.contains("3 dates"), "{stdout}");
    let (ok, _, stderr) = cheetah(db, &["verify", "--table", "nope"]);
    assert!(!ok && stderr.contains("has no table `nope`"), "{stderr}");
}

database_tests! {
    verify_finds_changes_outside_lookback_and_repair_refetches_exactly_those => "verify",
}
