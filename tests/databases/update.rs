//! Update scenarios, each against SQLite, PostgreSQL and MariaDB.

use cheetah_core::{Cache, Config};
use cheetah_core::{Error, SourceError, StoreError, UpdateError};

use crate::harness::{self, assert_matches, day, market, model, Db, Kind, Proxy, FIELDS};

fn writer(config: Config) -> Cache {
    Cache::builder(config).writer(true).open().expect("open writer")
}

fn update_ok(cache: &Cache) -> Vec<cheetah_core::TableReport> {
    cache.update().expect("update runs").into_result().expect("update succeeds")
}

fn first_backfill_matches_the_source_value_for_value(db: &Db) {
    let rows = db.seeded(25, 30, 1);
    let cache = writer(db.config(&FIELDS, ""));
    let report = update_ok(&cache);
    assert_eq!(report[0].dates, 25);
    assert_eq!(report[0].rows, rows.len() as u64);
    assert_eq!(report[0].watermark, Some(day(24)));

    let result = harness::read_all(&cache, &FIELDS);
    let types: Vec<(&str, arrow::datatypes::DataType)> = result
        .batch
        .schema()
        .fields()
        .iter()
        .skip(2)
        .map(|f| (FIELDS.iter().find(|n| *n == f.name()).copied().expect("known"), f.data_type().clone()))
        .collect();
    assert_eq!(types, harness::expected_types(db.kind), "types on {:?}", db.kind);
    assert_matches(&cache, &FIELDS, &model(&rows), None);
    assert_eq!(result.covered, Some((chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap(), day(24))));
}

fn an_update_appends_new_dates(db: &Db) {
    db.create_table();
    let rows = market(0, 30, 12, 2);
    let (old, new): (Vec<_>, Vec<_>) = rows.iter().cloned().partition(|r| r.date < day(20));
    db.insert(&old);
    let cache = writer(db.config(&FIELDS, ""));
    update_ok(&cache);
    assert_matches(&cache, &FIELDS, &model(&old), None);

    db.insert(&new);
    let report = update_ok(&cache);
    // The five lookback dates are re-fetched, then the ten new ones.
    assert_eq!(report[0].dates, 15);
    assert_eq!(report[0].watermark, Some(day(29)));
    assert_matches(&cache, &FIELDS, &model(&rows), None);

    let again = update_ok(&cache);
    assert_eq!((again[0].dates, again[0].dates_deleted), (5, 0));
}

fn lookback_corrects_changes_and_deletions_and_older_dates_stay_as_cached(db: &Db) {
    let rows = db.seeded(20, 10, 3);
    let cache = writer(db.config(&FIELDS, "lookback = 3"));
    update_ok(&cache);
    let mut source = model(&rows);

    // Within lookback (the last 3 cached dates): a changed value, a deleted row, a whole date gone.
    let changed = source.values_mut().find(|r| r.date == day(18) && r.close.is_some()).expect("row").clone();
    db.exec(&format!(
        "UPDATE {} SET close = 1.5, name = 'fixed' WHERE date = '{}' AND symbol = '{}'",
        db.table, changed.date, changed.symbol
    ));
    let entry = source.get_mut(&(changed.date, changed.symbol.clone())).expect("row");
    entry.close = Some(1.5);
    entry.name = Some("fixed".into());
    let deleted = source.keys().find(|(d, _)| *d == day(17)).expect("row").clone();
    db.exec(&format!("DELETE FROM {} WHERE date = '{}' AND symbol = '{}'", db.table, deleted.0, deleted.1));
    source.remove(&deleted);
    db.exec(&format!("DELETE FROM {} WHERE date = '{}'", db.table, day(19)));
    source.retain(|(d, _), _| *d != day(19));

    // Outside lookback: the cache keeps what it loaded, as documented.
    let old = source.values().find(|r| r.date == day(5) && r.close.is_some()).expect("row").clone();
    db.exec(&format!("UPDATE {} SET close = 2.5 WHERE date = '{}' AND symbol = '{}'", db.table, old.date, old.symbol));

    let report = update_ok(&cache);
    assert_eq!(report[0].dates_deleted, 1, "day 19 vanished");
    assert_matches(&cache, &FIELDS, &source, None);
    assert_eq!(report[0].watermark, Some(day(19)), "the watermark never moves back");
}

fn an_added_field_is_backfilled_alone_and_a_removed_field_is_deleted(db: &Db) {
    let rows = db.seeded(15, 10, 4);
    let cache = writer(db.config(&["close", "volume"], ""));
    update_ok(&cache);
    let before = harness::read_all(&cache, &["close", "volume"]);
    let catalog = cache.store().catalog().expect("catalog");
    let volume_id = catalog.tables[0].field("volume").expect("volume").id;
    let close_id = catalog.tables[0].field("close").expect("close").id;
    drop(cache);

    let cache = writer(db.config(&["close", "volume", "name"], ""));
    let report = update_ok(&cache);
    assert_eq!(report[0].changes.added, ["name"]);
    assert_eq!(report[0].backfilled_dates, 15);
    assert_eq!(
        cache.store().catalog().expect("catalog").tables[0].field("close").expect("close").id,
        close_id,
        "old fields untouched"
    );
    let after = harness::read_all(&cache, &["close", "volume"]);
    assert_eq!(before.batch, after.batch);
    assert_matches(&cache, &["close", "volume", "name"], &model(&rows), None);
    drop(cache);

    let cache = writer(db.config(&["close", "name"], ""));
    let report = update_ok(&cache);
    assert_eq!(report[0].changes.removed, ["volume"]);
    let span = cache.store().field_span(volume_id).expect("span");
    assert_eq!(span.chunks, 0, "the removed field's chunks are gone");
    let err =
        cache.get(&cheetah_core::Request::new(day(0), day(14), vec!["volume".into()])).expect_err("volume is gone");
    assert!(err.to_string().contains("field `volume` is not cached"), "{err}");
    assert_matches(&cache, &["close", "name"], &model(&rows), None);
}

fn hostile_or_wrong_names_are_rejected_before_any_query(db: &Db) {
    db.seeded(3, 3, 5);
    for (fields, extra, expected) in [
        (vec!["close\"; DROP TABLE t_names; --"], "", "has no column `close\"; DROP TABLE t_names; --`"),
        (vec!["close`; DROP TABLE t_names; --"], "", "has no column"),
        (vec!["close'; DELETE FROM t_names; --"], "", "has no column"),
        (vec!["clsoe"], "", "close matches: `close`"),
    ] {
        let cache = writer(db.config(&fields, extra));
        let report = cache.update().expect("runs");
        let err = report.into_result().expect_err("rejected");
        assert!(matches!(err, UpdateError::Source(SourceError::NoSuchColumn { .. })), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
        assert!(err.to_string().contains("cheetah.toml:"), "names the config line: {err}");
        assert!(cache.store().catalog().expect("catalog").tables.is_empty(), "nothing was cached");
    }
    // The source table is intact.
    let cache = writer(db.config(&["close"], ""));
    update_ok(&cache);
    drop(cache);

    let config_text = std::fs::read_to_string(db.config_path()).expect("config").replace(&db.table, "t_no_such_table");
    std::fs::write(db.config_path(), config_text).expect("write");
    let cache = writer(Config::load(&db.config_path()).expect("config"));
    let err = cache.update().expect("runs").into_result().expect_err("no such table");
    assert!(matches!(err, UpdateError::Source(SourceError::NoSuchTable { .. })), "{err}");
    let table_line = std::fs::read_to_string(db.config_path())
        .expect("config")
        .lines()
        .position(|l| l == "[[table]]")
        .expect("a table")
        + 1;
    assert!(
        err.to_string().contains(&format!("cheetah.toml:{table_line}: table `t_no_such_table` is not in the source")),
        "{err}"
    );
    assert!(!err.to_string().contains("Pwd") && !err.to_string().contains("Password"), "no secrets: {err}");
}

fn the_source_going_down_mid_run_leaves_every_committed_date_readable(db: &Db) {
    db.create_table();
    let rows = market(0, 60, 60, 6);
    let (old, new): (Vec<_>, Vec<_>) = rows.iter().cloned().partition(|r| r.date < day(10));
    db.insert(&old);
    let fields = ["close", "volume", "name"];
    match db.kind {
        Kind::Sqlite => {
            // A view that fails at the first row past day 20, like a source erroring mid-query.
            let view = format!("{}_v", db.table);
            db.exec(&format!("DROP VIEW IF EXISTS {view}"));
            db.exec(&format!("CREATE VIEW {view} AS SELECT * FROM {}", db.table));
            let config_text = db.config(&fields, "").path.clone();
            let text = std::fs::read_to_string(&config_text)
                .expect("config")
                .replace(&format!("\"{}\"", db.table), &format!("\"{view}\""));
            std::fs::write(&config_text, text).expect("write");
            let config = Config::load(&config_text).expect("config");
            let cache = writer(config);
            update_ok(&cache);
            db.insert(&new);
            db.exec(&format!("DROP VIEW {view}"));
            db.exec(&format!(
                "CREATE VIEW {view} AS SELECT date, symbol, CASE WHEN date > '{}' THEN abs(-9223372036854775808) ELSE close END AS close, volume, n, name, px, flag, ts, d2 FROM {}",
                day(20),
                db.table
            ));
            let err = cache.update().expect("runs").into_result().expect_err("source failed");
            assert!(matches!(err, UpdateError::Source(SourceError::Query { .. })), "{err}");
            check_committed(&cache, &fields, &rows);
            db.exec(&format!("DROP VIEW {view}"));
            db.exec(&format!("CREATE VIEW {view} AS SELECT * FROM {}", db.table));
            update_ok(&cache);
            assert_matches(&cache, &fields, &model(&rows), None);
        }
        Kind::Postgres | Kind::Mariadb => {
            let proxy = Proxy::start(if db.kind == Kind::Postgres { 5432 } else { 3306 });
            let cache = writer(db.config_with(&db.via_proxy(&proxy), &fields, ""));
            update_ok(&cache);
            db.insert(&new);
            // How many bytes the run takes whole, from a throwaway store; going down after 60% of
            // them leaves the run part of the way in, whichever connection carries them.
            let scratch = tempfile::tempdir().expect("temp dir");
            let mut config = cache.config().clone();
            config.store.path = scratch.path().join("store");
            let before = proxy.bytes();
            update_ok(&writer(config));
            proxy.go_down_after_bytes((proxy.bytes() - before) * 6 / 10);
            let err = cache.update().expect("runs").into_result().expect_err("source went down");
            assert!(matches!(err, UpdateError::Source(_)), "{err}");
            let committed = check_committed(&cache, &fields, &rows);
            assert!(committed < day(59), "the run died mid-way, after {committed}");

            proxy.restore();
            update_ok(&cache);
            assert_matches(&cache, &fields, &model(&rows), None);
        }
    }
}

/// Opens a fresh reader and checks every date up to the watermark against the source.
fn check_committed(cache: &Cache, fields: &[&str], rows: &[harness::Row]) -> chrono::NaiveDate {
    let config = cache.config().clone();
    let reader = Cache::builder(config).open().expect("the store opens");
    let status = reader.status().expect("status");
    let watermark = status.tables[0].watermark.expect("a watermark");
    assert_matches(&reader, fields, &model(rows), Some(watermark));
    watermark
}

fn a_second_writer_gets_a_clear_lock_error(db: &Db) {
    db.seeded(3, 3, 7);
    let cache = writer(db.config(&["close"], ""));
    let second = Cache::builder(db.config(&["close"], "")).writer(true).open();
    assert!(matches!(second, Err(Error::Store(StoreError::Locked { .. }))), "in-process second writer");

    let output = harness::cheetah_command(db, &["update"]).output().expect("run cheetah");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("is locked by another writer"), "{stderr}");
    assert!(stderr.contains(&db.store_path().display().to_string()), "names the store: {stderr}");
    drop(cache);

    let output = harness::cheetah_command(db, &["update"]).output().expect("run cheetah");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

fn a_changed_filter_rebuilds_only_that_table(db: &Db) {
    let rows = db.seeded(10, 6, 8);
    let cache = writer(db.config(&["close", "volume"], ""));
    update_ok(&cache);
    drop(cache);
    let cache = writer(db.config(&["close", "volume"], "where = \"symbol <> 'S001'\""));
    let report = update_ok(&cache);
    assert_eq!(report[0].changes.invalidated, ["where"]);
    let filtered: Vec<_> = rows.into_iter().filter(|r| r.symbol != "S001").collect();
    assert_matches(&cache, &["close", "volume"], &model(&filtered), None);
}

database_tests! {
    first_backfill_matches_the_source_value_for_value => "backfill",
    an_update_appends_new_dates => "incremental",
    lookback_corrects_changes_and_deletions_and_older_dates_stay_as_cached => "lookback",
    an_added_field_is_backfilled_alone_and_a_removed_field_is_deleted => "fields",
    hostile_or_wrong_names_are_rejected_before_any_query => "names",
    the_source_going_down_mid_run_leaves_every_committed_date_readable => "outage",
    a_second_writer_gets_a_clear_lock_error => "writers",
    a_changed_filter_rebuilds_only_that_table => "filter",
}
