//! The committed fixture stores (`tests/fixtures/`, made by `make.sh` with the code of the
//! format versions they carry) open, read, upgrade and fail exactly as documented.

use std::path::{Path, PathBuf};

use cheetah_core::arrow::util::pretty::pretty_format_batches;
use cheetah_core::{AsOf, Cache, Config, Error, QueryError, Request, StoreError, FORMAT_VERSION};
use chrono::NaiveDate;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create");
    for entry in std::fs::read_dir(from).expect("fixture exists") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

/// A copy of fixture store `name` with its SQLite source made anew from `source.sql`, and the
/// config that reads both. The committed files are never opened in place.
struct Fixture {
    dir: tempfile::TempDir,
    config: Config,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        copy_dir(&fixtures().join(name), &dir.path().join("store"));
        let source = dir.path().join("source.db");
        let sql = std::fs::read_to_string(fixtures().join("source.sql")).expect("source.sql");
        sql_exec(&source, &sql);
        let text = std::fs::read_to_string(fixtures().join("config.toml.in"))
            .expect("config.toml.in")
            .replace("@SOURCE@", &source.display().to_string())
            .replace("@STORE@", &dir.path().join("store").display().to_string());
        let path = dir.path().join("cheetah.toml");
        std::fs::write(&path, text).expect("write config");
        let config = Config::load(&path).expect("config loads");
        Fixture { dir, config }
    }

    fn source(&self) -> PathBuf {
        self.dir.path().join("source.db")
    }

    fn reader(&self) -> Cache {
        Cache::builder(self.config.clone()).open().expect("the fixture opens")
    }

    fn writer(&self) -> Cache {
        Cache::builder(self.config.clone()).writer(true).open().expect("the fixture opens for writing")
    }
}

fn sql_exec(db: &Path, sql: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child =
        Command::new("sqlite3").arg(db).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("sqlite3 runs");
    child.stdin.take().expect("stdin").write_all(sql.as_bytes()).expect("write the SQL");
    let out = child.wait_with_output().expect("sqlite3 ends");
    assert!(out.status.success() && out.stderr.is_empty(), "sqlite3: {}", String::from_utf8_lossy(&out.stderr));
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
}

/// Every cached field over the fixture's dates, with the asof revenue aligned to `bar`'s rows.
fn read(cache: &Cache, end: &str) -> Result<String, Error> {
    read_at(cache, end, None)
}

/// [`read`] at a version.
fn read_at(cache: &Cache, end: &str, as_of: Option<AsOf>) -> Result<String, Error> {
    let cols = ["close", "volume", "name", "revenue"].map(String::from).to_vec();
    let mut request = Request::new(date("2024-01-01"), date(end), cols).base("bar");
    if let Some(as_of) = as_of {
        request = request.as_of(as_of);
    }
    let result = cache.get(&request)?;
    Ok(pretty_format_batches(&[result.batch]).expect("formats").to_string())
}

const AS_WRITTEN: &str = "\
+------------+--------+-------+------------+-------+---------+
| date       | symbol | close | volume     | name  | revenue |
+------------+--------+-------+------------+-------+---------+
| 2024-01-02 | A      | 10.5  | 3000000000 | alpha | 1000.0  |
| 2024-01-02 | B      | 20.25 | 100        |       |         |
| 2024-01-02 | C      | 30.0  | 7          | gamma |         |
| 2024-01-03 | A      | 11.5  | 3000000001 | alpha | 1100.0  |
| 2024-01-03 | B      | 19.75 | 200        | beta  | 2200.0  |
| 2024-01-04 | A      | 12.0  | 3000000002 | alpha | 1100.0  |
| 2024-01-04 | B      |       | 300        | beta  | 2200.0  |
| 2024-01-04 | C      | 31.5  | 9          | gamma |         |
+------------+--------+-------+------------+-------+---------+";

#[test]
fn stores_of_older_formats_read_as_written_and_are_their_version_1() {
    for (name, version) in [("store-v2", 2), ("store-v3", 3), ("store-v4", 4)] {
        let fixture = Fixture::new(name);
        let cache = fixture.reader();
        let status = cache.status().expect("status");
        assert_eq!(status.format_version, version, "{name}");
        assert_eq!(read(&cache, "2024-12-31").expect("reads"), AS_WRITTEN, "{name}");
        let versions = status.versions.expect("versions");
        assert_eq!((versions.latest, versions.oldest, versions.history_bytes), (1, 1, 0), "{name}");
        assert_eq!(
            read_at(&cache, "2024-12-31", Some(AsOf::Version(1))).expect("reads"),
            AS_WRITTEN,
            "{name}: version 1"
        );
    }
}

#[test]
fn a_writer_upgrades_an_older_store_and_its_content_stays_version_1() {
    for name in ["store-v2", "store-v3", "store-v4"] {
        let fixture = Fixture::new(name);
        sql_exec(
            &fixture.source(),
            "INSERT INTO bar VALUES ('2024-01-05', 'A', 12.5, 3000000003, 'alpha'), ('2024-01-05', 'C', 32.0, 10, 'gamma');",
        );
        let writer = fixture.writer();
        assert_eq!(writer.status().expect("status").format_version, FORMAT_VERSION, "{name}: marked current");
        writer.update().expect("runs").into_result().expect("updates");
        drop(writer);

        let cache = fixture.reader();
        let text = read(&cache, "2024-01-04").expect("reads");
        assert_eq!(text, AS_WRITTEN, "{name}: the dates written by the old format are unchanged");
        let result =
            cache.get(&Request::new(date("2024-01-05"), date("2024-01-05"), vec!["close".into()])).expect("reads");
        let new_date = "\
+------------+--------+-------+
| date       | symbol | close |
+------------+--------+-------+
| 2024-01-05 | A      | 12.5  |
| 2024-01-05 | C      | 32.0  |
+------------+--------+-------+";
        assert_eq!(pretty_format_batches(&[result.batch]).unwrap().to_string(), new_date, "{name}: the new date");
        let at_first = read_at(&cache, "2024-12-31", Some(AsOf::Version(1))).expect("version 1 reads");
        assert_eq!(at_first, AS_WRITTEN, "{name}: version 1 is the store as the old format wrote it");
        assert!(
            cache.status().expect("status").versions.expect("versions").latest > 1,
            "{name}: the update is a version"
        );
    }
}

#[test]
fn a_corrupted_chunk_is_named_by_field_and_date_and_repaired() {
    let fixture = Fixture::new("store-corrupt");
    let cache = fixture.reader();
    let one = |col: &str| cache.get(&Request::new(date("2024-01-01"), date("2024-12-31"), vec![col.to_string()]));
    assert_eq!(one("close").expect("an intact field reads").batch.num_rows(), 8);

    let err = one("volume").expect_err("the corrupted chunk is found");
    let message = err.to_string();
    assert!(
        matches!(&err, Error::Query(QueryError::Store(StoreError::CorruptChunk { table, field: Some(field), date: d, .. }))
            if table == "bar" && field == "volume" && *d == date("2024-01-03")),
        "{err:?}"
    );
    assert!(
        message.contains("chunk of field `volume` on 2024-01-03") && message.contains("verify --repair"),
        "{message}"
    );

    let findings = cache.verify(&[], (None, None)).expect("verify runs");
    let dates: Vec<NaiveDate> = findings.iter().flat_map(|t| t.differences.iter().map(|d| d.date)).collect();
    assert_eq!(dates, [date("2024-01-03")], "verify names exactly the corrupted date");
    drop(cache);

    let writer = fixture.writer();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    assert_eq!(writer.repair("bar", &dates, &stop).expect("repairs"), 1);
    drop(writer);
    assert_eq!(read(&fixture.reader(), "2024-12-31").expect("reads after the repair"), AS_WRITTEN);
}
