//! The guard around a plain hyper 1 service: no axum, only tower's
//! `ServiceBuilder` and hyper-util. `GET /me` answers any valid token with
//! its subject; `POST /todos` also needs `todo:write`; the guard serves the
//! RFC 9728 metadata itself.
//!
//! ```text
//! cargo run --all-features --example hyper_basic
//! ```
//!
//! It starts in development mode: an in-memory signing key (not an
//! authorization server) and ready-to-paste `curl` commands. With
//! `MCP_ISSUER` (and optionally `MCP_JWKS_URI`) it trusts a real issuer;
//! `MCP_RESOURCE` (default `http://127.0.0.1:3001`) and `MCP_BIND` (default
//! `127.0.0.1:3001`) as in the other examples.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use mcp_resource_guard::jwks::StaticJwks;
use mcp_resource_guard::testing::{TestKey, jwks};
use mcp_resource_guard::{
    Algorithm, AuthContext, ConfigError, GuardLayer, Issuer, RequireScopeLayer,
};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt, service_fn};

/// The response body: `Full<Bytes>` (the guard's rejections need
/// `From<String>`, which it has).
pub type Body = Full<Bytes>;

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    res
}

/// `GET /me`: the caller's subject.
async fn me<B>(req: Request<B>) -> Result<Response<Body>, Infallible> {
    let ctx = AuthContext::from_extensions(req.extensions());
    let sub = ctx.as_ref().and_then(|c| c.subject()).unwrap_or("?");
    Ok(text(StatusCode::OK, format!("hello {sub}\n")))
}

/// `POST /todos`: reached only with `todo:write`.
async fn add_todo<B>(_req: Request<B>) -> Result<Response<Body>, Infallible> {
    Ok(text(StatusCode::CREATED, "created\n".to_owned()))
}

/// The whole service for request bodies of type `B`: the guard outside,
/// a hand-written router inside, `RequireScopeLayer` on `POST /todos`.
///
/// # Errors
///
/// When a scope literal is invalid (it is not).
pub fn service<B>(
    guard: GuardLayer,
) -> Result<
    impl Service<Request<B>, Response = Response<Body>, Error = Infallible, Future: Send> + Clone + Send,
    ConfigError,
>
where
    B: Send + 'static,
{
    let writers = ServiceBuilder::new()
        .layer(RequireScopeLayer::all(&guard, ["todo:write"])?)
        .service(service_fn(add_todo::<B>));
    let router = service_fn(move |req: Request<B>| {
        let writers = writers.clone();
        async move {
            match (req.method(), req.uri().path()) {
                (&Method::GET, "/me") => me(req).await,
                (&Method::POST, "/todos") => writers.oneshot(req).await,
                _ => Ok(text(StatusCode::NOT_FOUND, "not found\n".to_owned())),
            }
        }
    });
    Ok(ServiceBuilder::new().layer(guard).service(router))
}

/// Serves `guard` + the routes on `listener`, one task per connection.
///
/// # Errors
///
/// When accepting a connection fails.
pub async fn serve(listener: tokio::net::TcpListener, guard: GuardLayer) -> Result<(), BoxError> {
    let svc = service::<hyper::body::Incoming>(guard)?;
    loop {
        let (stream, _) = listener.accept().await?;
        let svc = TowerToHyperService::new(svc.clone());
        tokio::spawn(async move {
            // A connection that fails only ends itself.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Development mode: a guard trusting an in-memory key, and that key.
///
/// # Errors
///
/// When key generation fails or the resource URL is invalid.
pub fn dev_guard(resource: &str) -> Result<(GuardLayer, TestKey, String), BoxError> {
    let issuer = "http://127.0.0.1:3001/dev-issuer".to_owned();
    let key = TestKey::generate(Algorithm::ES256)?;
    let guard = GuardLayer::builder(resource)
        .add_issuer(
            Issuer::new(&issuer).key_source(StaticJwks::from_json(jwks(&[&key]).to_string())?),
        )
        .scopes_supported(["todo:read", "todo:write"])
        .build()?;
    Ok((guard, key, issuer))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let resource =
        std::env::var("MCP_RESOURCE").unwrap_or_else(|_| "http://127.0.0.1:3001".to_owned());
    let bind = std::env::var("MCP_BIND").unwrap_or_else(|_| "127.0.0.1:3001".to_owned());
    let guard = match std::env::var("MCP_ISSUER") {
        Ok(issuer) => {
            let issuer = match std::env::var("MCP_JWKS_URI") {
                Ok(uri) => Issuer::new(issuer).jwks_uri(uri),
                Err(_) => Issuer::new(issuer),
            };
            GuardLayer::builder(&resource)
                .add_issuer(issuer)
                .scopes_supported(["todo:read", "todo:write"])
                .build()?
        }
        Err(_) => {
            let (guard, key, issuer) = dev_guard(&resource)?;
            let base = guard.resource().as_str().to_owned();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let token = |sub: &str, scope: &str| {
                key.sign(&serde_json::json!({
                    "iss": issuer, "sub": sub, "aud": base, "scope": scope,
                    "iat": now, "exp": now + 3600,
                }))
            };
            println!(
                "development mode: tokens are signed by an in-memory key (not an authorization server)\n"
            );
            println!("no token (401):  curl -i {base}/me");
            println!(
                "any token:       curl -i -H 'Authorization: Bearer {}' {base}/me",
                token("alice", "todo:read todo:write")
            );
            println!(
                "todo:write:      curl -i -X POST -H 'Authorization: Bearer {}' {base}/todos",
                token("alice", "todo:read todo:write")
            );
            println!(
                "read-only (403): curl -i -X POST -H 'Authorization: Bearer {}' {base}/todos\n",
                token("bob", "todo:read")
            );
            guard
        }
    };
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("listening on http://{bind}");
    serve(listener, guard).await
}
