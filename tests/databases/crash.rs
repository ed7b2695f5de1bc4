//! Crash safety: a real `cheetah update` process killed with SIGKILL at random points of a
//! backfill from PostgreSQL.

use std::process::Stdio;
use std::time::Instant;

use cheetah_core::internals::{day_of, Day};
use cheetah_core::{Cache, Error, StoreError};
use chrono::NaiveDate;

use crate::harness::{self, assert_matches, cheetah, cheetah_command, Db, Kind, Model, FIELDS};

/// Kills in CI; `CHEETAH_CRASH_KILLS` asks for more.
const KILLS: usize = 20;

/// A seeded xorshift generator; the seed is printed so a failing run can be repeated.
struct Random(u64);

impl Random {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn sigkill_at_random_points_of_a_backfill_never_loses_or_tears_a_date() {
    let Some(db) = Db::open(Kind::Postgres, "crash") else { return };
    let kills = std::env::var("CHEETAH_CRASH_KILLS").ok().and_then(|k| k.parse().ok()).unwrap_or(KILLS);
    let seed = std::env::var("CHEETAH_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos() as u64 | 1
    });
    eprintln!("crash test: {kills} kills, CHEETAH_CRASH_SEED={seed}");
    let mut random = Random(seed);
    let rows = db.seeded(160, 200, 11);
    let expected = harness::model(&rows);
    db.config(&FIELDS, "");

    let started = Instant::now();
    let (ok, _, stderr) = cheetah(&db, &["update", "--no-progress"]);
    assert!(ok, "{stderr}");
    let full = started.elapsed();
    eprintln!("an uninterrupted backfill takes {full:.2?}");

    let (mut landed, mut late, mut empty) = (0, 0, 0);
    while landed < kills {
        assert!(late < kills * 3, "the update kept finishing before its kill; it takes {full:?}");
        std::fs::remove_dir_all(db.store_path()).ok();
        let mut child = cheetah_command(&db, &["update", "--no-progress"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(full.mul_f64(random.unit()));
        if child.try_wait().expect("poll").is_some() {
            late += 1;
            continue;
        }
        harness::signal(&child, libc::SIGKILL);
        child.wait().expect("reap");
        landed += 1;

        let config = cheetah_core::Config::load(&db.config_path()).expect("config");
        match cheetah_core::Cache::builder(config).open() {
            // Killed before the store held anything: readers must say so plainly.
            Err(Error::Store(StoreError::Missing { .. })) => empty += 1,
            Err(e) => panic!("the store opens after kill {landed}: {e}"),
            Ok(cache) => check_committed_dates(&db, &cache, &expected),
        }
        let (ok, _, stderr) = cheetah(&db, &["update", "--no-progress"]);
        assert!(ok, "the update after kill {landed} completes: {stderr}");
        let (ok, stdout, stderr) = cheetah(&db, &["verify"]);
        assert!(ok, "verify after kill {landed}: {stdout}{stderr}");
    }
    eprintln!("{landed} kills landed mid-update ({empty} before the store held anything), {late} runs finished first");
    assert_matches(&harness::reader(&db), &FIELDS, &expected, None);
}

/// The store opens; every date at or below the watermark equals the source, and no date above
/// it is visible, not even as a stray chunk.
fn check_committed_dates(db: &Db, cache: &Cache, expected: &Model) {
    if cache.store().catalog().expect("catalog").tables.is_empty() {
        let err = harness::read_all_result(cache, &FIELDS).expect_err("nothing to read");
        assert!(err.to_string().contains("empty cache"), "{err}");
        return;
    }
    let status = cache.status().expect("status");
    let watermark = status.tables.iter().find(|t| t.name == db.table).and_then(|t| t.watermark);
    let through = watermark.unwrap_or(NaiveDate::MIN);
    assert_matches(cache, &FIELDS, expected, Some(through));
    let store = cache.store();
    if let Some(table) = store.catalog().expect("catalog").table(&db.table) {
        let above = store.days(table.id, day_of(through).saturating_add(1), Day::MAX).expect("days");
        assert!(above.is_empty(), "dates above the watermark {through}: {above:?}");
    }
}
