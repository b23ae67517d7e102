//! A bound listener and the router it serves: binding first reports the real port (tests bind
//! port 0), serving drains in-flight requests on shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    router: Router,
}

/// Why a listener could not be bound; says which address.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    pub addr: String,
    pub source: io::Error,
}

impl Server {
    pub async fn bind(addr: &str, router: Router) -> Result<Self, BindError> {
        let listener = TcpListener::bind(addr).await.map_err(|source| BindError {
            addr: addr.to_owned(),
            source,
        })?;
        Ok(Self { listener, router })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has an address")
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        // Without TCP_NODELAY, Nagle's algorithm holds back the tail of every response until the
        // peer's delayed ACK: a millisecond or more per request on loopback.
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish for at most
    /// `grace`; requests still running then are dropped.
    pub async fn serve_with_grace(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        grace: std::time::Duration,
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
