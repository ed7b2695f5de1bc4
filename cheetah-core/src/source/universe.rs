//! Reading a `[[universe]]` whole: its symbols' membership intervals.

use arrow_odbc::odbc_api::Cursor;

use super::columns::list_columns;
use super::query::Dialect;
use super::stream::parse_date_text;
use super::{Connection, Source};
use crate::config::UniverseConfig;
use crate::error::{close_matches, SourceError};
use crate::universe::Interval;

/// Every interval the universe's table holds, as its rows give them (unchecked).
///
/// # Errors
/// [`SourceError::NoSuchTable`] or [`SourceError::NoSuchColumn`] before any query runs; a
/// failed query; [`SourceError::BadValue`] for a NULL symbol or start, or a date that is none.
pub fn universe_intervals(
    source: &Source,
    connection: &Connection,
    universe: &UniverseConfig,
) -> Result<Vec<Interval>, SourceError> {
    let table = &universe.table;
    let failed = |doing: &str, e: String| source.failed(table, doing, e);
    let dialect = Dialect::of(connection).map_err(|e| failed("asking the driver how to quote names", e.to_string()))?;
    let all = list_columns(source, connection, universe.schema.as_deref(), table)?;
    let columns: Vec<_> = match all.iter().any(|c| &c.table == table) {
        true => all.iter().filter(|c| &c.table == table).collect(),
        false => all.iter().filter(|c| c.table.eq_ignore_ascii_case(table)).collect(),
    };
    if columns.is_empty() {
        return Err(SourceError::NoSuchTable {
            location: universe.location.clone(),
            table: table.clone(),
            source_name: source.name(),
            hint: String::new(),
        });
    }
    let find = |wanted: &str, role: &'static str| {
        columns
            .iter()
            .find(|c| c.name == wanted)
            .or_else(|| columns.iter().find(|c| c.name.eq_ignore_ascii_case(wanted)))
            .map(|c| dialect.quote(&c.name))
            .ok_or_else(|| SourceError::NoSuchColumn {
                location: universe.location.clone(),
                table: table.clone(),
                column: wanted.to_string(),
                role,
                hint: close_matches(wanted, columns.iter().map(|c| c.name.as_str())),
            })
    };
    let (symbol, start, end) =
        (find(&universe.symbol, "symbol")?, find(&universe.start, "start")?, find(&universe.end, "end")?);
    let from = match &universe.schema {
        Some(schema) => format!("{}.{}", dialect.quote(schema), dialect.quote(table)),
        None => dialect.quote(table),
    };
    let mut sql = format!("SELECT {symbol}, {start}, {end} FROM {from}");
    if let Some(filter) = &universe.filter {
        sql.push_str(&format!(" WHERE ({filter})"));
    }
    let reading = |e: arrow_odbc::odbc_api::Error| failed("reading the universe's intervals", e.to_string());
    let mut intervals = Vec::new();
    let Some(mut cursor) = connection.execute(&sql, (), None).map_err(reading)? else {
        return Ok(intervals);
    };
    let bad = |message: String| SourceError::BadValue { table: table.clone(), message };
    let mut text = Vec::new();
    while let Some(mut row) = cursor.next_row().map_err(reading)? {
        let mut column = |i: u16| -> Result<Option<String>, SourceError> {
            text.clear();
            let present = row.get_text(i, &mut text).map_err(reading)?;
            Ok(present.then(|| String::from_utf8_lossy(&text).trim().to_string()))
        };
        let Some(name) = column(1)? else {
            return Err(bad(format!("universe `{}`: a row has a NULL symbol; exclude it with `where`", universe.name)));
        };
        let date = |text: Option<String>, which: &str| -> Result<Option<chrono::NaiveDate>, SourceError> {
            text.map(|t| {
                parse_date_text(&t).ok_or_else(|| {
                    bad(format!("universe `{}`: symbol `{name}` has {which} `{t}`, which is not a date", universe.name))
                })
            })
            .transpose()
        };
        let Some(first) = date(column(2)?, "start")? else {
            return Err(bad(format!(
                "universe `{}`: symbol `{name}` has a NULL start; every interval needs its first day as a member",
                universe.name
            )));
        };
        let last = date(column(3)?, "end")?;
        intervals.push(Interval { symbol: name, start: first, end: last });
    }
    Ok(intervals)
}
