//! One read as it crosses from Python: `cheetah._reads.Read`, its dates already
//! `datetime.date` and the rest text, taken whole.

use cheetah_core::chrono::NaiveDate;
use cheetah_core::{Adjust, Request};
use pyo3::prelude::*;

use crate::error::QueryError;

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
}

impl ReadArgs {
    /// The cache request it names.
    ///
    /// # Errors
    /// `QueryError` for an `adjust` other than `backward` or `forward`.
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
        Ok(request)
    }
}
