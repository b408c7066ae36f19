//! The front of the request path: every request the server accepted comes
//! here first. Over the in-flight limit: 503 with `Retry-After`. A
//! `Connection` header naming an end-to-end header: 400 (a proxy obeying
//! it would drop a header the guard and the MCP layer acted on, such as
//! `MCP-Protocol-Version` or `Mcp-Session-Id`). Then the route whose
//! resource path (or RFC 9728 metadata path) is the request's path, or
//! 404.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use http::header;
use http::{Request, Response, StatusCode};
use mcp_resource_guard::Guard;
use mcp_resource_guard::mcp::Mcp;
use tokio::sync::Semaphore;
use tower_service::Service;

use crate::body::ReadBody;
use crate::reply::{busy, error};
use crate::upstream::{PeerAddr, Upstream};

/// One route's stack: the guard, the body read, the MCP layer, the upstream.
pub type RouteService = Guard<ReadBody<Mcp<Upstream>>>;

/// A route: the paths it answers and its stack.
pub struct Route {
    /// The resource URL's path: the MCP endpoint.
    pub path: String,
    /// The guard's RFC 9728 metadata paths for this resource.
    pub metadata_paths: Vec<String>,
    pub service: RouteService,
}

/// The proxy's front: shared by every connection.
#[derive(Clone)]
pub struct Front(Arc<Inner>);

struct Inner {
    routes: Vec<Route>,
    in_flight: Arc<Semaphore>,
}

/// The only tokens a request's `Connection` header may name (RFC 9110
/// §7.6.1: options and hop-by-hop headers; `keep-alive` and `close` are
/// the connection's own).
const CONNECTION_OPTIONS: [&str; 8] = [
    "close",
    "keep-alive",
    "te",
    "trailer",
    "trailers",
    "upgrade",
    "proxy-connection",
    "http2-settings",
];

impl Front {
    /// The front over `routes`, handling at most `max_in_flight` requests
    /// at once.
    pub fn new(routes: Vec<Route>, max_in_flight: usize) -> Self {
        Self(Arc::new(Inner {
            routes,
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
        }))
    }

    /// Handles one request from `peer`.
    pub async fn handle<B>(&self, req: Request<B>, peer: Option<PeerAddr>) -> Response<Body>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        // Held until the response head is ready.
        let Ok(_permit) = self.0.in_flight.clone().try_acquire_owned() else {
            return busy(
                "the proxy is handling as many requests as it may (limits.max_in_flight)",
                1,
            );
        };
        if names_end_to_end(req.headers()) {
            return error(
                StatusCode::BAD_REQUEST,
                None,
                "the Connection header names an end-to-end header",
            );
        }
        let path = req.uri().path();
        let Some(route) = self
            .0
            .routes
            .iter()
            .find(|r| r.path == path || r.metadata_paths.iter().any(|m| m == path))
        else {
            return error(StatusCode::NOT_FOUND, None, "no MCP server at this path");
        };
        let mut req = req.map(Body::new);
        if let Some(peer) = peer {
            req.extensions_mut().insert(peer);
        }
        let mut service = route.service.clone();
        match service.call(req).await {
            Ok(res) => res,
            Err(never) => match never {},
        }
    }
}

/// `true` when a `Connection` header names anything but a connection
/// option or hop-by-hop header.
fn names_end_to_end(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .any(|t| {
            !t.is_empty()
                && !CONNECTION_OPTIONS
                    .iter()
                    .any(|o| o.as_bytes().eq_ignore_ascii_case(t))
        })
}

/// The front as a tower service (for tests and embedding): no peer address.
impl<B> Service<Request<B>> for Front
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(req, None).await) })
    }
}
