//! The source database, reached through ODBC.

use super::*;

/// Talking to the source database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The connection string names an environment variable this process does not have.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Connecting failed.
    #[error("cannot connect to the source {source_name}: {message}; check {section} odbc in the config and that the database is up")]
    Connect {
        /// The source's name and its redacted description.
        source_name: String,
        /// Its config section, `[source]` or `[sources.NAME]`.
        section: String,
        /// The driver's message.
        message: String,
    },
    /// The ODBC driver the connection string names is not installed (or not registered).
    #[error("the source {source_name} needs the ODBC driver `{driver}`, which is not installed: {hint}; then check {section} odbc in the config")]
    MissingDriver {
        /// The source's name and its redacted description.
        source_name: String,
        /// Its config section, `[source]` or `[sources.NAME]`.
        section: String,
        /// The driver, as the connection string names it.
        driver: String,
        /// What to install.
        hint: String,
    },
    /// A configured table is not in the source's catalog.
    #[error("{location}: table `{table}` is not in the source {source_name}{hint}")]
    NoSuchTable {
        /// `file:line` of the `[[table]]`.
        location: String,
        /// The configured name.
        table: String,
        /// The source's name and its redacted description.
        source_name: String,
        /// Close matches, if any, as a ready-to-print suffix.
        hint: String,
    },
    /// A configured column is not in the source table.
    #[error("{location}: table `{table}` has no column `{column}` (configured as {role}){hint}")]
    NoSuchColumn {
        /// `file:line` of the `[[table]]`.
        location: String,
        /// The table.
        table: String,
        /// The configured column name.
        column: String,
        /// What the column was meant to be: `date`, `symbol` or `field`.
        role: &'static str,
        /// Close matches, if any, as a ready-to-print suffix.
        hint: String,
    },
    /// Cached columns are gone from the source.
    #[error("{location}: table `{table}`: cached columns vanished from the source: {columns}; their cached data stays readable. Restore them, remove them from `fields`, or set on_missing = \"warn\" to go on caching the table with nulls for them")]
    Vanished {
        /// `file:line` of the `[[table]]`.
        location: String,
        /// The table.
        table: String,
        /// The columns, comma-separated.
        columns: String,
    },
    /// A column's SQL type has no Arrow mapping Cheetah can cache.
    #[error("table `{table}`, column `{column}`: SQL type {sql_type} is not supported; remove it from `fields` or add it to `exclude`")]
    UnsupportedType {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// The type the driver reported.
        sql_type: String,
    },
    /// A query or fetch failed (the source went down, a timeout, a permission).
    #[error("table `{table}`: the source failed while {doing}: {message}")]
    Query {
        /// The table.
        table: String,
        /// What Cheetah was doing.
        doing: String,
        /// The driver's message.
        message: String,
    },
    /// The source returned a value Cheetah cannot interpret.
    #[error("table `{table}`: {message}")]
    BadValue {
        /// The table.
        table: String,
        /// What was wrong and what to do.
        message: String,
    },
}
