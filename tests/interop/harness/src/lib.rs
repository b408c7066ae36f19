//! The interop suite's MCP server: rmcp's streamable HTTP server behind the
//! guard and a per-tool scope policy, with every knob the suite turns
//! (introspection, DPoP, a shared store, metrics and an operations port).
//! Its binaries: `todo_server` (this server, configured from the
//! environment), `todo_gateway` (an MCP server that calls this one) and
//! `conformance_client` (the crate's client under the MCP conformance
//! suite's client contract).
//! The examples a user copies are in the main crate's `examples/`.

use std::sync::{Arc, Mutex};

pub mod operations;

use axum::Router;
use mcp_resource_guard::dpop::Dpop;
use mcp_resource_guard::mcp::{McpLayer, McpPolicy, Rule, SessionBinding};
use mcp_resource_guard::store::SharedStore;
use mcp_resource_guard::{AuthContext, GuardLayer, Issuer, ScopeHierarchy, TypPolicy};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::json;

/// The scopes this server understands.
pub const SCOPES: [&str; 4] = ["todo:read", "todo:write", "todo:delete", "todo:admin"];

/// `todo:admin` implies `todo:write` and `todo:delete` (so all four), each
/// of which implies `todo:read`.
pub fn hierarchy() -> ScopeHierarchy {
    ScopeHierarchy::new()
        .implies("todo:admin", ["todo:write", "todo:delete"])
        .implies("todo:write", ["todo:read"])
        .implies("todo:delete", ["todo:read"])
}

/// One to-do item.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Todo {
    id: u64,
    title: String,
    owner: String,
}

/// The shared to-do list.
#[derive(Debug, Clone, Default)]
pub struct Store(Arc<Mutex<(u64, Vec<Todo>)>>);

/// The MCP server.
#[derive(Debug, Clone)]
pub struct TodoServer {
    store: Store,
    tool_router: ToolRouter<Self>,
}

/// `add_todo` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct AddTodo {
    /// What to do.
    title: String,
}

/// `delete_todo` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct DeleteTodo {
    /// The id of the item to delete.
    id: u64,
}

/// The caller's `sub`, else (a client-credentials token without one) its
/// `client_id`.
fn caller(parts: &http::request::Parts) -> String {
    AuthContext::from_extensions(&parts.extensions)
        .and_then(|c| c.subject().or(c.client_id()).map(str::to_owned))
        .unwrap_or_else(|| "anonymous".to_owned())
}

#[tool_router]
impl TodoServer {
    /// A server over `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Who is calling: subject, client id and scopes of the access token")]
    async fn whoami(&self, Extension(parts): Extension<http::request::Parts>) -> String {
        match AuthContext::from_extensions(&parts.extensions) {
            Some(ctx) => json!({
                "sub": ctx.subject(),
                "client_id": ctx.client_id(),
                "scopes": ctx.scopes().iter().collect::<Vec<_>>(),
            })
            .to_string(),
            None => json!({ "sub": null }).to_string(),
        }
    }

    #[tool(description = "List the to-do items")]
    async fn list_todos(&self) -> String {
        let guard = self.store.0.lock().unwrap_or_else(|p| p.into_inner());
        serde_json::to_string(&guard.1).unwrap_or_default()
    }

    #[tool(description = "Add a to-do item")]
    async fn add_todo(
        &self,
        Parameters(AddTodo { title }): Parameters<AddTodo>,
        Extension(parts): Extension<http::request::Parts>,
    ) -> String {
        let mut guard = self.store.0.lock().unwrap_or_else(|p| p.into_inner());
        guard.0 += 1;
        let todo = Todo {
            id: guard.0,
            title,
            owner: caller(&parts),
        };
        guard.1.push(todo.clone());
        serde_json::to_string(&todo).unwrap_or_default()
    }

    #[tool(description = "Delete one of your to-do items")]
    async fn delete_todo(
        &self,
        Parameters(DeleteTodo { id }): Parameters<DeleteTodo>,
        Extension(parts): Extension<http::request::Parts>,
    ) -> String {
        let owner = caller(&parts);
        let mut guard = self.store.0.lock().unwrap_or_else(|p| p.into_inner());
        let before = guard.1.len();
        // Only the caller's own items: someone else's id is "not deleted",
        // exactly as an id that does not exist.
        guard.1.retain(|t| !(t.id == id && t.owner == owner));
        json!({ "deleted": before != guard.1.len() }).to_string()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for TodoServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_server_info(
            Implementation::new("todo-server", env!("CARGO_PKG_VERSION")),
        )
    }
}

/// The per-tool policy: every method and tool this server has, each with
/// its rule; anything else is denied.
pub fn policy() -> McpPolicy {
    McpPolicy::builder()
        .default_rule(Rule::Deny)
        // GET (the SSE stream) and DELETE (session end): the guard's
        // `todo:read` is enough.
        .stream_rule(Rule::Allow)
        .method("initialize", Rule::Allow)
        .method("notifications/initialized", Rule::Allow)
        .method("notifications/cancelled", Rule::Allow)
        .method("notifications/progress", Rule::Allow)
        .method("notifications/roots/list_changed", Rule::Allow)
        .method("ping", Rule::Allow)
        .method("server/discover", Rule::Allow)
        .method("tools/list", Rule::require(["todo:read"]))
        // The lists rmcp answers for every server (empty here).
        .method("prompts/list", Rule::require(["todo:read"]))
        .method("resources/list", Rule::require(["todo:read"]))
        .method("resources/templates/list", Rule::require(["todo:read"]))
        .tool("whoami", Rule::require(["todo:read"]))
        .tool("list_todos", Rule::require(["todo:read"]))
        .tool("add_todo", Rule::require(["todo:write"]))
        .tool("delete_todo", Rule::require(["todo:delete"]))
        .build()
        .expect("the policy's scopes are valid literals")
}

/// The guard for `resource`, trusting `issuer`, accepting the `typ`
/// headers of `typ`.
pub fn guard(
    resource: &str,
    issuer: Issuer,
    typ: TypPolicy,
) -> Result<GuardLayer, mcp_resource_guard::ConfigError> {
    guard_with_dpop(resource, issuer, typ, Dpop::default(), None)
}

/// [`guard`] accepting DPoP-bound tokens as `dpop` says, sharing state
/// with the other replicas through `shared` when given.
pub fn guard_with_dpop(
    resource: &str,
    issuer: Issuer,
    typ: TypPolicy,
    dpop: Dpop,
    shared: Option<SharedStore>,
) -> Result<GuardLayer, mcp_resource_guard::ConfigError> {
    let builder = match shared {
        Some(s) => GuardLayer::builder(resource).shared_store(s),
        None => GuardLayer::builder(resource),
    };
    builder
        .add_issuer(issuer)
        .typ_policy(typ)
        .scopes_supported(SCOPES)
        .scope_hierarchy(hierarchy())
        .required_scopes(["todo:read"])
        .resource_name("Todo MCP server")
        .dpop(dpop)
        .build()
}

/// The application: the MCP endpoint at `/mcp`, the policy, the guard.
pub fn app(guard: GuardLayer, store: Store) -> Router {
    let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    if let Ok(u) = url::Url::parse(guard.resource().as_str())
        && let Some(h) = u.host_str()
    {
        hosts.push(h.to_owned());
        if let Some(p) = u.port() {
            hosts.push(format!("{h}:{p}"));
        }
    }
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(true)
        .with_sse_keep_alive(None)
        .with_allowed_hosts(hosts);
    let mcp = StreamableHttpService::new(
        move || Ok(TodoServer::new(store.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let mcp_layer = McpLayer::new(&guard, policy()).session_binding(SessionBinding::new());
    Router::new()
        .nest_service("/mcp", mcp)
        .layer(mcp_layer)
        .layer(guard)
}
