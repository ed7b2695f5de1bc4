//! No user name or password from the connection string reaches an error message or a log line,
//! whichever way the source fails. PostgreSQL names the connecting role in its errors when asked
//! to (`RAISE … current_user`), so a role named like a secret makes every failure carry one.

use crate::harness::{Db, Kind};

const USER: &str = "cheetah_secret_user_7f3a";
const PASSWORD: &str = "cheetah-secret-pw-9c1e";

/// Runs the CLI with debug logging; returns whether it succeeded and everything it printed.
fn run(db: &Db, args: &[&str]) -> (bool, String) {
    let mut command = crate::harness::cheetah_command(db, args);
    let output = command.env("RUST_LOG", "debug").output().expect("run cheetah");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

fn assert_scrubbed(what: &str, text: &str) {
    for secret in [USER, PASSWORD] {
        assert!(!text.contains(secret), "{what}: `{secret}` appears in the output:\n{text}");
    }
}

#[test]
fn no_source_failure_shows_the_credentials() {
    let Some(db) = Db::open(Kind::Postgres, "secrets") else { return };
    db.exec(&format!(
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{USER}') THEN \
         EXECUTE 'DROP OWNED BY {USER}'; EXECUTE 'DROP ROLE {USER}'; END IF; END $$"
    ));
    db.exec(&format!("CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'"));
    for sql in [
        "DROP VIEW IF EXISTS t_secrets_span, t_secrets_rows, t_secrets_later",
        "DROP TABLE IF EXISTS t_secrets",
        "CREATE TABLE t_secrets (date DATE, symbol VARCHAR(8), close DOUBLE PRECISION)",
        "INSERT INTO t_secrets VALUES ('2024-01-02', 'A', 1.5), ('2024-01-03', 'A', 2.5)",
        // Immutable, so the planner drops it from a view's unused columns and only the queries
        // that read its column fail.
        "CREATE OR REPLACE FUNCTION cheetah_refuse(x anyelement) RETURNS anyelement IMMUTABLE LANGUAGE plpgsql \
         AS $$ BEGIN RAISE EXCEPTION 'refused for %', current_user; END $$",
        "CREATE VIEW t_secrets_span AS SELECT cheetah_refuse(date) AS date, symbol, close FROM t_secrets",
        "CREATE VIEW t_secrets_rows AS SELECT date, symbol, cheetah_refuse(close) AS close FROM t_secrets",
        "CREATE VIEW t_secrets_later AS SELECT date, symbol, close FROM t_secrets",
    ] {
        db.exec(sql);
    }
    db.exec(&format!("GRANT SELECT ON t_secrets, t_secrets_span, t_secrets_rows, t_secrets_later TO {USER}"));
    let odbc = format!(
        "Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port=5432;Database=test;Uid={USER};Pwd={PASSWORD};BoolsAsChar=0;"
    );
    let config = |connection: &str, table: &str| {
        let text = format!(
            "[store]\npath = \"store\"\n\n[source]\nodbc = {connection:?}\nlogin_timeout = 3\n\n[[table]]\nname = \"{table}\"\ndate = \"date\"\nsymbol = \"symbol\"\nfields = [\"close\"]\nstart = \"2024-01-01\"\n"
        );
        std::fs::write(db.config_path(), text).expect("write config");
    };

    // Connecting as a role that does not exist: the server names the role.
    let gone = odbc.replace(USER, &format!("{USER}_gone"));
    config(&gone, "t_secrets");
    for args in [&["update"][..], &["fields"]] {
        let (ok, text) = run(&db, args);
        assert!(!ok, "{args:?} fails");
        assert!(text.contains("cannot connect to the source"), "{args:?}: {text}");
        assert_scrubbed(&format!("connecting for {args:?}"), &text.replace(&format!("{USER}_gone"), "<gone>"));
        assert!(!text.contains(&format!("{USER}_gone")), "{args:?}: the missing role is named:\n{text}");
    }

    // Each query the updater runs, failing in turn: the date span, then the rows.
    for (table, doing) in [("t_secrets_span", "finding its date range"), ("t_secrets_rows", "rows")] {
        config(&odbc, table);
        let (ok, text) = run(&db, &["update"]);
        assert!(!ok, "{table}: the update fails");
        assert!(text.contains(doing) && text.contains("refused for ***"), "{table}: {text}");
        assert_scrubbed(table, &text);
    }

    // The checksums of verify: the table caches, then fails.
    config(&odbc, "t_secrets_later");
    let (ok, text) = run(&db, &["update"]);
    assert!(ok, "{text}");
    assert_scrubbed("a successful update", &text);
    db.exec(
        "CREATE OR REPLACE VIEW t_secrets_later AS SELECT date, symbol, cheetah_refuse(close) AS close FROM t_secrets",
    );
    let (ok, text) = run(&db, &["verify"]);
    assert!(!ok, "verify fails");
    assert!(text.contains("computing checksums") && text.contains("refused for ***"), "{text}");
    assert_scrubbed("verify", &text);

    // The same through the library: the error values themselves.
    let cache = cheetah_core::Cache::builder(cheetah_core::Config::load(&db.config_path()).expect("config"))
        .open()
        .expect("opens");
    let err = cache.verify(&[], (None, None)).expect_err("fails").to_string();
    assert!(err.contains("refused for ***"), "{err}");
    assert_scrubbed("the verify error", &err);
}

/// A config is shared by a team, and only the process that updates holds the password: every
/// command that only reads works in a process whose environment lacks the connection string's
/// variable, and every command that contacts the source names the variable it lacks.
#[test]
fn a_reader_needs_no_secret() {
    const VARIABLE: &str = "CHEETAH_TEST_READER_SECRET";
    let Some(db) = Db::open(Kind::Postgres, "reader_secret") else { return };
    db.create_table();
    let rows = db.seeded(6, 4, 5);
    let share = db.dir.path().join("share");
    let odbc = db.cheetah_connection_string().replace("Pwd=", &format!("Pwd=${{{VARIABLE}}}"));
    assert!(odbc.contains(&format!("${{{VARIABLE}}}")), "{odbc}");
    let extra = format!("\n[share]\npath = {:?}\nbudget = \"64MiB\"\n\n[flight]\nlisten = \"127.0.0.1:0\"\n", share);
    db.config_with(&odbc, &["close", "volume"], &extra);

    let with_secret = |args: &[&str]| {
        let output = crate::harness::cheetah_command(&db, args).env(VARIABLE, "anything").output().expect("run");
        (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let without = |args: &[&str]| {
        let output = crate::harness::cheetah_command(&db, args).env_remove(VARIABLE).output().expect("run");
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.success(), text)
    };
    let (ok, stderr) = with_secret(&["update"]);
    assert!(ok, "the writer has the secret: {stderr}");

    let (first, last) = (crate::harness::day(0).to_string(), crate::harness::day(5).to_string());
    let out = db.dir.path().join("read.csv");
    let out = out.to_str().expect("utf8");
    for args in [
        vec!["status", "--json"],
        vec!["get", "--start", &first, "--end", &last, "--cols", "close,volume", "--out", out],
        vec!["quality", "--json"],
        vec!["universes"],
        vec!["warm", "--start", &first, "--end", &last, "--no-update"],
    ] {
        let (ok, text) = without(&args);
        assert!(ok, "`cheetah {}` without {VARIABLE}: {text}", args.join(" "));
        assert!(!text.contains(VARIABLE), "{text}");
    }
    let csv = std::fs::read_to_string(out).expect("the read's file");
    assert_eq!(csv.lines().count(), rows.len() + 1, "every row, and the header");

    // A server of reads only: it starts, serves, and stops on SIGTERM.
    let mut serve = crate::harness::cheetah_command(&db, &["serve", "--no-update"])
        .env_remove(VARIABLE)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve");
    let mut log = std::io::BufReader::new(serve.stderr.take().expect("stderr"));
    let mut seen = String::new();
    while !seen.contains("serving reads over Arrow Flight") {
        let mut line = String::new();
        let read = std::io::BufRead::read_line(&mut log, &mut line).expect("the log");
        assert!(read > 0, "serve --no-update ended without serving: {seen}");
        seen.push_str(&line);
    }
    // SAFETY: signalling a child this test started.
    unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
    assert!(serve.wait().expect("serve ends").success(), "{seen}");

    for args in [vec!["update"], vec!["verify"], vec!["fields", "clo*"]] {
        let (ok, text) = without(&args);
        assert!(!ok, "`cheetah {}` without {VARIABLE} cannot reach the source", args.join(" "));
        assert!(
            text.contains(&format!("[source] odbc uses ${{{VARIABLE}}}")) && text.contains("is not set"),
            "`cheetah {}` names the variable: {text}",
            args.join(" ")
        );
    }
}
