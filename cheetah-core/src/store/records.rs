//! The meta records beside the chunks: the catalog and its version, the symbol dictionary,
//! watermarks, fieldmarks, update times and universes.

use std::sync::Arc;

use rocksdb::{Direction, IteratorMode};

use super::catalog::Catalog;
use super::keys::{meta, parse_day};
use super::symbols::SymbolDictionary;
use super::{Store, CF_META};
use crate::error::StoreError;
use crate::types::Day;
use crate::universe::Universe;

/// The marks as of one moment, kept in the view so a read's cut never runs ahead of the days the
/// view knows: a writer commits a day before the watermark that covers it, so marks read before
/// the journal bound only days the journal already lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MarkSnapshot {
    /// Watermark per table id.
    pub watermarks: std::collections::HashMap<u32, Day>,
    /// Fieldmark per field id still being backfilled.
    pub fieldmarks: std::collections::HashMap<u32, Day>,
}

impl MarkSnapshot {
    pub(crate) fn watermark(&self, table_id: u32) -> Option<Day> {
        self.watermarks.get(&table_id).copied()
    }

    pub(crate) fn fieldmark(&self, field_id: u32) -> Option<Day> {
        self.fieldmarks.get(&field_id).copied()
    }
}

impl Store {
    /// The catalog; empty for a new store.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if it does not decode.
    pub fn catalog(&self) -> Result<Catalog, StoreError> {
        match self.get(CF_META, meta::CATALOG)? {
            None => Ok(Catalog::default()),
            Some(bytes) => postcard::from_bytes(&bytes).map_err(|e| self.corrupt("catalog", e)),
        }
    }

    /// A number that changes whenever the catalog does.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn catalog_version(&self) -> Result<u64, StoreError> {
        Ok(self
            .get(CF_META, meta::CATALOG_VERSION)?
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    /// The whole symbol dictionary.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if an entry is not UTF-8 or ids have gaps.
    pub fn symbols(&self) -> Result<SymbolDictionary, StoreError> {
        let mut dictionary = SymbolDictionary::default();
        self.load_new_symbols(&mut dictionary)?;
        Ok(dictionary)
    }

    /// Whether symbols with ids at or above `known` exist.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn symbols_after(&self, known: usize) -> Result<bool, StoreError> {
        Ok(self.get(CF_META, &meta::with_id(meta::SYMBOL, known as u32))?.is_some())
    }

    /// Appends to `dictionary` the symbols persisted after its last one.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if an entry is not UTF-8 or ids have gaps.
    pub fn load_new_symbols(&self, dictionary: &mut SymbolDictionary) -> Result<(), StoreError> {
        let first = dictionary.len() as u32;
        let start = meta::with_id(meta::SYMBOL, first);
        let mut names = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_META), IteratorMode::From(&start, Direction::Forward)) {
            let (key, value) = item.map_err(|e| self.rocks(e))?;
            let Some(id_bytes) = key.strip_prefix(meta::SYMBOL) else {
                break;
            };
            let expected = first + names.len() as u32;
            if id_bytes != expected.to_be_bytes() {
                return Err(self.corrupt("symbol dictionary", format!("missing symbol id {expected}")));
            }
            let name = std::str::from_utf8(&value).map_err(|e| self.corrupt("symbol dictionary", e))?;
            names.push(Arc::from(name));
        }
        dictionary.extend_persisted(first, names);
        Ok(())
    }

    /// The universe `name`, as the last update that read it stored it.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if it does not decode.
    pub fn universe(&self, name: &str) -> Result<Option<Universe>, StoreError> {
        self.get(CF_META, &meta::universe(name))?
            .map(|bytes| postcard::from_bytes(&bytes).map_err(|e| self.corrupt(&format!("universe `{name}`"), e)))
            .transpose()
    }

    /// The names of every stored universe, sorted.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn universe_names(&self) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::new();
        let start = meta::UNIVERSE;
        for item in self.db.iterator_cf(self.cf(CF_META), IteratorMode::From(start, Direction::Forward)) {
            let (key, _) = item.map_err(|e| self.rocks(e))?;
            let Some(name) = key.strip_prefix(meta::UNIVERSE) else { break };
            names.push(String::from_utf8_lossy(name).into_owned());
        }
        Ok(names)
    }

    /// The last date fully loaded for table `table_id`.
    ///
    /// # Errors
    /// [`StoreError::Rocks`] or [`StoreError::Corrupt`].
    pub fn watermark(&self, table_id: u32) -> Result<Option<Day>, StoreError> {
        self.get_day(&meta::with_id(meta::WATERMARK, table_id), "watermark")
    }

    /// The last date backfilled for a field that is not yet complete.
    ///
    /// # Errors
    /// [`StoreError::Rocks`] or [`StoreError::Corrupt`].
    pub fn fieldmark(&self, field_id: u32) -> Result<Option<Day>, StoreError> {
        self.get_day(&meta::with_id(meta::FIELDMARK, field_id), "fieldmark")
    }

    /// When table `table_id` last finished an update, in seconds since the Unix epoch.
    ///
    /// # Errors
    /// [`StoreError::Rocks`].
    pub fn last_updated(&self, table_id: u32) -> Result<Option<i64>, StoreError> {
        Ok(self
            .get(CF_META, &meta::with_id(meta::UPDATED, table_id))?
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(i64::from_be_bytes))
    }

    /// Every watermark and fieldmark, as of now.
    ///
    /// # Errors
    /// [`StoreError::Rocks`] or [`StoreError::Corrupt`].
    pub(crate) fn marks(&self) -> Result<MarkSnapshot, StoreError> {
        Ok(MarkSnapshot {
            watermarks: self.days_under(meta::WATERMARK, "watermark")?,
            fieldmarks: self.days_under(meta::FIELDMARK, "fieldmark")?,
        })
    }

    /// The days stored under `prefix ++ id`, by id.
    fn days_under(&self, prefix: &[u8], what: &str) -> Result<std::collections::HashMap<u32, Day>, StoreError> {
        let mut days = std::collections::HashMap::new();
        for item in self.db.iterator_cf(self.cf(CF_META), IteratorMode::From(prefix, Direction::Forward)) {
            let (key, value) = item.map_err(|e| self.rocks(e))?;
            let Some(id) = key.strip_prefix(prefix) else { break };
            let id = <[u8; 4]>::try_from(id).map_err(|_| self.corrupt(what, "bad key"))?;
            let day = parse_day(&value).ok_or_else(|| self.corrupt(what, "not 4 bytes"))?;
            days.insert(u32::from_be_bytes(id), day);
        }
        Ok(days)
    }

    fn get_day(&self, key: &[u8], what: &str) -> Result<Option<Day>, StoreError> {
        self.get(CF_META, key)?
            .map(|bytes| parse_day(&bytes).ok_or_else(|| self.corrupt(what, "not 4 bytes")))
            .transpose()
    }
}
