//! The bearer token: every call must carry `authorization: Bearer <token>` when the server has
//! one. The check runs before any handler, so a call without the token reads nothing; the token
//! is compared in constant time and never logged.

use std::sync::Arc;

use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Refuses calls without the server's token.
#[derive(Clone)]
pub struct Bearer {
    token: Option<Arc<[u8]>>,
}

impl Bearer {
    /// Checks for `token`, or lets every call through when `None` (loopback only; the config
    /// refuses a wider address without a token).
    pub fn new(token: Option<&str>) -> Self {
        Self { token: token.map(|t| Arc::from(t.as_bytes())) }
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(token) = &self.token else { return Ok(request) };
        let presented = request.metadata().get("authorization").map(|v| v.as_bytes());
        let peer = request.remote_addr().map_or_else(|| "unknown".to_string(), |a| a.to_string());
        match presented.and_then(|v| v.strip_prefix(b"Bearer ")) {
            Some(given) if same(given, token) => Ok(request),
            Some(_) => {
                tracing::warn!(%peer, "refused a call with a wrong token");
                Err(Status::unauthenticated("wrong token: pass the token of the server's [flight] token"))
            }
            None => {
                tracing::warn!(%peer, "refused a call without a token");
                Err(Status::unauthenticated(
                    "this server needs a token: send the header `authorization: Bearer <token>` (cheetah.connect(url, token=...))",
                ))
            }
        }
    }
}

/// Equality whose time depends only on the lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(bearer: &mut Bearer, header: Option<&str>) -> Result<(), tonic::Code> {
        let mut request = Request::new(());
        if let Some(h) = header {
            request.metadata_mut().insert("authorization", h.parse().unwrap());
        }
        bearer.call(request).map(|_| ()).map_err(|s| s.code())
    }

    #[test]
    fn only_the_token_passes() {
        let mut bearer = Bearer::new(Some("s3cret"));
        assert_eq!(call(&mut bearer, Some("Bearer s3cret")), Ok(()));
        assert_eq!(call(&mut bearer, Some("Bearer s3cre")), Err(tonic::Code::Unauthenticated));
        assert_eq!(call(&mut bearer, Some("Basic s3cret")), Err(tonic::Code::Unauthenticated));
        assert_eq!(call(&mut bearer, None), Err(tonic::Code::Unauthenticated));
        assert_eq!(call(&mut Bearer::new(None), None), Ok(()));
    }
}
