//! Local writes: frames researchers write into local tables.

use std::path::PathBuf;

use chrono::NaiveDate;

use super::*;

/// A write into a local table (`Cache::write`, `delete`, `drop`, `cheetah import`). Each
/// leaves the store as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The table name is not a plain identifier.
    #[error("`{name}` cannot name a local table: use letters, digits and _, starting with a letter or _, at most 64 characters")]
    BadTableName {
        /// The name.
        name: String,
    },
    /// A column cannot name a field.
    #[error("column `{name}` cannot name a field: use letters, digits and _ (rename it before writing)")]
    BadFieldName {
        /// The column.
        name: String,
    },
    /// A key column is missing.
    #[error("the frame has no {what} column `{name}` (its columns: {columns}); index it by (date, symbol), or name the columns that hold them")]
    NoKey {
        /// `date` or `symbol`.
        what: &'static str,
        /// The column looked for.
        name: String,
        /// The columns the frame has.
        columns: String,
    },
    /// A key column holds a null.
    #[error("`{column}` is null at row {row}: every row needs a date and a symbol")]
    NullKey {
        /// The key column.
        column: String,
        /// The row, from 0.
        row: usize,
    },
    /// A key column has a type that cannot hold its key.
    #[error("`{column}` is {found}; it must hold {wanted}")]
    KeyType {
        /// The key column.
        column: String,
        /// Its type.
        found: String,
        /// What it must hold.
        wanted: &'static str,
    },
    /// A date that is not one.
    #[error("`{column}` at row {row} is {value:?}, not a date (YYYY-MM-DD)")]
    BadDate {
        /// The date column.
        column: String,
        /// The row, from 0.
        row: usize,
        /// What it holds.
        value: String,
    },
    /// Two rows share a key.
    #[error("({date}, {symbol}) has {count} rows in the frame; a local table holds one row per (date, symbol)")]
    Duplicate {
        /// The date.
        date: NaiveDate,
        /// The symbol.
        symbol: String,
        /// Its rows.
        count: usize,
    },
    /// A column of a type no field holds.
    #[error("column `{name}` is {found}, which no field holds: use numbers, booleans, text, dates or timestamps (an object column of mixed types, or one with no value, needs a cast such as .astype(\"string\"))")]
    UnsupportedType {
        /// The column.
        name: String,
        /// Its type.
        found: String,
    },
    /// A column whose type differs from the field's stored type.
    #[error("column `{name}` is {found} in this frame but {stored} in local table `{table}`; cast it to {stored}, or drop the table and write it again")]
    TypeConflict {
        /// The local table.
        table: String,
        /// The column.
        name: String,
        /// Its type in the frame.
        found: String,
        /// The field's stored type.
        stored: String,
    },
    /// The name is a configured table's.
    #[error("`{name}` is a table in {config}; a local table needs a name of its own", config = config.display())]
    TableCollision {
        /// The name.
        name: String,
        /// The config.
        config: PathBuf,
    },
    /// The table is cached from a source.
    #[error("`{table}` is cached from a source, not written locally; local writes, deletes and drops take local tables only")]
    NotLocal {
        /// The table.
        table: String,
    },
    /// A new field's name is another table's field.
    #[error("field `{field}` is already cached in table `{table}`; rename the column so reads can tell them apart")]
    FieldCollision {
        /// The field.
        field: String,
        /// The table that has it.
        table: String,
    },
    /// No local table of that name.
    #[error("no local table `{table}`; local tables: {known}", known = if known.is_empty() { "none yet" } else { known.as_str() })]
    UnknownTable {
        /// The name.
        table: String,
        /// The local tables.
        known: String,
    },
    /// The frame could not be read.
    #[error("the frame cannot be written: {message}")]
    Frame {
        /// What went wrong.
        message: String,
    },
    /// The write was handed to the writer process, which failed it.
    #[error("{message}")]
    Writer {
        /// The writer's error.
        message: String,
    },
    /// The writer process did not take the write in time.
    #[error("the process holding store {path}'s writer role (pid {pid}) did not take the write within {seconds} s, and the write was withdrawn; if it is a long `cheetah update`, try again once it is done", path = path.display())]
    NotTaken {
        /// The store.
        path: PathBuf,
        /// The writer's process id, as far as is known.
        pid: String,
        /// How long the write waited.
        seconds: u64,
    },
    /// The inbox could not be written or read.
    #[error("handing the write to the writer through {path} failed: {message}", path = path.display())]
    Inbox {
        /// The inbox folder.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

impl WriteError {
    /// The same error with its row counted `offset` rows further on: for a batch of a stream.
    #[must_use]
    pub fn offset_rows(self, offset: u64) -> Self {
        let shift = |row: usize| row + usize::try_from(offset).unwrap_or(usize::MAX - row);
        match self {
            Self::NullKey { column, row } => Self::NullKey { column, row: shift(row) },
            Self::BadDate { column, row, value } => Self::BadDate { column, row: shift(row), value },
            other => other,
        }
    }
}
