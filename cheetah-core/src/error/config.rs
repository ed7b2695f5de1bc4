//! Reading or validating a config file.

use std::path::PathBuf;

/// Reading or validating a config file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No config was given and none was found in the default places.
    #[error(
        "no config found: pass --config PATH, set $CHEETAH_CONFIG, or create {default} \
         (`cheetah init` writes a commented starter)"
    )]
    NotFound {
        /// The last place looked at.
        default: PathBuf,
    },
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key or a value of the wrong type.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// 1-based line of the offending key or value.
        line: usize,
        /// The parser's message, which names the key.
        message: String,
    },
    /// A value that parses but makes no sense.
    #[error("{path}:{line}: {message}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// 1-based line of the offending key.
        line: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// `${NAME}` in a value names an unset variable.
    #[error(
        "{path}: {key} uses ${{{name}}}, but the environment variable {name} is not set in this process; set it where the source is contacted (`cheetah update`, `serve`, `verify`, `fields`), or write the value in"
    )]
    MissingEnv {
        /// The config file.
        path: PathBuf,
        /// The key holding it, such as `[source] odbc`.
        key: String,
        /// The variable's name.
        name: String,
    },
    /// `${NAME}` in a secret names a variable set to nothing.
    #[error("{path}: {key} is empty once its variables are filled in; set them to a long random value")]
    EmptySecret {
        /// The config file.
        path: PathBuf,
        /// The key, such as `[flight] token`.
        key: String,
    },
    /// A table was asked for by a name the config does not have.
    #[error("{path} has no table `{name}`; its tables are: {known}")]
    UnknownTable {
        /// The config file.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// The configured tables.
        known: String,
    },
    /// A source was asked for by a name the config does not have.
    #[error("{path} has no source `{name}`; its sources are: {known}")]
    UnknownSource {
        /// The config file.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// The configured sources.
        known: String,
    },
    /// The write token equals the read token.
    #[error("{path}: [flight] write_token is the same as token; a reader could then write: give it a token of its own", path = path.display())]
    SameTokens {
        /// The config file.
        path: PathBuf,
    },
}
