//! The bearer tokens. A call may carry `authorization: Bearer <token>`: the read token lets it
//! read, the write token (`[flight] write_token`) lets it read and write local tables. The
//! check runs before any handler and marks the call with its [`Role`]; a wrong token is refused
//! there. Tokens are compared in constant time and never logged.

use std::sync::Arc;

use tonic::service::Interceptor;
use tonic::{Request, Status};

/// What a call may do, as its token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// No token, where the server wants one for reads.
    Anonymous,
    /// Read.
    Read,
    /// Read, and write local tables.
    Write,
}

impl Role {
    /// The call's role; reads refused for a call without the server's token.
    pub fn of<T>(call: &Request<T>) -> Role {
        call.extensions().get::<Role>().copied().unwrap_or(Role::Anonymous)
    }

    /// Whether the call may read, or the status that refuses it.
    pub fn admit_read<T>(call: &Request<T>) -> Result<(), Status> {
        match Self::of(call) {
            Role::Anonymous => Err(Status::unauthenticated(
                "this server needs a token: send the header `authorization: Bearer <token>` (cheetah.connect(url, token=...))",
            )),
            Role::Read | Role::Write => Ok(()),
        }
    }
}

/// Marks each call with its [`Role`], and refuses a wrong token.
#[derive(Clone)]
pub struct Bearer {
    read: Option<Arc<[u8]>>,
    write: Option<Arc<[u8]>>,
}

impl Bearer {
    /// Checks for the read token `read` (every call may read when `None`: loopback only; the
    /// config refuses a wider address without a token) and the write token `write`.
    pub fn new(read: Option<&str>, write: Option<&str>) -> Self {
        Self { read: read.map(|t| Arc::from(t.as_bytes())), write: write.map(|t| Arc::from(t.as_bytes())) }
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let presented = request.metadata().get("authorization").map(|v| v.as_bytes().to_vec());
        let peer = request.remote_addr().map_or_else(|| "unknown".to_string(), |a| a.to_string());
        let matches = |token: &Option<Arc<[u8]>>, given: &[u8]| token.as_ref().is_some_and(|t| same(given, t));
        let role = match presented.as_deref().map(|v| v.strip_prefix(b"Bearer ")) {
            None => {
                if self.read.is_some() {
                    tracing::warn!(%peer, "a call without a token");
                    Role::Anonymous
                } else {
                    Role::Read
                }
            }
            Some(Some(given)) if matches(&self.write, given) => Role::Write,
            Some(Some(given)) if matches(&self.read, given) => Role::Read,
            Some(_) => {
                tracing::warn!(%peer, "refused a call with a wrong token");
                return Err(Status::unauthenticated("wrong token: pass the token of the server's [flight] token"));
            }
        };
        request.extensions_mut().insert(role);
        Ok(request)
    }
}

/// Equality whose time depends only on the lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(bearer: &mut Bearer, header: Option<&str>) -> Result<Role, tonic::Code> {
        let mut request = Request::new(());
        if let Some(h) = header {
            request.metadata_mut().insert("authorization", h.parse().unwrap());
        }
        bearer.call(request).map(|r| Role::of(&r)).map_err(|s| s.code())
    }

    #[test]
    fn each_token_gives_its_role() {
        let mut bearer = Bearer::new(Some("s3cret"), Some("wr1te"));
        assert_eq!(call(&mut bearer, Some("Bearer s3cret")), Ok(Role::Read));
        assert_eq!(call(&mut bearer, Some("Bearer wr1te")), Ok(Role::Write));
        assert_eq!(call(&mut bearer, Some("Bearer s3cre")), Err(tonic::Code::Unauthenticated));
        assert_eq!(call(&mut bearer, Some("Basic s3cret")), Err(tonic::Code::Unauthenticated));
        assert_eq!(call(&mut bearer, None), Ok(Role::Anonymous));
        assert_eq!(call(&mut Bearer::new(None, None), None), Ok(Role::Read));
        assert_eq!(call(&mut Bearer::new(None, Some("wr1te")), Some("Bearer wr1te")), Ok(Role::Write));
    }
}
