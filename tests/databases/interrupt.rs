//! Ctrl-C while the source is slow to answer: a real `cheetah update` given SIGINT while
//! PostgreSQL holds every window's query stops within a second, whether it was re-fetching
//! cached dates or backfilling an added field, and loses nothing it had committed.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use arrow_odbc::odbc_api::Cursor;

use crate::harness::{self, assert_matches, cheetah, cheetah_command, Db, Kind};

/// How long the source takes over each query while it is slow: far longer than the second an
/// interrupt may take.
const SLOW_SECONDS: u32 = 5;

#[test]
fn sigint_stops_an_update_waiting_on_a_slow_source_within_a_second() {
    let Some(db) = Db::open(Kind::Postgres, "interrupt") else { return };
    let rows = slow_view_over_a_market(&db);
    let expected = harness::model(&rows);
    let (cached, added) = (["close", "volume", "n"], ["close", "volume", "n", "px"]);
    // A lookback re-fetches cached dates: a stream ended early would read as dates gone from
    // the source, and the update would delete them.
    db.config(&cached, "lookback = 40");
    let (ok, _, stderr) = cheetah(&db, &["update", "--no-progress"]);
    assert!(ok, "{stderr}");
    assert_matches(&harness::reader(&db), &cached, &expected, None);

    db.exec(&format!("UPDATE {}_pause SET seconds = {SLOW_SECONDS}", db.table));
    interrupt_while_fetching(&db, "re-fetching the lookback");
    assert_matches(&harness::reader(&db), &cached, &expected, None);

    // An added field's backfill ended early would store nulls for it over the dates not read.
    db.config(&added, "lookback = 40");
    interrupt_while_fetching(&db, "backfilling an added field");
    assert_matches(&harness::reader(&db), &cached, &expected, None);

    db.exec(&format!("UPDATE {}_pause SET seconds = 0", db.table));
    let (ok, _, stderr) = cheetah(&db, &["update", "--no-progress"]);
    assert!(ok, "the update after the interrupts completes: {stderr}");
    assert_matches(&harness::reader(&db), &added, &expected, None);
}

/// The test's table as a view whose every query first sleeps for `{table}_pause.seconds`.
fn slow_view_over_a_market(db: &Db) -> Vec<harness::Row> {
    let t = &db.table;
    db.exec(&format!("DROP VIEW IF EXISTS {t}"));
    db.exec(&format!("DROP FUNCTION IF EXISTS {t}_rows()"));
    db.exec(&format!("DROP TABLE IF EXISTS {t}_base, {t}_pause"));
    let rows = db.seeded(120, 100, 17);
    db.exec(&format!("ALTER TABLE {t} RENAME TO {t}_base"));
    db.exec(&format!("CREATE TABLE {t}_pause (seconds INTEGER NOT NULL)"));
    db.exec(&format!("INSERT INTO {t}_pause VALUES (0)"));
    db.exec(&format!(
        "CREATE FUNCTION {t}_rows() RETURNS SETOF {t}_base AS $$ BEGIN \
         PERFORM pg_sleep((SELECT seconds FROM {t}_pause)); RETURN QUERY SELECT * FROM {t}_base; \
         END $$ LANGUAGE plpgsql"
    ));
    db.exec(&format!("CREATE VIEW {t} AS SELECT * FROM {t}_rows()"));
    rows
}

/// Starts an update, sends it SIGINT once PostgreSQL runs one of its window queries, and
/// checks that it stops within a second, saying it was interrupted.
fn interrupt_while_fetching(db: &Db, doing: &str) {
    // A query left by an earlier interrupted run would be taken for this run's.
    assert!(harness::wait_for(f64::from(SLOW_SECONDS) * 3.0, || fetches_running(db) == 0), "earlier fetches end");
    let mut child = cheetah_command(db, &["update", "--no-progress"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cheetah update");
    let fetching = harness::wait_for(30.0, || fetches_running(db) > 0 || child.try_wait().is_ok_and(|s| s.is_some()));
    assert!(fetching && child.try_wait().expect("poll").is_none(), "{doing}: the update never reached its fetch");
    let sent = Instant::now();
    harness::signal(&child, libc::SIGINT);
    let (stdout, stderr) = exit_within(child, Duration::from_secs(10));
    let latency = sent.elapsed();
    eprintln!("{doing}: stopped {latency:.2?} after SIGINT");
    assert!(stdout.contains("interrupted"), "{doing}: the update says it was interrupted:\n{stdout}\n{stderr}");
    assert!(latency < Duration::from_secs(1), "{doing}: the update stopped {latency:.2?} after SIGINT");
}

/// Waits for `child` to exit, and returns what it printed.
fn exit_within(mut child: Child, limit: Duration) -> (String, String) {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("poll").is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("the update did not stop within {limit:?} of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let output = child.wait_with_output().expect("output");
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// The window queries (ordered by date) PostgreSQL is running on the test's view.
fn fetches_running(db: &Db) -> usize {
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() \
         AND query LIKE '%ORDER BY%' AND query LIKE '%{}%'",
        db.table
    );
    let connection = db.connect().expect("connect");
    let mut cursor = connection.execute(&sql, (), None).expect("query").expect("a result set");
    let mut row = cursor.next_row().expect("fetch").expect("a row");
    let mut text = Vec::new();
    row.get_text(1, &mut text).expect("count");
    String::from_utf8_lossy(&text).parse().expect("a count")
}
