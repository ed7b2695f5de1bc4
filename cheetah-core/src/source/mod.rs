//! The SQL source, reached through ODBC.
//!
//! Every name from the config is checked against the source's catalog (ODBC `SQLColumns`) before
//! any query runs, and every query quotes its identifiers. Rows arrive as Arrow record batches of
//! bounded size.

mod budget;
mod checksum;
mod columns;
mod driver;
mod query;
mod stream;
mod universe;
mod windows;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use arrow_odbc::odbc_api::{ConnectionOptions, Environment};

pub use self::checksum::{checksum_value, day_checksums, DayChecksum, FieldChecksum};
pub use self::columns::{list_columns, resolve, ResolvedTable};
#[cfg(test)]
pub use self::query::Dialect;
pub use self::stream::{date_span, TableRows};
pub use self::universe::universe_intervals;
pub use self::windows::WindowedRows;

use self::budget::Budget;
pub(crate) use self::budget::Counted;
use crate::config::{Config, SourceConfig};
use crate::error::SourceError;

/// A connection to the source.
pub type Connection = arrow_odbc::odbc_api::Connection<'static>;

/// One source database of a config. Its clones share one budget of `connections`.
#[derive(Debug, Clone)]
pub struct Source {
    config: SourceConfig,
    budget: Arc<Budget>,
}

/// Every source of a config, by name.
#[derive(Debug, Clone)]
pub struct Sources(BTreeMap<String, Source>);

impl Sources {
    /// The sources `config` describes.
    pub fn new(config: &Config) -> Self {
        Self(config.sources.iter().map(|(name, c)| (name.clone(), Source::new(c.clone()))).collect())
    }

    /// The source named `name`.
    ///
    /// # Panics
    /// For a name the config does not describe; a validated config names only sources it has.
    pub fn get(&self, name: &str) -> &Source {
        self.0.get(name).unwrap_or_else(|| panic!("source `{name}` was checked when the config was loaded"))
    }
}

impl Source {
    /// The source described by `config`.
    pub fn new(config: SourceConfig) -> Self {
        Self { budget: Budget::new(config.connections), config }
    }

    /// Its name and a description safe to print, such as ``vendor` (Driver={MariaDB};Server=db)`.
    pub fn name(&self) -> String {
        format!("`{}` ({})", self.config.name, self.config.redacted())
    }

    /// Its settings.
    pub fn config(&self) -> &SourceConfig {
        &self.config
    }

    /// Opens a connection.
    ///
    /// # Errors
    /// [`SourceError::Config`] naming an environment variable of the connection string that is
    /// not set; [`SourceError::Connect`], with the driver's message and without the connection
    /// string.
    pub fn connect(&self) -> Result<Connection, SourceError> {
        let connection_string = self.config.connection_string()?;
        let environment = environment().map_err(|e| self.connect_failed(e))?;
        let options = ConnectionOptions { login_timeout_sec: Some(self.config.login_timeout_secs), packet_size: None };
        environment.connect_with_connection_string(&connection_string, options).map_err(|e| match driver::driver_name(
            &connection_string,
        )
        .filter(|_| driver::is_missing_driver(&e))
        {
            Some(driver) => SourceError::MissingDriver {
                source_name: self.name(),
                section: self.config.section(),
                driver: driver.to_string(),
                hint: driver::install_hint(driver),
            },
            None => self.connect_failed(e),
        })
    }

    /// The error for a failed connection. Every driver message reaches an error through this
    /// or [`Source::failed`], which take the connection string and its secrets out of it.
    fn connect_failed(&self, message: impl std::fmt::Display) -> SourceError {
        SourceError::Connect { source_name: self.name(), section: self.config.section(), message: self.scrub(message) }
    }

    /// The error for a failure of the source while `doing` something for `table`.
    pub(crate) fn failed(&self, table: &str, doing: &str, message: impl std::fmt::Display) -> SourceError {
        SourceError::Query { table: table.to_string(), doing: doing.to_string(), message: self.scrub(message) }
    }

    fn scrub(&self, message: impl std::fmt::Display) -> String {
        // A message exists only after a connection, whose variables were all set.
        let resolved = self.config.connection_string().unwrap_or_else(|_| self.config.redacted());
        crate::config::scrub(&resolved, &message.to_string())
    }
}

/// The process's one ODBC environment.
fn environment() -> Result<&'static Environment, &'static String> {
    static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();
    ENVIRONMENT
        .get_or_init(|| Environment::new().map_err(|e| format!("cannot create the ODBC environment: {e}")))
        .as_ref()
}
