//! The updater's universe step: each `[[universe]]` read whole and stored in one write, and
//! universes gone from the config deleted.

use std::time::Instant;

use super::Updater;
use crate::config::UniverseConfig;
use crate::error::UpdateError;
use crate::source;
use crate::universe::Universe;

/// What reading one universe stored.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct UniverseReport {
    /// The universe.
    pub universe: String,
    /// Intervals stored.
    pub intervals: usize,
    /// Distinct symbols in them.
    pub symbols: usize,
    /// Wall time.
    pub seconds: f64,
}

impl Updater<'_> {
    /// Reads and stores `universe`; the stored one stays when reading or checking fails.
    ///
    /// # Errors
    /// A source failure, or [`UpdateError::BadUniverse`] for intervals that overlap or run
    /// backwards.
    pub fn run_universe(&self, universe: &UniverseConfig) -> Result<UniverseReport, UpdateError> {
        let started = Instant::now();
        let source = self.source(&universe.source);
        let connection = source.connect()?;
        let intervals = source::universe_intervals(&source, &connection, universe)?;
        let read = Universe::new(intervals, chrono::Utc::now().timestamp()).map_err(|message| {
            UpdateError::BadUniverse { location: universe.location.clone(), universe: universe.name.clone(), message }
        })?;
        let mut batch = self.store.batch();
        batch.put_universe(&universe.name, &read);
        self.store.write(batch)?;
        Ok(UniverseReport {
            universe: universe.name.clone(),
            intervals: read.intervals.len(),
            symbols: read.symbols(),
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Deletes the stored universes the config no longer names.
    ///
    /// # Errors
    /// A store failure.
    pub(super) fn drop_unconfigured_universes(&self) -> Result<Vec<String>, UpdateError> {
        let gone: Vec<String> =
            self.store.universe_names()?.into_iter().filter(|name| self.config.universe(name).is_none()).collect();
        if !gone.is_empty() {
            let mut batch = self.store.batch();
            gone.iter().for_each(|name| batch.delete_universe(name));
            self.store.write(batch)?;
            tracing::info!(universes = ?gone, "deleted universes no longer in the config");
        }
        Ok(gone)
    }
}
