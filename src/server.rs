//! A bound listener and the service it serves (a router, or the gateway's front before its
//! router): binding first reports the real port (tests bind port 0), serving drains in-flight
//! requests on shutdown.
//!
//! The accept loop is hyper-util's connection builder rather than `axum::serve`, for the limits
//! a server facing browsers and scripts needs (`axum::serve` has none of them): a time limit on
//! reading a request's head (which also closes a keep-alive connection left idle that long), a
//! bound on the head's size, and a cap on open connections, past which a new connection is told
//! 503 and closed. An accept error (file descriptors run out) pauses the loop instead of
//! spinning it.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::Response;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// What one server allows its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Longest time to receive a request's head, and to wait for the next one on an idle
    /// keep-alive connection.
    pub header_timeout: Duration,
    /// Connections open at once; past it, new ones are answered 503 and closed.
    pub max_connections: usize,
}

/// Bytes of a request's head a connection may buffer (hyper's default is about 400 KB): past
/// it, hyper answers 431.
const MAX_HEAD_BYTES: usize = 64 * 1024;

impl Default for ConnectionLimits {
    /// The documented defaults: 10 s for a head, and connections up to what the process's
    /// open-file limit leaves room for.
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            max_connections: default_max_connections(),
        }
    }
}

/// Connections the process can hold and still open files, sockets to the upstream and Redis:
/// its open-file limit less 128, at least 64, at most 10,000.
pub fn default_max_connections() -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft);
    usize::try_from(soft.saturating_sub(128))
        .unwrap_or(usize::MAX)
        .clamp(64, 10_000)
}

#[derive(Debug)]
pub struct Server<S = Router> {
    listener: TcpListener,
    service: S,
    limits: ConnectionLimits,
}

/// Why a listener could not be bound; says which address.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    pub addr: String,
    pub source: io::Error,
}

impl<S> Server<S>
where
    S: tower::Service<Request<Incoming>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    /// Binds `addr` for `service`, which gets each request as hyper reads it (a `Router` takes
    /// any body).
    pub async fn bind(addr: &str, service: S) -> Result<Self, BindError> {
        let listener = TcpListener::bind(addr).await.map_err(|source| BindError {
            addr: addr.to_owned(),
            source,
        })?;
        Ok(Self {
            listener,
            service,
            limits: ConnectionLimits::default(),
        })
    }

    /// The same server with other connection limits.
    pub fn with_limits(mut self, limits: ConnectionLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has an address")
    }

    /// Serves until `shutdown` completes, then stops accepting and lets the open connections
    /// finish their requests (idle ones are closed at once).
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let Self {
            listener,
            service,
            limits,
        } = self;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(MAX_HEAD_BYTES);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(limits.header_timeout);
        let open = Arc::new(Semaphore::new(limits.max_connections));
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        pause_after_accept_error(&error).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            // Without TCP_NODELAY, Nagle's algorithm holds back the tail of every response until
            // the peer's delayed ACK: a millisecond or more per request on loopback.
            let _ = stream.set_nodelay(true);
            let Ok(place) = open.clone().try_acquire_owned() else {
                metrics::counter!(crate::metrics::CONNECTIONS_REFUSED).increment(1);
                tokio::spawn(refuse(stream));
                continue;
            };
            let connection = builder
                .serve_connection(
                    TokioIo::new(stream),
                    TowerToHyperService::new(service.clone()),
                )
                .into_owned();
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                // A client that goes away or times out ends its connection; nothing to report.
                let _ = connection.await;
                drop(place);
            });
        }
        drop(listener);
        graceful.shutdown().await;
        Ok(())
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish for at most
    /// `grace`; requests still running then are dropped.
    pub async fn serve_with_grace(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        grace: Duration,
    ) -> io::Result<()> {
        let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = self.serve(async move {
            shutdown.await;
            let _ = signalled_tx.send(());
        });
        tokio::pin!(serving);
        tokio::select! {
            result = &mut serving => result,
            Ok(()) = signalled_rx => {
                match tokio::time::timeout(grace, serving).await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::warn!(grace_secs = grace.as_secs(), "requests still running after the shutdown grace period; exiting");
                        Ok(())
                    }
                }
            }
        }
    }

    /// Serves in the background until the runtime ends (tests, the demo's simulator).
    pub fn spawn(self) -> SocketAddr {
        let addr = self.local_addr();
        tokio::spawn(self.serve(std::future::pending()));
        addr
    }
}

/// An accept that failed for the connection alone (the peer gave up) is skipped; anything else
/// (no file descriptors left) pauses the loop, so that it does not spin while nothing can be
/// accepted.
async fn pause_after_accept_error(error: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(%error, "accepting a connection failed; pausing");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// The answer to a connection past the cap, written before reading anything.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/problem+json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 166\r\n\
\r\n\
{\"type\":\"urn:wemeet-gateway:problem:overloaded\",\"title\":\"Overloaded\",\"status\":503,\
\"detail\":\"the gateway holds as many connections as it takes at once; retry shortly\"}";

/// Answers 503 and closes, within a second: the request is not read (past the cap nothing is
/// served), but what the client already sent is drained briefly, so that closing does not reset
/// the connection before the client has read the answer.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(REFUSAL).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        io::Result::Ok(())
    })
    .await;
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (`docker stop`, Kubernetes).
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received; draining in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_whole_problem_answer() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["status"], 503);
    }

    #[test]
    fn the_default_connection_cap_leaves_room_under_the_open_file_limit() {
        let cap = default_max_connections();
        assert!((64..=10_000).contains(&cap));
    }
}
