//! The traffic port: accepts connections (HTTP/1.1 and HTTP/2, over TLS
//! with the `tls` feature), within the limits, and shuts down gracefully.
//!
//! - Over `limits.max_connections` open connections, a new one is served
//!   a 503 with `Retry-After` and closed.
//! - A connection that sends no complete request head within
//!   `limits.header_read_timeout_ms` (nothing at all, a TLS handshake, or
//!   a head trickled in) is closed.
//! - On shutdown the listener closes first (new connections are refused),
//!   in-flight requests get `limits.shutdown_drain_ms` to finish (idle
//!   connections close at once), then whatever remains is dropped.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderValue};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::config::Limits;
use crate::front::Front;
use crate::reply::busy;
use crate::upstream::PeerAddr;

/// The TLS acceptor (feature `tls`), or nothing.
#[cfg(feature = "tls")]
pub type Tls = Option<tokio_rustls::TlsAcceptor>;
/// The TLS acceptor (feature `tls`), or nothing.
#[cfg(not(feature = "tls"))]
pub type Tls = Option<std::convert::Infallible>;

/// Serves `front` on `listener` until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    front: Front,
    limits: &Limits,
    tls: Tls,
    shutdown: impl Future<Output = ()>,
) {
    let connections = Arc::new(Semaphore::new(limits.max_connections.0));
    let header_timeout = limits.header_read_timeout_ms.0;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, most likely: let some close.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let permit = connections.clone().try_acquire_owned().ok();
        let front = front.clone();
        let builder = builder.clone();
        // A copy without the tls feature (nothing to clone then).
        #[cfg_attr(not(feature = "tls"), allow(clippy::clone_on_copy))]
        let tls = tls.clone();
        let watcher = graceful.watcher();
        let peer = PeerAddr::new(peer);
        tokio::spawn(async move {
            let Some(io) = handshake(stream, tls, header_timeout).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req| {
                let front = front.clone();
                let peer = peer.clone();
                let full = permit.is_none();
                async move {
                    if full {
                        let mut res = busy(
                            "the proxy has as many connections as it may (limits.max_connections)",
                            1,
                        );
                        res.headers_mut()
                            .insert(header::CONNECTION, HeaderValue::from_static("close"));
                        return Ok::<_, Infallible>(res);
                    }
                    Ok(front.handle(req, Some(peer.clone())).await)
                }
            });
            let conn = builder.serve_connection_with_upgrades(io, service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_drain_ms.0, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("the drain time ran out: closing the remaining connections");
    }
}

/// The connection's byte stream: waits (at most `timeout`) for the
/// client's first bytes, or completes the TLS handshake.
async fn handshake(stream: TcpStream, tls: Tls, timeout: Duration) -> Option<TokioIo<Io>> {
    match tls {
        #[cfg(feature = "tls")]
        Some(acceptor) => match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
            Ok(Ok(s)) => Some(TokioIo::new(Box::new(s))),
            _ => None,
        },
        #[cfg(not(feature = "tls"))]
        Some(never) => match never {},
        None => {
            // hyper's head timeout starts once it knows the protocol: a
            // client that sends nothing is bounded here.
            let mut first = [0u8; 1];
            match tokio::time::timeout(timeout, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => Some(TokioIo::new(Box::new(stream))),
                _ => None,
            }
        }
    }
}

/// A client connection's bytes, plain or over TLS.
type Io = Box<dyn Stream>;

/// What a connection's bytes come through.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}
