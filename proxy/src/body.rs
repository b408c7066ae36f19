//! Reading a request body, bounded in time and size: after the guard (so
//! only callers with a valid token make the proxy wait for a body) and
//! before the MCP layer (which judges the body read here).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};

use crate::reply::error;

/// Reads the whole request body within `timeout` (else 408) and up to
/// `max_bytes` (else 413), then hands the request on with it.
#[derive(Clone)]
pub struct ReadBody<S> {
    inner: S,
    timeout: Duration,
    max_bytes: usize,
}

impl<S> ReadBody<S> {
    pub fn new(inner: S, timeout: Duration, max_bytes: usize) -> Self {
        Self {
            inner,
            timeout,
            max_bytes,
        }
    }
}

/// 413, the proxy's own answer.
fn too_large() -> Response<Body> {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        None,
        "the request body is larger than limits.max_body_bytes",
    )
}

impl<S> tower_service::Service<Request<Body>> for ReadBody<S>
where
    S: tower_service::Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // The clone that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (timeout, max_bytes) = (self.timeout, self.max_bytes);
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            // A declared length over the limit is refused before any of it
            // is read (the client learns it at once).
            let declared = parts
                .headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|l| l > max_bytes as u64) {
                return Ok(too_large());
            }
            let read = Limited::new(body, max_bytes).collect();
            let bytes = match tokio::time::timeout(timeout, read).await {
                Err(_) => {
                    return Ok(error(
                        StatusCode::REQUEST_TIMEOUT,
                        None,
                        "the request body did not arrive in time (limits.body_read_timeout_ms)",
                    ));
                }
                Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                    return Ok(too_large());
                }
                Ok(Err(_)) => {
                    return Ok(error(
                        StatusCode::BAD_REQUEST,
                        None,
                        "the request body could not be read",
                    ));
                }
                Ok(Ok(b)) => b.to_bytes(),
            };
            inner
                .call(Request::from_parts(parts, Body::from(bytes)))
                .await
        })
    }
}
