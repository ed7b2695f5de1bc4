//! [`Cache`]: a config and its open store, the entry point for readers and the writer.

use std::sync::RwLock;

use crate::config::Config;
use crate::error::{Error, StoreError};
use crate::query::{self, QueryResult, Request};
use crate::status::{self, Status};
use crate::store::catalog::Catalog;
use crate::store::symbols::SymbolDictionary;
use crate::store::Store;
use crate::update::{UpdateReport, Updater};

/// Builds a [`Cache`].
pub struct CacheBuilder {
    config: Config,
    writer: bool,
}

impl CacheBuilder {
    /// Opens the store as its one writer (needed for [`Cache::update`]).
    pub fn writer(mut self, writer: bool) -> Self {
        self.writer = writer;
        self
    }

    /// Opens the store.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another writer holds the store, [`StoreError::Missing`] when
    /// a reader finds no store yet, [`StoreError::FormatVersion`] for a store of another format.
    pub fn open(self) -> Result<Cache, Error> {
        let store = if self.writer {
            Store::open_writer(&self.config.store.path, self.config.store.compression_level)?
        } else {
            Store::open_reader(&self.config.store.path)?
        };
        let view = View { catalog: store.catalog()?, symbols: store.symbols()? };
        Ok(Cache { config: self.config, store, view: RwLock::new(view) })
    }
}

/// What a reader knows of the store: refreshed before each read.
struct View {
    catalog: Catalog,
    symbols: SymbolDictionary,
}

/// An open cache.
pub struct Cache {
    config: Config,
    store: Store,
    view: RwLock<View>,
}

impl Cache {
    /// Starts opening the cache of `config`; readers by default.
    pub fn builder(config: Config) -> CacheBuilder {
        CacheBuilder { config, writer: false }
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Catches up with what the writer committed since the last call.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn refresh(&self) -> Result<(), StoreError> {
        self.store.refresh()?;
        let catalog = self.store.catalog()?;
        let mut view = self.view.write().expect("view lock");
        view.catalog = catalog;
        self.store.load_new_symbols(&mut view.symbols)
    }

    /// Reads a request, seeing every date committed before the call.
    ///
    /// # Errors
    /// See [`query::read`].
    pub fn get(&self, request: &Request) -> Result<QueryResult, Error> {
        self.refresh()?;
        let view = self.view.read().expect("view lock");
        Ok(query::read(&self.store, &view.catalog, &view.symbols, request)?)
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
        Ok(status::status(&self.store)?)
    }

    /// Runs one update of every table; needs the writer role.
    ///
    /// # Errors
    /// [`StoreError::ReadOnly`] for a reader. Per-table failures are in the report.
    pub fn update(&self, show_progress: bool) -> Result<UpdateReport, Error> {
        let report = Updater::new(&self.config, &self.store)?.progress(show_progress).run();
        self.refresh()?;
        Ok(report)
    }
}
