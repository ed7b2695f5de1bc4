//! Database profiles and a reference model of the source, shared by the scenarios; the process
//! helpers of `processes` are re-exported here.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use arrow_odbc::odbc_api::{Connection, ConnectionOptions, Environment};
use cheetah_core::{Cache, Config, Request};
use chrono::NaiveDate;

// The process helpers live in `processes`; scenarios reach everything through `harness`.
pub use crate::processes::{
    cheetah, cheetah_binary, cheetah_command, child_report, signal, spawn_children, wait_for, Proxy,
};

/// The three source databases every scenario runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
    Mariadb,
}

fn environment() -> &'static Environment {
    static ENV: OnceLock<Environment> = OnceLock::new();
    ENV.get_or_init(|| Environment::new().expect("ODBC environment"))
}

/// A source database reserved for one test, with a scratch directory for its store.
pub struct Db {
    pub kind: Kind,
    pub table: String,
    connection_string: String,
    pub dir: tempfile::TempDir,
}

impl Db {
    /// The database of `kind` for test `name`, or `None` (loudly) when its server is down and
    /// `CHEETAH_REQUIRE_DATABASES` is unset.
    pub fn open(kind: Kind, name: &str) -> Option<Db> {
        let dir = tempfile::tempdir().expect("temp dir");
        let connection_string = match kind {
            Kind::Sqlite => {
                let path = dir.path().join("source.db");
                // Without NoCreat, so the file is created on first connect.
                format!("Driver={{SQLite3}};Database={};BigInt=1;", path.display())
            }
            Kind::Postgres => std::env::var("CHEETAH_TEST_POSTGRES").unwrap_or_else(|_| {
                "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Database=test;Uid=postgres;Pwd=;BoolsAsChar=0;".into()
            }),
            Kind::Mariadb => std::env::var("CHEETAH_TEST_MARIADB").unwrap_or_else(|_| {
                "Driver={MariaDB Unicode};Server=127.0.0.1;Port=3306;Database=test;User=root;Password=;".into()
            }),
        };
        let db = Db { kind, table: format!("t_{name}"), connection_string, dir };
        match db.connect() {
            Ok(_) => Some(db),
            Err(e) if std::env::var_os("CHEETAH_REQUIRE_DATABASES").is_none() => {
                eprintln!("SKIPPED {name} on {kind:?}: the server is not reachable ({e}); set CHEETAH_REQUIRE_DATABASES=1 to fail instead");
                None
            }
            Err(e) => {
                panic!("{kind:?} is required (CHEETAH_REQUIRE_DATABASES) but not reachable: {e}")
            }
        }
    }

    pub fn connect(&self) -> Result<Connection<'static>, arrow_odbc::odbc_api::Error> {
        environment().connect_with_connection_string(&self.connection_string, ConnectionOptions::default())
    }

    pub fn exec(&self, sql: &str) {
        let connection = self.connect().expect("connect");
        connection.execute(sql, (), None).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The connection string Cheetah uses; for SQLite with `NoCreat=1`.
    pub fn cheetah_connection_string(&self) -> String {
        match self.kind {
            Kind::Sqlite => format!("{}NoCreat=1;", self.connection_string),
            _ => self.connection_string.clone(),
        }
    }

    /// The same server through `proxy`.
    pub fn via_proxy(&self, proxy: &Proxy) -> String {
        let port = match self.kind {
            Kind::Postgres => "5432",
            Kind::Mariadb => "3306",
            Kind::Sqlite => panic!("SQLite has no server to proxy"),
        };
        self.connection_string.replace(&format!("Port={port}"), &format!("Port={}", proxy.port))
    }

    pub fn sql_type(&self, column: Column) -> &'static str {
        use Column::*;
        match (self.kind, column) {
            (_, Date) | (_, Day) => "DATE",
            (_, Symbol) => "VARCHAR(16)",
            (Kind::Postgres, Close) => "DOUBLE PRECISION",
            (Kind::Mariadb, Close) => "DOUBLE",
            (Kind::Sqlite, Close) => "REAL",
            (_, Volume) => "BIGINT",
            (_, Count) => "INTEGER",
            (Kind::Sqlite, Name) => "TEXT",
            (_, Name) => "VARCHAR(40)",
            (Kind::Mariadb, Price) => "DECIMAL(12,4)",
            (_, Price) => "NUMERIC(12,4)",
            (_, Flag) => "BOOLEAN",
            (Kind::Mariadb, Stamp) => "DATETIME(6)",
            (_, Stamp) => "TIMESTAMP",
        }
    }

    /// Drops and creates the test's table with every column of [`Row`].
    pub fn create_table(&self) {
        self.exec(&format!("DROP TABLE IF EXISTS {}", self.table));
        let columns: Vec<String> = Column::ALL.iter().map(|&c| format!("{} {}", c.name(), self.sql_type(c))).collect();
        self.exec(&format!("CREATE TABLE {} ({})", self.table, columns.join(", ")));
    }

    /// Creates the test's table holding `market(0, days, symbols, seed)`, and returns the rows.
    pub fn seeded(&self, days: u32, symbols: u32, seed: u64) -> Vec<Row> {
        self.create_table();
        let rows = market(0, days, symbols, seed);
        self.insert(&rows);
        rows
    }

    pub fn insert(&self, rows: &[Row]) {
        for chunk in rows.chunks(500) {
            let values: Vec<String> = chunk.iter().map(|r| r.values_sql(self.kind)).collect();
            let names: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
            self.exec(&format!("INSERT INTO {} ({}) VALUES {}", self.table, names.join(", "), values.join(", ")));
        }
    }

    /// A config caching `fields` of the test's table.
    pub fn config(&self, fields: &[&str], extra: &str) -> Config {
        self.config_with(&self.cheetah_connection_string(), fields, extra)
    }

    pub fn config_with(&self, connection_string: &str, fields: &[&str], extra: &str) -> Config {
        let fields: Vec<String> = fields.iter().map(|f| format!("{f:?}")).collect();
        let text = format!(
            "[store]\npath = \"store\"\n\n[source]\nodbc = {:?}\nlogin_timeout = 3\nbatch_rows = 100\nquery_rows = 300\nconnections = 4\n\n[[table]]\nname = \"{}\"\ndate = \"date\"\nsymbol = \"symbol\"\nfields = [{}]\nstart = \"2020-01-01\"\n{extra}\n",
            connection_string,
            self.table,
            fields.join(", ")
        );
        let path = self.config_path();
        std::fs::write(&path, &text).expect("write config");
        Config::load(&path).expect("valid config")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("cheetah.toml")
    }

    pub fn store_path(&self) -> PathBuf {
        self.dir.path().join("store")
    }
}

/// Runs `scenario` against the database of `kind`, if it is up; its tables are named after
/// `label`.
pub fn run_on(kind: Kind, label: &str, scenario: impl Fn(&Db)) {
    if let Some(db) = Db::open(kind, label) {
        scenario(&db);
    }
}

/// One test case per database for each scenario: `database_tests! { scenario => "label" }` makes
/// `scenario::sqlite`, `scenario::postgres` and `scenario::mariadb`, so each database passes or
/// fails on its own. The label names the scenario's tables.
macro_rules! database_tests {
    ($($scenario:ident => $label:literal),* $(,)?) => {$(
        mod $scenario {
            use $crate::harness::{run_on, Kind};

            #[test]
            fn sqlite() {
                run_on(Kind::Sqlite, $label, super::$scenario);
            }

            #[test]
            fn postgres() {
                run_on(Kind::Postgres, $label, super::$scenario);
            }

            #[test]
            fn mariadb() {
                run_on(Kind::Mariadb, $label, super::$scenario);
            }
        }
    )*};
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Date,
    Symbol,
    Close,
    Volume,
    Count,
    Name,
    Price,
    Flag,
    Stamp,
    Day,
}

impl Column {
    pub const ALL: [Column; 10] = [
        Column::Date,
        Column::Symbol,
        Column::Close,
        Column::Volume,
        Column::Count,
        Column::Name,
        Column::Price,
        Column::Flag,
        Column::Stamp,
        Column::Day,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Column::Date => "date",
            Column::Symbol => "symbol",
            Column::Close => "close",
            Column::Volume => "volume",
            Column::Count => "n",
            Column::Name => "name",
            Column::Price => "px",
            Column::Flag => "flag",
            Column::Stamp => "ts",
            Column::Day => "d2",
        }
    }
}

/// The fields of [`Row`] as Cheetah caches them.
pub const FIELDS: [&str; 8] = ["close", "volume", "n", "name", "px", "flag", "ts", "d2"];

/// One source row. `None` is SQL NULL.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub date: NaiveDate,
    pub symbol: String,
    pub close: Option<f64>,
    pub volume: Option<i64>,
    pub n: Option<i32>,
    pub name: Option<String>,
    /// Exactly representable with 4 decimals.
    pub px: Option<f64>,
    pub flag: Option<bool>,
    /// Microseconds since the epoch.
    pub ts: Option<i64>,
    pub d2: Option<NaiveDate>,
}

impl Row {
    fn values_sql(&self, kind: Kind) -> String {
        let text = |s: &Option<String>| s.as_ref().map_or("NULL".into(), |s| format!("'{}'", s.replace('\'', "''")));
        let num = |v: Option<String>| v.unwrap_or_else(|| "NULL".into());
        let flag = self.flag.map(|b| match kind {
            Kind::Postgres => if b { "TRUE" } else { "FALSE" }.to_string(),
            _ => if b { "1" } else { "0" }.to_string(),
        });
        let ts = self.ts.map(|micros| {
            let t = chrono::DateTime::from_timestamp_micros(micros).expect("valid").naive_utc();
            format!("'{}'", t.format("%Y-%m-%d %H:%M:%S%.6f"))
        });
        format!(
            "('{}', '{}', {}, {}, {}, {}, {}, {}, {}, {})",
            self.date,
            self.symbol,
            num(self.close.map(|v| format!("{v:?}"))),
            num(self.volume.map(|v| v.to_string())),
            num(self.n.map(|v| v.to_string())),
            text(&self.name),
            num(self.px.map(|v| format!("{v:.4}"))),
            num(flag),
            num(ts),
            num(self.d2.map(|d| format!("'{d}'"))),
        )
    }
}

/// `days` weekdays from 2020-01-01 for `symbols` symbols, with gaps and nulls, seeded.
pub fn market(first_day: u32, days: u32, symbols: u32, seed: u64) -> Vec<Row> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let mut rows = Vec::new();
    for d in first_day..first_day + days {
        let date = day(d);
        for s in 0..symbols {
            if next() % 10 == 0 {
                continue; // suspended
            }
            let r = next();
            rows.push(Row {
                date,
                symbol: format!("S{s:03}"),
                close: (r % 13 != 0).then(|| f64::from(next()) / 1000.0 + 123456.000001),
                volume: (r % 11 != 0).then(|| i64::from(next()) * 3 + 3_000_000_000),
                n: (r % 7 != 0).then(|| next() as i32 - i32::MAX / 2),
                name: (r % 5 != 0).then(|| format!("n'{}", next() % 1000)),
                px: (r % 3 != 0).then(|| f64::from(next() % 10_000_000) / 10_000.0),
                flag: (r % 4 != 0).then(|| next() % 2 == 0),
                ts: (r % 6 != 0).then(|| 1_577_836_800_000_000 + i64::from(next()) * 1_000_003),
                d2: (r % 9 != 0).then(|| day(next() % 1000)),
            });
        }
    }
    rows
}

/// The `n`-th weekday from 2020-01-01.
pub fn day(n: u32) -> NaiveDate {
    let start = NaiveDate::from_ymd_opt(2020, 1, 1).expect("date");
    let weeks = n / 5;
    let mut date = start + chrono::Days::new(u64::from(weeks) * 7);
    let mut left = n % 5;
    while left > 0 || matches!(date.format("%a").to_string().as_str(), "Sat" | "Sun") {
        if !matches!(date.format("%a").to_string().as_str(), "Sat" | "Sun") {
            left -= 1;
        }
        date = date.succ_opt().expect("date");
    }
    date
}

/// The source as a map, for comparisons.
pub type Model = BTreeMap<(NaiveDate, String), Row>;

pub fn model(rows: &[Row]) -> Model {
    rows.iter().map(|r| ((r.date, r.symbol.clone()), r.clone())).collect()
}

/// Reads every field of the test's table from the cache over all dates.
pub fn read_all(cache: &Cache, fields: &[&str]) -> cheetah_core::QueryResult {
    read_all_result(cache, fields).expect("read")
}

/// [`read_all`], failures included.
pub fn read_all_result(cache: &Cache, fields: &[&str]) -> cheetah_core::Result<cheetah_core::QueryResult> {
    cache.get(&Request::new(
        NaiveDate::from_ymd_opt(2000, 1, 1).expect("date"),
        NaiveDate::from_ymd_opt(2100, 1, 1).expect("date"),
        fields.iter().map(|f| f.to_string()).collect(),
    ))
}

/// Asserts that the cache holds exactly `expected` for `fields`, value for value, nulls
/// included, up to `through` (the dates a partial run committed).
pub fn assert_matches(cache: &Cache, fields: &[&str], expected: &Model, through: Option<NaiveDate>) {
    assert_result_matches(&read_all(cache, fields).batch, fields, expected, through);
}

/// [`assert_matches`] for a result already read.
pub fn assert_result_matches(
    batch: &arrow::array::RecordBatch,
    fields: &[&str],
    expected: &Model,
    through: Option<NaiveDate>,
) {
    let expected: Vec<&Row> = expected.values().filter(|r| through.is_none_or(|t| r.date <= t)).collect();
    let dates = batch.column(0).as_primitive::<arrow::datatypes::Date32Type>();
    let symbols = arrow::compute::cast(batch.column(1), &DataType::Utf8).expect("cast");
    let symbols = symbols.as_string::<i32>();
    let got: Vec<(NaiveDate, &str)> =
        (0..batch.num_rows()).map(|i| (dates.value_as_date(i).expect("date"), symbols.value(i))).collect();
    let want: Vec<(NaiveDate, &str)> = expected.iter().map(|r| (r.date, r.symbol.as_str())).collect();
    assert_eq!(got.len(), want.len(), "row count");
    assert_eq!(got, want, "keys");
    for (f, field) in fields.iter().enumerate() {
        let column = batch.column(f + 2);
        for (i, row) in expected.iter().enumerate() {
            let actual = cell(column.as_ref(), i);
            let wanted = row_value(row, field);
            assert_eq!(actual, wanted, "{field} at ({}, {})", row.date, row.symbol);
        }
    }
}

/// A cell as comparable text; `None` for null.
pub fn cell(column: &dyn Array, i: usize) -> Option<String> {
    if column.is_null(i) {
        return None;
    }
    let text = arrow::util::display::ArrayFormatter::try_new(column, &Default::default()).expect("formatter");
    Some(match column.data_type() {
        DataType::Float64 => format!("{:?}", column.as_primitive::<arrow::datatypes::Float64Type>().value(i)),
        // MariaDB's BOOLEAN is TINYINT(1), the only Int8 column here: compare its truth value.
        DataType::Int8 => (text.value(i).to_string() != "0").to_string(),
        DataType::UInt8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => text.value(i).to_string(),
        DataType::Boolean => text.value(i).to_string(),
        DataType::Timestamp(..) => {
            let micros = arrow::compute::cast(
                &column.slice(i, 1),
                &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
            )
            .expect("cast");
            micros.as_primitive::<arrow::datatypes::TimestampMicrosecondType>().value(0).to_string()
        }
        _ => text.value(i).to_string(),
    })
}

pub fn row_value(row: &Row, field: &str) -> Option<String> {
    match field {
        "close" => row.close.map(|v| format!("{v:?}")),
        "volume" => row.volume.map(|v| v.to_string()),
        "n" => row.n.map(|v| v.to_string()),
        "name" => row.name.clone(),
        "px" => row.px.map(|v| format!("{v:?}")),
        "flag" => row.flag.map(|b| if b { "true" } else { "false" }.to_string()),
        "ts" => row.ts.map(|v| v.to_string()),
        "d2" => row.d2.map(|d| d.to_string()),
        other => panic!("unknown field {other}"),
    }
}

/// The Arrow types each database's columns arrive as.
pub fn expected_types(kind: Kind) -> Vec<(&'static str, DataType)> {
    use arrow::datatypes::TimeUnit;
    let flag = match kind {
        Kind::Mariadb => DataType::Int8,
        _ => DataType::Boolean,
    };
    let n = match kind {
        Kind::Sqlite => DataType::Int64,
        _ => DataType::Int32,
    };
    vec![
        ("close", DataType::Float64),
        ("volume", DataType::Int64),
        ("n", n),
        ("name", DataType::Utf8),
        ("px", DataType::Float64),
        ("flag", flag),
        ("ts", DataType::Timestamp(TimeUnit::Microsecond, None)),
        ("d2", DataType::Date32),
    ]
}

/// A fresh reader of the db's store, as another process would open it.
pub fn reader(db: &Db) -> Cache {
    let config = Config::load(&db.config_path()).expect("config");
    Cache::builder(config).open().unwrap_or_else(|e| panic!("the store opens: {e}"))
}

/// The watermark of the db's table as a fresh reader sees it.
pub fn watermark(db: &Db) -> Option<NaiveDate> {
    reader(db).status().expect("status").tables.iter().find(|t| t.name == db.table).and_then(|t| t.watermark)
}
