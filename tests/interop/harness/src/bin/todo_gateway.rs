//! An MCP server that calls another MCP server downstream (MCP
//! authorization patterns 3b and 3a), with no setup:
//!
//! ```text
//! cargo run -p interop-harness --bin todo_gateway
//! ```
//!
//! It starts an embedded development issuer, the todo server (as the
//! downstream, on its own port) and this gateway, and prints how to call
//! it. Its tools:
//!
//! - `todos_for_me`: lists the caller's downstream todos *on the caller's
//!   behalf*: the verified incoming token is exchanged (RFC 8693) for one
//!   for the downstream resource, which records the gateway as the actor
//!   (`act`); the downstream's audit trail shows both. The incoming token
//!   itself is never passed on (the MCP specification forbids it).
//! - `whoami_downstream_as_gateway`: calls the downstream's `whoami` *as the
//!   gateway itself*, with its own client credentials.
//!
//! Both downstream calls use rmcp's client; tokens go in through its
//! `auth_header` setting.
//!
//! With a real authorization server instead: `MCP_ISSUER`, `MCP_RESOURCE`
//! (this gateway's URL), `GATEWAY_CLIENT_ID` / `GATEWAY_CLIENT_SECRET` (a
//! client allowed `client_credentials` and the RFC 8693 token-exchange
//! grant) and `DOWNSTREAM_URL` (an MCP server trusting the same server).

use std::sync::Arc;

use axum::Router;
use mcp_resource_guard::client::{ClientCredentials, TokenSource};
use mcp_resource_guard::introspection::ClientAuth;
use mcp_resource_guard::mcp::{McpLayer, McpPolicy, Rule};
use mcp_resource_guard::testing::TestIssuer;
use mcp_resource_guard::{AuthContext, GuardLayer, Issuer};
use rmcp::ServiceExt;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::model::{
    CallToolRequestParams, ClientConfig, Implementation, ServerCapabilities, ServerConfig,
};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};

/// The gateway's own identity at the authorization server.
const GATEWAY_CLIENT: &str = "todo-gateway";

#[derive(Clone)]
struct Gateway {
    credentials: ClientCredentials,
    downstream: Arc<str>,
    tool_router: ToolRouter<Gateway>,
}

/// Calls `tool` on the MCP server at `url` with `token`; the result's text.
async fn call_downstream(url: &str, token: &str, tool: &'static str) -> Result<String, String> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token.to_owned()),
    );
    let client = ClientConfig::default()
        .serve(transport)
        .await
        .map_err(|e| format!("connecting downstream failed: {e}"))?;
    let result = client
        .call_tool(CallToolRequestParams::new(tool))
        .await
        .map_err(|e| format!("the downstream call failed: {e}"));
    let _ = client.cancel().await;
    let value = serde_json::to_value(result?).unwrap_or_default();
    Ok(value["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

#[tool_router]
impl Gateway {
    fn new(credentials: ClientCredentials, downstream: &str) -> Self {
        Self {
            credentials,
            downstream: downstream.into(),
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "Your todos at the downstream server, fetched on your behalf (token exchange)"
    )]
    async fn todos_for_me(&self, Extension(parts): Extension<http::request::Parts>) -> String {
        let Some(ctx) = AuthContext::from_extensions(&parts.extensions) else {
            return "no caller".to_owned();
        };
        // The incoming token, exactly as the guard verified it.
        let Some(incoming) = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return "no bearer token".to_owned();
        };
        let exchanged = match self
            .credentials
            .exchange(incoming, &ctx)
            .resource(&*self.downstream)
            .scopes(["todo:read"])
            .send()
            .await
        {
            Ok(t) => t,
            Err(e) => return format!("token exchange failed: {e}"),
        };
        call_downstream(&self.downstream, exchanged.secret(), "list_todos")
            .await
            .unwrap_or_else(|e| e)
    }

    #[tool(
        description = "The downstream server's whoami, called as the gateway itself (client credentials)"
    )]
    async fn whoami_downstream_as_gateway(&self) -> String {
        let own = match self
            .credentials
            .token(&self.downstream, &["todo:read".to_owned()])
            .await
        {
            Ok(t) => t,
            Err(e) => return format!("no token for the gateway: {e}"),
        };
        call_downstream(&self.downstream, own.secret(), "whoami")
            .await
            .unwrap_or_else(|e| e)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Gateway {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_server_info(
            Implementation::new("todo-gateway", env!("CARGO_PKG_VERSION")),
        )
    }
}

/// The gateway's app: its MCP endpoint behind its own guard and policy.
fn gateway_app(guard: GuardLayer, gateway: Gateway) -> Router {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(true)
        .with_sse_keep_alive(None);
    let mcp = StreamableHttpService::new(
        move || Ok(gateway.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let policy = McpPolicy::builder()
        .default_rule(Rule::Allow)
        .tool("todos_for_me", Rule::require(["todo:read"]))
        .tool("whoami_downstream_as_gateway", Rule::require(["todo:read"]))
        .build()
        .expect("valid scope literals");
    Router::new()
        .nest_service("/mcp", mcp)
        .layer(McpLayer::new(&guard, policy))
        .layer(guard)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The audit trail of both servers on stderr (`RUST_LOG`, default info):
    // the downstream's events for the exchanged token carry `act`.
    interop_harness::operations::init_logging();
    let bind = std::env::var("MCP_BIND").unwrap_or_else(|_| "127.0.0.1:3001".to_owned());
    let gateway_url =
        std::env::var("MCP_RESOURCE").unwrap_or_else(|_| format!("http://{bind}/mcp"));

    // With a real authorization server: MCP_ISSUER, the gateway's client
    // (GATEWAY_CLIENT_ID / GATEWAY_CLIENT_SECRET; it needs the
    // client_credentials and token-exchange grants) and DOWNSTREAM_URL.
    if let Ok(issuer) = std::env::var("MCP_ISSUER") {
        let id = std::env::var("GATEWAY_CLIENT_ID").map_err(|_| "set GATEWAY_CLIENT_ID")?;
        let secret =
            std::env::var("GATEWAY_CLIENT_SECRET").map_err(|_| "set GATEWAY_CLIENT_SECRET")?;
        let downstream = std::env::var("DOWNSTREAM_URL").map_err(|_| "set DOWNSTREAM_URL")?;
        let credentials =
            ClientCredentials::builder(&issuer, ClientAuth::client_secret_basic(id, secret))
                .build()?;
        let guard = GuardLayer::builder(&gateway_url)
            .add_issuer(Issuer::new(issuer))
            .scopes_supported(["todo:read", "todo:write", "todo:delete"])
            .required_scopes(["todo:read"])
            .build()?;
        let app = gateway_app(guard, Gateway::new(credentials, &downstream));
        let listener = tokio::net::TcpListener::bind(&bind).await?;
        println!("gateway:     {gateway_url}");
        println!("downstream:  {downstream}");
        println!("listening on http://{bind}");
        axum::serve(listener, app).await?;
        return Ok(());
    }

    // Development mode: an embedded issuer with the caller's client and
    // the gateway's.
    let secret = std::env::var("MCP_DEV_CLIENT_SECRET").unwrap_or_else(|_| "dev-secret".to_owned());
    let issuer = TestIssuer::builder()
        .add_client("todo-agent", &secret, interop_harness::SCOPES)
        .add_client(GATEWAY_CLIENT, &secret, interop_harness::SCOPES)
        .start()
        .await?;
    let trusted = || Issuer::new(issuer.issuer()).jwks_uri(issuer.jwks_uri());

    // The downstream todo server on a port of its own.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let downstream = format!("http://{}/mcp", listener.local_addr()?);
    let todo_guard = interop_harness::guard(
        &downstream,
        trusted(),
        mcp_resource_guard::TypPolicy::AccessTokenOnly,
    )?;
    tokio::spawn(async move {
        axum::serve(
            listener,
            interop_harness::app(todo_guard, interop_harness::Store::default()),
        )
        .await
    });

    // The gateway.
    let credentials = ClientCredentials::builder(
        issuer.issuer(),
        ClientAuth::client_secret_basic(GATEWAY_CLIENT, secret.clone()),
    )
    .build()?;
    let guard = GuardLayer::builder(&gateway_url)
        .add_issuer(trusted())
        .scopes_supported(interop_harness::SCOPES)
        .required_scopes(["todo:read"])
        .build()?;
    let app = gateway_app(guard, Gateway::new(credentials, &downstream));
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("gateway:     {gateway_url}");
    println!("downstream:  {downstream}");
    println!("dev issuer:  {}", issuer.issuer());
    println!(
        "try it:      AGENT_CLIENT_ID=todo-agent AGENT_CLIENT_SECRET={secret} cargo run --all-features --example agent -- {gateway_url} todos_for_me"
    );
    println!("listening on http://{bind}");
    axum::serve(listener, app).await?;
    drop(issuer);
    Ok(())
}
