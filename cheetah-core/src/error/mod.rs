//! One error enum per subsystem, rolled up into [`Error`].
//!
//! Every message names what it is about (file and line, table, field, date) and says what to do.
//! No message ever contains the ODBC connection string.

mod config;
mod layer;
mod read;
mod source;
mod store;
mod write;

pub use self::config::ConfigError;
pub use self::layer::{LayerError, ShareError};
pub use self::read::{QueryError, VersionError};
pub use self::source::SourceError;
pub use self::store::{StoreError, UpdateError};
pub use self::write::WriteError;

/// Any Cheetah error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`ConfigError`].
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// See [`SourceError`].
    #[error(transparent)]
    Source(#[from] SourceError),
    /// See [`StoreError`].
    #[error(transparent)]
    Store(#[from] StoreError),
    /// See [`UpdateError`].
    #[error(transparent)]
    Update(#[from] UpdateError),
    /// See [`QueryError`].
    #[error(transparent)]
    Query(#[from] QueryError),
    /// See [`ShareError`].
    #[error(transparent)]
    Share(#[from] ShareError),
    /// See [`VersionError`].
    #[error(transparent)]
    Version(#[from] VersionError),
    /// See [`WriteError`].
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// How a message names a chunk: ``chunk of field `close` `` or ``row chunk of table `bar` ``.
fn chunk_label(table: &str, field: Option<&str>) -> String {
    match field {
        Some(field) => format!("chunk of field `{field}`"),
        None => format!("row chunk of table `{table}`"),
    }
}

/// `Result` with Cheetah's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Formats a "did you mean" suffix from candidates ranked by closeness to `wanted`.
pub(crate) fn close_matches<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let ranked = ranked_matches(wanted, candidates);
    if ranked.is_empty() {
        return String::new();
    }
    let names: Vec<String> = ranked.iter().take(5).map(|c| format!("`{c}`")).collect();
    format!("; close matches: {}", names.join(", "))
}

/// Edit distance where swapping two neighbouring letters counts as one edit (a typo).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// Candidates ranked by closeness to `wanted`, best first.
pub(crate) fn ranked_matches<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let wanted_lower = wanted.to_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .map(|c| (edit_distance(&wanted_lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= wanted.len().max(2) / 2 + 1 || c.to_lowercase().contains(&wanted_lower))
        .collect();
    scored.sort();
    scored.dedup();
    scored.into_iter().map(|(_, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_matches_ranks_by_distance() {
        let hint = close_matches("clsoe", ["close", "open", "closed", "volume"]);
        assert_eq!(hint, "; close matches: `close`, `closed`");
        assert_eq!(close_matches("zzz", ["close"]), "");
    }
}
