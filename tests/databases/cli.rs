//! The `cheetah` command as a user runs it.

use std::process::Command;

use crate::harness::{self, cheetah, market, Db};

fn update_status_and_get_from_the_command_line(db: &Db) {
    let rows = db.seeded(8, 5, 9);
    db.config(&["close", "volume", "name"], "");

    let (ok, stdout, stderr) = cheetah(db, &["update"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains(&format!("{}: 8 dates, {} rows written", db.table, rows.len())), "{stdout}");

    let (ok, stdout, stderr) = cheetah(db, &["fields", "vol*"]);
    assert!(ok, "{stderr}");
    // Every table of the database is searched; PostgreSQL calls BIGINT `int8`.
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("default      {} ", db.table)) && l.contains("volume"))
        .unwrap_or_else(|| panic!("volume listed: {stdout}"));
    assert!(line.to_lowercase().contains("int") && line.trim_end().ends_with("yes"), "{line}");
    assert!(!stdout.contains(" close "), "only matching columns: {stdout}");
    let (ok, stdout, _) = cheetah(db, &["fields", "--table", &db.table]);
    assert!(ok);
    let flag = stdout.lines().find(|l| l.contains(" flag ")).expect("flag listed");
    assert!(!flag.trim_end().ends_with("yes"), "flag is not cached: {flag}");

    let (ok, stdout, _) = cheetah(db, &["status", "--json"]);
    assert!(ok);
    let status: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let table = &status["tables"][0];
    assert_eq!(table["dates"], 8);
    assert_eq!(table["rows"], rows.len());
    assert_eq!(table["watermark"], harness::day(7).to_string());
    assert_eq!(table["fields"].as_array().expect("fields").len(), 3);

    let out = db.dir.path().join("out.csv");
    let (ok, _, stderr) = cheetah(
        db,
        &[
            "get",
            "--start",
            &harness::day(2).to_string(),
            "--end",
            &harness::day(3).to_string(),
            "--cols",
            "volume,close",
            "--symbols",
            "S001,S003,NOPE",
            "--out",
            out.to_str().expect("utf8"),
        ],
    );
    assert!(ok, "{stderr}");
    let csv = std::fs::read_to_string(&out).expect("csv");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("date,symbol,volume,close"));
    let expected: Vec<String> = rows
        .iter()
        .filter(|r| {
            r.date >= harness::day(2) && r.date <= harness::day(3) && (r.symbol == "S001" || r.symbol == "S003")
        })
        .map(|r| {
            format!(
                "{},{},{},{}",
                r.date,
                r.symbol,
                r.volume.map(|v| v.to_string()).unwrap_or_default(),
                r.close.map(|v| v.to_string()).unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(lines.map(str::to_string).collect::<Vec<_>>(), expected);

    // `warm` over a range the cache does not reach yet fetches it first.
    db.insert(&market(8, 2, 5, 10));
    let (ok, stdout, stderr) =
        cheetah(db, &["warm", "--start", &harness::day(0).to_string(), "--end", &harness::day(9).to_string()]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("updating first"), "{stderr}");
    assert!(stdout.starts_with("warmed ") && stdout.contains(" chunks, "), "{stdout}");
    let (_, stdout, _) = cheetah(db, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(status["tables"][0]["watermark"], harness::day(9).to_string());

    let (ok, _, stderr) = cheetah(db, &["get", "--start", "2020-02-01", "--end", "2020-01-01", "--cols", "close"]);
    assert!(!ok);
    assert!(stderr.contains("start 2020-02-01 is after end 2020-01-01"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "a one-line reason: {stderr}");
}

#[test]
fn init_writes_a_config_that_loads_and_never_overwrites() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("sub").join("cheetah.toml");
    let run = || {
        Command::new(harness::cheetah_binary())
            .args(["--config", path.to_str().expect("utf8"), "init"])
            .env("PGUSER", "reader")
            .env("PGPASSWORD", "secret")
            .output()
            .expect("run cheetah")
    };
    let first = run();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    std::env::set_var("PGUSER", "reader");
    std::env::set_var("PGPASSWORD", "secret");
    let config = cheetah_core::Config::load(&path).expect("the starter config loads");
    assert_eq!(config.tables.len(), 3, "daily_bar, valuation and the asof fundamentals");
    let second = run();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("already exists; pass --force"));
}

database_tests! {
    update_status_and_get_from_the_command_line => "cli",
}
