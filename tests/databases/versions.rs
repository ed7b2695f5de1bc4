//! Corrections kept as versions, against each database: a read at a snapshot, a moment or a
//! version number gives back exactly what it gave then, the latest read equals the source, and a
//! diff lists exactly the cells the source changed.

use std::collections::BTreeMap;

use cheetah_core::{AsOf, Cache, Config};
use chrono::NaiveDate;

use crate::harness::{self, assert_matches, cell, cheetah, day, market, model, row_value, Db, Model, FIELDS};

type Cells = BTreeMap<(String, NaiveDate, String), (Option<String>, Option<String>)>;

/// The cells `before` and `after` tell apart: a changed value, a row that appeared or vanished.
fn changed_cells(before: &Model, after: &Model) -> Cells {
    let mut cells = Cells::new();
    for key in before.keys().chain(after.keys()) {
        for field in FIELDS {
            let (old, new) = (before.get(key), after.get(key));
            let values = (old.and_then(|r| row_value(r, field)), new.and_then(|r| row_value(r, field)));
            if old.is_some() != new.is_some() || values.0 != values.1 {
                cells.insert((field.to_string(), key.0, key.1.clone()), values);
            }
        }
    }
    cells
}

fn cells_of(diff: &cheetah_core::Diff) -> Cells {
    let mut cells = Cells::new();
    for field in &diff.fields {
        for i in 0..field.dates.len() {
            let key = (field.field.clone(), field.dates[i], field.symbols[i].clone());
            cells.insert(key, (cell(field.old.as_ref(), i), cell(field.new.as_ref(), i)));
        }
    }
    cells
}

fn corrections_are_kept_as_versions_and_a_diff_lists_them(db: &Db) {
    let rows = db.seeded(20, 10, 7);
    let config = db.config(&FIELDS, "lookback = 3");
    let writer = Cache::builder(config.clone()).writer(true).open().expect("writer");
    writer.update().expect("update").into_result().expect("update succeeds");
    let first = harness::read_all(&writer, &FIELDS);
    let snapshot = writer.snapshot("first", Some("before the corrections")).expect("snapshot");
    assert_eq!(snapshot.version, first.version.number);
    let before = model(&rows);

    // Planted in the source: within the lookback a changed value, a vanished row, a vanished
    // date; a new date; and outside the lookback a changed value that only a repair sees.
    let t = &db.table;
    let mut after = before.clone();
    let changed = after.values_mut().find(|r| r.date == day(18) && r.close.is_some()).expect("a row").clone();
    db.exec(&format!(
        "UPDATE {t} SET close = 1.5, name = 'fixed' WHERE date = '{}' AND symbol = '{}'",
        day(18),
        changed.symbol
    ));
    let entry = after.get_mut(&(day(18), changed.symbol.clone())).expect("the row");
    (entry.close, entry.name) = (Some(1.5), Some("fixed".into()));
    let vanished = after.keys().find(|(d, _)| *d == day(17)).expect("a row").clone();
    db.exec(&format!("DELETE FROM {t} WHERE date = '{}' AND symbol = '{}'", vanished.0, vanished.1));
    after.remove(&vanished);
    db.exec(&format!("DELETE FROM {t} WHERE date = '{}'", day(19)));
    after.retain(|(d, _), _| *d != day(19));
    let new_date = market(20, 1, 6, 11);
    db.insert(&new_date);
    after.extend(model(&new_date));
    let old = after.values_mut().find(|r| r.date == day(4) && r.close.is_some()).expect("a row");
    old.close = Some(old.close.expect("some") + 0.25);
    db.exec(&format!(
        "UPDATE {t} SET close = {:?} WHERE date = '{}' AND symbol = '{}'",
        old.close.expect("some"),
        day(4),
        old.symbol
    ));

    writer.update().expect("update").into_result().expect("update succeeds");
    drop(writer);
    let (ok, stdout, stderr) = cheetah(db, &["verify", "--repair"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("re-fetched 1 date"), "the correction outside the lookback: {stdout}");

    let reader = Cache::builder(Config::load(&db.config_path()).expect("config")).open().expect("reader");
    assert_matches(&reader, &FIELDS, &after, None);
    let committed = first.version.committed;
    for as_of in [
        AsOf::Snapshot("first".into()),
        AsOf::Version(first.version.number),
        AsOf::Moment(committed),
        AsOf::Moment(committed + chrono::TimeDelta::microseconds(1)),
    ] {
        let request = cheetah_core::Request::new(
            day(0),
            NaiveDate::from_ymd_opt(2100, 1, 1).expect("date"),
            FIELDS.map(String::from).to_vec(),
        );
        let then = reader.get(&request.as_of(as_of.clone())).expect("an old read");
        assert_eq!(then.batch, first.batch, "{as_of:?} reads exactly the first frame");
        assert_eq!(then.version, first.version, "{as_of:?}");
    }
    let diff = reader.diff(&AsOf::Snapshot("first".into()), None, (None, None), None).expect("diff");
    assert_eq!(cells_of(&diff), changed_cells(&before, &after));
    assert!(diff.skipped.is_empty(), "{:?}", diff.skipped);

    // The command line: a read at the snapshot names it, and the diff as CSV.
    let (ok, _, stderr) = cheetah(
        db,
        &[
            "get",
            "--start",
            &day(0).to_string(),
            "--end",
            &day(25).to_string(),
            "--cols",
            "close",
            "--snapshot",
            "first",
        ],
    );
    assert!(ok && stderr.contains(&format!("snapshot first, version {}", first.version.number)), "{stderr}");
    let (ok, stdout, stderr) = cheetah(db, &["diff", "--from", "first", "--csv"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().count(), diff.cells() + 1, "a header and a line per cell");
    assert!(stderr.contains(&format!("{} changed cells", diff.cells())), "{stderr}");
}

database_tests! {
    corrections_are_kept_as_versions_and_a_diff_lists_them => "versions",
}
