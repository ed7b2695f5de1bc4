//! The assembler against a naive join, and its layouts.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{AsArray, Float64Array, Int64Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use proptest::prelude::*;

use super::*;
use crate::store::symbols::SymbolDictionary;

/// One table: per day, its (symbol id, value) rows; values are null where `None`.
type Table = Vec<BTreeMap<u32, Option<i64>>>;

fn symbols(names: &[String]) -> SymbolDictionary {
    SymbolDictionary::from_persisted(names.iter().map(|n| Arc::from(n.as_str())).collect())
}

/// The chunks Cheetah would store for `table`: sorted ids, and each value as an Int64, a
/// Float64 and a text column.
fn chunks(table: &Table) -> (TableRows, [Vec<Option<ArrayRef>>; 3]) {
    let mut keys = Vec::new();
    let mut columns: [Vec<Option<ArrayRef>>; 3] = Default::default();
    for day in table {
        if day.is_empty() {
            keys.push(None);
            columns.iter_mut().for_each(|c| c.push(None));
            continue;
        }
        keys.push(Some(day.keys().copied().collect::<Vec<_>>().into()));
        let values: Vec<Option<i64>> = day.values().copied().collect();
        columns[0].push(Some(Arc::new(Int64Array::from(values.clone())) as ArrayRef));
        columns[1].push(Some(
            Arc::new(Float64Array::from_iter(values.iter().map(|v| v.map(|v| v as f64 / 4.0)))) as ArrayRef
        ));
        columns[2].push(Some(
            Arc::new(StringArray::from_iter(values.iter().map(|v| v.map(|v| format!("v{v}"))))) as ArrayRef
        ));
    }
    (keys, columns)
}

fn cell(array: &dyn Array, i: usize) -> Option<String> {
    if let Some(floats) = array.as_primitive_opt::<arrow::datatypes::Float64Type>() {
        // Nulls in float columns carry NaN, which pandas reads without the validity bitmap.
        let value = floats.values()[i];
        assert_eq!(array.is_null(i), value.is_nan(), "a float is null exactly when it is NaN");
    }
    array.is_valid(i).then(|| ArrayFormatter::try_new(array, &FormatOptions::default()).unwrap().value(i).to_string())
}

fn arb_case() -> impl Strategy<Value = (Vec<String>, Vec<Table>, Vec<usize>, Option<Vec<u32>>)> {
    (2usize..40, 1usize..4, 1usize..6).prop_flat_map(|(n_symbols, n_tables, n_days)| {
        let names = prop::collection::btree_set("[A-Z]{1,3}", n_symbols).prop_map(|s| {
            let mut names: Vec<String> = s.into_iter().collect();
            // Ids in a scrambled order, so id order is not text order.
            names.reverse();
            let third = names.len() / 3;
            names.rotate_left(third);
            names
        });
        let n = n_symbols;
        let day = prop::collection::btree_map(0..n as u32, prop::option::weighted(0.8, -1000i64..1000), 0..n);
        let table = prop::collection::vec(day, n_days);
        let tables = prop::collection::vec(table, n_tables);
        let rows = prop::sample::subsequence((0..n_tables).collect::<Vec<_>>(), 1..=n_tables);
        let filter = prop::option::weighted(0.3, prop::collection::vec(0..n as u32 + 2, 0..n));
        (names, tables, rows, filter)
    })
}

proptest! {
    #[test]
    fn matches_a_naive_join((names, tables, row_tables, filter) in arb_case(), dictionary_dates in any::<bool>()) {
        let dictionary = symbols(&names);
        let ranking = SymbolRanking::new(&dictionary);
        let n_days = tables[0].len();
        let days: Vec<Day> = (0..n_days as Day).map(|d| 100 + d * 3).collect();
        let mut keys = Vec::new();
        let mut fields = Vec::new();
        for (t, table) in tables.iter().enumerate() {
            let (table_keys, columns) = chunks(table);
            keys.push(table_keys);
            for (column, dtype) in columns.into_iter().zip([ValueType::Int64, ValueType::Float64, ValueType::Utf8]) {
                fields.push((t, dtype, column));
            }
        }
        let layout = if dictionary_dates { DateLayout::Dictionary } else { DateLayout::Date32 };
        let inputs = Inputs { days: &days, tables: keys, row_tables: row_tables.clone(), fields, symbols: filter.as_deref(), universe: None, ranking: &ranking, dates: layout, presence: true };
        let out = assemble(&inputs, &OutputPool::new(0));

        // The naive reference: per day, the union of the row tables' symbols as text,
        // sorted, filtered, with each table's value looked up by symbol.
        let mut expected: Vec<(Day, String, Vec<Option<String>>)> = Vec::new();
        let mut present: Vec<Vec<bool>> = Vec::new();
        for (d, &day) in days.iter().enumerate() {
            let mut rows: BTreeSet<&str> = BTreeSet::new();
            for &t in &row_tables {
                rows.extend(tables[t][d].keys().map(|&id| names[id as usize].as_str()));
            }
            if let Some(filter) = &filter {
                rows.retain(|s| filter.iter().any(|&id| names.get(id as usize).is_some_and(|n| n == s)));
            }
            for symbol in rows {
                let id = names.iter().position(|n| n == symbol).unwrap() as u32;
                let values = tables.iter().flat_map(|table| {
                    let v = table[d].get(&id).copied().flatten();
                    [v.map(|v| v.to_string()), v.map(|v| format!("{:?}", v as f64 / 4.0)), v.map(|v| format!("v{v}"))]
                }).collect();
                present.push(row_tables.iter().map(|&t| tables[t][d].contains_key(&id)).collect::<Vec<_>>());
                expected.push((day, symbol.to_string(), values));
            }
        }

        prop_assert_eq!(out.dates.len(), expected.len());
        prop_assert_eq!(out.rows_per_day.iter().sum::<usize>(), expected.len());
        prop_assert_eq!(matches!(out.dates.data_type(), DataType::Dictionary(..)), dictionary_dates);
        prop_assert_eq!(out.symbols.data_type(), &DataType::Dictionary(Box::new(DataType::Int16), Box::new(DataType::Utf8)));
        let dates = cast(&out.dates, &DataType::Date32).unwrap();
        let dates = dates.as_primitive::<arrow::datatypes::Date32Type>();
        let symbol_text = cast(&out.symbols, &DataType::Utf8).unwrap();
        let symbol_text = symbol_text.as_string::<i32>();
        for (i, (day, symbol, values)) in expected.iter().enumerate() {
            prop_assert_eq!(dates.value(i), *day);
            prop_assert_eq!(symbol_text.value(i), symbol.as_str());
            for (f, want) in values.iter().enumerate() {
                let got = cell(out.fields[f].as_ref(), i);
                prop_assert_eq!(&got, want, "field {} row {}", f, i);
            }
            for (t, &want) in present[i].iter().enumerate() {
                prop_assert_eq!(out.presence[t].value(i), want, "presence of row table {} at row {}", t, i);
            }
        }
        prop_assert_eq!(out.presence.len(), row_tables.len());
    }
}

/// `table` over `days` assembled alone, its values as one Int64 field, dates as a dictionary.
fn assemble_one(days: &[Day], table: &Table, ranking: &SymbolRanking) -> Assembled {
    let (keys, [column, _, _]) = chunks(table);
    let inputs = Inputs {
        days,
        tables: vec![keys],
        row_tables: vec![0],
        fields: vec![(0, ValueType::Int64, column)],
        symbols: None,
        universe: None,
        ranking,
        dates: DateLayout::Dictionary,
        presence: false,
    };
    assemble(&inputs, &OutputPool::new(0))
}

#[test]
fn codes_widen_past_32768_symbols() {
    let names: Vec<String> = (0..40_000).map(|i| format!("S{i:05}")).collect();
    let ranking = SymbolRanking::new(&symbols(&names));
    let table: Table = vec![BTreeMap::from([(3, Some(1)), (39_999, Some(2))])];
    let out = assemble_one(&[7], &table, &ranking);
    assert_eq!(out.symbols.data_type(), &DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)));
    let text = cast(&out.symbols, &DataType::Utf8).unwrap();
    assert_eq!(text.as_string::<i32>().iter().collect::<Vec<_>>(), [Some("S00003"), Some("S39999")]);
    let dates = out.dates.as_any_dictionary();
    assert_eq!(dates.keys().to_data().buffers()[0].typed_data::<i8>(), [0, 0]);
    assert_eq!(dates.values().as_primitive::<arrow::datatypes::Date32Type>().values(), &[7]);
}

#[test]
fn date_codes_are_as_wide_as_pandas_keeps_them() {
    let names: Vec<String> = ["B", "A"].map(String::from).to_vec();
    let ranking = SymbolRanking::new(&symbols(&names));
    // pandas keeps the codes of a level of fewer than 127 values as int8, else int16.
    for (n_days, key) in [(126, DataType::Int8), (127, DataType::Int16)] {
        // A day without rows between every two: codes count only the days with rows.
        let table: Table = (0..2 * n_days)
            .map(|d| if d % 2 == 0 { BTreeMap::from([(0, Some(d)), (1, None)]) } else { BTreeMap::new() })
            .collect();
        let days: Vec<Day> = (0..2 * n_days as Day).collect();
        let out = assemble_one(&days, &table, &ranking);
        assert_eq!(out.dates.data_type(), &DateLayout::Dictionary.date_type(n_days as usize));
        assert_eq!(out.dates.data_type(), &DataType::Dictionary(Box::new(key), Box::new(DataType::Date32)));
        let codes = cast(out.dates.as_any_dictionary().keys(), &DataType::Int32).unwrap();
        let expected: Vec<i32> = (0..n_days).flat_map(|d| [d as i32; 2]).collect();
        assert_eq!(codes.as_primitive::<arrow::datatypes::Int32Type>().values(), &expected[..]);
        let dated = cast(&out.dates, &DataType::Date32).unwrap();
        assert_eq!(dated.as_primitive::<arrow::datatypes::Date32Type>().value(2 * 125 + 1), 2 * 125);
    }
}

#[test]
fn two_tables_assembled() {
    let names: Vec<String> = ["ZZ", "AA", "MM"].map(String::from).to_vec();
    let dictionary = symbols(&names);
    let ranking = SymbolRanking::new(&dictionary);
    let bar: Table = vec![BTreeMap::from([(0, Some(1)), (1, Some(2))]), BTreeMap::from([(2, Some(3))])];
    let valuation: Table = vec![BTreeMap::from([(1, None), (2, Some(7))]), BTreeMap::new()];
    let (bar_keys, [bar_close, _, _]) = chunks(&bar);
    let (val_keys, [_, val_pe, val_name]) = chunks(&valuation);
    let inputs = Inputs {
        days: &[18262, 18263],
        tables: vec![bar_keys, val_keys],
        row_tables: vec![0, 1],
        fields: vec![(0, ValueType::Int64, bar_close), (1, ValueType::Float64, val_pe), (1, ValueType::Utf8, val_name)],
        symbols: None,
        universe: None,
        ranking: &ranking,
        dates: DateLayout::Date32,
        presence: false,
    };
    let out = assemble(&inputs, &OutputPool::new(0));
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("date", arrow::datatypes::DataType::Date32, false),
        arrow::datatypes::Field::new("symbol", out.symbols.data_type().clone(), false),
        arrow::datatypes::Field::new("close", arrow::datatypes::DataType::Int64, true),
        arrow::datatypes::Field::new("pe", arrow::datatypes::DataType::Float64, true),
        arrow::datatypes::Field::new("name", arrow::datatypes::DataType::Utf8, true),
    ]));
    let mut columns: Vec<ArrayRef> = vec![out.dates, out.symbols];
    columns.extend(out.fields);
    let batch = arrow::record_batch::RecordBatch::try_new(schema, columns).unwrap();
    insta::assert_snapshot!(arrow::util::pretty::pretty_format_batches(&[batch]).unwrap(), @r"
    +------------+--------+-------+------+------+
    | date       | symbol | close | pe   | name |
    +------------+--------+-------+------+------+
    | 2020-01-01 | AA     | 2     |      |      |
    | 2020-01-01 | MM     |       | 1.75 | v7   |
    | 2020-01-01 | ZZ     | 1     |      |      |
    | 2020-01-02 | MM     | 3     |      |      |
    +------------+--------+-------+------+------+
    ");
    assert_eq!(out.rows_per_day, [3, 1]);
}

proptest! {
    /// The wide assembler equals the long one pivoted, with and without a universe: the same
    /// dates, the symbols with rows in text order, and each cell the row's value or NaN.
    #[test]
    fn the_wide_assembler_is_the_long_one_pivoted(
        (names, tables, row_tables, filter) in arb_case(),
        members in prop::option::weighted(0.4, prop::collection::btree_map(0u32..40, (95..110, 1..12), 0..30)),
    ) {
        let dictionary = symbols(&names);
        let ranking = SymbolRanking::new(&dictionary);
        let days: Vec<Day> = (0..tables[0].len() as Day).map(|d| 100 + d * 3).collect();
        let universe = members.map(|spans| {
            let intervals = spans
                .iter()
                .filter(|(&id, _)| (id as usize) < names.len())
                .map(|(&id, &(start, len))| crate::Interval {
                    symbol: names[id as usize].clone(),
                    start: crate::types::date_of(start),
                    end: Some(crate::types::date_of(start + len)),
                })
                .collect();
            let universe = crate::Universe::new(intervals, 0).unwrap();
            Membership::new(&universe, &ranking, |name| dictionary.id(name))
        });
        let mut keys = Vec::new();
        let mut fields = Vec::new();
        for (t, table) in tables.iter().enumerate() {
            let (table_keys, [ints, floats, _]) = chunks(table);
            keys.push(table_keys);
            fields.push((t, ValueType::Int64, ints));
            fields.push((t, ValueType::Float64, floats));
        }
        let inputs = Inputs {
            days: &days,
            tables: keys,
            row_tables,
            fields,
            symbols: filter.as_deref(),
            universe: universe.as_ref(),
            ranking: &ranking,
            dates: DateLayout::Date32,
            presence: false,
        };
        let long = assemble(&inputs, &OutputPool::new(0));
        let wide = assemble_wide(&inputs);

        let dates = long.dates.as_primitive::<arrow::datatypes::Date32Type>();
        let ranks = long.symbols.as_any_dictionary().keys().to_data().buffers()[0].typed_data::<i16>().to_vec();
        let wide_days: Vec<Day> = days.iter().zip(&long.rows_per_day).filter(|(_, &n)| n > 0).map(|(&d, _)| d).collect();
        prop_assert_eq!(&wide.days, &wide_days);
        let mut columns: Vec<u32> = ranks.iter().map(|&r| r as u32).collect();
        columns.sort_unstable();
        columns.dedup();
        prop_assert_eq!(&wide.ranks, &columns);
        for (f, matrix) in wide.fields.iter().enumerate() {
            let values = cast(&long.fields[f], &DataType::Float64).unwrap();
            let values = values.as_primitive::<arrow::datatypes::Float64Type>();
            let mut expected = vec![f64::NAN; wide.days.len() * columns.len()];
            for (i, &rank) in ranks.iter().enumerate() {
                let r = wide.days.binary_search(&dates.value(i)).unwrap();
                let c = columns.binary_search(&(rank as u32)).unwrap();
                if values.is_valid(i) {
                    expected[r * columns.len() + c] = values.value(i);
                }
            }
            let same = matrix.iter().zip(&expected).all(|(a, b)| a == b || (a.is_nan() && b.is_nan()));
            prop_assert!(same && matrix.len() == expected.len(), "field {}: {:?} != {:?}", f, matrix, expected);
        }
    }
}

#[test]
fn a_pooled_buffer_shows_none_of_its_old_bytes_where_a_table_has_no_value() {
    let names: Vec<String> = (0..2_000).map(|i| format!("S{i:04}")).collect();
    let ranking = SymbolRanking::new(&symbols(&names));
    let days: Vec<Day> = (0..8).collect();
    let rows: Table = days.iter().map(|_| (0..2_000).map(|id| (id, Some(0))).collect()).collect();
    // Every third symbol has no row in the table read, and every seventh row holds a null.
    let sparse: Table = days
        .iter()
        .map(|&d| {
            (0..2_000).filter(|id| id % 3 != 0).map(|id| (id, (id % 7 != 0).then_some(i64::from(d) + 1))).collect()
        })
        .collect();
    // Idle buffers of the fields' size full of other bytes, more than the read takes for its
    // codes and dates too (any buffer up to 4x a request serves it).
    let pool = OutputPool::new(64 << 20);
    let size = days.len() * names.len() * 8;
    let dirty: Vec<arrow::buffer::Buffer> = (0..4)
        .map(|_| {
            let mut lease = pool.take(size);
            lease.typed_mut::<u8>().fill(0xAB);
            lease.into_buffer()
        })
        .collect();
    let dirty_at: Vec<usize> = dirty.iter().map(|buffer| buffer.as_ptr() as usize).collect();
    drop(dirty); // into the pool, idle
    let (row_keys, _) = chunks(&rows);
    let (keys, [ints, floats, _]) = chunks(&sparse);
    let inputs = Inputs {
        days: &days,
        tables: vec![row_keys, keys],
        row_tables: vec![0],
        fields: vec![(1, ValueType::Int64, ints), (1, ValueType::Float64, floats)],
        symbols: None,
        universe: None,
        ranking: &ranking,
        dates: DateLayout::Date32,
        presence: false,
    };
    let out = assemble(&inputs, &pool);
    for field in &out.fields {
        assert!(
            dirty_at.contains(&(field.to_data().buffers()[0].as_ptr() as usize)),
            "each field reuses a dirty buffer"
        );
    }
    let ints = out.fields[0].as_primitive::<arrow::datatypes::Int64Type>();
    let floats = out.fields[1].as_primitive::<arrow::datatypes::Float64Type>();
    let mut empty = 0;
    for i in 0..ints.len() {
        if ints.is_null(i) {
            empty += 1;
            assert_eq!(ints.values()[i], 0, "row {i}: an integer without a value is 0");
            assert!(floats.values()[i].is_nan() && floats.is_null(i), "row {i}: a float without a value is NaN");
        } else {
            assert_eq!(floats.values()[i], ints.values()[i] as f64 / 4.0, "row {i}");
        }
    }
    // Per date, 667 symbols without a row and 190 null values among the rest.
    assert_eq!(empty, days.len() * (667 + 190));
}
