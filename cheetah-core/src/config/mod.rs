//! The TOML config: where the store lives, how to reach the source, which tables and fields to
//! cache.
//!
//! Config files are found the same way by the CLI and by Python: an explicit path, else
//! `$CHEETAH_CONFIG`, else `~/.config/cheetah/cheetah.toml`.

mod flight;
mod parse;
mod quality;
mod research;
mod secrets;
mod sources;
mod values;

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;

pub use self::research::{AdjustConfig, UniverseConfig};
pub(crate) use self::secrets::{connection_pairs, scrub};
pub use self::values::Span;
use crate::error::ConfigError;
use crate::store::catalog::TableFingerprint;
use crate::types::TableKind;

/// Default number of most recent cached dates re-fetched by every update.
pub const DEFAULT_LOOKBACK: u32 = 5;

/// The name of the source `[source]` describes, which tables without `source =` read.
pub const DEFAULT_SOURCE: &str = "default";

/// A validated config.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// `[store]`.
    pub store: StoreConfig,
    /// `[source]` (named [`DEFAULT_SOURCE`]) and every `[sources.NAME]`, by name.
    pub sources: std::collections::BTreeMap<String, SourceConfig>,
    /// Every `[[table]]`, in file order.
    pub tables: Vec<TableConfig>,
    /// Every `[[universe]]`, in file order.
    pub universes: Vec<UniverseConfig>,
    /// `[share]`, if the box shares decoded columns between processes.
    pub share: Option<ShareConfig>,
    /// `[flight]`, if `cheetah serve` serves reads over Arrow Flight.
    pub flight: Option<FlightConfig>,
    /// `[quality]`: the thresholds of `cheetah quality`.
    pub quality: QualityConfig,
}

/// `[quality]`: when the data-quality report flags a date.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QualityConfig {
    /// A daily table's date is flagged when it has this share fewer rows than the previous date
    /// or than its typical day.
    pub coverage_drop: f64,
    /// A field's date is flagged when its share of nulls is this much above its typical share.
    pub missing_jump: f64,
    /// A field's date is flagged when its share of values unchanged from the previous date is
    /// this much above its typical share.
    pub stale_jump: f64,
    /// A value is an outlier beyond this many robust deviations from its date's median.
    pub outlier_k: f64,
    /// The typical day is the median of this many previous dates.
    pub window: usize,
    /// An asof table's symbol is late when its latest event is older than this many days.
    pub max_age_days: u32,
}

impl Default for QualityConfig {
    fn default() -> Self {
        Self { coverage_drop: 0.1, missing_jump: 0.1, stale_jump: 0.3, outlier_k: 8.0, window: 20, max_age_days: 200 }
    }
}

/// `[flight]`: where `cheetah serve` serves reads over Arrow Flight, and who may read.
#[derive(Clone)]
pub struct FlightConfig {
    /// The address to listen on.
    pub listen: std::net::SocketAddr,
    /// The bearer token clients must present, as the config writes it: `${NAME}` is read when
    /// the server starts. Never print it.
    pub(crate) token: Option<String>,
    /// The token that lets a client also write local tables (`DoPut`), as the config writes
    /// it; without one, nothing over Flight writes. Never print it.
    pub(crate) write_token: Option<String>,
    /// The config file, for messages.
    pub(crate) config: PathBuf,
    /// The certificate chain and private key (PEM files) to serve TLS with.
    pub tls: Option<TlsFiles>,
    /// The most bytes one read may return; a larger one is refused before it is read.
    pub max_read_bytes: u64,
    /// About how many bytes each endpoint (a date range) of a read holds.
    pub part_bytes: u64,
}

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

impl FlightConfig {
    /// The bearer token clients must present, its `${NAME}` read from the environment now.
    /// Compare it, never print it.
    ///
    /// # Errors
    /// [`ConfigError::MissingEnv`] naming a variable that is not set, and
    /// [`ConfigError::Invalid`]-like [`ConfigError::EmptySecret`] for one set to nothing.
    pub fn token(&self) -> Result<Option<String>, ConfigError> {
        self.secret(self.token.as_deref(), "[flight] token")
    }

    /// The write token, its `${NAME}` read from the environment now; distinct from the read
    /// token.
    ///
    /// # Errors
    /// As [`FlightConfig::token`], and [`ConfigError::SameTokens`] when it equals the read
    /// token.
    pub fn write_token(&self) -> Result<Option<String>, ConfigError> {
        let write = self.secret(self.write_token.as_deref(), "[flight] write_token")?;
        if write.is_some() && write == self.token()? {
            return Err(ConfigError::SameTokens { path: self.config.clone() });
        }
        Ok(write)
    }

    fn secret(&self, template: Option<&str>, key: &str) -> Result<Option<String>, ConfigError> {
        let Some(template) = template else { return Ok(None) };
        let secret = secrets::substitute_env(template).map_err(|name| ConfigError::MissingEnv {
            path: self.config.clone(),
            key: key.into(),
            name,
        })?;
        if secret.trim().is_empty() {
            return Err(ConfigError::EmptySecret { path: self.config.clone(), key: key.into() });
        }
        Ok(Some(secret))
    }

    /// Whether clients must present a token.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }
}

impl fmt::Debug for FlightConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlightConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("write_token", &self.write_token.as_ref().map(|_| "<set>"))
            .field("tls", &self.tls)
            .field("max_read_bytes", &self.max_read_bytes)
            .field("part_bytes", &self.part_bytes)
            .finish()
    }
}

/// `[share]`: the shared layer every reader process on the box maps.
#[derive(Debug, Clone)]
pub struct ShareConfig {
    /// Its directory, on a tmpfs; relative paths are relative to the config file.
    pub path: PathBuf,
    /// The most bytes it may hold.
    pub budget_bytes: u64,
    /// Rows per block: a refresh rewrites the blocks whose rows changed, not whole segments.
    pub block_rows: u64,
}

/// `[store]`: the RocksDB directory and the per-process hot cache.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The RocksDB directory; relative paths are relative to the config file.
    pub path: PathBuf,
    /// Bytes of decoded chunks each process keeps in memory.
    pub hot_cache_bytes: u64,
    /// zstd level for chunks.
    pub compression_level: i32,
    /// How long the history of replaced values is kept (`keep_versions`); every version stays
    /// readable when `None`. Snapshots are kept regardless.
    pub keep_versions: Option<Span>,
}

/// `[source]` or one `[sources.NAME]`: an ODBC connection.
#[derive(Clone)]
pub struct SourceConfig {
    /// Its name: [`DEFAULT_SOURCE`] for `[source]`, else the `NAME` of `[sources.NAME]`.
    pub name: String,
    /// The connection string as the config writes it, `${NAME}` and all: the variables are read
    /// when the source is contacted, so a process that only reads needs none of them.
    pub(crate) odbc: String,
    /// `file:line` of its section, for messages.
    pub(crate) config: PathBuf,
    /// Largest text value fetched, in bytes; longer values are an error, never truncated.
    pub max_text_size: usize,
    /// Seconds to wait for a login.
    pub login_timeout_secs: u32,
    /// Rows per fetched batch; with text buffers it bounds the update's memory.
    pub batch_rows: usize,
    /// Rows per query: long date ranges are fetched in date windows of about this many rows.
    pub query_rows: usize,
    /// Connections an update reads a table's date windows over at once; at most this many
    /// windows are held in memory.
    pub connections: usize,
}

impl SourceConfig {
    /// A description of the source safe to print: the driver, server, port and database, never
    /// the user or password.
    pub fn redacted(&self) -> String {
        secrets::redact(&self.odbc)
    }

    /// The config section that describes it: `[source]` or `[sources.NAME]`.
    pub fn section(&self) -> String {
        Self::section_of(&self.name)
    }

    fn section_of(name: &str) -> String {
        if name == DEFAULT_SOURCE {
            "[source]".into()
        } else {
            format!("[sources.{name}]")
        }
    }

    /// The connection string, its `${NAME}` read from the environment now. Pass it to ODBC only,
    /// never to a log or an error.
    ///
    /// # Errors
    /// [`ConfigError::MissingEnv`] naming the variable that is not set.
    pub fn connection_string(&self) -> Result<String, ConfigError> {
        secrets::substitute_env(&self.odbc).map_err(|name| ConfigError::MissingEnv {
            path: self.config.clone(),
            key: format!("{} odbc", self.section()),
            name,
        })
    }
}

impl fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceConfig")
            .field("name", &self.name)
            .field("odbc", &self.redacted())
            .field("max_text_size", &self.max_text_size)
            .finish()
    }
}

/// How DECIMAL/NUMERIC columns are cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecimalMode {
    /// As float64 (the default).
    #[default]
    Float,
    /// As exact Decimal128 with the source's precision and scale.
    Exact,
}

/// What an update does when a cached column has vanished from the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MissingPolicy {
    /// The table's update fails, naming the column; nothing cached is touched.
    #[default]
    Error,
    /// The update logs a warning and goes on: the column's cached dates stay readable, and
    /// dates fetched from then on hold nulls for it.
    Warn,
}

/// One `[[table]]`.
#[derive(Debug, Clone)]
pub struct TableConfig {
    /// The table or view in the source.
    pub name: String,
    /// Its schema, if not the connection's default.
    pub schema: Option<String>,
    /// Daily or asof.
    pub kind: TableKind,
    /// The date column.
    pub date: String,
    /// The symbol column.
    pub symbol: String,
    /// Field names or glob patterns.
    pub fields: Vec<String>,
    /// Names or patterns removed from what `fields` matches.
    pub exclude: Vec<String>,
    /// An SQL filter ANDed into every query.
    pub filter: Option<String>,
    /// The first date to cache.
    pub start: NaiveDate,
    /// Most recent cached dates re-fetched on every update.
    pub lookback: u32,
    /// For asof tables: orders several events of one (date, symbol).
    pub order_by: Option<String>,
    /// How DECIMAL/NUMERIC columns are cached.
    pub decimal: DecimalMode,
    /// Other names for fields: alias → source column.
    pub alias: std::collections::BTreeMap<String, String>,
    /// What to do when a cached column vanishes from the source.
    pub on_missing: MissingPolicy,
    /// `[table.adjust]`: the factor and the price fields adjusted at read time.
    pub adjust: Option<AdjustConfig>,
    /// The name of the source it is read from.
    pub source: String,
    /// `file:line` of the table's block, for messages.
    pub location: String,
}

impl TableConfig {
    /// Whether `column` is selected by `fields` and not removed by `exclude`.
    pub fn selects(&self, column: &str) -> bool {
        let matches = |patterns: &[String]| patterns.iter().any(|p| pattern_matches(p, column));
        matches(&self.fields) && !matches(&self.exclude)
    }

    /// The settings whose change invalidates everything cached for the table. Its source is one
    /// of them: dates from two databases are never mixed in one table. The default source adds
    /// nothing, so stores written before named sources keep their fingerprints.
    pub fn fingerprint(&self) -> TableFingerprint {
        let source = (self.source != DEFAULT_SOURCE).then(|| ("source", self.source.clone()));
        TableFingerprint::new(
            [
                ("kind", format!("{:?}", self.kind)),
                ("date", self.date.clone()),
                ("symbol", self.symbol.clone()),
                ("where", format!("{:?}", self.filter)),
                ("start", self.start.to_string()),
                ("schema", format!("{:?}", self.schema)),
                ("order_by", format!("{:?}", self.order_by)),
                ("decimal", format!("{:?}", self.decimal)),
            ]
            .into_iter()
            .chain(source),
        )
    }
}

/// Whether a `fields`/`exclude` entry matches a column: globs for entries with `*`, `?` or `[`,
/// exact names otherwise.
pub fn pattern_matches(pattern: &str, column: &str) -> bool {
    if is_glob(pattern) {
        glob::Pattern::new(pattern).is_ok_and(|p| p.matches(column))
    } else {
        pattern == column
    }
}

/// Whether a `fields` entry is a glob rather than a name.
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

impl Config {
    /// Finds the config: `explicit`, else `$CHEETAH_CONFIG`, else
    /// `~/.config/cheetah/cheetah.toml`.
    ///
    /// # Errors
    /// [`ConfigError::NotFound`] when no file exists at the chosen place.
    pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => match std::env::var_os("CHEETAH_CONFIG") {
                Some(p) if !p.is_empty() => PathBuf::from(p),
                _ => Self::default_path(),
            },
        };
        if path.is_file() {
            Ok(path)
        } else {
            Err(ConfigError::NotFound { default: path })
        }
    }

    /// Reads and validates a config file.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file, the line and the key.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Self::parse(path, &text)
    }

    /// Finds and reads the config the way the CLI and Python do.
    ///
    /// # Errors
    /// See [`Config::locate`] and [`Config::load`].
    pub fn discover(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load(&Self::locate(explicit)?)
    }

    /// Where a config is looked for last: `~/.config/cheetah/cheetah.toml`.
    pub fn default_path() -> PathBuf {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        home.join(".config").join("cheetah").join("cheetah.toml")
    }

    /// The source named `name`.
    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.get(name)
    }

    /// The source named `name`, asked for by a user.
    ///
    /// # Errors
    /// [`ConfigError::UnknownSource`], listing the sources there are.
    pub fn source_named(&self, name: &str) -> Result<&SourceConfig, ConfigError> {
        self.source(name).ok_or_else(|| ConfigError::UnknownSource {
            path: self.path.clone(),
            name: name.to_string(),
            known: self.sources.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// The universe named `name`.
    pub fn universe(&self, name: &str) -> Option<&UniverseConfig> {
        self.universes.iter().find(|u| u.name == name)
    }

    /// The table named `name`.
    pub fn table(&self, name: &str) -> Option<&TableConfig> {
        self.tables.iter().find(|t| t.name == name)
    }
}
