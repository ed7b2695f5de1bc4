//! Parsing and validating config text: every error names the file, the line and the key.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer};

use super::flight::{self, RawFlight};
use super::quality::{self, RawQuality};
use super::research::{self, RawAdjust, RawUniverse};
use super::sources::{self, RawSource};
use super::values::{ByteSize, Span};
use super::{
    is_glob, pattern_matches, Config, DecimalMode, MissingPolicy, QualityConfig, ShareConfig, StoreConfig, TableConfig,
    DEFAULT_LOOKBACK, DEFAULT_SOURCE,
};
use crate::error::ConfigError;
use crate::types::TableKind;

const DEFAULT_HOT_CACHE: u64 = 2 << 30;
const DEFAULT_SHARE_BUDGET: u64 = 4 << 30;
const DEFAULT_BLOCK_ROWS: u64 = 1 << 16;

impl Config {
    /// Validates config text; `path` is used for messages and relative store paths.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file, the line and the key.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            line: e.span().map_or(1, |span| line_of(text, span.start)),
            message: e.message().trim_end().replace('\n', " "),
        })?;
        let invalid = |span: std::ops::Range<usize>, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            line: line_of(text, span.start),
            message,
        };

        let base_dir = path.parent().unwrap_or(Path::new("."));
        let store_path = raw.store.path.get_ref();
        if store_path.as_os_str().is_empty() {
            return Err(invalid(raw.store.path.span(), "[store] path is empty; give the store's directory".into()));
        }
        let store_path = base_dir.join(store_path);
        let store = StoreConfig {
            path: std::path::absolute(&store_path).unwrap_or(store_path),
            hot_cache_bytes: raw.store.hot_cache.map_or(DEFAULT_HOT_CACHE, |b| b.0),
            compression_level: raw.store.compression_level.unwrap_or(3),
            keep_versions: raw.store.keep_versions,
        };

        let sources = sources::parse(path, raw.source, raw.sources, &invalid)?;
        let source_of = |named: Option<String>, block: &str, span: std::ops::Range<usize>| {
            let name = named.unwrap_or_else(|| DEFAULT_SOURCE.to_string());
            if sources.contains_key(&name) {
                return Ok(name);
            }
            let known = sources.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
            Err(invalid(
                span,
                if name == DEFAULT_SOURCE {
                    format!("{block} names no source and the config has no [source]; add source = \"NAME\" (one of {known}) or a [source] section")
                } else {
                    format!("{block}: source `{name}` is not configured; add [sources.{name}] with its odbc string, or use one of {known}")
                },
            ))
        };

        let mut seen = BTreeSet::new();
        let mut aliases = BTreeSet::new();
        let mut tables = Vec::with_capacity(raw.table.len());
        for spanned in raw.table {
            let span = spanned.span();
            let t = spanned.into_inner();
            let location = format!("{}:{}", path.display(), line_of(text, span.start));
            let name = t.name.into_inner();
            if !seen.insert(name.clone()) {
                return Err(invalid(
                    span,
                    format!("[[table]] `{name}` appears twice; a table name is unique across sources: merge the two blocks, or cache one of them through a view of another name"),
                ));
            }
            if t.fields.is_empty() {
                return Err(invalid(
                    span,
                    format!("[[table]] `{name}`: `fields` is empty; list fields, globs like \"f0*\", or \"*\""),
                ));
            }
            for pattern in t.fields.iter().chain(&t.exclude) {
                if is_glob(pattern) {
                    glob::Pattern::new(pattern).map_err(|e| {
                        invalid(span.clone(), format!("[[table]] `{name}`: bad pattern {pattern:?}: {e}"))
                    })?;
                }
            }
            for (alias, column) in &t.alias {
                if !aliases.insert(alias.clone()) {
                    return Err(invalid(span, format!("[[table]] `{name}`: alias `{alias}` is also given in another table; an alias names one field")));
                }
                if alias.is_empty() || alias.contains('.') {
                    return Err(invalid(
                        span,
                        format!("[[table]] `{name}`: alias {alias:?} must be a plain name, without a `.`"),
                    ));
                }
                let selects = |patterns: &[String]| patterns.iter().any(|p| pattern_matches(p, column));
                if !selects(&t.fields) || selects(&t.exclude) {
                    return Err(invalid(
                        span,
                        format!("[[table]] `{name}`: alias `{alias}` names `{column}`, which `fields` does not select; add it to `fields`"),
                    ));
                }
            }
            if t.kind == TableKind::Daily && t.order_by.is_some() {
                return Err(invalid(
                    span,
                    format!("[[table]] `{name}`: `order_by` applies only to kind = \"asof\" tables"),
                ));
            }
            let adjust_config = match t.adjust {
                Some(raw) => Some(
                    research::adjust(&name, raw, |field| {
                        let selects = |patterns: &[String]| patterns.iter().any(|p| pattern_matches(p, field));
                        selects(&t.fields) && !selects(&t.exclude)
                    })
                    .map_err(|message| invalid(span.clone(), message))?,
                ),
                None => None,
            };
            if adjust_config.is_some() && t.kind == TableKind::Asof {
                return Err(invalid(
                    span,
                    format!(
                        "[[table]] `{name}`: [table.adjust] applies only to daily tables, whose rows carry the factor"
                    ),
                ));
            }
            let source = source_of(t.source, &format!("[[table]] `{name}`"), span)?;
            tables.push(TableConfig {
                name,
                schema: t.schema,
                kind: t.kind,
                date: t.date,
                symbol: t.symbol,
                fields: t.fields,
                exclude: t.exclude,
                filter: t.filter.filter(|w| !w.trim().is_empty()),
                start: t.start.0,
                lookback: t.lookback.unwrap_or(DEFAULT_LOOKBACK),
                order_by: t.order_by,
                decimal: t.decimal,
                alias: t.alias,
                on_missing: t.on_missing,
                adjust: adjust_config,
                source,
                location,
            });
        }
        let mut universes = Vec::with_capacity(raw.universe.len());
        for spanned in raw.universe {
            let span = spanned.span();
            let location = format!("{}:{}", path.display(), line_of(text, span.start));
            let mut raw = spanned.into_inner();
            let source = source_of(raw.source.take(), &format!("[[universe]] `{}`", raw.name), span.clone())?;
            let mut universe = research::universe(raw, location).map_err(|m| invalid(span.clone(), m))?;
            universe.source = source;
            if universes.iter().any(|u: &super::UniverseConfig| u.name == universe.name) {
                return Err(invalid(
                    span,
                    format!("[[universe]] `{}` appears twice; give each universe its own name", universe.name),
                ));
            }
            universes.push(universe);
        }
        let share = match raw.share {
            Some(share) => {
                if share.path.get_ref().as_os_str().is_empty() {
                    return Err(invalid(
                        share.path.span(),
                        "[share] path is empty; give a tmpfs directory such as /dev/shm/cheetah".into(),
                    ));
                }
                let block_rows = match share.block_rows {
                    Some(rows) if !(64..=1 << 24).contains(rows.get_ref()) || rows.get_ref() % 64 != 0 => {
                        return Err(invalid(
                            rows.span(),
                            format!(
                                "[share] block_rows = {} must be a multiple of 64 from 64 to 16777216; \
                                 the default, 65536, keeps a column over many blocks a view of the layer",
                                rows.get_ref()
                            ),
                        ));
                    }
                    Some(rows) => rows.into_inner(),
                    None => DEFAULT_BLOCK_ROWS,
                };
                let dir = base_dir.join(share.path.get_ref());
                Some(ShareConfig {
                    path: std::path::absolute(&dir).unwrap_or(dir),
                    budget_bytes: share.budget.map_or(DEFAULT_SHARE_BUDGET, |b| b.0),
                    block_rows,
                })
            }
            None => None,
        };
        let flight = match raw.flight {
            Some(flight) => Some(flight::parse(path, base_dir, flight, &invalid)?),
            None => None,
        };
        let quality = match raw.quality {
            Some(quality) => quality::parse(quality, &invalid)?,
            None => QualityConfig::default(),
        };
        Ok(Self { path: path.to_path_buf(), store, sources, tables, universes, share, flight, quality })
    }
}

/// The 1-based line of the first non-blank character at or after `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    let blank = text[offset..].len() - text[offset..].trim_start().len();
    text[..offset + blank].bytes().filter(|&b| b == b'\n').count() + 1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    store: RawStore,
    source: Option<toml::Spanned<RawSource>>,
    #[serde(default)]
    sources: BTreeMap<String, toml::Spanned<RawSource>>,
    #[serde(default)]
    table: Vec<toml::Spanned<RawTable>>,
    #[serde(default)]
    universe: Vec<toml::Spanned<RawUniverse>>,
    share: Option<RawShare>,
    flight: Option<RawFlight>,
    quality: Option<toml::Spanned<RawQuality>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShare {
    path: toml::Spanned<PathBuf>,
    budget: Option<ByteSize>,
    block_rows: Option<toml::Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    path: toml::Spanned<PathBuf>,
    hot_cache: Option<ByteSize>,
    compression_level: Option<i32>,
    keep_versions: Option<Span>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    name: toml::Spanned<String>,
    schema: Option<String>,
    #[serde(default)]
    kind: TableKind,
    date: String,
    symbol: String,
    fields: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(rename = "where")]
    filter: Option<String>,
    start: ConfigDate,
    lookback: Option<u32>,
    order_by: Option<String>,
    #[serde(default)]
    decimal: DecimalMode,
    #[serde(default)]
    alias: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    on_missing: MissingPolicy,
    adjust: Option<RawAdjust>,
    source: Option<String>,
}

/// A date given as `"2015-01-01"` or as a bare TOML date `2015-01-01`.
struct ConfigDate(NaiveDate);

impl<'de> Deserialize<'de> for ConfigDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Toml(toml::value::Datetime),
        }
        let text = match Either::deserialize(deserializer)? {
            Either::Text(s) => s,
            Either::Toml(d) => d.to_string(),
        };
        NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .map(ConfigDate)
            .map_err(|_| serde::de::Error::custom(format!("`{text}` is not a date; write it as \"YYYY-MM-DD\"")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[store]
path = "store"
hot_cache = "512MiB"

[source]
odbc = "Driver={SQLite3};Database=/tmp/x.db;Pwd=${HOME};"

[[table]]
name = "daily_bar"
date = "trade_date"
symbol = "symbol"
fields = ["open", "close", "f0*"]
exclude = ["f01"]
start = "2015-01-01"
"#;

    #[test]
    fn parses_and_substitutes_environment() {
        let home = std::env::var("HOME").unwrap();
        let c = Config::parse(Path::new("/etc/cheetah/c.toml"), GOOD).unwrap();
        assert_eq!(c.store.path, Path::new("/etc/cheetah/store"));
        assert_eq!(c.store.hot_cache_bytes, 512 << 20);
        let source = &c.sources[DEFAULT_SOURCE];
        assert!(source.connection_string().unwrap().contains(&format!("Pwd={home};")));
        assert!(!format!("{source:?}").contains("Pwd"));
        assert_eq!(source.redacted(), "Driver={SQLite3};Database=x.db");
        assert_eq!((c.tables[0].source.as_str(), source.section().as_str()), (DEFAULT_SOURCE, "[source]"));
        let t = &c.tables[0];
        assert_eq!(t.lookback, DEFAULT_LOOKBACK);
        assert_eq!(t.location, "/etc/cheetah/c.toml:9");
        assert!(t.selects("close") && t.selects("f02") && !t.selects("f01") && !t.selects("high"));
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let text = GOOD.replace("lookback", "x").replace("exclude = [\"f01\"]", "exclude = [\"f01\"]\nlookbak = 3");
        let err = Config::parse(Path::new("c.toml"), &text).unwrap_err().to_string();
        assert!(err.starts_with("c.toml:15: "), "{err}");
        assert!(err.contains("lookbak") && !err.contains('\n'), "one line naming the key: {err}");
    }

    #[test]
    fn bad_date_and_size_are_errors_with_lines() {
        let err =
            Config::parse(Path::new("c.toml"), &GOOD.replace("2015-01-01", "2015-13-01")).unwrap_err().to_string();
        assert!(err.starts_with("c.toml:15: ") && err.contains("2015-13-01"), "{err}");
        let err = Config::parse(Path::new("c.toml"), &GOOD.replace("512MiB", "lots")).unwrap_err().to_string();
        assert!(err.starts_with("c.toml:4: ") && err.contains("lots"), "{err}");
    }

    #[test]
    fn connections_default_to_four_and_must_be_from_one_to_sixty_four() {
        let c = Config::parse(Path::new("c.toml"), GOOD).unwrap();
        assert_eq!(c.sources[DEFAULT_SOURCE].connections, 4);
        let with = |n: &str| GOOD.replace("Pwd=${HOME};\"", &format!("Pwd=${{HOME}};\"\nconnections = {n}"));
        assert_eq!(Config::parse(Path::new("c.toml"), &with("1")).unwrap().sources[DEFAULT_SOURCE].connections, 1);
        for bad in ["0", "65"] {
            let err = Config::parse(Path::new("c.toml"), &with(bad)).unwrap_err().to_string();
            assert!(err.contains(&format!("[source] connections = {bad}")) && err.contains("from 1 to 64"), "{err}");
        }
    }

    #[test]
    fn a_missing_environment_variable_is_named_when_the_source_is_contacted() {
        let c = Config::parse(Path::new("c.toml"), &GOOD.replace("${HOME}", "${CHEETAH_SURELY_UNSET}")).unwrap();
        let source = &c.sources[DEFAULT_SOURCE];
        assert_eq!(source.redacted(), "Driver={SQLite3};Database=x.db", "readable without the variable");
        let err = source.connection_string().unwrap_err().to_string();
        assert!(err.contains("[source] odbc uses ${CHEETAH_SURELY_UNSET}") && err.contains("not set"), "{err}");
        let err = Config::parse(
            Path::new("c.toml"),
            &GOOD.replace("Pwd=${HOME};", "").replace("Driver={SQLite3};Database=/tmp/x.db;", " "),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("odbc is empty"), "{err}");
    }

    #[test]
    fn flight_needs_a_token_beyond_loopback_and_never_shows_it() {
        let with = |flight: &str| Config::parse(Path::new("c.toml"), &format!("{GOOD}\n[flight]\n{flight}\n"));
        let local = with(r#"listen = "localhost:8815""#).unwrap().flight.unwrap();
        assert!(local.listen.ip().is_loopback() && local.listen.port() == 8815 && local.token().unwrap().is_none());
        let err = with(r#"listen = "0.0.0.0:8815""#).unwrap_err().to_string();
        assert!(err.contains("serves other machines") && err.contains("token"), "{err}");
        let open = with(
            r#"listen = "0.0.0.0:8815"
token = "${HOME}-x""#,
        )
        .unwrap()
        .flight
        .unwrap();
        let home = std::env::var("HOME").unwrap();
        assert_eq!(open.token().unwrap(), Some(format!("{home}-x")));
        assert!(!format!("{open:?}").contains(&home), "{open:?}");
        let unset = with(
            r#"listen = "127.0.0.1:1"
token = "${CHEETAH_SURELY_UNSET}""#,
        )
        .expect("a reader needs no token")
        .flight
        .unwrap();
        let unset = unset.token().unwrap_err().to_string();
        assert!(unset.contains("[flight] token") && unset.contains("CHEETAH_SURELY_UNSET"), "{unset}");
        let half = with(
            r#"listen = "127.0.0.1:1"
tls_cert = "c.pem""#,
        )
        .unwrap_err()
        .to_string();
        assert!(half.contains("no tls_key"), "{half}");
        assert!(with(r#"listen = "8815""#).unwrap_err().to_string().contains("host:port"));
        assert!(with(
            r#"listen = "127.0.0.1:1"
tokn = "x""#
        )
        .unwrap_err()
        .to_string()
        .contains("tokn"));
    }

    /// The fingerprint is stored in every catalog: a change to its text rebuilds every table of
    /// every store on its next update, so the text is pinned here as the stored tags are.
    #[test]
    fn a_table_fingerprint_keeps_its_stored_text() {
        let text = format!("{GOOD}where = \"x > 1\"\nlookback = 3\n");
        let c = Config::parse(Path::new("c.toml"), &text).unwrap();
        let stored = |t: &TableConfig| serde_json::to_string(&t.fingerprint()).unwrap();
        assert_eq!(
            stored(&c.tables[0]),
            r#""kind=Daily;date=trade_date;symbol=symbol;where=Some(\"x > 1\");start=2015-01-01;schema=None;order_by=None;decimal=Float""#
        );
        let mut named = c.tables[0].clone();
        named.source = "vendor".into();
        named.kind = TableKind::Asof;
        named.order_by = Some("period".into());
        named.decimal = DecimalMode::Exact;
        assert_eq!(
            stored(&named),
            r#""kind=Asof;date=trade_date;symbol=symbol;where=Some(\"x > 1\");start=2015-01-01;schema=None;order_by=Some(\"period\");decimal=Exact;source=vendor""#
        );
    }

    #[test]
    fn duplicate_table_is_rejected_at_its_line() {
        let block = &GOOD[GOOD.find("[[table]]").unwrap()..];
        let err = Config::parse(Path::new("c.toml"), &format!("{GOOD}\n{block}")).unwrap_err().to_string();
        assert!(err.starts_with("c.toml:17:") && err.contains("twice"), "{err}");
    }

    #[test]
    fn share_is_optional_and_checked() {
        let c = Config::parse(Path::new("/etc/cheetah/c.toml"), GOOD).unwrap();
        assert!(c.share.is_none());
        let text = format!("{GOOD}\n[share]\npath = \"shm\"\nbudget = \"1GiB\"\n");
        let share = Config::parse(Path::new("/etc/cheetah/c.toml"), &text).unwrap().share.unwrap();
        assert_eq!((share.path.as_path(), share.budget_bytes), (Path::new("/etc/cheetah/shm"), 1 << 30));
        assert_eq!(share.block_rows, 65536);
        let rows = |n: &str| Config::parse(Path::new("c.toml"), &format!("{text}block_rows = {n}\n"));
        assert_eq!(rows("128").unwrap().share.unwrap().block_rows, 128);
        for bad in ["0", "100", "32", "33554432"] {
            let err = rows(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("block_rows = {bad}")) && err.contains("multiple of 64"), "{err}");
        }
        let err = Config::parse(Path::new("c.toml"), &format!("{GOOD}\n[share]\npath = \"x\"\nbudgett = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.toml:19: ") && err.contains("budgett"), "{err}");
    }

    #[test]
    fn adjust_and_universes_are_checked_at_their_lines() {
        let with = |extra: &str| Config::parse(Path::new("c.toml"), &format!("{GOOD}{extra}"));
        let adjust = "\n[table.adjust]\nfactor = \"close\"\nfields = [\"open\"]\n";
        let c = with(adjust).unwrap();
        assert_eq!(c.tables[0].adjust.as_ref().map(|a| a.factor.as_str()), Some("close"));
        let err = with(&adjust.replace("\"close\"", "\"adj\"")).unwrap_err().to_string();
        assert!(err.starts_with("c.toml:9: ") && err.contains("factor `adj` is not a cached field"), "{err}");
        let err = with(&adjust.replace("[\"open\"]", "[\"high\"]")).unwrap_err().to_string();
        assert!(err.contains("`high` is not a cached field of the table; add it to `fields`"), "{err}");
        let err = with(&adjust.replace("[\"open\"]", "[\"close\"]")).unwrap_err().to_string();
        assert!(err.contains("the factor itself"), "{err}");
        let universe = "\n[[universe]]\nname = \"csi300\"\ntable = \"m\"\nsymbol = \"s\"\nstart = \"a\"\nend = \"b\"\n";
        let c = with(universe).unwrap();
        assert_eq!((c.universes[0].name.as_str(), c.universes[0].location.as_str()), ("csi300", "c.toml:17"));
        let err = with(&format!("{universe}{universe}")).unwrap_err().to_string();
        assert!(err.starts_with("c.toml:24: ") && err.contains("appears twice"), "{err}");
        let err = with(&universe.replace("csi300", "csi 300")).unwrap_err().to_string();
        assert!(err.contains("plain name"), "{err}");
        let err = with(&universe.replace("end = \"b\"", "ends = \"b\"")).unwrap_err().to_string();
        assert!(err.contains("ends"), "{err}");
    }

    #[test]
    fn named_sources_are_checked_and_picked_per_table() {
        let vendor =
            "\n[sources.vendor]\nodbc = \"Driver={MariaDB Unicode};Server=db;Pwd=${HOME};\"\nlogin_timeout = 4\n";
        let table = "\n[[table]]\nname = \"funda\"\nsource = \"vendor\"\ndate = \"d\"\nsymbol = \"s\"\nfields = [\"*\"]\nstart = \"2015-01-01\"\n";
        let c = Config::parse(Path::new("c.toml"), &format!("{GOOD}{vendor}{table}")).unwrap();
        assert_eq!(c.sources.keys().collect::<Vec<_>>(), [DEFAULT_SOURCE, "vendor"]);
        let funda = c.table("funda").unwrap();
        assert_eq!((funda.source.as_str(), c.sources["vendor"].login_timeout_secs), ("vendor", 4));
        assert_eq!(c.sources["vendor"].section(), "[sources.vendor]");
        let mut moved = funda.clone();
        moved.source = DEFAULT_SOURCE.into();
        assert!(!format!("{:?}", moved.fingerprint()).contains("source"), "the default source keeps old fingerprints");
        assert_eq!(moved.fingerprint().changed_settings(&funda.fingerprint()), ["source"]);

        let err = Config::parse(Path::new("c.toml"), &format!("{GOOD}{table}")).unwrap_err().to_string();
        assert!(
            err.starts_with("c.toml:17: ") && err.contains("source `vendor` is not configured; add [sources.vendor]"),
            "{err}"
        );
        let err = Config::parse(
            Path::new("c.toml"),
            &format!("{GOOD}{}", vendor.replace("${HOME}", "${CHEETAH_SURELY_UNSET}")),
        )
        .unwrap()
        .sources["vendor"]
            .connection_string()
            .unwrap_err()
            .to_string();
        assert!(err.contains("[sources.vendor] odbc uses ${CHEETAH_SURELY_UNSET}"), "{err}");
        let err = Config::parse(Path::new("c.toml"), &format!("{GOOD}{}", vendor.replace("vendor", "default")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`default` names [source]"), "{err}");
        let only_named = GOOD.replace("[source]\nodbc", "[sources.market]\nodbc");
        let err = Config::parse(Path::new("c.toml"), &only_named).unwrap_err().to_string();
        assert!(
            err.contains("names no source and the config has no [source]; add source = \"NAME\" (one of `market`)"),
            "{err}"
        );
        let fixed = only_named.replace("name = \"daily_bar\"", "name = \"daily_bar\"\nsource = \"market\"");
        assert_eq!(Config::parse(Path::new("c.toml"), &fixed).unwrap().tables[0].source, "market");
        let err = Config::parse(Path::new("c.toml"), &GOOD.replace("[source]\nodbc = ", "[elsewhere]\nodbc = "))
            .unwrap_err()
            .to_string();
        assert!(err.contains("elsewhere"), "{err}");
    }

    #[test]
    fn quality_thresholds_default_and_are_checked() {
        let c = Config::parse(Path::new("c.toml"), GOOD).unwrap();
        assert_eq!(c.quality, QualityConfig::default());
        let c = Config::parse(Path::new("c.toml"), &format!("{GOOD}\n[quality]\noutlier_k = 5\nmax_age_days = 100\n"))
            .unwrap();
        assert_eq!((c.quality.outlier_k, c.quality.max_age_days, c.quality.window), (5.0, 100, 20));
        let err = Config::parse(Path::new("c.toml"), &format!("{GOOD}\n[quality]\ncoverage_drop = 20\n"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.toml:17: ") && err.contains("between 0 and 1"), "{err}");
        let err =
            Config::parse(Path::new("c.toml"), &format!("{GOOD}\n[quality]\noutlier = 5\n")).unwrap_err().to_string();
        assert!(err.contains("outlier"), "{err}");
    }
}
