//! [`Cache`]: a config, its store followed by a [`Follower`], the hot layer and the shared
//! layer; the entry point for readers and the writer.

mod lazy;
mod read;
mod refresh;
mod share;
mod versions;
mod write;

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use chrono::NaiveDate;

use self::lazy::LazyFollower;
use crate::config::{pattern_matches, Config, TableConfig};
use crate::error::{ConfigError, Error, QueryError, StoreError};
use crate::hot::HotChunks;
use crate::query::{self, resolve_fields, OutputPool, ReadRules};
use crate::share::SharedLayer;
use crate::source::{list_columns, Source, Sources};
use crate::status::{self, Status};
use crate::store::{ChunkKind, Store};
use crate::types::{date_of, day_of};
use crate::universe::Universe;
use crate::update::{ProgressFn, UpdateReport, Updater};
use crate::verify::{self, TableVerification};
use crate::view::Follower;

/// The source name `cheetah fields` lists local tables under.
const LOCAL: &str = "local";

/// Builds a [`Cache`].
pub struct CacheBuilder {
    config: Config,
    writer: bool,
    hot_bytes: Option<u64>,
    share: bool,
}

impl CacheBuilder {
    /// Opens the store as its one writer (needed for [`Cache::update`]).
    #[must_use]
    pub fn writer(mut self, writer: bool) -> Self {
        self.writer = writer;
        self
    }

    /// Bounds the hot layer; the config's `hot_cache` by default.
    #[must_use]
    pub fn hot_bytes(mut self, bytes: u64) -> Self {
        self.hot_bytes = Some(bytes);
        self
    }

    /// Whether reads use the shared layer of the config's `[share]` (the default); without it,
    /// every read decodes from the store.
    #[must_use]
    pub fn share(mut self, share: bool) -> Self {
        self.share = share;
        self
    }

    /// Opens the store.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another writer holds the store, [`StoreError::Missing`] when
    /// a reader finds no store yet, [`StoreError::FormatVersion`] for a store of another format.
    pub fn open(self) -> Result<Cache, Error> {
        let path = self.config.store.path.clone();
        let shares = self.share && self.config.share.is_some();
        let follower = if self.writer {
            let store = Store::open_writer(&path, self.config.store.compression_level)?;
            LazyFollower::open(path.clone(), Follower::writer(store)?)
        } else if shares {
            // Reads the shared layer serves alone need no store: it opens when one does.
            LazyFollower::deferred(path.clone())?
        } else {
            LazyFollower::open(path.clone(), Follower::reader(&path)?)
        };
        let hot_bytes = self.hot_bytes.unwrap_or(self.config.store.hot_cache_bytes);
        let shared = match (&self.config.share, shares) {
            (Some(share), true) => Some(SharedLayer::new(share.path.clone(), crate::store::identity_at(&path)?)),
            _ => None,
        };
        Ok(Cache {
            shared,
            rules: ReadRules::of(&self.config),
            config: self.config,
            store: follower,
            hot: HotChunks::new(hot_bytes),
            // Idle result buffers are kept up to half the hot layer's bound.
            pool: OutputPool::new(usize::try_from(hot_bytes / 2).unwrap_or(usize::MAX)),
        })
    }
}

/// An open cache.
pub struct Cache {
    config: Config,
    shared: Option<SharedLayer>,
    rules: ReadRules,
    store: LazyFollower,
    hot: HotChunks,
    pool: OutputPool,
}

/// What [`Cache::warm`] read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WarmReport {
    /// Chunks read.
    pub chunks: usize,
    /// Their bytes, as stored.
    pub bytes: u64,
}

/// What [`Cache::source_fields`] found: the matching columns of every source it could reach,
/// and why it could not reach the others.
#[derive(Debug, Default)]
pub struct FieldSearch {
    /// The matching columns, by source, table and column order.
    pub fields: Vec<SourceField>,
    /// Each source that could not be searched, with the reason.
    pub failed: Vec<(String, Error)>,
}

/// A column of a source table, as [`Cache::source_fields`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceField {
    /// The name of its source.
    pub source: String,
    /// Its table.
    pub table: String,
    /// Its name.
    pub name: String,
    /// Its SQL type, as the driver names it.
    pub sql_type: String,
    /// Whether the cache holds it.
    pub cached: bool,
}

impl Cache {
    /// Starts opening the cache of `config`; readers by default.
    pub fn builder(config: Config) -> CacheBuilder {
        CacheBuilder { config, writer: false, hot_bytes: None, share: true }
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store's identity: made once when the store was created, and kept by every copy.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the store's `IDENTITY` file cannot be read.
    pub fn identity(&self) -> Result<String, StoreError> {
        crate::store::identity_at(&self.config.store.path)
    }

    /// Whether this cache has opened its store: a reader whose reads the shared layer has served
    /// alone has not.
    pub fn store_is_open(&self) -> bool {
        self.store.is_open()
    }

    /// The store's follower, opening the store if this reader has not yet.
    fn follower(&self) -> Result<&Follower, StoreError> {
        self.store.get()
    }

    /// Catches up with what the writer committed since the last call.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn refresh(&self) -> Result<(), StoreError> {
        self.follower()?.refresh(&self.hot)
    }

    /// Every universe the config names, as the last update stored it (`None` before one has).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn universes(&self) -> Result<Vec<(String, Option<Universe>)>, Error> {
        self.refresh()?;
        let store = self.follower()?.store();
        let mut universes = Vec::with_capacity(self.config.universes.len());
        for u in &self.config.universes {
            universes.push((u.name.clone(), store.universe(&u.name)?));
        }
        Ok(universes)
    }

    /// The symbols that were members of universe `name` on `date`, sorted.
    ///
    /// # Errors
    /// [`QueryError::InvalidArgument`] for a universe not configured or not yet read.
    pub fn members(&self, name: &str, date: NaiveDate) -> Result<Vec<String>, Error> {
        self.refresh()?;
        let universe = self.follower()?.store().universe(name)?;
        let universe = universe.ok_or_else(|| self.rules.no_universe(name))?;
        Ok(universe.members(date).into_iter().map(str::to_string).collect())
    }

    /// Per table and field: dates, rows, bytes and watermark.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn status(&self) -> Result<Status, Error> {
        self.refresh()?;
        let mut status = status::status(&self.follower()?.store())?;
        for table in &mut status.tables {
            table.source = self.config.table(&table.name).map(|t| t.source.clone());
        }
        status.share = self.share_status();
        status.versions = Some(self.versions()?);
        Ok(status)
    }

    /// The last date every configured table has loaded; `None` while some table has loaded
    /// nothing.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn loaded_through(&self) -> Result<Option<NaiveDate>, Error> {
        self.refresh()?;
        let follower = self.follower()?;
        let (store, view) = (follower.store(), follower.view());
        let mut through: Option<NaiveDate> = None;
        for table in &self.config.tables {
            let Some(entry) = view.catalog.table(&table.name) else { return Ok(None) };
            let Some(watermark) = store.watermark(entry.id)? else { return Ok(None) };
            through = Some(through.map_or(date_of(watermark), |t| t.min(date_of(watermark))));
        }
        Ok(through)
    }

    /// Reads the stored chunks of `cols` (every cached field when `None`) and their tables over
    /// `start..=end` without decoding them, so the OS page cache holds them for every process's
    /// next read.
    ///
    /// # Errors
    /// Unknown or ambiguous names as for [`Cache::get`]; [`StoreError`].
    pub fn warm(&self, start: NaiveDate, end: NaiveDate, cols: Option<&[String]>) -> Result<WarmReport, Error> {
        self.refresh()?;
        let follower = self.follower()?;
        let (store, view) = (follower.store(), follower.view());
        let mut wanted: Vec<(ChunkKind, u32)> = Vec::new();
        match cols {
            Some(cols) => {
                for f in resolve_fields(&view.catalog, &self.rules.aliases, cols)? {
                    for id in [(ChunkKind::Rows, f.table.id), (ChunkKind::Values, f.field.id)] {
                        if !wanted.contains(&id) {
                            wanted.push(id);
                        }
                    }
                }
            }
            None => {
                for table in &view.catalog.tables {
                    wanted.push((ChunkKind::Rows, table.id));
                    wanted.extend(table.fields.iter().map(|f| (ChunkKind::Values, f.id)));
                }
            }
        }
        let mut report = WarmReport::default();
        for (kind, id) in wanted {
            let (chunks, bytes) = store.warm_chunks(kind, id, day_of(start), day_of(end))?;
            report.chunks += chunks;
            report.bytes += bytes;
        }
        Ok(report)
    }

    /// The columns in tables matching `table` (every table when `None`) whose name or
    /// `table.name` matches `pattern` (a glob, or a substring), of the source named `source`
    /// or of every source, each marked if cached; and the fields of local tables, under the
    /// source `local`. Needs no store: before the first update
    /// nothing is cached. A source that cannot be reached is reported in
    /// [`FieldSearch::failed`], and the others are still searched.
    ///
    /// # Errors
    /// [`ConfigError::UnknownSource`] for a source the config does not name.
    pub fn source_fields(
        config: &Config,
        pattern: &str,
        table: Option<&str>,
        source: Option<&str>,
    ) -> Result<FieldSearch, Error> {
        let sources: Vec<&crate::config::SourceConfig> = match source {
            Some(LOCAL) => Vec::new(),
            Some(name) => vec![config.source_named(name)?],
            None => config.sources.values().collect(),
        };
        let catalog = Cache::builder(config.clone())
            .open()
            .map(|c| c.follower().map(|f| f.view().catalog.clone()))
            .ok()
            .and_then(Result::ok);
        let pattern = if crate::config::is_glob(pattern) { pattern.to_string() } else { format!("*{pattern}*") };
        let matches = |table: &str, column: &str| {
            pattern_matches(&pattern, column) || pattern_matches(&pattern, &format!("{table}.{column}"))
        };
        let mut search = FieldSearch::default();
        if source.is_none_or(|s| s == LOCAL) {
            let local = catalog.iter().flat_map(|c| crate::local::local_tables(c));
            for entry in local.filter(|t| table.is_none_or(|wanted| wanted == t.name)) {
                search.fields.extend(entry.fields.iter().filter(|f| matches(&entry.name, &f.name)).map(|f| {
                    SourceField {
                        source: LOCAL.into(),
                        table: entry.name.clone(),
                        name: f.name.clone(),
                        sql_type: f.dtype.name(),
                        cached: true,
                    }
                }));
            }
        }
        for source_config in sources {
            let source = Source::new(source_config.clone());
            let columns = match source.connect().and_then(|c| list_columns(&source, &c, None, table.unwrap_or("%"))) {
                Ok(columns) => columns,
                Err(e) => {
                    search.failed.push((source_config.name.clone(), e.into()));
                    continue;
                }
            };
            let cached = |table: &str, column: &str| {
                config.table(table).is_some_and(|t| t.source == source_config.name)
                    && catalog.as_ref().and_then(|k| k.table(table)).and_then(|t| t.field(column)).is_some()
            };
            search.fields.extend(columns.into_iter().filter(|c| matches(&c.table, &c.name)).map(|c| SourceField {
                source: source_config.name.clone(),
                cached: cached(&c.table, &c.name),
                table: c.table,
                name: c.name,
                sql_type: c.type_name,
            }));
        }
        Ok(search)
    }

    /// Runs one update of every table; needs the writer role.
    ///
    /// # Errors
    /// [`StoreError::ReadOnly`] for a reader. Per-table failures are in the report.
    pub fn update(&self) -> Result<UpdateReport, Error> {
        self.update_with(&Arc::new(AtomicBool::new(false)), None, None)
    }

    /// [`Cache::update`] of the tables and universes of `sources` (every source when `None`),
    /// that reports its progress to `progress` and stops between dates once `stop` is set: the
    /// date in progress is committed or abandoned whole, and the tables stopped report
    /// [`crate::UpdateError::Interrupted`].
    ///
    /// # Errors
    /// See [`Cache::update`]; [`ConfigError::UnknownSource`] for a source the config does not
    /// name.
    pub fn update_with(
        &self,
        stop: &Arc<AtomicBool>,
        progress: Option<ProgressFn>,
        sources: Option<BTreeSet<String>>,
    ) -> Result<UpdateReport, Error> {
        for name in sources.iter().flatten() {
            self.config.source_named(name)?;
        }
        let store = self.follower()?.store();
        let report = Updater::new(&self.config, &store)?
            .on_progress(progress)
            .stop_flag(stop.clone())
            .only_sources(sources)
            .run();
        store.prune_journal()?;
        drop(store);
        self.retain()?;
        // Leaves no WAL to replay on the next open, and lets RocksDB delete the old ones.
        self.follower()?.store().flush()?;
        self.refresh()?;
        Ok(report)
    }

    /// Compares the cached dates of `tables` (every configured and local table when empty) in
    /// `start..=end` with the source; see [`crate::TableVerification`]. A local table has no
    /// source: its chunks are checked to decode. Readers may verify.
    ///
    /// # Errors
    /// [`ConfigError::UnknownTable`] for a name neither configured nor local; source and store
    /// failures.
    pub fn verify(
        &self,
        tables: &[String],
        range: (Option<NaiveDate>, Option<NaiveDate>),
    ) -> Result<Vec<TableVerification>, Error> {
        self.refresh()?;
        let sources = Sources::new(&self.config);
        let store = self.follower()?.store();
        self.tables(tables)?
            .into_iter()
            .map(|table| match table {
                Named::Configured(table) => Ok(verify::verify_table(&store, sources.get(&table.source), table, range)?),
                Named::Local(entry) => Ok(verify::verify_local(&store, &entry, range)?),
            })
            .collect()
    }

    /// The data-quality report of `tables` (every configured and local table when empty) over
    /// `start..=end` (each defaulting to the whole cached range), computed from the cached
    /// chunks; see [`crate::QualityReport`]. Readers may run it.
    ///
    /// # Errors
    /// [`ConfigError::UnknownTable`] for a name neither configured nor local; a store failure
    /// or a chunk that does not decode.
    pub fn quality(
        &self,
        tables: &[String],
        range: (Option<NaiveDate>, Option<NaiveDate>),
    ) -> Result<crate::QualityReport, Error> {
        if let (Some(start), Some(end)) = range {
            query::check_range(start, end)?;
        }
        self.refresh()?;
        let names: Vec<String> = self.tables(tables)?.iter().map(|t| t.name().to_string()).collect();
        let names = if tables.is_empty() { Vec::new() } else { names };
        Ok(crate::quality::assess(&self.follower()?.store(), &self.config, &names, range)?)
    }

    /// Re-fetches `dates` of `table` whole from the source; needs the writer role. Returns the
    /// dates rewritten.
    ///
    /// # Errors
    /// [`StoreError::ReadOnly`] for a reader; [`crate::UpdateError::CatalogChanged`] when the
    /// table changed since the last update; source and store failures.
    pub fn repair(&self, table: &str, dates: &[NaiveDate], stop: &Arc<AtomicBool>) -> Result<usize, Error> {
        let Named::Configured(config) = self.tables(&[table.to_string()])?.remove(0) else {
            let why =
                format!("`{table}` is a local table: there is no source to repair it from; write its dates again");
            return Err(QueryError::InvalidArgument(why).into());
        };
        let store = self.follower()?.store();
        let repaired = Updater::new(&self.config, &store)?.stop_flag(stop.clone()).repair(config, dates)?;
        store.flush()?;
        drop(store);
        self.refresh()?;
        Ok(repaired)
    }

    /// The store, for tools that inspect or damage it on purpose (tests, benchmarks).
    #[cfg(feature = "internals")]
    pub fn store(&self) -> std::sync::RwLockReadGuard<'_, Store> {
        self.follower().expect("the store opens").store()
    }

    /// The tables named, configured or local, or all of them for none.
    fn tables(&self, names: &[String]) -> Result<Vec<Named<'_>>, Error> {
        let catalog = self.follower()?.view().catalog.clone();
        let local = |name: &str| catalog.table(name).filter(|t| t.is_local()).cloned().map(Named::Local);
        if names.is_empty() {
            let configured = self.config.tables.iter().map(Named::Configured);
            return Ok(configured
                .chain(crate::local::local_tables(&catalog).into_iter().cloned().map(Named::Local))
                .collect());
        }
        names
            .iter()
            .map(|name| {
                self.config.table(name).map(Named::Configured).or_else(|| local(name)).ok_or_else(|| {
                    let local_names = crate::local::local_tables(&catalog).into_iter().map(|t| t.name.clone());
                    ConfigError::UnknownTable {
                        path: self.config.path.clone(),
                        name: name.clone(),
                        known: self
                            .config
                            .tables
                            .iter()
                            .map(|t| t.name.clone())
                            .chain(local_names)
                            .collect::<Vec<_>>()
                            .join(", "),
                    }
                    .into()
                })
            })
            .collect()
    }
}

/// A table a command names: configured, or written locally.
enum Named<'c> {
    Configured(&'c TableConfig),
    Local(crate::store::catalog::TableEntry),
}

impl Named<'_> {
    fn name(&self) -> &str {
        match self {
            Self::Configured(table) => &table.name,
            Self::Local(entry) => &entry.name,
        }
    }
}
