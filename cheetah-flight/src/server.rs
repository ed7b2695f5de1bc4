//! The server: the service behind the token check, over TCP or TLS, on its own runtime so the
//! caller (the update loop of `cheetah serve`) stays synchronous.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use cheetah_core::FlightConfig;
use tokio::sync::oneshot;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::auth::Bearer;
use crate::service::{Limits, Reads, Service, Writes};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address is taken or not ours.
    #[error("cannot listen on {addr} ([flight] listen): {source}; pick a free port, or stop what holds it")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The failure.
        source: std::io::Error,
    },
    /// A TLS file is missing or unreadable.
    #[error("cannot read {what} {path}: {source}")]
    TlsFile {
        /// `[flight] tls_cert` or `tls_key`.
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// `[flight] token` names an environment variable that is not set.
    #[error(transparent)]
    Token(#[from] cheetah_core::ConfigError),
    /// The runtime or TLS setup failed.
    #[error("cannot start the Flight server: {0}")]
    Start(String),
}

/// A running server; dropping it stops it.
pub struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Where it listens (the real port when the config gave port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting calls, lets streams under way finish for up to `grace`, and returns.
    pub fn stop(mut self, grace: Duration) {
        self.shutdown(grace);
    }

    fn shutdown(&mut self, grace: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let deadline = std::time::Instant::now() + grace;
            while !thread.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                tracing::warn!("streams still open after {grace:?}; closing them");
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown(Duration::from_secs(5));
    }
}

/// Starts serving `cache` as `config` says, on a runtime of its own. Binding happens before it
/// returns, so a taken port is this call's error.
///
/// # Errors
/// [`ServeError`] for the address, the TLS files, a token variable that is not set, or the
/// runtime.
pub fn start<R: Reads + Writes>(cache: Arc<R>, config: &FlightConfig) -> Result<Running, ServeError> {
    let token = config.token()?;
    let write_token = config.write_token()?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.max(2))
        .thread_name("cheetah-flight")
        .enable_all()
        .build()
        .map_err(|e| ServeError::Start(e.to_string()))?;
    let tls = match &config.tls {
        Some(files) => {
            let read = |what, path: &std::path::Path| {
                std::fs::read(path).map_err(|source| ServeError::TlsFile { what, path: path.to_path_buf(), source })
            };
            let identity =
                Identity::from_pem(read("[flight] tls_cert", &files.cert)?, read("[flight] tls_key", &files.key)?);
            Some(ServerTlsConfig::new().identity(identity))
        }
        None => None,
    };
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(config.listen))
        .map_err(|source| ServeError::Bind { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind { addr: config.listen, source })?;

    let writes = write_token.is_some().then(|| cache.clone() as Arc<dyn Writes>);
    let service = Service::new(cache, writes, Limits::new(config, cores));
    let server = FlightServiceServer::with_interceptor(service, Bearer::new(token.as_deref(), write_token.as_deref()));
    let mut builder = Server::builder()
        // Large windows let one stream fill a fast link instead of waiting on 64 KiB of credit.
        .initial_stream_window_size(Some(16 << 20))
        .initial_connection_window_size(Some(64 << 20))
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)));
    if let Some(tls) = tls {
        builder = builder.tls_config(tls).map_err(|e| ServeError::Start(format!("bad [flight] TLS files: {e}")))?;
    }
    let (stop, stopped) = oneshot::channel::<()>();
    let router = builder.add_service(server);
    tracing::info!(%addr, tls = config.tls.is_some(), token = config.has_token(), writes = write_token.is_some(), "serving reads over Arrow Flight");
    let thread = std::thread::Builder::new()
        .name("cheetah-flight".into())
        .spawn(move || {
            // Without TCP_NODELAY every small reply waits out the client's delayed ACK (~40 ms).
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            let served = runtime.block_on(router.serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            }));
            if let Err(e) = served {
                tracing::error!("the Flight server stopped: {e}");
            }
            runtime.shutdown_timeout(Duration::from_secs(1));
        })
        .map_err(|e| ServeError::Start(e.to_string()))?;
    Ok(Running { addr, stop: Some(stop), thread: Some(thread) })
}
