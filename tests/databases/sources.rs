//! One cache over three sources at once: SQLite as `[source]`, PostgreSQL and MariaDB as named
//! `[sources.NAME]`. One goes down (its role revoked, or its server cut off mid-serve) and the
//! others keep updating; reads across them keep one consistent cut.

use std::time::Duration;

use chrono::NaiveDate;

use crate::harness::{self, assert_result_matches, cheetah, day, market, model, wait_for, Db, Kind, Proxy, Row};
use crate::service::{read_log, serve, terminate};

const SYMBOLS: u32 = 12;
const DAYS: u32 = 10;
/// Dates in every source before the first update.
const FIRST: u32 = 6;

/// The three databases, or `None` when one is down (and databases are not required).
fn three(label: &str) -> Option<(Db, Db, Db)> {
    Some((
        Db::open(Kind::Sqlite, &format!("{label}_lite"))?,
        Db::open(Kind::Postgres, &format!("{label}_pg"))?,
        Db::open(Kind::Mariadb, &format!("{label}_maria"))?,
    ))
}

/// Creates each table with the first `FIRST` dates of its own market; returns each market.
fn seed(dbs: &[&Db]) -> Vec<Vec<Row>> {
    dbs.iter()
        .enumerate()
        .map(|(i, db)| {
            db.create_table();
            let rows = market(0, DAYS, SYMBOLS, 40 + i as u64);
            db.insert(&rows.iter().filter(|r| r.date < day(FIRST)).cloned().collect::<Vec<_>>());
            rows
        })
        .collect()
}

fn insert_rest(db: &Db, rows: &[Row]) {
    db.insert(&rows.iter().filter(|r| r.date >= day(FIRST)).cloned().collect::<Vec<_>>());
}

/// Writes the config of the cache in `home`'s directory: `home`'s table from `[source]`, and
/// each of `named` (a name, its connection string, its db) from `[sources.NAME]`.
fn write_config(home: &Db, named: &[(&str, String, &Db)]) {
    let table = |db: &Db, source: Option<&str>| {
        let source = source.map_or(String::new(), |s| format!("source = \"{s}\"\n"));
        format!(
            "\n[[table]]\nname = \"{}\"\n{source}date = \"date\"\nsymbol = \"symbol\"\nfields = [\"close\", \"volume\", \"px\"]\nstart = \"2020-01-01\"\nlookback = 2\n",
            db.table
        )
    };
    let mut text = format!("[store]\npath = \"store\"\n\n[source]\nodbc = {:?}\n", home.cheetah_connection_string());
    for (name, odbc, _) in named {
        text.push_str(&format!("\n[sources.{name}]\nodbc = {odbc:?}\nlogin_timeout = 3\n"));
    }
    text.push_str(&table(home, None));
    for (name, _, db) in named {
        text.push_str(&table(db, Some(name)));
    }
    std::fs::write(home.config_path(), text).expect("write config");
}

/// Reads `table.field` for every table of `dbs` and checks the covered cut and each table's
/// values against its source's rows through that cut.
fn check_read(home: &Db, dbs: &[&Db], markets: &[&[Row]], through: NaiveDate) {
    let cache = harness::reader(home);
    let cols: Vec<String> = dbs.iter().map(|db| format!("{}.close", db.table)).collect();
    let request = cheetah_core::Request::new(day(0), day(DAYS + 5), cols);
    let result = cache.get(&request).expect("read across sources");
    assert_eq!(result.covered.map(|(_, end)| end), Some(through), "the cut is the lowest watermark");
    // Each table alone through the cut: the rows of the others only add keys.
    for (db, rows) in dbs.iter().zip(markets) {
        let only = cache
            .get(&cheetah_core::Request::new(
                day(0),
                through,
                ["close", "volume", "px"].iter().map(|f| format!("{}.{f}", db.table)).collect(),
            ))
            .expect("read one table");
        assert_result_matches(&only.batch, &["close", "volume", "px"], &model(rows), Some(through));
    }
}

/// Each table's watermark and source, as a new reader sees them; none before serve's first
/// round has created the store.
fn watermarks(home: &Db) -> Vec<(String, Option<NaiveDate>, Option<String>)> {
    let config = cheetah_core::Config::load(&home.config_path()).expect("config");
    let Ok(cache) = cheetah_core::Cache::builder(config).open() else { return Vec::new() };
    let status = cache.status().expect("status");
    status.tables.into_iter().map(|t| (t.name, t.watermark, t.source)).collect()
}

fn watermark_of(home: &Db, table: &str) -> Option<NaiveDate> {
    watermarks(home).into_iter().find(|(name, ..)| name == table).and_then(|(_, mark, _)| mark)
}

#[test]
fn one_cache_over_three_sources_keeps_updating_the_others_while_one_is_down() {
    let Some((lite, pg, maria)) = three("sources") else { return };
    let markets = seed(&[&lite, &pg, &maria]);
    let role = "cheetah_sources_reader";
    pg.exec(&format!("DROP ROLE IF EXISTS {role}"));
    pg.exec(&format!("CREATE ROLE {role} LOGIN"));
    pg.exec(&format!("GRANT SELECT ON {} TO {role}", pg.table));
    let pg_odbc = pg.cheetah_connection_string().replace("Uid=postgres", &format!("Uid={role}"));
    write_config(&lite, &[("pg", pg_odbc, &pg), ("maria", maria.cheetah_connection_string(), &maria)]);

    let (ok, stdout, stderr) = cheetah(&lite, &["update", "--no-progress"]);
    assert!(ok, "{stdout}{stderr}");
    let all = [&lite, &pg, &maria];
    let rows: Vec<&[Row]> = markets.iter().map(Vec::as_slice).collect();
    check_read(&lite, &all, &rows, day(FIRST - 1));

    let (ok, status, stderr) = cheetah(&lite, &["status"]);
    assert!(ok, "{stderr}");
    for line in [format!("{} (Daily, source pg)", pg.table), format!("{} (Daily, source maria)", maria.table)] {
        assert!(status.contains(&line), "status names each table's source:\n{status}");
    }
    let (ok, json, _) = cheetah(&lite, &["status", "--json"]);
    assert!(ok && json.contains("\"source\": \"default\""), "{json}");
    for secret in ["Driver", "127.0.0.1", role, "Uid", "source.db"] {
        assert!(!status.contains(secret) && !json.contains(secret), "status shows no connection string: {secret}");
    }

    // New dates everywhere, and PostgreSQL refuses the role from now on.
    for (db, rows) in all.iter().zip(&markets) {
        insert_rest(db, rows);
    }
    pg.exec(&format!("ALTER ROLE {role} NOLOGIN"));
    let (ok, stdout, stderr) = cheetah(&lite, &["update", "--no-progress"]);
    assert!(!ok, "a failed source fails the run: {stdout}");
    assert!(stdout.contains(&format!("{}: FAILED: cannot connect to the source `pg`", pg.table)), "{stdout}");
    assert!(stderr.contains("check [sources.pg] odbc"), "the error says where to look: {stderr}");
    assert!(!stderr.contains(role) && !stdout.contains(role), "no user name in messages: {stdout}{stderr}");
    assert_eq!(watermark_of(&lite, &lite.table), Some(day(DAYS - 1)), "SQLite kept updating");
    assert_eq!(watermark_of(&lite, &maria.table), Some(day(DAYS - 1)), "MariaDB kept updating");
    assert_eq!(watermark_of(&lite, &pg.table), Some(day(FIRST - 1)), "PostgreSQL stayed where it was");
    // A read across all three stops at PostgreSQL's watermark; without it, at the others'.
    check_read(&lite, &all, &rows, day(FIRST - 1));
    check_read(&lite, &[&lite, &maria], &[rows[0], rows[2]], day(DAYS - 1));

    // `warm` warms what the others hold and fails naming the table it could not update.
    let (ok, stdout, stderr) = cheetah(&lite, &["warm", "--start", "2020-01-01", "--end", "2030-01-01"]);
    assert!(!ok && stdout.contains("warmed "), "{stdout}{stderr}");
    assert!(stderr.contains(&format!("{} was not updated: cannot connect to the source `pg`", pg.table)), "{stderr}");

    let (ok, stdout, stderr) = cheetah(&lite, &["fields", "close"]);
    assert!(!ok, "a source that cannot be searched fails the search: {stdout}{stderr}");
    assert!(stderr.contains("source `pg` was not searched"), "{stderr}");
    for table in [&lite.table, &maria.table] {
        assert!(
            stdout.lines().any(|l| l.contains(table.as_str()) && l.contains("close") && l.ends_with("yes")),
            "{stdout}"
        );
    }
    let (ok, stdout, stderr) = cheetah(&lite, &["fields", "--source", "maria", "px"]);
    assert!(ok, "{stderr}");
    assert!(stdout.lines().skip(1).all(|l| l.starts_with("maria ")), "only that source: {stdout}");
    assert!(stdout.contains(&maria.table), "{stdout}");
    let (ok, _, stderr) = cheetah(&lite, &["fields", "--source", "vendor"]);
    assert!(!ok && stderr.contains("has no source `vendor`; its sources are: default, maria, pg"), "{stderr}");

    // Back up: updating that source alone catches it up, and everything verifies.
    pg.exec(&format!("ALTER ROLE {role} LOGIN"));
    let (ok, stdout, stderr) = cheetah(&lite, &["update", "--no-progress", "--source", "pg"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains(&pg.table) && !stdout.contains(&lite.table), "only pg's tables ran: {stdout}");
    check_read(&lite, &all, &rows, day(DAYS - 1));
    let (ok, stdout, stderr) = cheetah(&lite, &["verify"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains(&pg.table) && stdout.contains(&maria.table), "{stdout}");

    // A table changes sources: its cache is rebuilt from the new one, never mixed.
    let text = std::fs::read_to_string(lite.config_path()).expect("config");
    let moved = text.replace(
        &format!("name = \"{}\"\nsource = \"pg\"", pg.table),
        &format!("name = \"{}\"\nsource = \"maria\"", pg.table),
    );
    assert_ne!(moved, text);
    std::fs::write(lite.config_path(), moved).expect("config");
    maria.exec(&format!("DROP TABLE IF EXISTS {}", pg.table));
    maria.exec(&format!("CREATE TABLE {} AS SELECT * FROM {} WHERE date < '{}'", pg.table, maria.table, day(3)));
    let (ok, stdout, stderr) = cheetah(&lite, &["update", "--no-progress", "--source", "maria"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stderr.contains("invalidated") && stderr.contains("source"), "the rebuild says why: {stderr}");
    assert_eq!(watermark_of(&lite, &pg.table), Some(day(2)), "rebuilt from MariaDB's copy");
    maria.exec(&format!("DROP TABLE IF EXISTS {}", pg.table));
    pg.exec(&format!("REVOKE ALL ON {} FROM {role}", pg.table));
    pg.exec(&format!("DROP ROLE IF EXISTS {role}"));
}

#[test]
fn serve_backs_off_the_source_that_went_down_while_the_others_keep_their_interval() {
    let Some((lite, pg, maria)) = three("sources_serve") else { return };
    let markets = seed(&[&lite, &pg, &maria]);
    let proxy = Proxy::start(3306);
    write_config(&lite, &[("pg", pg.cheetah_connection_string(), &pg), ("maria", maria.via_proxy(&proxy), &maria)]);
    let (daemon, log) = serve(&lite, &["--interval", "0.3", "--retry-min", "0.2", "--retry-max", "0.8"]);
    let first =
        wait_for(60.0, || [&lite, &pg, &maria].iter().all(|db| watermark_of(&lite, &db.table) == Some(day(FIRST - 1))));
    assert!(first, "first round:\n{}", read_log(&log));

    // MariaDB's server goes away mid-serve; new dates arrive everywhere.
    proxy.go_down_at_connection(1);
    for (db, rows) in [&lite, &pg, &maria].iter().zip(&markets) {
        insert_rest(db, rows);
    }
    let others = wait_for(15.0, || {
        watermark_of(&lite, &lite.table) == Some(day(DAYS - 1)) && watermark_of(&lite, &pg.table) == Some(day(DAYS - 1))
    });
    assert!(others, "SQLite and PostgreSQL kept updating:\n{}", read_log(&log));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(watermark_of(&lite, &maria.table), Some(day(FIRST - 1)), "MariaDB's table waits");
    let text = read_log(&log);
    let waits: Vec<f64> = text
        .lines()
        .filter(|l| l.contains("source `maria` failed"))
        .filter_map(|l| l.split("next round in ").nth(1))
        .filter_map(|w| w.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(waits.len() >= 3, "serve retried MariaDB:\n{text}");
    assert_eq!(&waits[..3], &[0.2, 0.4, 0.8], "its waits double:\n{text}");
    assert!(!text.contains("source `default` failed") && !text.contains("source `pg` failed"), "{text}");

    proxy.restore();
    assert!(
        wait_for(15.0, || watermark_of(&lite, &maria.table) == Some(day(DAYS - 1))),
        "MariaDB caught up:\n{}",
        read_log(&log)
    );
    terminate(daemon, 5.0, &log);
    assert!(read_log(&log).contains("source `maria` is back"), "{}", read_log(&log));
    let rows: Vec<&[Row]> = markets.iter().map(Vec::as_slice).collect();
    check_read(&lite, &[&lite, &pg, &maria], &rows, day(DAYS - 1));
}
