//! An agent (MCP authorization pattern 2): calls one tool of an MCP server
//! with its own client credentials, discovering everything from the
//! server's 401, and stepping up once on a 403 `insufficient_scope`.
//!
//! ```text
//! AGENT_CLIENT_ID=todo-agent AGENT_CLIENT_SECRET=… \
//!   cargo run --example agent -- http://127.0.0.1:3000/mcp whoami
//! cargo run --example agent -- http://127.0.0.1:3000/mcp add_todo '{"title":"milk"}'
//! ```
//!
//! Against `cargo run --example todo_server` (development mode prints the
//! client id and secret of its embedded issuer) or any MCP server whose
//! authorization server grants this client `client_credentials`. It prints
//! the tool's result as JSON. The MCP client is rmcp's streamable HTTP
//! client; the token goes in through its `auth_header` setting.

use std::error::Error;

use mcp_resource_guard::client::{AccessToken, AuthorizedClient};
use mcp_resource_guard::introspection::ClientAuth;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::service::ServiceError;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::{
    InsufficientScopeError, StreamableHttpClientTransportConfig,
};

/// The `WWW-Authenticate` of a 403 `insufficient_scope` behind an rmcp error.
fn insufficient_scope(e: &ServiceError) -> Option<String> {
    // The transport's own error sits in `TransportSend`; walk its sources.
    let ServiceError::TransportSend(t) = e else {
        return None;
    };
    let mut source: Option<&(dyn Error + 'static)> = Some(t.error.as_ref());
    while let Some(s) = source {
        if let Some(i) = s.downcast_ref::<InsufficientScopeError>() {
            return Some(i.www_authenticate_header.clone());
        }
        source = s.source();
    }
    None
}

async fn call(
    url: &str,
    token: &AccessToken,
    params: CallToolRequestParams,
) -> Result<serde_json::Value, ServiceError> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned())
            .auth_header(token.secret().to_owned()),
    );
    let client = ClientConfig::default()
        .serve(transport)
        .await
        .map_err(|e| ServiceError::Cancelled {
            reason: Some(format!("could not connect: {e}")),
        })?;
    let result = client.call_tool(params).await;
    let _ = client.cancel().await;
    Ok(serde_json::to_value(result?).unwrap_or_default())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(tool)) = (args.next(), args.next()) else {
        return Err("usage: agent <MCP URL> <tool> [json arguments]".into());
    };
    let arguments = match args.next() {
        Some(json) => match serde_json::from_str::<serde_json::Value>(&json)? {
            serde_json::Value::Object(map) => Some(map),
            _ => return Err("the arguments must be a JSON object".into()),
        },
        None => None,
    };
    let id = std::env::var("AGENT_CLIENT_ID").map_err(|_| "set AGENT_CLIENT_ID")?;
    let secret = std::env::var("AGENT_CLIENT_SECRET").map_err(|_| "set AGENT_CLIENT_SECRET")?;
    let agent = AuthorizedClient::new(ClientAuth::client_secret_basic(id, secret))?;

    // 401 → resource_metadata → the authorization server → a token for
    // this resource with the challenge's scopes.
    let mut token = agent.token_for(&url).await?;
    let mut params = CallToolRequestParams::new(tool);
    if let Some(a) = arguments {
        params = params.with_arguments(a);
    }
    let result = match call(&url, &token, params.clone()).await {
        Err(e) => match insufficient_scope(&e) {
            // One step-up to the union of held and needed scopes.
            Some(www) => {
                token = agent.step_up(&url, &www).await?;
                call(&url, &token, params).await?
            }
            None => return Err(e.into()),
        },
        Ok(r) => r,
    };
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
