//! A route's upstream side: forwards a request the guard and the MCP layer
//! let through to the route's upstream MCP endpoint, and streams the
//! answer back.
//!
//! - Credentials stop here: `Authorization`, `Proxy-Authorization`, `DPoP`
//!   and `Cookie` are never forwarded (the MCP specification: a server
//!   "MUST NOT accept or transit any other tokens"). The caller's identity
//!   goes upstream in the configured identity headers, after any copy the
//!   client sent is removed.
//! - Hop-by-hop headers are dropped both ways. A request whose
//!   `Connection` header names anything but a hop-by-hop header is refused
//!   (400, in [`front`](crate::front)): obeying it would drop a header the guard
//!   or the MCP layer acted on (`MCP-Protocol-Version`, `Mcp-Session-Id`)
//!   before the upstream sees the request.
//! - Nothing the layers did not judge goes upstream: headers that re-route
//!   or re-label the request (`X-HTTP-Method-Override` and its kin,
//!   `Forwarded`, `X-Forwarded-*`, `X-Real-IP`; the proxy sets its own
//!   `X-Forwarded-For`, `-Proto` and `-Host`) and every header with an
//!   underscore in its name (CGI and WSGI stacks read `x_mcp_subject` as
//!   `x-mcp-subject`) are removed; the query string is dropped unless the
//!   route's `forward_query` allows it; a POST's `Content-Type` is
//!   the one the MCP layer accepted, sent as `application/json`.
//!   `Mcp-Session-Id`, `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`,
//!   `Last-Event-ID` and the rest pass (as the MCP layer left them).
//! - Bodies: a POST's is the one the MCP layer read (and judged); a GET or
//!   DELETE has none (the layer refuses one that does); the answer is
//!   streamed, SSE included, never buffered (but for what the MCP layer
//!   reads: filtered lists, task-creating calls).
//! - Upstream unreachable: 502; no response head within the timeout: 504;
//!   both with a JSON-RPC error body carrying the request's `id`. A stream
//!   that has started is not cut.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use mcp_resource_guard::AuthContext;

use crate::config::{IdentityHeaders, RouteConfig};
use crate::pool::Pool;
use crate::reply::{error, request_id};

/// The most of a non-POST request body read (POST bodies are bounded by
/// the MCP layer first).
const MAX_OTHER_BODY: usize = 4 * 1024 * 1024;

/// Headers never forwarded either way: those of one connection (RFC 9110
/// §7.6.1), the client's credentials (which stop at the proxy), `Host`
/// and `Content-Length` (set anew), and `Accept-Encoding` (answers come
/// uncompressed, so the MCP layer can filter lists).
fn never_forwarded(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "authorization"
            | "dpop"
            | "cookie"
            | "host"
            | "content-length"
            | "accept-encoding"
    )
}

/// The upstream side of the proxy: a tower service (cloned per request,
/// so its settings are shared).
#[derive(Clone)]
pub struct Upstream(std::sync::Arc<Settings>);

/// What the upstream side needs, built once.
struct Settings {
    pool: std::sync::Arc<Pool>,
    /// The upstream endpoint's path (origin-form), built once: a request
    /// only swaps in the query when `forward_query` allows it.
    uri: http::Uri,
    /// The upstream's `Host`.
    host: HeaderValue,
    response_timeout: Duration,
    identity: IdentityHeaders,
    forward_query: bool,
    /// `X-Forwarded-Proto` and `X-Forwarded-Host`: the proxy's canonical URL's.
    forwarded: [(HeaderName, HeaderValue); 2],
}

/// The address of the client that sent a request (a request extension
/// the server adds, once per connection): the upstream's
/// `X-Forwarded-For`.
#[derive(Debug, Clone)]
pub struct PeerAddr {
    forwarded_for: HeaderValue,
}

impl PeerAddr {
    /// The peer at `addr`.
    pub fn new(addr: std::net::SocketAddr) -> Self {
        // An IP address is always a valid header value.
        let forwarded_for = HeaderValue::from_str(&addr.ip().to_string())
            .unwrap_or(HeaderValue::from_static("unknown"));
        Self { forwarded_for }
    }
}

impl Upstream {
    /// Forwards to `route.upstream` (http or https) what reaches the proxy
    /// at `route.resource`, keeping at most `pool_idle` idle connections.
    pub fn new(route: &RouteConfig, pool_idle: usize) -> Result<Self, String> {
        let (url, resource) = (&route.upstream, &route.resource);
        let url = url::Url::parse(url).map_err(|e| format!("upstream {url:?}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(format!(
                "upstream {url}: an http(s) URL of the upstream MCP endpoint"
            ));
        }
        let public =
            url::Url::parse(resource).map_err(|e| format!("resource {resource:?}: {e}"))?;
        let host = match (public.host_str(), public.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return Err(format!("resource {resource}: a URL with a host")),
        };
        let value =
            |v: &str| HeaderValue::from_str(v).map_err(|_| format!("resource {resource}: {v:?}"));
        let forwarded = [
            (
                HeaderName::from_static("x-forwarded-proto"),
                value(public.scheme())?,
            ),
            (HeaderName::from_static("x-forwarded-host"), value(&host)?),
        ];
        let response_timeout = route.response_timeout;
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.enforce_http(false);
        // The response timeout below covers connecting too.
        http.set_connect_timeout(Some(response_timeout));
        http.set_nodelay(true);
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("the TLS roots for an https upstream: {e}"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        // No redirect is followed: the upstream is one endpoint, and a
        // redirect would send the caller's request (and identity) elsewhere.
        let target: http::Uri = url
            .as_str()
            .parse()
            .map_err(|e| format!("upstream {url}: {e}"))?;
        let uri: http::Uri = target
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|e| format!("upstream {url}: {e}"))?;
        let host = target
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            .ok_or_else(|| format!("upstream {url}: a URL with a host"))?;
        let pool = std::sync::Arc::new(Pool::new(tls, target, pool_idle));
        Ok(Self(std::sync::Arc::new(Settings {
            pool,
            uri,
            host,
            response_timeout,
            identity: route.identity.clone(),
            forward_query: route.forward_query,
            forwarded,
        })))
    }
}

impl tower_service::Service<Request<Body>> for Upstream {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.forward(req).await) })
    }
}

impl Upstream {
    async fn forward(&self, req: Request<Body>) -> Response<Body> {
        let this = &*self.0;
        let (parts, body) = req.into_parts();
        // Already read (and bounded) by the body read and the MCP layer.
        let body = match Limited::new(body, MAX_OTHER_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    None,
                    "the request body is too large",
                );
            }
        };
        // Read only for an error answer.
        let id = || request_id(&body);
        let uri = match (this.forward_query, parts.uri.query()) {
            (true, Some(q)) => with_query(&this.uri, q).unwrap_or_else(|| this.uri.clone()),
            _ => this.uri.clone(),
        };
        let mut headers = forwardable(parts.headers, unjudged);
        for name in [
            &this.identity.subject,
            &this.identity.client_id,
            &this.identity.scopes,
            &this.identity.issuer,
        ] {
            headers.remove(name);
        }
        headers.insert(header::HOST, this.host.clone());
        for (name, value) in &this.forwarded {
            headers.insert(name.clone(), value.clone());
        }
        if let Some(peer) = parts.extensions.get::<PeerAddr>() {
            headers.insert(
                HeaderName::from_static("x-forwarded-for"),
                peer.forwarded_for.clone(),
            );
        }
        if parts.method == http::Method::POST {
            // The MCP layer accepted only JSON in UTF-8: say exactly that.
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        if let Some(ctx) = parts.extensions.get::<AuthContext>() {
            let scopes: Vec<&str> = ctx.scopes().iter().collect();
            let mut set = |name: &HeaderName, value: Option<&str>| {
                if let Some(v) = value {
                    headers.insert(name.clone(), identity_value(v));
                }
            };
            set(&this.identity.subject, ctx.subject());
            set(&this.identity.client_id, ctx.client_id());
            set(&this.identity.scopes, Some(&scopes.join(" ")));
            set(&this.identity.issuer, Some(ctx.issuer()));
        }
        let mut request = Request::new(http_body_util::Full::new(body.clone()));
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        let response =
            match tokio::time::timeout(this.response_timeout, this.pool.send(request)).await {
                Err(_) => {
                    return error(
                        StatusCode::GATEWAY_TIMEOUT,
                        id(),
                        "the upstream MCP server did not answer in time",
                    );
                }
                Ok(Err(_)) => {
                    return error(
                        StatusCode::BAD_GATEWAY,
                        id(),
                        "the upstream MCP server cannot be reached",
                    );
                }
                Ok(Ok(r)) => r,
            };
        // Streamed: SSE events reach the client as the upstream sends them;
        // a body of known length keeps it.
        let (mut head, body) = response.into_parts();
        head.headers = forwardable(std::mem::take(&mut head.headers), |_| false);
        Response::from_parts(head, Body::new(body))
    }
}

/// `uri` with this query.
fn with_query(uri: &http::Uri, query: &str) -> Option<http::Uri> {
    let mut parts = uri.clone().into_parts();
    let path = parts.path_and_query.as_ref().map_or("/", |p| p.path());
    parts.path_and_query = Some(format!("{path}?{query}").parse().ok()?);
    http::Uri::from_parts(parts).ok()
}

/// `headers` without what is never forwarded, the headers `Connection`
/// names, and the names `drop` picks.
fn forwardable(mut headers: HeaderMap, drop: fn(&str) -> bool) -> HeaderMap {
    // Rare: only then is a list made.
    let named: Vec<String> = if headers.contains_key(header::CONNECTION) {
        headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_ascii_lowercase())
            .collect()
    } else {
        Vec::new()
    };
    let doomed = |name: &HeaderName| {
        let n = name.as_str();
        never_forwarded(n) || drop(n) || named.iter().any(|c| c == n)
    };
    // Removed in place, one at a time: most headers pass, and neither a
    // copy of them nor a list of the doomed is made.
    while let Some(name) = headers.keys().find(|n| doomed(n)).cloned() {
        headers.remove(name);
    }
    headers
}

/// A request header the layers did not judge: a re-routing one,
/// `X-Forwarded-*` (the proxy sets its own), or a name with an underscore.
fn unjudged(name: &str) -> bool {
    matches!(
        name,
        "x-http-method-override"
            | "x-http-method"
            | "x-method-override"
            | "forwarded"
            | "x-real-ip"
            | "x-original-url"
    ) || name.starts_with("x-forwarded-")
        || name.contains('_')
}

/// An identity value as a header value: visible ASCII and spaces as they
/// are, anything else (and `%`) percent-encoded, so a claim can neither
/// break the header nor pass for another value.
fn identity_value(v: &str) -> HeaderValue {
    let plain = |b: &u8| (0x20..=0x7E).contains(b) && *b != b'%';
    if v.as_bytes().iter().all(plain) {
        // Only visible ASCII and spaces: always a valid header value.
        return HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static(""));
    }
    let mut s = String::with_capacity(v.len());
    for b in v.bytes() {
        if (0x20..=0x7E).contains(&b) && b != b'%' {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    // Only visible ASCII and spaces remain: always a valid header value.
    HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_values_cannot_break_out() {
        assert_eq!(identity_value("alice"), "alice");
        assert_eq!(identity_value("a b"), "a b");
        assert_eq!(identity_value("é\r\nx-admin: 1"), "%C3%A9%0D%0Ax-admin: 1");
        assert_eq!(identity_value("100%"), "100%25");
    }
}
