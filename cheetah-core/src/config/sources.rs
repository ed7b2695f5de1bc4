//! `[source]` and `[sources.NAME]`: the source databases and their connection settings.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::values::Invalid;
use super::{SourceConfig, DEFAULT_SOURCE};
use crate::error::ConfigError;

const DEFAULT_MAX_TEXT_SIZE: usize = 4096;
const DEFAULT_BATCH_ROWS: usize = 50_000;
const DEFAULT_QUERY_ROWS: usize = 100_000;
const DEFAULT_CONNECTIONS: usize = 4;
/// More would only queue in the database: each one is a query running at once.
const MAX_CONNECTIONS: usize = 64;

/// `[source]` and every `[sources.NAME]`, by name; at least one of them.
pub(super) fn parse(
    path: &Path,
    default: Option<toml::Spanned<RawSource>>,
    named: BTreeMap<String, toml::Spanned<RawSource>>,
    invalid: Invalid<'_>,
) -> Result<BTreeMap<String, SourceConfig>, ConfigError> {
    if default.is_none() && named.is_empty() {
        return Err(invalid(
            0..0,
            "the config names no source; add a [source] section with odbc = \"Driver=...;\"".into(),
        ));
    }
    if let Some(raw) = named.get(DEFAULT_SOURCE) {
        return Err(invalid(
            raw.span(),
            format!("[sources.{DEFAULT_SOURCE}]: `{DEFAULT_SOURCE}` names [source]; give this source another name"),
        ));
    }
    let mut sources = BTreeMap::new();
    for (name, raw) in default.map(|raw| (DEFAULT_SOURCE.to_string(), raw)).into_iter().chain(named) {
        let span = raw.span();
        let raw = raw.into_inner();
        if name.is_empty() || name.contains(|c: char| c.is_whitespace() || matches!(c, '.' | ',' | '`' | '"')) {
            return Err(invalid(span, format!("[sources.{name:?}]: a source name is a plain word, such as `vendor`")));
        }
        if raw.odbc.trim().is_empty() {
            return Err(invalid(
                span,
                format!("{} odbc is empty; give an ODBC connection string such as \"Driver={{SQLite3}};Database=/data/market.db;\"", SourceConfig::section_of(&name)),
            ));
        }
        let connections = raw.connections.unwrap_or(DEFAULT_CONNECTIONS);
        if !(1..=MAX_CONNECTIONS).contains(&connections) {
            return Err(invalid(
                span,
                format!(
                    "{} connections = {connections}: give how many connections an update may read over at once, from 1 to {MAX_CONNECTIONS} (default {DEFAULT_CONNECTIONS})",
                    SourceConfig::section_of(&name)
                ),
            ));
        }
        let config = SourceConfig {
            name: name.clone(),
            odbc: raw.odbc,
            config: path.to_path_buf(),
            max_text_size: raw.max_text_size.unwrap_or(DEFAULT_MAX_TEXT_SIZE),
            login_timeout_secs: raw.login_timeout.unwrap_or(15),
            batch_rows: raw.batch_rows.unwrap_or(DEFAULT_BATCH_ROWS).max(1),
            query_rows: raw.query_rows.unwrap_or(DEFAULT_QUERY_ROWS).max(1),
            connections,
        };
        sources.insert(name, config);
    }
    Ok(sources)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    odbc: String,
    max_text_size: Option<usize>,
    login_timeout: Option<u32>,
    batch_rows: Option<usize>,
    query_rows: Option<usize>,
    connections: Option<usize>,
}
