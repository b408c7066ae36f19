//! A real MCP server (rmcp, streamable HTTP, axum) behind the guard and a
//! per-tool scope policy: `whoami` needs `todo:read`, `add_todo` needs
//! `todo:write`; every other method and tool is refused.
//!
//! `cargo run --all-features --example todo_server` starts it in development
//! mode: an embedded `TestIssuer` (not an authorization server) signs tokens
//! and ready-to-paste `curl`s are printed. `MCP_ISSUER` trusts a real
//! authorization server instead (keys by discovery); `MCP_RESOURCE` is this
//! server's URL, the tokens' audience (default `http://127.0.0.1:3000/mcp`);
//! `MCP_BIND` where it listens (default `127.0.0.1:3000`).

use std::sync::{Arc, Mutex};

use axum::Router;
use mcp_resource_guard::mcp::{McpLayer, McpPolicy, Rule, SessionBinding};
use mcp_resource_guard::testing::TestIssuer;
use mcp_resource_guard::{AuthContext, GuardLayer, Issuer};
use rmcp::handler::server::{router::tool::ToolRouter, tool::Extension, wrapper::Parameters};
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};

#[derive(Clone)]
struct Todos {
    items: Arc<Mutex<Vec<String>>>,
    tool_router: ToolRouter<Self>,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct AddTodo {
    /// What to do.
    title: String,
}

#[tool_router]
impl Todos {
    fn new(items: Arc<Mutex<Vec<String>>>) -> Self {
        let tool_router = Self::tool_router();
        Self { items, tool_router }
    }

    #[tool(description = "Who is calling: the access token's subject")]
    async fn whoami(&self, Extension(parts): Extension<http::request::Parts>) -> String {
        // The guard put the verified token's context in the request.
        let ctx = AuthContext::from_extensions(&parts.extensions);
        format!("{:?}", ctx.as_ref().and_then(|c| c.subject()))
    }

    #[tool(description = "Adds a to-do item; answers with the whole list")]
    async fn add_todo(&self, Parameters(AddTodo { title }): Parameters<AddTodo>) -> String {
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        items.push(title);
        items.join("\n")
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Todos {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// Every method and tool this server has, with its rule; anything else is
/// denied.
fn policy() -> Result<McpPolicy, mcp_resource_guard::ConfigError> {
    McpPolicy::builder()
        .default_rule(Rule::Deny)
        .stream_rule(Rule::Allow)
        .method("initialize", Rule::Allow)
        .method("notifications/initialized", Rule::Allow)
        .method("ping", Rule::Allow)
        .method("server/discover", Rule::Allow)
        .method("tools/list", Rule::require(["todo:read"]))
        .tool("whoami", Rule::require(["todo:read"]))
        .tool("add_todo", Rule::require(["todo:write"]))
        .build()
}

/// A stateless `tools/call` (MCP `2026-07-28`) for the printed `curl`s.
const HEADERS: &str = "-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/call' -H 'Mcp-Name: add_todo'";
const CALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add_todo","arguments":{"title":"milk"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let var = |name, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let resource = var("MCP_RESOURCE", "http://127.0.0.1:3000/mcp");
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
        .required_scopes(["todo:read"])
        .build()?;
    // rmcp serves only requests whose `Host` is this server's.
    let host = url::Url::parse(&resource)?.host_str().map(str::to_owned);
    let config = StreamableHttpServerConfig::default().with_allowed_hosts(host);
    let items = Arc::new(Mutex::new(Vec::new()));
    let server = move || Ok(Todos::new(items.clone()));
    let mcp = StreamableHttpService::new(server, Arc::new(LocalSessionManager::default()), config);
    let app = Router::new()
        .nest_service("/mcp", mcp)
        .layer(McpLayer::new(&guard, policy()?).session_binding(SessionBinding::new()))
        .layer(guard);
    if let Some(dev) = &dev {
        println!("development mode: an embedded development issuer signs the tokens\n");
        for (who, scope) in [("alice", "todo:read todo:write"), ("bob", "todo:read")] {
            let token = dev.token(who, &resource, scope);
            let auth = format!("-H 'Authorization: Bearer {token}'");
            println!(
                "add_todo as {who} ({scope}):\ncurl -i {auth} {HEADERS} -d '{CALL}' {resource}\n"
            );
        }
    }
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
