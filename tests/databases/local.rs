//! Local tables written by real processes: two `cheetah import`s while `cheetah serve` updates a
//! PostgreSQL source every 100 ms (each lands, readers see whole dates, serve's updates go on,
//! a write is readable by a new process within a second), and `cheetah import` killed with
//! SIGKILL mid-write (no partial date, and the next write works).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Date32Type, Float64Type};
use cheetah_core::{Cache, Config, Request};
use chrono::NaiveDate;

use crate::harness::{self, cheetah, cheetah_command, day, market, wait_for, watermark, Db, Kind, FIELDS};
use crate::service::{read_log, serve, terminate, watermark_if_any};

/// A factor's value for the `d`-th date and `s`-th symbol of a file: known without the file.
fn value(field: u32, d: u32, s: u32) -> f64 {
    f64::from(field * 1_000_003 + d * 7919 + s) / 8.0
}

fn symbol(s: u32) -> String {
    format!("L{s:05}")
}

/// Writes a CSV of `field` over dates `days` × `symbols` symbols, ordered by date.
fn csv(path: &Path, field: &str, field_no: u32, days: std::ops::Range<u32>, symbols: u32) {
    let mut text = format!("date,symbol,{field}\n");
    for d in days {
        for s in 0..symbols {
            let _ = writeln!(text, "{},{},{}", day(d), symbol(s), value(field_no, d, s));
        }
    }
    std::fs::write(path, text).expect("write csv");
}

fn import(db: &Db, table: &str, file: &Path) -> std::process::Command {
    let mut command = cheetah_command(db, &["import", table]);
    command.arg(file);
    command
}

/// Each date of `field` read from `cache`: its rows, and whether every value is the file's.
fn dates_of(cache: &Cache, field: &str, field_no: u32, through: u32) -> Vec<(NaiveDate, usize, bool)> {
    let request = Request::new(day(0), day(through), vec![field.to_string()]);
    let result = cache.get(&request).expect("read");
    let batch = &result.batch;
    let dates = batch.column(0).as_primitive::<Date32Type>();
    let symbols = arrow::compute::cast(batch.column(1), &arrow::datatypes::DataType::Utf8).expect("text");
    let symbols = symbols.as_string::<i32>();
    let values = batch.column(2).as_primitive::<Float64Type>();
    let index: std::collections::HashMap<NaiveDate, u32> = (0..=through).map(|d| (day(d), d)).collect();
    let mut found: Vec<(NaiveDate, usize, bool)> = Vec::new();
    for row in 0..batch.num_rows() {
        let date = dates.value_as_date(row).expect("date");
        let d = index[&date];
        let s: u32 = symbols.value(row)[1..].parse().expect("a file's symbol");
        let right = !values.is_null(row) && values.value(row) == value(field_no, d, s);
        match found.last_mut() {
            Some((last, rows, ok)) if *last == date => {
                *rows += 1;
                *ok &= right;
            }
            _ => found.push((date, 1, right)),
        }
    }
    found
}

#[test]
fn local_writes_land_while_serve_updates_postgres_every_100ms() {
    const SYMBOLS: u32 = 300;
    let Some(db) = Db::open(Kind::Postgres, "local_serve") else { return };
    db.create_table();
    let rows = market(0, 60, 40, 5);
    let (old, new): (Vec<_>, Vec<_>) = rows.iter().cloned().partition(|r| r.date < day(20));
    db.insert(&old);
    db.config(&FIELDS, "lookback = 2");
    let (daemon, log) = serve(&db, &["--interval", "0.1", "--retry-min", "0.2", "--retry-max", "1"]);
    assert!(wait_for(60.0, || watermark_if_any(&db) == Some(day(19))), "first round:\n{}", read_log(&log));

    // Two writers: each imports its own table in three parts, while new dates reach the source.
    let files: Vec<(String, u32, Vec<PathBuf>)> = [("lw_a", 1), ("lw_b", 2)]
        .into_iter()
        .map(|(field, no)| {
            let parts = (0..3)
                .map(|part| {
                    let path = db.dir.path().join(format!("{field}-{part}.csv"));
                    csv(&path, field, no, part * 20..part * 20 + 20, SYMBOLS);
                    path
                })
                .collect();
            (field.to_string(), no, parts)
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, config) = (stop.clone(), db.config_path());
        std::thread::spawn(move || {
            let cache = Cache::builder(Config::load(&config).expect("config")).open().expect("reader");
            let (mut reads, mut torn) = (0, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                for (field, no) in [("lw_a", 1), ("lw_b", 2)] {
                    if cache.status().expect("status").tables.iter().any(|t| t.fields.iter().any(|f| f.name == field)) {
                        reads += 1;
                        torn.extend(dates_of(&cache, field, no, 59).into_iter().filter(|(_, n, ok)| *n != 300 || !ok));
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (reads, torn)
        })
    };
    let writers: Vec<_> = files
        .iter()
        .map(|(field, _, parts)| {
            let (db_dir, parts, field) = (db.config_path(), parts.clone(), field.clone());
            let binary = harness::cheetah_binary();
            std::thread::spawn(move || {
                for part in parts {
                    let out = std::process::Command::new(&binary)
                        .arg("--config")
                        .arg(&db_dir)
                        .args(["import", &format!("{field}_t")])
                        .arg(&part)
                        .output()
                        .expect("run import");
                    assert!(
                        out.status.success(),
                        "import {}: {}",
                        part.display(),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            })
        })
        .collect();
    for date in 20..60 {
        db.insert(&new.iter().filter(|r| r.date == day(date)).cloned().collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(100));
    }
    for writer in writers {
        writer.join().expect("writer");
    }
    assert!(wait_for(10.0, || watermark(&db) == Some(day(59))), "serve kept updating:\n{}", read_log(&log));

    // A small write while serve runs is readable by a new process as soon as it returns.
    let mut latencies = Vec::new();
    for attempt in 0..3 {
        let path = db.dir.path().join(format!("quick-{attempt}.csv"));
        csv(&path, "lw_quick", 3, attempt..attempt + 1, 10);
        let started = Instant::now();
        let out = import(&db, "lw_quick_t", &path).output().expect("import");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        latencies.push(started.elapsed().as_secs_f64());
        let (ok, stdout, stderr) = cheetah(
            &db,
            &["get", "--start", &day(attempt).to_string(), "--end", &day(attempt).to_string(), "--cols", "lw_quick"],
        );
        assert!(ok && stdout.lines().count() > 10, "a new process reads it: {stdout}{stderr}");
    }
    stop.store(true, Ordering::Relaxed);
    let (reads, torn) = reader.join().expect("reader");
    let stop_seconds = terminate(daemon, 5.0, &log);

    latencies.sort_by(f64::total_cmp);
    eprintln!(
        "local writes under serve: {reads} reads saw no torn date; a one-date import while serve runs took {:.3} s median (including the new process), serve stopped {stop_seconds:.2} s after SIGTERM",
        latencies[1]
    );
    assert!(torn.is_empty(), "readers saw dates not whole or not the file's: {:?}", &torn[..torn.len().min(5)]);
    assert!(reads > 10, "the reader read while the writers wrote: {reads}");
    assert!(latencies[1] < 1.0, "a write under serve takes {latencies:?} s");
    assert!(
        read_log(&log).contains("applied a local write from the inbox"),
        "serve took the writes:\n{}",
        read_log(&log)
    );
    let cache = harness::reader(&db);
    for (field, no, _) in &files {
        let dates = dates_of(&cache, field, *no, 59);
        assert_eq!(dates.len(), 60, "{field}: every date landed");
        assert!(dates.iter().all(|(_, n, ok)| *n == 300 && *ok), "{field}: every row is the file's");
    }
    let (ok, stdout, stderr) = cheetah(&db, &["verify"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("a local table, with no source to compare: every chunk reads"), "{stdout}");
}

#[test]
fn sigkill_mid_import_leaves_no_partial_date_and_the_next_write_works() {
    const KILLS: usize = 8;
    const SYMBOLS: u32 = 2000;
    const DAYS: u32 = 700;
    let Some(db) = Db::open(Kind::Sqlite, "local_crash") else { return };
    db.seeded(5, 5, 3);
    db.config(&FIELDS, "");
    let (ok, _, stderr) = cheetah(&db, &["update", "--no-progress"]);
    assert!(ok, "{stderr}");
    let file = db.dir.path().join("big.csv");
    csv(&file, "crashf", 4, 0..DAYS, SYMBOLS);

    let scratch = db.dir.path().join("scratch");
    std::fs::create_dir_all(&scratch).expect("dir");
    let started = Instant::now();
    let out = import(&db, "crash_probe", &file).output().expect("import");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let full = started.elapsed();
    let (ok, _, stderr) = cheetah(&db, &["drop", "crash_probe"]);
    assert!(ok, "{stderr}");
    eprintln!("an uninterrupted import of {} rows takes {full:.2?}", DAYS * SYMBOLS);

    let (mut landed, mut late, mut seen_partial_import) = (0, 0, false);
    let mut fraction = 0.15;
    while landed < KILLS {
        assert!(late < KILLS * 3, "the import kept finishing before its kill; it takes {full:?}");
        let mut child =
            import(&db, "crash_t", &file).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
        std::thread::sleep(full.mul_f64(fraction));
        fraction = (fraction + 0.1) % 0.95;
        if child.try_wait().expect("poll").is_some() {
            late += 1;
            continue;
        }
        harness::signal(&child, libc::SIGKILL);
        child.wait().expect("reap");
        landed += 1;
        let cache = harness::reader(&db);
        if cache.status().expect("status").tables.iter().any(|t| t.name == "crash_t") {
            let dates = dates_of(&cache, "crashf", 4, DAYS - 1);
            seen_partial_import |= !dates.is_empty() && dates.len() < DAYS as usize;
            let torn: Vec<_> = dates.iter().filter(|(_, n, ok)| *n != SYMBOLS as usize || !ok).collect();
            assert!(torn.is_empty(), "kill {landed}: dates not whole: {:?}", &torn[..torn.len().min(3)]);
        }
    }
    let out = import(&db, "crash_t", &file).output().expect("import");
    assert!(out.status.success(), "the write after {KILLS} kills: {}", String::from_utf8_lossy(&out.stderr));
    let dates = dates_of(&harness::reader(&db), "crashf", 4, DAYS - 1);
    assert_eq!(dates.len(), DAYS as usize);
    assert!(dates.iter().all(|(_, n, ok)| *n == SYMBOLS as usize && *ok));
    let (ok, stdout, stderr) = cheetah(&db, &["verify"]);
    assert!(ok, "{stdout}{stderr}");
    eprintln!("{landed} kills landed mid-import ({late} imports finished first); some left part of the file: {seen_partial_import}");
    assert!(
        std::fs::read_dir(db.store_path().join("inbox")).map_or(true, |d| d.count() == 0),
        "no request is left behind"
    );
}
