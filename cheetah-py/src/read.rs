//! One read as it crosses from Python: `cheetah._reads.Read`, its dates already
//! `datetime.date` and the rest text, taken whole.

use cheetah_core::chrono::NaiveDate;
use cheetah_core::{Adjust, AsOf, Request, VersionError as CoreVersionError};
use pyo3::prelude::*;

use crate::error::{QueryError, VersionError};

/// The fields of a `cheetah._reads.Read`, read by attribute.
#[derive(FromPyObject)]
pub struct ReadArgs {
    start: NaiveDate,
    end: NaiveDate,
    cols: Vec<String>,
    symbols: Option<Vec<String>>,
    base: Option<String>,
    adjust: Option<String>,
    universe: Option<String>,
    known_at: Option<KnownAt>,
    snapshot: Option<String>,
}

/// `known_at=` as Python normalised it: a version number, or a moment as ISO text.
#[derive(FromPyObject)]
pub enum KnownAt {
    /// A store version.
    Version(u64),
    /// A moment; without a zone, UTC.
    Moment(String),
}

impl KnownAt {
    /// The version it names.
    ///
    /// # Errors
    /// `QueryError` for a moment that does not parse.
    pub fn into_as_of(self) -> PyResult<AsOf> {
        match self {
            Self::Version(number) => Ok(AsOf::Version(number)),
            Self::Moment(text) => AsOf::moment(&text).map_err(|e| VersionError::new_err(e.to_string())),
        }
    }
}

impl ReadArgs {
    /// The cache request it names.
    ///
    /// # Errors
    /// `QueryError` for an `adjust` other than `backward` or `forward`, a moment that does not
    /// parse, or both `known_at` and `snapshot`.
    pub fn request(self) -> PyResult<Request> {
        let mut request = Request::new(self.start, self.end, self.cols);
        if let Some(symbols) = self.symbols {
            request = request.symbols(symbols);
        }
        if let Some(base) = self.base {
            request = request.base(base);
        }
        if let Some(adjust) = self.adjust {
            request = request.adjust(adjust.parse::<Adjust>().map_err(QueryError::new_err)?);
        }
        if let Some(universe) = self.universe {
            request = request.universe(universe);
        }
        match (self.known_at, self.snapshot) {
            (Some(_), Some(_)) => return Err(VersionError::new_err(CoreVersionError::Both.to_string())),
            (Some(known_at), None) => request = request.as_of(known_at.into_as_of()?),
            (None, Some(name)) => request = request.as_of(AsOf::Snapshot(name)),
            (None, None) => {}
        }
        Ok(request)
    }
}
