//! A small axum server behind the guard: a public route, a route for any
//! valid token, and a route that needs `todo:write`.
//!
//! ```text
//! cargo run --all-features --example axum_basic
//! ```
//!
//! With no environment variables it starts in development mode: it generates
//! a signing key in memory, trusts it as the issuer `http://127.0.0.1:3000/dev-issuer`
//! and prints ready-to-paste `curl` commands with freshly minted tokens. This
//! is for trying the guard out only: nothing here is an authorization server.
//!
//! Against a real authorization server:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `MCP_ISSUER` | the issuer URL (exactly as in the tokens' `iss`) | unset: development mode |
//! | `MCP_JWKS_URI` | the issuer's `jwks_uri` | required with `MCP_ISSUER` |
//! | `MCP_RESOURCE` | this server's canonical URL (the tokens' `aud`) | `http://127.0.0.1:3000` |
//! | `MCP_BIND` | the listen address | `127.0.0.1:3000` |

use axum::Router;
use axum::routing::{get, post};
use mcp_resource_guard::jwks::StaticJwks;
use mcp_resource_guard::testing::{TestKey, jwks};
use mcp_resource_guard::{Algorithm, AuthContext, GuardLayer, Issuer, RequireScopeLayer};
use serde_json::{Value, json};

/// The scopes this server understands.
pub const SCOPES: [&str; 2] = ["todo:read", "todo:write"];

/// The application: `/public` for everyone, `/me` for any valid token,
/// `POST /todos` for tokens with `todo:write`, and the RFC 9728 metadata.
pub fn app(guard: GuardLayer) -> Router {
    // `route_layer` keeps unknown paths a 404 instead of a 401, so the
    // metadata routes are mounted explicitly.
    let protected = Router::new()
        .route("/me", get(me))
        .route(
            "/todos",
            post(add_todo).route_layer(
                RequireScopeLayer::all(&guard, ["todo:write"]).expect("a valid scope literal"),
            ),
        )
        .route_layer(guard.clone());
    let mut app = Router::new().route("/public", get(|| async { "hello, anyone" }));
    for path in guard.metadata_paths() {
        app = app.route_service(&path, guard.metadata_service());
    }
    app.merge(protected)
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

/// Development mode: an in-memory key and tokens minted with it.
pub struct Dev {
    /// The guard, trusting the development key.
    pub guard: GuardLayer,
    /// The development issuer identifier.
    pub issuer: String,
    /// The signing key.
    pub key: TestKey,
}

impl Dev {
    /// A development setup for the resource at `resource`.
    pub fn new(resource: &str) -> Result<Self, Box<dyn std::error::Error>> {
        let issuer = "http://127.0.0.1:3000/dev-issuer".to_owned();
        let key = TestKey::generate(Algorithm::ES256)?;
        let guard = GuardLayer::builder(resource)
            .add_issuer(
                Issuer::new(&issuer).key_source(StaticJwks::from_json(jwks(&[&key]).to_string())?),
            )
            .scopes_supported(SCOPES)
            .build()?;
        Ok(Self { guard, issuer, key })
    }

    /// A token for `sub` with `scope`, valid for an hour.
    pub fn token(&self, resource: &str, sub: &str, scope: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.key.sign(&json!({
            "iss": self.issuer, "sub": sub, "client_id": "dev-client", "aud": resource,
            "scope": scope, "iat": now, "exp": now + 3600,
        }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let resource =
        std::env::var("MCP_RESOURCE").unwrap_or_else(|_| "http://127.0.0.1:3000".to_owned());
    let bind = std::env::var("MCP_BIND").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let guard = match std::env::var("MCP_ISSUER") {
        Ok(issuer) => {
            let jwks_uri = std::env::var("MCP_JWKS_URI")
                .map_err(|_| "MCP_JWKS_URI is required when MCP_ISSUER is set")?;
            GuardLayer::builder(&resource)
                .add_issuer(Issuer::new(issuer).jwks_uri(jwks_uri))
                .scopes_supported(SCOPES)
                .build()?
        }
        Err(_) => {
            let dev = Dev::new(&resource)?;
            let base = dev.guard.resource().as_str().to_owned();
            let aud = base.clone();
            println!(
                "development mode: tokens are signed by an in-memory key (not an authorization server)\n"
            );
            println!("public:            curl -i {base}/public");
            println!("no token (401):    curl -i {base}/me");
            println!("metadata:          curl -i {base}/.well-known/oauth-protected-resource");
            let rw = dev.token(&aud, "alice", "todo:read todo:write");
            let ro = dev.token(&aud, "bob", "todo:read");
            println!("any valid token:   curl -i -H 'Authorization: Bearer {rw}' {base}/me");
            println!(
                "todo:write (200):  curl -i -X POST -d 'milk' -H 'Authorization: Bearer {rw}' {base}/todos"
            );
            println!(
                "read-only (403):   curl -i -X POST -d 'milk' -H 'Authorization: Bearer {ro}' {base}/todos"
            );
            println!(
                "\nreal issuer: MCP_ISSUER=https://as.example.com MCP_JWKS_URI=https://as.example.com/jwks cargo run --all-features --example axum_basic\n"
            );
            dev.guard
        }
    };
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("listening on http://{bind}");
    axum::serve(listener, app(guard)).await?;
    Ok(())
}
