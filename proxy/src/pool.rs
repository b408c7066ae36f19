//! Connections to one upstream: hyper's HTTP/1.1 client connections (http,
//! or https with the system's roots), kept open and reused, at most
//! `max_idle` of them idle. A connection goes back to the pool when the
//! answer's body has been read to its end; one dropped earlier is closed
//! (hyper cannot reuse it). A request that an idle connection could not
//! take (the upstream closed it meanwhile) is sent once more on a new one.
//! No redirect is ever followed.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service;

/// Why a request did not get an answer head from the upstream.
pub type PoolError = Box<dyn std::error::Error + Send + Sync>;

type Sender = SendRequest<Full<Bytes>>;

/// The connections to one upstream.
pub struct Pool {
    connector: HttpsConnector<HttpConnector>,
    /// Where to connect (scheme and authority).
    target: Uri,
    idle: Mutex<Vec<Sender>>,
    max_idle: usize,
}

impl Pool {
    /// A pool connecting to `target` through `connector`.
    pub fn new(connector: HttpsConnector<HttpConnector>, target: Uri, max_idle: usize) -> Self {
        Self {
            connector,
            target,
            idle: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    /// Sends `req` (origin-form URI, `Host` set) and gives the answer,
    /// whose body returns the connection to the pool when read to its end.
    pub async fn send(
        self: &Arc<Self>,
        mut req: Request<Full<Bytes>>,
    ) -> Result<Response<PooledBody>, PoolError> {
        // An idle connection, else a new one; once more on a new one if the
        // idle one could not take the request.
        let mut fresh = false;
        loop {
            let mut sender = match self.idle_ready().await {
                Some(s) => s,
                None => {
                    fresh = true;
                    self.connect().await?
                }
            };
            match sender.try_send_request(req).await {
                Ok(res) => {
                    let pool = Some(self.clone());
                    return Ok(res.map(|inner| PooledBody {
                        inner,
                        sender: Some(sender),
                        pool,
                    }));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if !fresh => req = unsent,
                    _ => return Err(e.into_error().into()),
                },
            }
        }
    }

    /// An idle connection that is ready for a request, if any.
    async fn idle_ready(&self) -> Option<Sender> {
        loop {
            let sender = self.lock().pop()?;
            let mut sender = sender;
            // Ready once it has finished with its previous answer; an
            // error means the upstream closed it.
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    async fn connect(&self) -> Result<Sender, PoolError> {
        let io = self.connector.clone().call(self.target.clone()).await?;
        let (sender, conn) = http1::handshake(io).await?;
        // The connection runs until the upstream or the last sender closes it.
        tokio::spawn(conn);
        Ok(sender)
    }

    fn put(&self, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.lock();
        if idle.len() < self.max_idle {
            idle.push(sender);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Sender>> {
        // A panic while holding this lock leaves only a list of senders,
        // which stays consistent: keep using it.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pin_project_lite::pin_project! {
    /// An answer's body: the connection returns to the pool at its end.
    pub struct PooledBody {
        #[pin]
        inner: Incoming,
        sender: Option<Sender>,
        pool: Option<Arc<Pool>>,
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        // At the end (which the caller may learn from is_end_stream and
        // not poll again to see).
        if (frame.is_none() || this.inner.is_end_stream())
            && let (Some(sender), Some(pool)) = (this.sender.take(), this.pool.take())
        {
            pool.put(sender);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
