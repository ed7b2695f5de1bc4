//! Crash safety: a real `cheetah update` process killed with SIGKILL at random points of a
//! backfill from PostgreSQL, read over 4 connections.

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
    let config = db.config(&FIELDS, "");
    assert_eq!(config.sources[cheetah_core::DEFAULT_SOURCE].connections, 4, "the backfill reads over 4 connections");

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

/// Versions survive a kill too: a store with a snapshot is updated with corrections and new
/// dates, and killed with SIGKILL at random points. After each kill the snapshot and the
/// version it pins read exactly what they read before, every version committed since reads
/// without error, and the next update completes.
#[test]
fn sigkill_mid_update_keeps_every_committed_version_and_snapshot() {
    let Some(db) = Db::open(Kind::Postgres, "crash_versions") else { return };
    let kills = std::env::var("CHEETAH_CRASH_KILLS").ok().and_then(|k| k.parse().ok()).unwrap_or(KILLS / 2);
    let seed = std::env::var("CHEETAH_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos() as u64 | 1
    });
    eprintln!("versions crash test: {kills} kills, CHEETAH_CRASH_SEED={seed}");
    let mut random = Random(seed);
    db.create_table();
    let rows = harness::market(0, 160, 200, 12);
    let (old, new): (Vec<_>, Vec<_>) = rows.iter().cloned().partition(|r| r.date < harness::day(80));
    db.insert(&old);
    db.config(&FIELDS, "lookback = 20");
    let (ok, _, stderr) = cheetah(&db, &["update", "--no-progress"]);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = cheetah(&db, &["snapshot", "create", "half"]);
    assert!(ok, "{stderr}");
    let half = harness::read_all(&harness::reader(&db), &FIELDS);
    // Corrections inside the lookback and the second half of the dates: history and new days.
    db.exec(&format!("UPDATE {} SET close = close + 1 WHERE date >= '{}'", db.table, harness::day(70)));
    db.insert(&new);
    let pristine = db.dir.path().join("pristine");
    copy_dir(&db.store_path(), &pristine);

    let started = Instant::now();
    let (ok, _, stderr) = cheetah(&db, &["update", "--no-progress"]);
    assert!(ok, "{stderr}");
    let full = started.elapsed();
    let (mut landed, mut late) = (0, 0);
    while landed < kills {
        assert!(late < kills * 3, "the update kept finishing before its kill; it takes {full:?}");
        std::fs::remove_dir_all(db.store_path()).ok();
        copy_dir(&pristine, &db.store_path());
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

        let reader = harness::reader(&db);
        let latest = reader.status().expect("status").versions.expect("versions").latest;
        assert!(latest >= half.version.number, "kill {landed}: versions never go back");
        let everything = |as_of: cheetah_core::AsOf| {
            let request = cheetah_core::Request::new(
                NaiveDate::from_ymd_opt(2000, 1, 1).expect("date"),
                NaiveDate::from_ymd_opt(2100, 1, 1).expect("date"),
                FIELDS.map(String::from).to_vec(),
            );
            reader.get(&request.as_of(as_of))
        };
        let snapshot = everything(cheetah_core::AsOf::Snapshot("half".into())).expect("the snapshot reads");
        assert_eq!(snapshot.batch, half.batch, "kill {landed}: the snapshot reads as before");
        assert_eq!(everything(cheetah_core::AsOf::Version(half.version.number)).expect("read").batch, half.batch);
        for v in half.version.number..=latest {
            everything(cheetah_core::AsOf::Version(v)).unwrap_or_else(|e| panic!("kill {landed}: version {v}: {e}"));
        }
        let (ok, _, stderr) = cheetah(&db, &["update", "--no-progress"]);
        assert!(ok, "the update after kill {landed} completes: {stderr}");
    }
    eprintln!("{landed} kills landed mid-update, {late} runs finished first");
    assert_matches(
        &harness::reader(&db),
        &FIELDS,
        &harness::model(&{
            let mut corrected = rows.clone();
            for r in corrected.iter_mut().filter(|r| r.date >= harness::day(70) && r.date < harness::day(80)) {
                r.close = r.close.map(|c| c + 1.0);
            }
            corrected
        }),
        None,
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("create");
    for entry in std::fs::read_dir(from).expect("read") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}
