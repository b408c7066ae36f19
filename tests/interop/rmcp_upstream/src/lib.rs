//! The rmcp server of the differential harness: the todo tools, a public
//! and a secret resource space (a concrete resource and a template each,
//! resolved the way a Rust server reading files would: the URL's path, as
//! the `url` crate parses it), and two prompts. It logs everything it
//! executes, with the session, the session's owner (the subject of its
//! `initialize`) and the subject it served (the proxy's identity header).
//!
//! The library of the `rmcp-upstream` binary (behind the guard proxy) and
//! of the main crate's in-process differential test (behind `McpLayer`,
//! a dev-dependency: this crate does not depend on the main one).

use std::sync::{Arc, Mutex};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, GetPromptRequestParams, GetPromptResponse, GetPromptResult,
    Implementation, InitializeRequestParams, InitializeResult, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams, Prompt,
    PromptMessage, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, Role, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde_json::{Value, json};

/// Where executions are recorded: a JSON-lines file, or memory.
#[derive(Clone)]
pub enum Log {
    File(Arc<str>),
    Memory(Arc<Mutex<Vec<Value>>>),
}

impl Log {
    pub fn file(path: impl Into<String>) -> Self {
        Self::File(path.into().into())
    }

    fn push(&self, line: Value) {
        match self {
            Self::File(path) => {
                use std::io::Write;
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&**path)
                {
                    let _ = writeln!(f, "{line}");
                }
            }
            Self::Memory(lines) => lines.lock().unwrap_or_else(|p| p.into_inner()).push(line),
        }
    }
}

/// Who a request is for: the proxy's identity header, or (in process) the
/// guard's context in the request's extensions.
pub type SubjectOf = fn(&http::request::Parts) -> Option<String>;

/// The proxy's identity header.
pub fn subject_header(parts: &http::request::Parts) -> Option<String> {
    header(Some(parts), "x-mcp-subject").map(str::to_owned)
}

/// One session's server (rmcp makes one per session, and one per request
/// on the stateless wire).
#[derive(Clone)]
pub struct Upstream {
    log: Log,
    subject_of: SubjectOf,
    /// The subject whose `initialize` created this session.
    owner: Arc<Mutex<Option<String>>>,
    tool_router: ToolRouter<Self>,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct AddTodo {
    title: String,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct DeleteTodo {
    id: u64,
}

fn header<'a>(parts: Option<&'a http::request::Parts>, name: &str) -> Option<&'a str> {
    parts?.headers.get(name)?.to_str().ok()
}

impl Upstream {
    fn executed(&self, context: &RequestContext<RoleServer>, what: Value) {
        let parts = context.extensions.get::<http::request::Parts>();
        let mut line = what;
        line["session"] = json!(header(parts, "mcp-session-id"));
        line["owner"] = json!(*self.owner.lock().unwrap_or_else(|p| p.into_inner()));
        line["subject"] = json!(parts.and_then(self.subject_of));
        self.log.push(line);
    }

    fn text(value: Value) -> Result<CallToolResult, McpError> {
        Ok(CallToolResult::success(vec![ContentBlock::text(
            value.to_string(),
        )]))
    }
}

#[tool_router]
impl Upstream {
    pub fn new(log: Log, subject_of: SubjectOf) -> Self {
        Self {
            log,
            subject_of,
            owner: Arc::default(),
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Who is calling, as the proxy says")]
    async fn whoami(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.executed(&context, json!({"tool": "whoami", "arguments": {}}));
        let parts = context.extensions.get::<http::request::Parts>();
        Self::text(json!({"sub": parts.and_then(self.subject_of)}))
    }

    #[tool(description = "List the to-do items")]
    async fn list_todos(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.executed(&context, json!({"tool": "list_todos", "arguments": {}}));
        Self::text(json!([]))
    }

    #[tool(description = "Add a to-do item")]
    async fn add_todo(
        &self,
        Parameters(AddTodo { title }): Parameters<AddTodo>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.executed(
            &context,
            json!({"tool": "add_todo", "arguments": {"title": title}}),
        );
        Self::text(json!({"title": title}))
    }

    #[tool(description = "Delete one of your to-do items")]
    async fn delete_todo(
        &self,
        Parameters(DeleteTodo { id }): Parameters<DeleteTodo>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.executed(
            &context,
            json!({"tool": "delete_todo", "arguments": {"id": id}}),
        );
        Self::text(json!({"deleted": false}))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Upstream {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_prompts()
                .build(),
        )
        .with_server_info(Implementation::new("rmcp-upstream", "1.0.0"))
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        let parts = context.extensions.get::<http::request::Parts>();
        *self.owner.lock().unwrap_or_else(|p| p.into_inner()) = parts.and_then(self.subject_of);
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    async fn list_resources(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(
            ["public", "secret"]
                .iter()
                .map(|s| Resource::new(format!("file:///{s}/a"), format!("{s}-a")))
                .collect(),
        ))
    }

    async fn list_resource_templates(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(
            ["public", "secret"]
                .iter()
                .map(|s| ResourceTemplate::new(format!("file:///{s}/{{name}}"), format!("{s}-any")))
                .collect(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        // As a Rust server reading files would: the path of the URL.
        let not_found = || McpError::resource_not_found("no such resource", None);
        let url = url::Url::parse(&request.uri).map_err(|_| not_found())?;
        if url.scheme() != "file" || url.host_str().is_some_and(|h| !h.is_empty()) {
            return Err(not_found());
        }
        let path = url.path();
        let (space, name) = path
            .strip_prefix("/public/")
            .map(|n| ("public", n))
            .or_else(|| path.strip_prefix("/secret/").map(|n| ("secret", n)))
            .ok_or_else(not_found)?;
        self.executed(
            &context,
            json!({"resource": format!("file:///{space}/{name}")}),
        );
        Ok(ReadResourceResponse::Complete(ReadResourceResult::new(
            vec![ResourceContents::text(
                format!("{space} {name}"),
                request.uri,
            )],
        )))
    }

    async fn list_prompts(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(vec![
            Prompt::new("hello", Some("A greeting"), None),
            Prompt::new("secret_prompt", Some("Secret"), None),
        ]))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        if !matches!(request.name.as_str(), "hello" | "secret_prompt") {
            return Err(McpError::invalid_params("no such prompt", None));
        }
        self.executed(&context, json!({"prompt": request.name}));
        Ok(GetPromptResponse::Complete(GetPromptResult::new(vec![
            PromptMessage::new_text(Role::User, "hello"),
        ])))
    }
}
