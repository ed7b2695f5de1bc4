//! SQL text. Identifiers are always quoted, and only names confirmed by the catalog reach here;
//! dates are formatted by Cheetah, never taken from input text.

use chrono::NaiveDate;

use super::Connection;
use crate::config::TableConfig;

/// How one source spells things.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialect {
    quote: char,
    dbms: String,
}

impl Dialect {
    /// Asks the driver.
    ///
    /// # Errors
    /// The driver's error.
    pub fn of(connection: &Connection) -> Result<Self, arrow_odbc::odbc_api::Error> {
        let dbms = connection.database_management_system_name()?;
        let quote = connection.identifier_quote_char()?.filter(|c| !c.is_whitespace()).unwrap_or('"');
        Ok(Self { quote, dbms })
    }

    /// A dialect with the given identifier quote, for tests.
    #[cfg(test)]
    pub fn with_quote(quote: char, dbms: &str) -> Self {
        Self { quote, dbms: dbms.to_string() }
    }

    /// The database's product name as the driver reports it.
    pub fn dbms(&self) -> &str {
        &self.dbms
    }

    /// Whether the source is SQLite, whose column types are only affinities.
    pub fn is_sqlite(&self) -> bool {
        self.family() == Family::Sqlite
    }

    /// Which SQL dialect family the database speaks, for the few expressions that differ.
    pub fn family(&self) -> Family {
        let dbms = self.dbms.to_ascii_lowercase();
        if dbms.contains("sqlite") {
            Family::Sqlite
        } else if dbms.contains("postgres") {
            Family::Postgres
        } else if dbms.contains("mysql") || dbms.contains("mariadb") {
            Family::MySql
        } else if dbms.contains("sql server") {
            Family::SqlServer
        } else {
            Family::Other
        }
    }

    /// Quotes an identifier, doubling any quote character inside it.
    pub fn quote(&self, identifier: &str) -> String {
        let q = self.quote;
        let doubled: String = identifier.chars().flat_map(|c| if c == q { vec![q, q] } else { vec![c] }).collect();
        format!("{q}{doubled}{q}")
    }

    fn table(&self, table: &TableConfig) -> String {
        table_ref(self, table)
    }
}

/// SQL dialect families, by the driver's DBMS name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// PostgreSQL.
    Postgres,
    /// MySQL and MariaDB.
    MySql,
    /// SQLite.
    Sqlite,
    /// Microsoft SQL Server.
    SqlServer,
    /// Anything else: ANSI spellings.
    Other,
}

/// The quoted, schema-qualified name of a table.
pub fn table_ref(dialect: &Dialect, table: &TableConfig) -> String {
    match &table.schema {
        Some(schema) => format!("{}.{}", dialect.quote(schema), dialect.quote(&table.name)),
        None => dialect.quote(&table.name),
    }
}

/// A date as an SQL literal every supported database compares with DATE, TIMESTAMP and ISO text.
fn literal(date: NaiveDate) -> String {
    format!("'{}'", date.format("%Y-%m-%d"))
}

/// The `WHERE` of every fetch: the date range, a symbol, and the table's own filter.
pub(crate) fn conditions(
    dialect: &Dialect,
    table: &TableConfig,
    date: &str,
    symbol: &str,
    from: NaiveDate,
    to: Option<NaiveDate>,
) -> String {
    let d = dialect.quote(date);
    let mut sql = format!("{d} >= {} AND {} IS NOT NULL", literal(from), dialect.quote(symbol));
    if let Some(to) = to {
        // `< next day` rather than `<= to` keeps rows of a timestamp date column on the last day.
        let after = to.succ_opt().unwrap_or(to);
        sql.push_str(&format!(" AND {d} < {}", literal(after)));
    }
    if let Some(filter) = &table.filter {
        sql.push_str(&format!(" AND ({filter})"));
    }
    sql
}

/// `SELECT columns FROM table WHERE 1=0`: describes the result set without reading rows.
pub fn probe(dialect: &Dialect, table: &TableConfig, columns: &[&str]) -> String {
    let list: Vec<String> = columns.iter().map(|c| dialect.quote(c)).collect();
    format!("SELECT {} FROM {} WHERE 1=0", list.join(", "), dialect.table(table))
}

/// The oldest and newest dates with a row at or after `from`.
pub fn date_span(dialect: &Dialect, table: &TableConfig, date: &str, symbol: &str, from: NaiveDate) -> String {
    let d = dialect.quote(date);
    format!(
        "SELECT MIN({d}), MAX({d}) FROM {} WHERE {}",
        dialect.table(table),
        conditions(dialect, table, date, symbol, from, None)
    )
}

/// Every row with a date in `from..=to`, ordered by date (then by `order_by`), selecting
/// `select` (already quoted expressions).
pub fn rows(
    dialect: &Dialect,
    table: &TableConfig,
    (date, symbol): (&str, &str),
    select: &[String],
    order_by: Option<&str>,
    (from, to): (NaiveDate, NaiveDate),
) -> String {
    let mut order = dialect.quote(date);
    if let Some(column) = order_by {
        order.push_str(&format!(", {}", dialect.quote(column)));
    }
    format!(
        "SELECT {} FROM {} WHERE {} ORDER BY {order}",
        select.join(", "),
        dialect.table(table),
        conditions(dialect, table, date, symbol, from, Some(to)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn table(filter: &str) -> TableConfig {
        let text = format!(
            "[store]\npath='s'\n[source]\nodbc='x'\n[[table]]\nname='bar'\ndate='d'\nsymbol='s'\nfields=['*']\nstart='2020-01-01'\n{filter}"
        );
        Config::parse(Path::new("c.toml"), &text).unwrap().tables.remove(0)
    }

    #[test]
    fn quoting_doubles_the_quote_character() {
        let pg = Dialect::with_quote('"', "PostgreSQL");
        assert_eq!(pg.quote(r#"a"; DROP TABLE x; --"#), r#""a""; DROP TABLE x; --""#);
        let maria = Dialect::with_quote('`', "MariaDB");
        assert_eq!(maria.quote("we`ird"), "`we``ird`");
    }

    #[test]
    fn rows_query_is_bounded_filtered_and_ordered() {
        let d = Dialect::with_quote('"', "PostgreSQL");
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let select = ["\"d\"".to_string(), "\"s\"".to_string(), "\"close\"".to_string()];
        let sql =
            rows(&d, &table("where = \"x > 1\""), ("d", "s"), &select, None, (day("2020-01-01"), day("2020-01-31")));
        assert_eq!(
            sql,
            r#"SELECT "d", "s", "close" FROM "bar" WHERE "d" >= '2020-01-01' AND "s" IS NOT NULL AND "d" < '2020-02-01' AND (x > 1) ORDER BY "d""#
        );
    }
}
