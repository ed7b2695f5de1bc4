//! `[flight]`: where `cheetah serve` serves reads over Arrow Flight, who may read, and who may
//! write local tables.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::values::{ByteSize, Invalid};
use super::{FlightConfig, TlsFiles};
use crate::error::ConfigError;

const DEFAULT_FLIGHT_MAX_READ: u64 = 4 << 30;
const DEFAULT_FLIGHT_PART: u64 = 64 << 20;

/// `[flight]`: the address, the token (required beyond loopback), and TLS.
pub(super) fn parse(
    path: &Path,
    base_dir: &Path,
    raw: RawFlight,
    invalid: Invalid<'_>,
) -> Result<FlightConfig, ConfigError> {
    let span = raw.listen.span();
    let text = raw.listen.into_inner();
    let listen =
        resolve_listen(&text).map_err(|why| invalid(span.clone(), format!("[flight] listen = {text:?}: {why}")))?;
    if raw.token.as_ref().is_some_and(|t| t.trim().is_empty()) {
        return Err(invalid(
            span,
            "[flight] token is empty; set a long random token, or leave the key out to serve loopback only".into(),
        ));
    }
    if raw.write_token.as_ref().is_some_and(|t| t.trim().is_empty()) {
        return Err(invalid(
            span,
            "[flight] write_token is empty; set a long random token distinct from `token`, or leave the key out so nothing writes over Flight".into(),
        ));
    }
    let token = raw.token;
    if token.is_none() && !listen.ip().is_loopback() {
        return Err(invalid(
            span,
            format!(
                "[flight] listen = {text:?} serves other machines, so clients must present a token: add token = \"${{CHEETAH_TOKEN}}\" and set CHEETAH_TOKEN, or listen on 127.0.0.1"
            ),
        ));
    }
    let tls = match (raw.tls_cert, raw.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert: base_dir.join(cert), key: base_dir.join(key) }),
        (None, None) => None,
        (cert, _) => {
            let (given, missing) = if cert.is_some() { ("tls_cert", "tls_key") } else { ("tls_key", "tls_cert") };
            return Err(invalid(span, format!("[flight] has {given} but no {missing}; TLS needs both PEM files")));
        }
    };
    Ok(FlightConfig {
        listen,
        token,
        write_token: raw.write_token,
        config: path.to_path_buf(),
        tls,
        max_read_bytes: raw.max_read.map_or(DEFAULT_FLIGHT_MAX_READ, |b| b.0),
        part_bytes: raw.part_bytes.map_or(DEFAULT_FLIGHT_PART, |b| b.0).max(1),
    })
}

/// `host:port`, with `localhost` and other host names resolved to their first address.
fn resolve_listen(text: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    if !text.contains(':') {
        return Err("give host:port, such as \"127.0.0.1:8815\"".into());
    }
    let mut addrs = text
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve it ({e}); give host:port, such as \"127.0.0.1:8815\""))?;
    addrs.next().ok_or_else(|| "it resolves to no address".into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFlight {
    listen: toml::Spanned<String>,
    token: Option<String>,
    write_token: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    max_read: Option<ByteSize>,
    part_bytes: Option<ByteSize>,
}
