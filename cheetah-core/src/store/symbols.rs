//! The global symbol dictionary: symbol text to a dense `u32` id, append-only and persistent.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// Symbol text ↔ id. Ids are dense, start at 0, and never change.
#[derive(Debug, Default, Clone)]
pub struct SymbolDictionary {
    names: Vec<Arc<str>>,
    /// Text to id, built on the first lookup: a reader that only turns ids into text (most
    /// reads) never pays for hashing every symbol.
    ids: OnceLock<HashMap<Arc<str>, u32>>,
    /// Ids below this are in the store; the rest go into the next committed batch.
    persisted: usize,
}

impl SymbolDictionary {
    /// A dictionary holding `names` as ids `0..names.len()`, all persisted.
    pub fn from_persisted(names: Vec<Arc<str>>) -> Self {
        Self { persisted: names.len(), names, ids: OnceLock::new() }
    }

    fn ids(&self) -> &HashMap<Arc<str>, u32> {
        self.ids.get_or_init(|| self.names.iter().enumerate().map(|(i, n)| (n.clone(), i as u32)).collect())
    }

    fn ids_mut(&mut self) -> &mut HashMap<Arc<str>, u32> {
        self.ids();
        self.ids.get_mut().expect("built just now")
    }

    /// The id of `name`, assigning the next one if it is new.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids().get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len()).expect("fewer than 2^32 symbols");
        let name: Arc<str> = Arc::from(name);
        self.ids_mut().insert(name.clone(), id);
        self.names.push(name);
        id
    }

    /// The id of `name`, if known.
    pub fn id(&self, name: &str) -> Option<u32> {
        self.ids().get(name).copied()
    }

    /// The text of `id`.
    pub fn name(&self, id: u32) -> Option<&str> {
        self.names.get(id as usize).map(|n| &**n)
    }

    /// Every symbol, indexed by id.
    pub fn names(&self) -> &[Arc<str>] {
        &self.names
    }

    /// Number of symbols.
    // `allow`, not `expect`: the lint fires only in builds where the type is public (`internals`).
    #[allow(
        clippy::len_without_is_empty,
        reason = "ids are 0..len(): callers ask where new ids start, never whether any exist"
    )]
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Symbols assigned since the last [`Self::mark_persisted`], with their ids.
    pub fn unpersisted(&self) -> impl Iterator<Item = (u32, &str)> {
        self.names[self.persisted..].iter().enumerate().map(|(i, n)| ((self.persisted + i) as u32, &**n))
    }

    /// Records that every symbol so far is in the store.
    pub fn mark_persisted(&mut self) {
        self.persisted = self.names.len();
    }

    /// Forgets the symbols assigned since the last [`Self::mark_persisted`]: the batch that
    /// would have written them failed, so nothing refers to them.
    pub fn forget_unpersisted(&mut self) {
        let mut ids = self.ids.get_mut();
        for name in self.names.drain(self.persisted..) {
            if let Some(ids) = &mut ids {
                ids.remove(&name);
            }
        }
    }

    /// Appends symbols another process persisted; `first_id` must equal [`Self::len`].
    pub(crate) fn extend_persisted(&mut self, first_id: u32, names: impl IntoIterator<Item = Arc<str>>) {
        debug_assert_eq!(first_id as usize, self.names.len());
        let mut ids = self.ids.get_mut();
        for name in names {
            if let Some(ids) = &mut ids {
                ids.insert(name.clone(), self.names.len() as u32);
            }
            self.names.push(name);
        }
        self.persisted = self.names.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_tracks_what_is_unpersisted() {
        let mut d = SymbolDictionary::from_persisted(vec!["A".into(), "B".into()]);
        assert_eq!(d.intern("B"), 1);
        assert_eq!(d.intern("C"), 2);
        assert_eq!(d.unpersisted().collect::<Vec<_>>(), [(2, "C")]);
        d.mark_persisted();
        assert_eq!(d.unpersisted().count(), 0);
        assert_eq!((d.id("C"), d.name(0)), (Some(2), Some("A")));
        d.intern("D");
        d.forget_unpersisted();
        assert_eq!((d.len(), d.id("D"), d.intern("E")), (3, None, 3));
    }
}
