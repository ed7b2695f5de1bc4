//! Test support shared by the modules' tests: a seeded market of two daily tables and an asof
//! table written straight into a store, and a config that reads it.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, Float64Array, Int64Array, StringArray};

use crate::store::catalog::{Catalog, FieldEntry, TableEntry};
use crate::store::codec::{encode_rows, encode_values};
use crate::store::symbols::SymbolDictionary;
use crate::store::Store;
use crate::types::{Day, TableKind, ValueType};
use crate::Config;

pub const BAR: u32 = 1;
pub const VAL: u32 = 5;
pub const FUND: u32 = 8;
pub const FIRST: Day = 18_000;
pub const DAYS: Day = 24;

pub fn field(id: u32, name: &str, dtype: ValueType) -> FieldEntry {
    FieldEntry { id, name: name.into(), dtype, complete: true }
}

pub fn catalog() -> Catalog {
    let table = |id, name: &str, kind, fields| TableEntry {
        id,
        name: name.into(),
        kind,
        fingerprint: Default::default(),
        fields,
    };
    Catalog {
        next_id: 10,
        tables: vec![
            table(
                BAR,
                "bar",
                TableKind::Daily,
                vec![
                    field(2, "close", ValueType::Float64),
                    field(3, "volume", ValueType::Int64),
                    field(4, "name", ValueType::Utf8),
                ],
            ),
            table(
                VAL,
                "val",
                TableKind::Daily,
                vec![field(6, "pe", ValueType::Float64), field(7, "mv", ValueType::Float64)],
            ),
            table(FUND, "fund", TableKind::Asof, vec![field(9, "revenue", ValueType::Float64)]),
        ],
    }
}

/// A deterministic generator: xorshift64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// The writer's side: commits days of the three tables.
pub struct Market {
    pub store: Store,
    pub symbols: SymbolDictionary,
    pub rng: Rng,
    /// Bumped on every rewrite, so a rewritten day has other values.
    pub version: f64,
    /// The newest day committed: watermarks never go back, as the updater's never do.
    pub newest: Day,
    /// What each day's last commit wrote: per table, its symbol ids and its fields' columns.
    pub written: std::collections::HashMap<Day, Vec<Written>>,
}

/// One table's day as committed.
#[derive(Clone)]
pub struct Written {
    pub table: u32,
    pub ids: Vec<u32>,
    pub fields: Vec<(u32, ValueType, Arc<dyn Array>)>,
}

impl Market {
    pub fn new(dir: &Path, symbols: usize, seed: u64) -> Self {
        let store = Store::open_writer(dir, 1).unwrap();
        let mut names = SymbolDictionary::default();
        // Ids out of text order, so ranks differ from ids.
        for i in (0..symbols).rev() {
            names.intern(&format!("S{i:02}"));
        }
        let mut batch = store.batch();
        batch.put_catalog(&catalog());
        batch.put_new_symbols(&names);
        store.write(batch).unwrap();
        names.mark_persisted();
        Self { store, symbols: names, rng: Rng(seed), version: 0.0, newest: Day::MIN, written: Default::default() }
    }

    /// Commits `day` of every table: about 80% of the symbols in `bar`, 70% in `val` (with
    /// nulls), and now and then an event in `fund`.
    pub fn commit(&mut self, day: Day) {
        let n = self.symbols.len() as u32;
        let mut days = Vec::new();
        let mut put = |rng: &mut Rng, table: u32, percent: u64, fields: &[(u32, ValueType)], version: f64| {
            let ids: Vec<u32> = (0..n).filter(|_| rng.chance(percent)).collect();
            if ids.is_empty() {
                return;
            }
            let mut columns = Vec::new();
            for &(id, dtype) in fields {
                let value = |s: u32| f64::from(day - FIRST) * 100.0 + f64::from(s) + f64::from(id) / 10.0 + version;
                let array: Arc<dyn Array> = match dtype {
                    ValueType::Int64 => Arc::new(Int64Array::from_iter_values(ids.iter().map(|&s| value(s) as i64))),
                    ValueType::Utf8 => {
                        Arc::new(StringArray::from_iter_values(ids.iter().map(|&s| format!("n{}", value(s)))))
                    }
                    _ => Arc::new(Float64Array::from_iter(ids.iter().map(|&s| (!rng.chance(10)).then(|| value(s))))),
                };
                columns.push((id, dtype, array));
            }
            days.push(Written { table, ids, fields: columns });
        };
        put(
            &mut self.rng,
            BAR,
            80,
            &[(2, ValueType::Float64), (3, ValueType::Int64), (4, ValueType::Utf8)],
            self.version,
        );
        put(&mut self.rng, VAL, 70, &[(6, ValueType::Float64), (7, ValueType::Float64)], self.version);
        if self.rng.chance(30) {
            put(&mut self.rng, FUND, 20, &[(9, ValueType::Float64)], self.version);
        }
        self.put(day, days);
    }

    /// Commits `day` again with the keys it has and its float values plus `delta`: a
    /// correction when `delta` is not zero, and a commit that changes nothing when it is.
    pub fn correct(&mut self, day: Day, delta: f64) {
        let Some(days) = self.written.get(&day).cloned() else { return };
        let days = days
            .into_iter()
            .map(|w| Written {
                fields: w
                    .fields
                    .into_iter()
                    .map(|(id, dtype, array)| {
                        let array: Arc<dyn Array> = match array.as_any().downcast_ref::<Float64Array>() {
                            Some(floats) => Arc::new(
                                arrow::compute::kernels::numeric::add(floats, &Float64Array::new_scalar(delta))
                                    .map_or(array.clone(), |a| a),
                            ),
                            None => array,
                        };
                        (id, dtype, array)
                    })
                    .collect(),
                ..w
            })
            .collect();
        self.put(day, days);
    }

    fn put(&mut self, day: Day, days: Vec<Written>) {
        self.newest = self.newest.max(day);
        let mut batch = self.store.batch();
        for w in &days {
            batch.put_day(w.table, day, w.ids.len(), encode_rows(&w.ids, 1));
            for (id, dtype, array) in &w.fields {
                let field = FieldEntry { id: *id, name: String::new(), dtype: *dtype, complete: true };
                batch.put_values(w.table, &field, day, encode_values(array.as_ref(), *dtype, 1));
            }
            batch.put_watermark(w.table, self.newest);
        }
        self.store.write(batch).unwrap();
        self.written.insert(day, days);
    }

    /// Drops field `id` from the catalog, as a config that no longer lists it does.
    pub fn drop_field(&mut self, id: u32) {
        let mut catalog = catalog();
        for table in &mut catalog.tables {
            table.fields.retain(|f| f.id != id);
        }
        let mut batch = self.store.batch();
        batch.put_catalog(&catalog);
        self.store.write(batch).unwrap();
    }

    pub fn rewrite(&mut self, day: Day) {
        self.version += 0.5;
        self.commit(day);
    }

    pub fn delete(&mut self, day: Day) {
        let table = &catalog().tables[1];
        let mut batch = self.store.batch();
        batch.delete_day(table, day);
        self.store.write(batch).unwrap();
        // What `correct` recommits: the day without the deleted rows.
        if let Some(days) = self.written.get_mut(&day) {
            days.retain(|w| w.table != table.id);
        }
    }

    pub fn add_symbol(&mut self, name: &str) {
        self.symbols.intern(name);
        let mut batch = self.store.batch();
        batch.put_new_symbols(&self.symbols);
        self.store.write(batch).unwrap();
        self.symbols.mark_persisted();
    }
}

pub fn config(dir: &Path, budget: &str) -> Config {
    let text = format!(
        r#"
[store]
path = "{0}/store"
[source]
odbc = "Driver={{SQLite3}};Database={0}/none.db;NoCreat=1;"
[share]
path = "{0}/share"
budget = "{budget}"
block_rows = 64
[[table]]
name = "bar"
date = "d"
symbol = "s"
fields = ["*"]
start = "2019-01-01"
[table.adjust]
factor = "volume"
fields = ["close"]
[[universe]]
name = "u"
table = "members"
symbol = "s"
start = "a"
end = "b"
"#,
        dir.display()
    );
    Config::parse(&dir.join("cheetah.toml"), &text).unwrap()
}
