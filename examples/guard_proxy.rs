//! A guard proxy: `GuardLayer` + `McpLayer` in front of one MCP server
//! written in any language (Python, TypeScript, ...) that has no auth of
//! its own. The proxy is the OAuth 2.1 protected resource; the upstream
//! sees only requests the policy allows, never the caller's token, and the
//! caller's identity in headers it can trust.
//!
//! ```text
//! MCP_UPSTREAM=http://127.0.0.1:8000/mcp MCP_ISSUER=https://auth.example.com \
//! MCP_RESOURCE=https://mcp.example.com/mcp MCP_POLICY=policy.toml \
//!     cargo run --example guard_proxy
//! ```
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `MCP_UPSTREAM` | the upstream MCP endpoint (http or https URL) | required |
//! | `MCP_ISSUER` | the trusted authorization server (keys by discovery) | required |
//! | `MCP_RESOURCE` | the proxy's canonical URL (the tokens' `aud`); its path is the MCP endpoint | `http://127.0.0.1:3000/mcp` |
//! | `MCP_BIND` | the listen address | `127.0.0.1:3000` |
//! | `MCP_POLICY` | the policy file (TOML; see `support/policy_file.rs`) | required |
//! | `MCP_TYP_POLICY` | `allow-jwt` for issuers whose access tokens say `typ: JWT` | `at+jwt` only |
//! | `MCP_REDIS_URL`, `MCP_METRICS_BIND`, `MCP_REVOKE_TOKEN` | as for `todo_server`: shared state for replicas; metrics, probes, revoke (with the operator's secret) | unset |
//! | `RUST_LOG` | what is logged | `info`: every decision, with why |
//!
//! Both MCP wires pass, with everything the MCP layer does: bodies it
//! cannot judge refused (byte-order marks, repeated keys, junk batch
//! elements, another charset or media type, compressed or non-JSON bodies,
//! oversize), the `2026-07-28` `Mcp-Method`/`Mcp-Name` cross-check, scope
//! hierarchies, filtered lists (`cacheScope: "private"` on `2026-07-28`),
//! sessions and tasks bound to their caller. What the layers did not
//! judge does not go upstream (see `support/proxy.rs`): other methods, a
//! `Connection` header naming an end-to-end header (refused), method
//! overrides, `Forwarded`/`X-Forwarded-*`, header names with underscores,
//! the query string (unless `forward_query`).

#[path = "support/operations.rs"]
mod operations;
#[path = "support/policy_file.rs"]
pub mod policy_file;
#[path = "support/proxy.rs"]
pub mod proxy;

use axum::Router;
use mcp_resource_guard::mcp::{McpLayer, SessionBinding, TaskBinding};
use mcp_resource_guard::{GuardLayer, Issuer, TypPolicy};

/// The proxy's application: a request whose `Connection` header names an
/// end-to-end header is refused first; then the guard, the MCP layer (with
/// sessions and tasks bound to their caller) and the upstream at the path
/// of the canonical URL; anything else is 404.
pub fn app(
    guard: GuardLayer,
    policy: &policy_file::PolicyFile,
    upstream: proxy::Upstream,
) -> Router {
    let path = url::Url::parse(guard.resource().as_str())
        .map(|u| u.path().to_owned())
        .unwrap_or_else(|_| "/".to_owned());
    let mcp = McpLayer::new(&guard, policy.policy.clone())
        .list_filter(policy.list_filter)
        .session_binding(SessionBinding::new())
        .task_binding(TaskBinding::new());
    Router::new()
        .route_service(&path, upstream)
        .layer(mcp)
        .layer(guard)
        .layer(axum::middleware::from_fn(proxy::check_connection))
}

/// The guard for `resource` trusting `issuer` under the policy file's scopes.
pub fn guard(
    resource: &str,
    issuer: Issuer,
    typ: TypPolicy,
    policy: &policy_file::PolicyFile,
    shared: Option<mcp_resource_guard::store::SharedStore>,
) -> Result<GuardLayer, mcp_resource_guard::ConfigError> {
    let mut b = GuardLayer::builder(resource)
        .add_issuer(issuer)
        .typ_policy(typ)
        .scopes_supported(policy.scopes_supported.clone())
        .scope_hierarchy(policy.hierarchy.clone())
        .resource_name("MCP server (guard proxy)");
    if !policy.required.is_empty() {
        b = b.required_scopes(policy.required.clone());
    }
    if let Some(s) = shared {
        b = b.shared_store(s);
    }
    b.build()
}

fn required(name: &str, what: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is required: {what}"))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The error says what to fix (a policy file error names the line).
            eprintln!("guard_proxy: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    operations::init_logging();
    let metrics = operations::metrics_from_env()?;
    let upstream_url = required(
        "MCP_UPSTREAM",
        "the URL of the upstream MCP endpoint, e.g. http://127.0.0.1:8000/mcp",
    )?;
    let issuer = required("MCP_ISSUER", "the URL of the trusted authorization server")?;
    let policy_path = required("MCP_POLICY", "the path of the policy file (TOML)")?;
    let resource =
        std::env::var("MCP_RESOURCE").unwrap_or_else(|_| "http://127.0.0.1:3000/mcp".to_owned());
    let bind = std::env::var("MCP_BIND").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let typ = match std::env::var("MCP_TYP_POLICY").as_deref() {
        Err(_) | Ok("" | "at+jwt") => TypPolicy::AccessTokenOnly,
        Ok("allow-jwt") => TypPolicy::AllowJwt,
        Ok(other) => {
            return Err(
                format!("MCP_TYP_POLICY={other:?}: use allow-jwt or leave it unset").into(),
            );
        }
    };
    let policy = policy_file::load(&policy_path)?;
    let upstream = proxy::Upstream::new(&upstream_url, &resource, &policy)?;
    let shared = operations::shared_store_from_env().await?;
    let guard = guard(&resource, Issuer::new(issuer), typ, &policy, shared)?;
    if let Err(e) = guard.warm_up().await {
        eprintln!("warning: the issuer's keys are not available yet: {e}");
    }
    operations::serve_from_env(&guard, metrics).await?;
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("guarding {upstream_url} as {resource}");
    println!("listening on http://{bind}");
    let app = app(guard, &policy, upstream);
    // The peer's address becomes the upstream's X-Forwarded-For.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await?;
    Ok(())
}
