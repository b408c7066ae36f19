//! The guard around a plain hyper 1 service: no axum, only tower's
//! `ServiceBuilder` and hyper-util. `GET /me` answers any valid token with
//! its subject; `POST /todos` also needs `todo:write`; the guard serves the
//! RFC 9728 metadata itself.
//!
//! ```text
//! cargo run --all-features --example hyper_basic
//! ```
//!
//! Development mode, `MCP_ISSUER`, `MCP_RESOURCE` (default
//! `http://127.0.0.1:3001`) and `MCP_BIND` (default `127.0.0.1:3001`) as in
//! `axum_basic`.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use mcp_resource_guard::testing::TestIssuer;
use mcp_resource_guard::{AuthContext, GuardLayer, Issuer, RequireScopeLayer};
use tower::{BoxError, ServiceBuilder, ServiceExt, service_fn};

/// The response body (the guard's rejections need `From<String>`).
type Body = Full<Bytes>;

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    res
}

/// `GET /me`: the caller's subject, from the context the guard added.
async fn me<B>(req: Request<B>) -> Result<Response<Body>, Infallible> {
    let ctx = AuthContext::from_extensions(req.extensions());
    let sub = ctx.as_ref().and_then(|c| c.subject()).unwrap_or("?");
    Ok(text(StatusCode::OK, format!("hello {sub}\n")))
}

/// `POST /todos`: reached only with `todo:write`.
async fn add_todo<B>(_req: Request<B>) -> Result<Response<Body>, Infallible> {
    Ok(text(StatusCode::CREATED, "created\n".to_owned()))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let var = |name, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let resource = var("MCP_RESOURCE", "http://127.0.0.1:3001");
    let bind = var("MCP_BIND", "127.0.0.1:3001");
    let (issuer, dev) = match std::env::var("MCP_ISSUER") {
        Ok(url) => (Issuer::new(url), None),
        Err(_) => {
            let dev = TestIssuer::start().await?;
            (Issuer::new(dev.issuer()), Some(dev))
        }
    };
    let guard = GuardLayer::builder(&resource)
        .add_issuer(issuer)
        .scopes_supported(["todo:read", "todo:write"])
        .build()?;
    if let Some(dev) = &dev {
        let base = guard.resource().as_str();
        let rw = dev.token("alice", base, "todo:read todo:write");
        let ro = dev.token("bob", base, "todo:read");
        println!("development mode: an embedded development issuer signs the tokens\n");
        println!("no token (401):  curl -i {base}/me");
        println!("any token:       curl -i -H 'Authorization: Bearer {rw}' {base}/me");
        println!("todo:write:      curl -i -X POST -H 'Authorization: Bearer {rw}' {base}/todos");
        println!("read-only (403): curl -i -X POST -H 'Authorization: Bearer {ro}' {base}/todos\n");
    }
    // The guard outside, a hand-written router inside, `RequireScopeLayer`
    // on `POST /todos`.
    let writers = ServiceBuilder::new()
        .layer(RequireScopeLayer::all(&guard, ["todo:write"])?)
        .service(service_fn(add_todo));
    let router = service_fn(move |req: Request<hyper::body::Incoming>| {
        let writers = writers.clone();
        async move {
            match (req.method(), req.uri().path()) {
                (&Method::GET, "/me") => me(req).await,
                (&Method::POST, "/todos") => writers.oneshot(req).await,
                _ => Ok(text(StatusCode::NOT_FOUND, "not found\n".to_owned())),
            }
        }
    });
    let svc = ServiceBuilder::new().layer(guard).service(router);
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("listening on http://{}", listener.local_addr()?);
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
