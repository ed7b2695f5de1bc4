//! Reads: at the version a request names through the store, or from the shared layer alone
//! while this reader has not opened its store.

use std::sync::Arc;

use arrow::array::StringArray;

use super::Cache;
use crate::error::{Error, QueryError, StoreError, VersionError};
use crate::query::{self, Chunks, HotStore, PastStore, QueryResult, ReadRules, Reader, Request, Unopened};
use crate::share::{LayerView, SharedLayer};
use crate::store::Store;
use crate::view::View;

/// Whether the unknown field `name` is one of `gone`, the fields a past view lost: asked for
/// as `table.field`, bare, or by an alias of it.
fn gone(gone: &[String], name: &str, rules: &ReadRules) -> bool {
    let name = rules.aliases.get(name).map_or(name, String::as_str);
    gone.iter().any(|g| g == name || g.rsplit_once('.').is_some_and(|(_, field)| field == name))
}

impl Cache {
    /// Reads a request, seeing every date committed before the call, or at the version it
    /// names.
    ///
    /// # Errors
    /// [`crate::QueryError`] for bad arguments, unknown or ambiguous names and versions that
    /// cannot be read, and store failures.
    pub fn get(&self, request: &Request) -> Result<QueryResult, Error> {
        match self.without_store(request)? {
            Some(result) => Ok(result),
            None => self.through_store(request),
        }
    }

    /// [`Cache::get`] through the store, opening it if it is not open yet: the half of a read
    /// that may take seconds, where [`Cache::without_store`] takes milliseconds. The shared
    /// layer still serves what it holds.
    ///
    /// # Errors
    /// As for [`Cache::get`].
    pub fn through_store(&self, request: &Request) -> Result<QueryResult, Error> {
        let (mut result, snapshot) = self.with_reader(request, true, |reader| reader.read(request))?;
        result.snapshot = snapshot;
        Ok(result)
    }

    /// Reads the latest version from the shared layer alone, while this reader has not opened
    /// the store: when the store's head still names the version the layer's generation saved its
    /// view at, and the layer holds every row the read needs. `None` when it cannot; then
    /// [`Cache::through_store`] serves the read.
    ///
    /// # Errors
    /// As for [`Cache::get`].
    pub fn without_store(&self, request: &Request) -> Result<Option<QueryResult>, Error> {
        let Some((layer, view, generation)) = self.layer_alone(request) else { return Ok(None) };
        let path = &self.config.store.path;
        let chunks = Unopened { path };
        let (rules, pool) = (&self.rules, &self.pool);
        let reader = Reader { view: &view, rules, chunks: &chunks, shared: Some((layer, &generation)), pool };
        match reader.read(request) {
            Ok(result) => Ok(Some(result)),
            Err(QueryError::Store(StoreError::Unopened { .. })) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The shared layer with the view its generation saved, when it may serve `request` while
    /// this reader has not opened the store: the latest version, and the store's head still the
    /// version the view was saved at.
    fn layer_alone(&self, request: &Request) -> Option<(&SharedLayer, Arc<View>, LayerView)> {
        let layer = self.shared.as_ref().filter(|_| request.as_of.is_none() && !self.store.is_open())?;
        let head = crate::store::head::announced(&self.config.store.path)?;
        let (view, generation) = layer.without_store(head)?;
        Some((layer, view, generation))
    }

    /// The `symbol` dictionary a read of `request` would most likely return, found without
    /// reading: every symbol in text order, from the view the read would start from. `None` for
    /// a read at a past version, or while no view is at hand without opening the store. A
    /// caller may prepare what it makes of the dictionary while the read runs; a commit in
    /// between may add a symbol, so the result's own dictionary is the one to trust.
    pub fn symbols_ahead(&self, request: &Request) -> Option<StringArray> {
        if request.as_of.is_some() {
            return None;
        }
        if let Some((_, view, _)) = self.layer_alone(request) {
            return Some(view.ranking.sorted.clone());
        }
        if !self.store.is_open() {
            return None;
        }
        let follower = self.follower().ok()?;
        let sorted = follower.view().ranking.sorted.clone();
        Some(sorted)
    }

    /// Reads `request` wide: each field as a date × symbol matrix, equal to [`Cache::get`]
    /// pivoted, scattered straight from the chunks. The store serves it, not the shared layer.
    ///
    /// # Errors
    /// As for [`Cache::get`], and [`QueryError::InvalidArgument`] for a field that is not
    /// numeric.
    pub fn panel(&self, request: &Request) -> Result<query::Panel, Error> {
        let (mut panel, snapshot) = self.with_reader(request, false, |reader| reader.panel(request))?;
        panel.snapshot = snapshot;
        Ok(panel)
    }

    /// What [`Cache::get`] of `request` would return, without reading a chunk: its columns,
    /// its dates with their rows, and the version it reads.
    ///
    /// # Errors
    /// As for [`Cache::get`].
    pub fn outline(&self, request: &Request) -> Result<query::Outline, Error> {
        Ok(self.with_reader(request, false, |reader| reader.outline(request))?.0)
    }

    /// Runs `read` with a [`Reader`] at the version `request` names (the latest by default),
    /// offering the shared layer when `layer` is set and the version is the latest; returns
    /// what it read and the snapshot the request named.
    fn with_reader<T>(
        &self,
        request: &Request,
        layer: bool,
        read: impl Fn(&Reader<'_, Chunks<'_>>) -> Result<T, QueryError>,
    ) -> Result<(T, Option<String>), Error> {
        self.refresh()?;
        loop {
            let attempt = |store: &Store, view: &crate::view::View| {
                let (version, snapshot) = self.resolve(store, view, request.as_of.as_ref())?;
                if version.number > view.version.number {
                    // Committed after this view was read: catch up first.
                    return Ok(None);
                }
                let now = HotStore { hot: &self.hot, store };
                let (rules, pool) = (&self.rules, &self.pool);
                // The view holds exactly the latest version when nothing was committed since it
                // was read; the store holds still for the whole read.
                if version.number == view.version.number && store.latest_version()? == version.number {
                    let offered = self.shared.as_ref().filter(|_| layer);
                    let generation = offered.and_then(|s| Some((s, s.for_snapshot(store, view.symbols.len())?)));
                    let shared = generation.as_ref().map(|(s, l)| (*s, l));
                    let chunks = Chunks::Now(now);
                    return read(&Reader { view, rules, chunks: &chunks, shared, pool }).map(|t| Some((t, snapshot)));
                }
                let past = view.at(store, version)?;
                let chunks = Chunks::Past(PastStore { now, version: version.number });
                match read(&Reader { view: &past.view, rules, chunks: &chunks, shared: None, pool }) {
                    Err(QueryError::UnknownField { name, .. }) if gone(&past.gone, &name, &self.rules) => {
                        Err(VersionError::Gone { field: name, version: version.number }.into())
                    }
                    outcome => outcome.map(|t| Some((t, snapshot))),
                }
            };
            match self.follower()?.read(&self.hot, attempt)? {
                Some(done) => return Ok(done),
                None => self.refresh()?,
            }
        }
    }
}
