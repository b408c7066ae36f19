//! A small axum server behind the guard: a public route, a route for any
//! valid token, and a route that needs `todo:write`.
//!
//! ```text
//! cargo run --all-features --example axum_basic
//! ```
//!
//! With no environment it runs in development mode: an embedded development
//! issuer (`TestIssuer`: keys and metadata over HTTP, not an authorization
//! server) signs the tokens, and ready-to-paste `curl` commands are printed.
//! `MCP_ISSUER` names a real authorization server instead (its keys are
//! found by discovery); `MCP_RESOURCE` is this server's URL, the tokens'
//! audience (default `http://127.0.0.1:3000`); `MCP_BIND` where it listens
//! (default `127.0.0.1:3000`).

use axum::Router;
use axum::routing::{get, post};
use mcp_resource_guard::testing::TestIssuer;
use mcp_resource_guard::{AuthContext, ConfigError, GuardLayer, Issuer, RequireScopeLayer};
use serde_json::{Value, json};

/// `/public` for everyone, `/me` for any valid token, `POST /todos` for
/// tokens with `todo:write`, and the RFC 9728 metadata.
fn app(guard: GuardLayer) -> Result<Router, ConfigError> {
    let writers = RequireScopeLayer::all(&guard, ["todo:write"])?;
    // `route_layer` keeps unknown paths a 404 instead of a 401, so the
    // metadata routes are mounted explicitly.
    let protected = Router::new()
        .route("/me", get(me))
        .route("/todos", post(add_todo).route_layer(writers))
        .route_layer(guard.clone());
    let mut app = Router::new().route("/public", get(|| async { "hello, anyone" }));
    for path in guard.metadata_paths() {
        app = app.route_service(&path, guard.metadata_service());
    }
    Ok(app.merge(protected))
}

async fn me(ctx: AuthContext) -> axum::Json<Value> {
    axum::Json(json!({
        "sub": ctx.subject(),
        "client_id": ctx.client_id(),
        "scopes": ctx.scopes().iter().collect::<Vec<_>>(),
    }))
}

async fn add_todo(ctx: AuthContext, body: String) -> axum::Json<Value> {
    axum::Json(json!({ "created": body, "by": ctx.subject() }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let var = |name, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let resource = var("MCP_RESOURCE", "http://127.0.0.1:3000");
    let bind = var("MCP_BIND", "127.0.0.1:3000");
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
        println!("public:           curl -i {base}/public");
        println!("no token (401):   curl -i {base}/me");
        println!(
            "metadata:         curl -i {}",
            guard.resource().metadata_url()
        );
        println!("any valid token:  curl -i -H 'Authorization: Bearer {rw}' {base}/me");
        println!("todo:write (200): curl -i -d milk -H 'Authorization: Bearer {rw}' {base}/todos");
        println!(
            "read-only (403):  curl -i -d milk -H 'Authorization: Bearer {ro}' {base}/todos\n"
        );
    }
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(guard)?).await?;
    Ok(())
}
