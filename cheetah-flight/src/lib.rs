//! Cheetah's reads over Apache Arrow Flight, for machines other than the cache's own.
//!
//! - [`ticket`]: a read as JSON, exactly as `get_data` names it, checked before anything else.
//! - [`wire`]: the one schema a read travels in, and a read split into date-range parts.
//! - [`service`]: `GetFlightInfo` (a read's endpoints), `DoGet`, `DoAction` (`fields`, `status`);
//!   read-only by construction.
//! - [`auth`]: the bearer token.
//! - [`errors`]: Cheetah's errors as gRPC statuses a client turns back into the same errors.
//! - [`server`]: tonic, TCP or TLS, on a runtime of its own.
#![deny(missing_docs)]

pub mod auth;
pub mod errors;
pub mod server;
pub mod service;
pub mod ticket;
pub mod wire;

pub use server::{start, Running, ServeError};
pub use service::{Limits, Reads, Service};
pub use ticket::{Dates, Ticket, TicketError};
