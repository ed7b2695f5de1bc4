//! Cheetah's errors as gRPC statuses. The message is the one a local read gives; the status
//! details carry the error's kind as JSON (`{"kind": "QueryError"}`, with `table`, `field` and
//! `date` for a corrupt chunk), so a client raises the same exception a local read raises.

use cheetah_core::{Error, QueryError, StoreError, WriteError};
use serde_json::json;
use tonic::{Code, Status};

use crate::ticket::TicketError;

/// The status for a failed read.
pub fn status_of(error: &Error) -> Status {
    let message = error.to_string();
    let (code, details) = match error {
        Error::Store(StoreError::Missing { .. }) | Error::Query(QueryError::Empty) => {
            (Code::FailedPrecondition, json!({"kind": "EmptyCache"}))
        }
        Error::Store(StoreError::CorruptChunk { table, field, date, .. })
        | Error::Query(QueryError::Store(StoreError::CorruptChunk { table, field, date, .. })) => {
            (Code::DataLoss, json!({"kind": "CorruptChunk", "table": table, "field": field, "date": date.to_string()}))
        }
        Error::Query(QueryError::Store(_)) | Error::Store(_) => (Code::Internal, json!({"kind": "StoreError"})),
        Error::Query(QueryError::Version(_)) | Error::Version(_) => {
            (Code::InvalidArgument, json!({"kind": "VersionError"}))
        }
        Error::Query(_) => (Code::InvalidArgument, json!({"kind": "QueryError"})),
        Error::Config(_) => (Code::Internal, json!({"kind": "ConfigError"})),
        Error::Write(WriteError::Store(_) | WriteError::Inbox { .. }) => {
            (Code::Internal, json!({"kind": "WriteError"}))
        }
        Error::Write(_) => (Code::InvalidArgument, json!({"kind": "WriteError"})),
        _ => (Code::Internal, json!({"kind": "CheetahError"})),
    };
    with_kind(code, message, &details)
}

/// The status for a ticket the parser refused.
pub fn bad_ticket(error: &TicketError) -> Status {
    invalid(error.to_string())
}

/// `InvalidArgument` with `message`, raised as `cheetah.QueryError` by Cheetah's client.
pub fn invalid(message: String) -> Status {
    with_kind(Code::InvalidArgument, message, &json!({"kind": "QueryError"}))
}

fn with_kind(code: Code, message: String, details: &serde_json::Value) -> Status {
    Status::with_details(code, message, details.to_string().into_bytes().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_error() {
        let unknown =
            Error::Query(QueryError::UnknownField { name: "clsoe".into(), hint: "; like it: `close`".into() });
        let status = status_of(&unknown);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("like it: `close`"));
        assert_eq!(std::str::from_utf8(status.details()).unwrap(), r#"{"kind":"QueryError"}"#);
        assert_eq!(status_of(&Error::Query(QueryError::Empty)).code(), Code::FailedPrecondition);
    }
}
