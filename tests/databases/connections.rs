//! A backfill over several connections: a source that refuses some of them is read over the
//! rest, with a warning; one that refuses every one fails the update, and the next completes.
//! Tables of one source run side by side: one whose source blocks does not hold up the next.

use crate::harness::{self, assert_matches, cheetah, cheetah_command, wait_for, Db, Kind, Proxy, FIELDS};

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
    // The update's first connection reads the catalog and the second the date range, each
    // closing before the next opens; every fetching thread's is refused.
    proxy.go_down_at_connection(3);
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

/// An advisory lock that blocks every read of the view `gated` while a test holds it.
const GATE: i64 = 4242;

#[test]
fn a_table_whose_source_blocks_does_not_hold_up_the_next_one() {
    let Some(db) = Db::open(Kind::Postgres, "side_by_side") else { return };
    let gated = format!("{}_gated", db.table);
    db.exec(&format!("DROP VIEW IF EXISTS {gated}"));
    let rows = db.seeded(40, 30, 11);
    db.exec(&format!(
        "CREATE OR REPLACE FUNCTION cheetah_gate() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$ \
         BEGIN PERFORM pg_advisory_lock_shared({GATE}); PERFORM pg_advisory_unlock_shared({GATE}); RETURN true; END $$"
    ));
    db.exec(&format!("CREATE OR REPLACE VIEW {gated} AS SELECT * FROM {} WHERE cheetah_gate()", db.table));
    // The gated table first: run one after the other, the open one would wait for it.
    let table = |name: &str| {
        format!(
            "\n[[table]]\nname = \"{name}\"\ndate = \"date\"\nsymbol = \"symbol\"\nfields = [\"close\", \"volume\"]\nstart = \"2020-01-01\"\n"
        )
    };
    let text = format!(
        "[store]\npath = \"store\"\n\n[source]\nodbc = {:?}\nquery_rows = 300\nconnections = 2\n{}{}",
        db.cheetah_connection_string(),
        table(&gated),
        table(&db.table)
    );
    std::fs::write(db.config_path(), text).expect("write config");

    let holder = db.connect().expect("connect");
    holder.execute(&format!("SELECT pg_advisory_lock({GATE})"), (), None).expect("take the gate");
    let update = cheetah_command(&db, &["update", "--no-progress"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the update");
    let watermark = |name: &str| {
        let Ok(cache) =
            cheetah_core::Cache::builder(cheetah_core::Config::load(&db.config_path()).expect("config")).open()
        else {
            return None;
        };
        cache.status().ok()?.tables.iter().find(|t| t.name == name).and_then(|t| t.watermark)
    };
    let open_done = wait_for(60.0, || watermark(&db.table).is_some());
    let gated_before = watermark(&gated);
    holder.execute(&format!("SELECT pg_advisory_unlock({GATE})"), (), None).expect("open the gate");
    let output = update.wait_with_output().expect("the update ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(open_done, "the open table waited for the gated one: {stderr}");
    assert_eq!(gated_before, None, "the gated table read through a closed gate");
    assert!(output.status.success(), "{stderr}");

    let expected = harness::model(&rows);
    let cache = harness::reader(&db);
    for name in [&gated, &db.table] {
        let fields: Vec<String> = ["close", "volume"].iter().map(|f| format!("{name}.{f}")).collect();
        let result = cache.get(&cheetah_core::Request::new(harness::day(0), harness::day(60), fields)).expect("read");
        harness::assert_result_matches(&result.batch, &["close", "volume"], &expected, None);
    }
    assert_eq!(watermark(&gated), watermark(&db.table));
}
