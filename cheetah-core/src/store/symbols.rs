//! The global symbol dictionary: symbol text to a dense `u32` id, append-only and persistent.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use arrow::array::{Array, StringArray};

/// Symbol text to id.
type Ids = HashMap<Arc<str>, u32>;

/// Symbol text ↔ id. Ids are dense, start at 0, and never change.
#[derive(Debug, Default, Clone)]
pub struct SymbolDictionary {
    /// Every symbol, indexed by id; made from `text_order` when first needed.
    names: OnceLock<Vec<Arc<str>>>,
    /// Until `names` is made: every symbol in text order and each id's place there, as a saved
    /// view holds them. A new reader through the shared layer asks only how many symbols there
    /// are, and making 5,000 names was half of its first read's view.
    text_order: Option<(StringArray, Vec<u32>)>,
    /// Text to id, built on the first lookup: a reader that only turns ids into text (most
    /// reads) never pays for hashing every symbol.
    ids: OnceLock<Ids>,
    /// Ids below this are in the store; the rest go into the next committed batch.
    persisted: usize,
}

impl SymbolDictionary {
    /// A dictionary holding `names` as ids `0..names.len()`, all persisted.
    pub fn from_persisted(names: Vec<Arc<str>>) -> Self {
        Self { persisted: names.len(), names: OnceLock::from(names), text_order: None, ids: OnceLock::new() }
    }

    /// A dictionary of the symbols `sorted` holds in text order, all persisted, where `place[id]`
    /// is symbol `id`'s position in `sorted`; each `place` must be below `sorted.len()`.
    pub(crate) fn from_text_order(sorted: StringArray, place: Vec<u32>) -> Self {
        debug_assert!(place.iter().all(|&p| (p as usize) < sorted.len()));
        Self { persisted: place.len(), names: OnceLock::new(), text_order: Some((sorted, place)), ids: OnceLock::new() }
    }

    fn ids(&self) -> &Ids {
        self.ids.get_or_init(|| self.names().iter().enumerate().map(|(i, n)| (n.clone(), i as u32)).collect())
    }

    fn ids_mut(&mut self) -> &mut Ids {
        self.ids();
        self.ids.get_mut().expect("built just now")
    }

    /// `names`, made if need be, beside the lookup if it is built.
    fn parts_mut(&mut self) -> (&mut Vec<Arc<str>>, Option<&mut Ids>) {
        self.names();
        self.text_order = None;
        (self.names.get_mut().expect("made just now"), self.ids.get_mut())
    }

    /// The id of `name`, assigning the next one if it is new.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids().get(name) {
            return id;
        }
        let id = u32::try_from(self.len()).expect("fewer than 2^32 symbols");
        let name: Arc<str> = Arc::from(name);
        self.ids_mut().insert(name.clone(), id);
        self.parts_mut().0.push(name);
        id
    }

    /// The id of `name`, if known.
    pub fn id(&self, name: &str) -> Option<u32> {
        self.ids().get(name).copied()
    }

    /// The text of `id`.
    pub fn name(&self, id: u32) -> Option<&str> {
        match (self.names.get(), &self.text_order) {
            (None, Some((sorted, place))) => place.get(id as usize).map(|&p| sorted.value(p as usize)),
            _ => self.names().get(id as usize).map(|n| &**n),
        }
    }

    /// Every symbol, indexed by id.
    pub fn names(&self) -> &[Arc<str>] {
        self.names.get_or_init(|| match &self.text_order {
            Some((sorted, place)) => place.iter().map(|&p| Arc::from(sorted.value(p as usize))).collect(),
            None => Vec::new(),
        })
    }

    /// Number of symbols.
    // `allow`, not `expect`: the lint fires only in builds where the type is public (`internals`).
    #[allow(
        clippy::len_without_is_empty,
        reason = "ids are 0..len(): callers ask where new ids start, never whether any exist"
    )]
    pub fn len(&self) -> usize {
        match (self.names.get(), &self.text_order) {
            (None, Some((_, place))) => place.len(),
            _ => self.names().len(),
        }
    }

    /// Symbols assigned since the last [`Self::mark_persisted`], with their ids.
    pub fn unpersisted(&self) -> impl Iterator<Item = (u32, &str)> {
        self.names()[self.persisted..].iter().enumerate().map(|(i, n)| ((self.persisted + i) as u32, &**n))
    }

    /// Records that every symbol so far is in the store.
    pub fn mark_persisted(&mut self) {
        self.persisted = self.len();
    }

    /// Forgets the symbols assigned since the last [`Self::mark_persisted`]: the batch that
    /// would have written them failed, so nothing refers to them.
    pub fn forget_unpersisted(&mut self) {
        let persisted = self.persisted;
        let (names, mut ids) = self.parts_mut();
        for name in names.drain(persisted..) {
            if let Some(ids) = &mut ids {
                ids.remove(&name);
            }
        }
    }

    /// Appends symbols another process persisted; `first_id` must equal [`Self::len`].
    pub(crate) fn extend_persisted(&mut self, first_id: u32, names: impl IntoIterator<Item = Arc<str>>) {
        debug_assert_eq!(first_id as usize, self.len());
        let (all, mut ids) = self.parts_mut();
        for name in names {
            if let Some(ids) = &mut ids {
                ids.insert(name.clone(), all.len() as u32);
            }
            all.push(name);
        }
        self.persisted = self.len();
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

    #[test]
    fn a_dictionary_in_text_order_answers_as_one_of_names_and_grows_the_same() {
        let sorted = StringArray::from(vec!["AAPL", "IBM", "MSFT"]);
        let lazy = || SymbolDictionary::from_text_order(sorted.clone(), vec![2, 0, 1]);
        let names = SymbolDictionary::from_persisted(vec!["MSFT".into(), "AAPL".into(), "IBM".into()]);

        let d = lazy();
        assert_eq!((d.len(), d.name(0), d.name(2), d.name(3)), (3, Some("MSFT"), Some("IBM"), None));
        assert!(d.names.get().is_none(), "the names are not made to count or name them");
        assert_eq!((d.names(), d.id("IBM"), d.unpersisted().count()), (names.names(), Some(2), 0));

        let (mut d, mut e) = (lazy(), names.clone());
        for d in [&mut d, &mut e] {
            assert_eq!((d.intern("AAPL"), d.intern("ORCL")), (1, 3));
            assert_eq!(d.unpersisted().collect::<Vec<_>>(), [(3, "ORCL")]);
            d.forget_unpersisted();
            d.extend_persisted(3, ["TSLA".into()]);
        }
        assert_eq!((d.names(), d.len(), d.id("TSLA"), d.id("ORCL")), (e.names(), 4, Some(3), None));

        let mut d = lazy();
        d.extend_persisted(3, ["TSLA".into()]);
        assert_eq!((d.name(3), d.id("MSFT"), d.unpersisted().count()), (Some("TSLA"), Some(0), 0));
    }
}
