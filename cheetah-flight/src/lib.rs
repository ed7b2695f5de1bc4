//! Cheetah's reads over Apache Arrow Flight, for machines other than the cache's own.
//!
//! - `ticket`: a read as JSON, exactly as `get_data` names it, checked before anything else.
//! - `wire`: the one schema a read travels in, and a read split into date-range parts.
//! - `encode`: a read's messages as Flight data, each body written once.
//! - `service`: `GetFlightInfo` (a read's endpoints), `DoGet`, `DoAction` (`fields`, `status`);
//!   read-only by construction.
//! - `auth`: the bearer token.
//! - `errors`: Cheetah's errors as gRPC statuses a client turns back into the same errors.
//! - `server`: tonic, TCP or TLS, on a runtime of its own.
#![deny(missing_docs)]

mod auth;
mod encode;
mod errors;
mod server;
mod service;
mod ticket;
mod wire;

pub use server::{start, Running, ServeError};
