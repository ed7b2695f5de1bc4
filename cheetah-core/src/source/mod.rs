//! The SQL source, reached through ODBC.
//!
//! Every name from the config is checked against the source's catalog (ODBC `SQLColumns`) before
//! any query runs, and every query quotes its identifiers. Rows arrive as Arrow record batches of
//! bounded size.

mod catalog;
mod checksum;
mod query;
mod stream;

use std::sync::OnceLock;

use arrow_odbc::odbc_api::{ConnectionOptions, Environment};

pub use self::catalog::{list_columns, resolve, ColumnInfo, ResolvedTable};
pub use self::checksum::{checksum_value, day_checksums, DayChecksum, FieldChecksum};
pub use self::query::{Dialect, Family};
pub use self::stream::{date_span, TableRows, WindowedRows};

use crate::config::SourceConfig;
use crate::error::SourceError;

/// A connection to the source.
pub type Connection = arrow_odbc::odbc_api::Connection<'static>;

/// The source database of a config.
#[derive(Debug, Clone)]
pub struct Source {
    config: SourceConfig,
}

impl Source {
    /// The source described by `[source]`.
    pub fn new(config: SourceConfig) -> Self {
        Self { config }
    }

    /// A description safe to print.
    pub fn name(&self) -> String {
        self.config.redacted()
    }

    /// The `[source]` settings.
    pub fn config(&self) -> &SourceConfig {
        &self.config
    }

    /// Opens a connection.
    ///
    /// # Errors
    /// [`SourceError::Connect`], with the driver's message and without the connection string.
    pub fn connect(&self) -> Result<Connection, SourceError> {
        let connect_error = |message: String| SourceError::Connect { source_name: self.name(), message };
        let environment = environment().map_err(|e| connect_error(e.clone()))?;
        let options = ConnectionOptions { login_timeout_sec: Some(self.config.login_timeout_secs), packet_size: None };
        environment
            .connect_with_connection_string(self.config.connection_string(), options)
            .map_err(|e| connect_error(self.scrub(&e.to_string())))
    }

    /// Removes the connection string and its secrets from a driver message.
    pub(crate) fn scrub(&self, message: &str) -> String {
        let mut message = message.replace(self.config.connection_string(), "<connection string>");
        for pair in self.config.connection_string().split(';') {
            if let Some((key, value)) = pair.split_once('=') {
                let key = key.trim().to_ascii_lowercase();
                if ["pwd", "password", "uid", "user"].contains(&key.as_str()) && value.len() >= 3 {
                    message = message.replace(value, "***");
                }
            }
        }
        message
    }
}

/// The process's one ODBC environment.
fn environment() -> Result<&'static Environment, &'static String> {
    static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();
    ENVIRONMENT
        .get_or_init(|| Environment::new().map_err(|e| format!("cannot create the ODBC environment: {e}")))
        .as_ref()
}
