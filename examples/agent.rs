//! An agent (MCP authorization pattern 2): calls one tool of an MCP server
//! with its own client credentials, discovering everything from the
//! server's 401, and stepping up once on a 403 `insufficient_scope`.
//!
//! ```text
//! AGENT_ISSUER=http://127.0.0.1:3000/issuer AGENT_CLIENT_ID=todo-agent AGENT_CLIENT_SECRET=… \
//!   cargo run --all-features --example agent -- http://127.0.0.1:3000/mcp whoami
//! cargo run --all-features --example agent -- http://127.0.0.1:3000/mcp add_todo '{"title":"milk"}'
//! ```
//!
//! `AGENT_ISSUER` lists (comma-separated) the authorization servers the
//! client is registered at: the secret goes to no other, whatever the MCP
//! server's metadata names. Against any MCP server whose authorization
//! server grants this client `client_credentials` (the interop suite's
//! `cargo run -p interop-harness --bin todo_server` prints a ready command).
//! It prints the tool's result as JSON. The MCP client is rmcp's; the token
//! goes in through its `auth_header` setting.

use std::error::Error;

use mcp_resource_guard::client::{AccessToken, AuthorizedClient, Grant, TrustedIssuers};
use mcp_resource_guard::introspection::ClientAuth;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::service::{ClientInitializeError, ServiceError};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::{
    AuthRequiredError, InsufficientScopeError, StreamableHttpClientTransportConfig,
};

/// What the server's challenge asked for, found behind an rmcp error.
enum Challenge {
    /// A 401: no token, or not one it takes.
    Unauthorized(String),
    /// A 403 `insufficient_scope`.
    InsufficientScope(String),
}

fn challenge(e: &(dyn Error + 'static)) -> Option<Challenge> {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(a) = s.downcast_ref::<AuthRequiredError>() {
            return Some(Challenge::Unauthorized(a.www_authenticate_header.clone()));
        }
        if let Some(i) = s.downcast_ref::<InsufficientScopeError>() {
            return Some(Challenge::InsufficientScope(
                i.www_authenticate_header.clone(),
            ));
        }
        // rmcp keeps the transport's own error out of `source()` here.
        source = match (
            s.downcast_ref::<ServiceError>(),
            s.downcast_ref::<ClientInitializeError>(),
        ) {
            (Some(ServiceError::TransportSend(t)), _) => Some(t.error.as_ref()),
            (_, Some(ClientInitializeError::TransportError { error, .. })) => Some(error),
            _ => s.source(),
        };
    }
    None
}

/// Connects (initialize), calls the tool, disconnects.
async fn call(
    url: &str,
    token: Option<&AccessToken>,
    params: CallToolRequestParams,
) -> Result<serde_json::Value, Box<dyn Error>> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    if let Some(t) = token {
        config = config.auth_header(t.secret().to_owned());
    }
    let client = ClientConfig::default()
        .serve(StreamableHttpClientTransport::from_config(config))
        .await?;
    let result = client.call_tool(params).await;
    let _ = client.cancel().await;
    Ok(serde_json::to_value(result?)?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(tool)) = (args.next(), args.next()) else {
        return Err("usage: agent <MCP URL> <tool> [json arguments]".into());
    };
    let mut params = CallToolRequestParams::new(tool);
    if let Some(json) = args.next() {
        params = params.with_arguments(serde_json::from_str(&json)?);
    }
    let env = |name: &str| std::env::var(name).map_err(|_| format!("set {name}"));
    // Where the secret may go: the issuers it was registered at, only.
    let trusted = TrustedIssuers::parse(&env("AGENT_ISSUER")?)?;
    let auth =
        ClientAuth::client_secret_basic(env("AGENT_CLIENT_ID")?, env("AGENT_CLIENT_SECRET")?);
    let agent = AuthorizedClient::builder(Grant::client_credentials(auth))
        .trusted_issuers(trusted)
        .build()?;
    // The MCP request itself gets the 401 that discovery starts from; one
    // step-up on a 403 to the union of held and needed scopes.
    let (mut token, mut stepped_up) = (None, false);
    let result = loop {
        let e = match call(&url, token.as_ref(), params.clone()).await {
            Ok(r) => break r,
            Err(e) => e,
        };
        match (challenge(e.as_ref()), &token) {
            (Some(Challenge::Unauthorized(www)), None) => {
                token = Some(agent.token_for(&url, Some(&www)).await?);
            }
            (Some(Challenge::InsufficientScope(www)), Some(_)) if !stepped_up => {
                token = Some(agent.step_up(&url, &www).await?);
                stepped_up = true;
            }
            _ => return Err(e),
        }
    };
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
