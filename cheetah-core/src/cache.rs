//! [`Cache`]: a config, its open store and the hot layer; the entry point for readers and the
//! writer.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use chrono::NaiveDate;

use crate::config::{Config, TableConfig};
use crate::error::{ConfigError, Error, QueryError, StoreError};
use crate::hot::HotChunks;
use crate::query::{self, OutputPool, QueryResult, Request, SymbolRanking, View};
use crate::source::Source;
use crate::status::{self, Status};
use crate::store::catalog::Catalog;
use crate::store::Store;
use crate::update::{UpdateReport, Updater};
use crate::verify::{self, TableVerification};

/// Builds a [`Cache`].
pub struct CacheBuilder {
    config: Config,
    writer: bool,
    hot_bytes: Option<u64>,
}

impl CacheBuilder {
    /// Opens the store as its one writer (needed for [`Cache::update`]).
    pub fn writer(mut self, writer: bool) -> Self {
        self.writer = writer;
        self
    }

    /// Bounds the hot layer; the config's `hot_cache` by default.
    pub fn hot_bytes(mut self, bytes: u64) -> Self {
        self.hot_bytes = Some(bytes);
        self
    }

    /// Opens the store.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another writer holds the store, [`StoreError::Missing`] when
    /// a reader finds no store yet, [`StoreError::FormatVersion`] for a store of another format.
    pub fn open(self) -> Result<Cache, Error> {
        let (store, seen) = if self.writer {
            (Store::open_writer(&self.config.store.path, self.config.store.compression_level)?, None)
        } else {
            let (store, seen) = open_reader(&self.config.store.path)?;
            (store, Some(seen))
        };
        let hot_bytes = self.hot_bytes.unwrap_or(self.config.store.hot_cache_bytes);
        let hot = HotChunks::new(hot_bytes);
        // Idle result buffers are kept up to half the hot layer's bound.
        let pool = OutputPool::new(usize::try_from(hot_bytes / 2).unwrap_or(usize::MAX));
        let journal = store.journal_end()?;
        let catalog_version = store.catalog_version()?;
        let view = load_view(&store, store.catalog()?, &self.config)?;
        Ok(Cache {
            config: self.config,
            store: RwLock::new(store),
            hot,
            pool,
            view: RwLock::new(view),
            position: Mutex::new(Position {
                journal,
                catalog_version,
                manifest: seen.as_ref().and_then(|s| s.0.clone()),
                seen,
            }),
        })
    }
}

/// How far a cache has followed the store.
struct Position {
    journal: u64,
    catalog_version: u64,
    /// For readers: the writer's MANIFEST as it was before the reader instance was opened.
    manifest: Option<(String, u64)>,
    /// For readers: the store's files as they were when the last refresh began.
    seen: Option<DiskState>,
}

/// The writer's MANIFEST and newest WAL with their lengths: a writer changes nothing without
/// changing one of them.
type DiskState = (Option<(String, u64)>, Option<(String, u64)>);

/// Opens a reader instance, returning it with the store's files as they were just before: the
/// instance holds at least that much, and any later change shows as a different state.
fn open_reader(path: &std::path::Path) -> Result<(Store, DiskState), StoreError> {
    let before = (Store::manifest_state_at(path), Store::wal_state_at(path));
    Ok((Store::open_reader(path)?, before))
}

/// An open cache.
pub struct Cache {
    config: Config,
    store: RwLock<Store>,
    hot: HotChunks,
    pool: OutputPool,
    view: RwLock<View>,
    position: Mutex<Position>,
}

impl Cache {
    /// Starts opening the cache of `config`; readers by default.
    pub fn builder(config: Config) -> CacheBuilder {
        CacheBuilder { config, writer: false, hot_bytes: None }
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().expect("store lock")
    }

    /// The hot layer.
    pub fn hot(&self) -> &HotChunks {
        &self.hot
    }

    /// Catches up with what the writer committed since the last call: new catalog, new
    /// symbols, and the days written or deleted, whose cached chunks it drops.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn refresh(&self) -> Result<(), StoreError> {
        let mut position = self.position.lock().expect("position lock");
        let reader = !self.store().is_writer();
        let mut disk = None;
        if reader {
            let path = &self.config.store.path;
            let now = (Store::manifest_state_at(path), Store::wal_state_at(path));
            // Nothing on disk changed, so there is nothing to catch up with: RocksDB's catch-up
            // is not free even then.
            if position.seen.as_ref() == Some(&now) {
                return Ok(());
            }
            disk = Some(now);
            let store = self.store();
            store.refresh()?;
            let after = store.manifest_state();
            drop(store);
            // Catch-up is exact only while the writer has neither flushed nor reopened.
            if after != position.manifest {
                let (fresh, (manifest, _)) = open_reader(&self.config.store.path)?;
                *self.store.write().expect("store lock") = fresh;
                position.manifest = manifest;
            }
        }
        let store = self.store();
        let catalog_version = store.catalog_version()?;
        let changes = store.changes_since(position.journal)?;
        let symbols_grew = {
            let view = self.view.read().expect("view lock");
            store.symbols_after(view.symbols.len())?
        };
        if catalog_version == position.catalog_version && changes.days.is_empty() && !changes.reset && !symbols_grew {
            position.seen = disk;
            return Ok(());
        }
        let mut view = self.view.write().expect("view lock");
        if changes.reset || catalog_version != position.catalog_version {
            if changes.reset {
                self.hot.clear();
            }
            *view = load_view(&store, store.catalog()?, &self.config)?;
        } else {
            store.load_new_symbols(&mut view.symbols)?;
            if symbols_grew {
                view.ranking = SymbolRanking::new(&view.symbols);
            }
        }
        for &(table_id, day) in &changes.days {
            let Some(table) = view.catalog.tables.iter().find(|t| t.id == table_id) else { continue };
            self.hot.invalidate(table, day);
            let present = store.has_day(table_id, day)?;
            let days = view.days.entry(table_id).or_default();
            match (days.binary_search(&day), present) {
                (Err(at), true) => days.insert(at, day),
                (Ok(at), false) => {
                    days.remove(at);
                }
                _ => {}
            }
        }
        position.journal = changes.next_seq;
        position.catalog_version = catalog_version;
        position.seen = disk;
        Ok(())
    }

    /// Reads a request, seeing every date committed before the call.
    ///
    /// # Errors
    /// See [`query::read`].
    pub fn get(&self, request: &Request) -> Result<QueryResult, Error> {
        self.refresh()?;
        let read = || query::read(&self.store(), &self.hot, &self.pool, &self.view.read().expect("view lock"), request);
        match read() {
            // A reader instance's catch-up can leave it with a torn view of the writer's
            // families; a fresh instance reads what is on disk. A chunk truly lost fails again.
            Err(QueryError::Store(StoreError::Corrupt { what, message, .. })) if !self.store().is_writer() => {
                tracing::warn!(%what, %message, "reopening the store: this reader's view was incomplete");
                self.reopen()?;
                Ok(read()?)
            }
            result => Ok(result?),
        }
    }

    /// Replaces a reader's instance with a fresh one and reloads everything from it.
    fn reopen(&self) -> Result<(), StoreError> {
        let mut position = self.position.lock().expect("position lock");
        let (fresh, seen) = open_reader(&self.config.store.path)?;
        *self.store.write().expect("store lock") = fresh;
        self.hot.clear();
        let store = self.store();
        position.journal = store.journal_end()?;
        position.catalog_version = store.catalog_version()?;
        *self.view.write().expect("view lock") = load_view(&store, store.catalog()?, &self.config)?;
        position.manifest = seen.0.clone();
        position.seen = Some(seen);
        Ok(())
    }

    /// The config's aliases: alias → `table.column`.
    pub fn aliases(&self) -> query::Aliases {
        self.view.read().expect("view lock").aliases.clone()
    }

    /// The catalog as of the last refresh.
    pub fn catalog(&self) -> Catalog {
        self.view.read().expect("view lock").catalog.clone()
    }

    /// Per table and field: dates, rows, bytes and watermark.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn status(&self) -> Result<Status, Error> {
        self.refresh()?;
        Ok(status::status(&self.store())?)
    }

    /// Runs one update of every table; needs the writer role.
    ///
    /// # Errors
    /// [`StoreError::ReadOnly`] for a reader. Per-table failures are in the report.
    pub fn update(&self, show_progress: bool) -> Result<UpdateReport, Error> {
        self.update_until(show_progress, &Arc::new(AtomicBool::new(false)))
    }

    /// [`Cache::update`] that stops between dates once `stop` is set: the date in progress is
    /// committed or abandoned whole, and the tables stopped report [`crate::error::UpdateError::Interrupted`].
    ///
    /// # Errors
    /// See [`Cache::update`].
    pub fn update_until(&self, show_progress: bool, stop: &Arc<AtomicBool>) -> Result<UpdateReport, Error> {
        let store = self.store();
        let report = Updater::new(&self.config, &store)?.progress(show_progress).stop_flag(stop.clone()).run();
        store.prune_journal()?;
        // Leaves no WAL to replay on the next open, and lets RocksDB delete the old ones.
        store.flush()?;
        drop(store);
        self.refresh()?;
        Ok(report)
    }

    /// Compares the cached dates of `tables` (every configured table when empty) in
    /// `start..=end` with the source; see [`crate::verify`]. Readers may verify.
    ///
    /// # Errors
    /// [`ConfigError::UnknownTable`] for a name not in the config; source and store failures.
    pub fn verify(
        &self,
        tables: &[String],
        range: (Option<NaiveDate>, Option<NaiveDate>),
    ) -> Result<Vec<TableVerification>, Error> {
        self.refresh()?;
        let source = Source::new(self.config.source.clone());
        let store = self.store();
        self.tables(tables)?.into_iter().map(|table| Ok(verify::verify_table(&store, &source, table, range)?)).collect()
    }

    /// Re-fetches `dates` of `table` whole from the source; needs the writer role. Returns the
    /// dates rewritten.
    ///
    /// # Errors
    /// [`StoreError::ReadOnly`] for a reader; see [`Updater::repair`].
    pub fn repair(&self, table: &str, dates: &[NaiveDate], stop: &Arc<AtomicBool>) -> Result<usize, Error> {
        let config = self.tables(&[table.to_string()])?[0];
        let store = self.store();
        let repaired = Updater::new(&self.config, &store)?.stop_flag(stop.clone()).repair(config, dates)?;
        store.flush()?;
        drop(store);
        self.refresh()?;
        Ok(repaired)
    }

    /// The configured tables named, or all of them for none.
    fn tables(&self, names: &[String]) -> Result<Vec<&TableConfig>, ConfigError> {
        if names.is_empty() {
            return Ok(self.config.tables.iter().collect());
        }
        names
            .iter()
            .map(|name| {
                self.config.tables.iter().find(|t| &t.name == name).ok_or_else(|| ConfigError::UnknownTable {
                    path: self.config.path.clone(),
                    name: name.clone(),
                    known: self.config.tables.iter().map(|t| t.name.clone()).collect::<Vec<_>>().join(", "),
                })
            })
            .collect()
    }
}

fn load_view(store: &Store, catalog: Catalog, config: &Config) -> Result<View, StoreError> {
    let symbols = store.symbols()?;
    let ranking = SymbolRanking::new(&symbols);
    let mut days = HashMap::with_capacity(catalog.tables.len());
    for table in &catalog.tables {
        days.insert(table.id, store.day_index(table.id)?.into_iter().map(|(day, _)| day).collect());
    }
    Ok(View { catalog, symbols, ranking, days, aliases: query::aliases(config) })
}
