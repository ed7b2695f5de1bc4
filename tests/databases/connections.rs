//! A backfill over several connections: a source that refuses some of them is read over the
//! rest, with a warning; one that refuses every one fails the update, and the next completes.

use crate::harness::{self, assert_matches, cheetah, Db, Kind, Proxy, FIELDS};

const ROLE: &str = "cheetah_two_connections";

/// A PostgreSQL role allowed `limit` connections at once, which may read `db`'s table.
fn limited_role(db: &Db, limit: i32) -> String {
    db.exec(&format!(
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN \
         EXECUTE 'DROP OWNED BY {ROLE}'; EXECUTE 'DROP ROLE {ROLE}'; END IF; END $$"
    ));
    db.exec(&format!("CREATE ROLE {ROLE} LOGIN CONNECTION LIMIT {limit}"));
    db.exec(&format!("GRANT SELECT ON {} TO {ROLE}", db.table));
    format!("Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port=5432;Database=test;Uid={ROLE};Pwd=;BoolsAsChar=0;")
}

#[test]
fn a_source_allowing_two_connections_is_backfilled_over_them_with_a_warning() {
    let Some(db) = Db::open(Kind::Postgres, "two_connections") else { return };
    let rows = db.seeded(160, 200, 5);
    let odbc = limited_role(&db, 2);
    let config = db.config_with(&odbc, &FIELDS, "");
    assert_eq!(config.sources[cheetah_core::DEFAULT_SOURCE].connections, 4);

    let (ok, _, stderr) = cheetah(&db, &["update", "--no-progress"]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("refused one of 4 connections"), "no warning: {stderr}");
    assert!(stderr.contains("Lower `connections` in [source]"), "{stderr}");
    assert!(!stderr.contains("Pwd="), "{stderr}");
    assert_matches(&harness::reader(&db), &FIELDS, &harness::model(&rows), None);

    // Later dates arrive the same way, and so does a lookback over them.
    let later = harness::market(160, 20, 200, 6);
    db.insert(&later);
    let (ok, _, stderr) = cheetah(&db, &["update", "--no-progress"]);
    assert!(ok, "{stderr}");
    let all: Vec<_> = rows.iter().chain(&later).cloned().collect();
    assert_matches(&harness::reader(&db), &FIELDS, &harness::model(&all), None);
}

#[test]
fn a_source_refusing_every_fetch_connection_fails_the_update_and_the_next_one_completes() {
    let Some(db) = Db::open(Kind::Postgres, "no_connections") else { return };
    let rows = db.seeded(60, 50, 9);
    let proxy = Proxy::start(5432);
    db.config_with(&db.via_proxy(&proxy), &FIELDS, "");
    // The update's first connection finds the date range and closes; every fetching thread's
    // is refused.
    proxy.go_down_at_connection(2);
    let started = std::time::Instant::now();
    let (ok, _, stderr) = cheetah(&db, &["update", "--no-progress"]);
    assert!(!ok, "an update without a fetch connection must fail: {stderr}");
    assert!(stderr.contains("cannot connect to the source"), "{stderr}");
    assert!(started.elapsed().as_secs() < 30, "it fails rather than waits");

    proxy.restore();
    let (ok, _, stderr) = cheetah(&db, &["update", "--no-progress"]);
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("refused one of"), "{stderr}");
    assert_matches(&harness::reader(&db), &FIELDS, &harness::model(&rows), None);
}
