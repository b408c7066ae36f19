//! An rmcp server (streamable HTTP, both wires) with no auth of its own, for
//! the guard proxy to protect. Usage: `rmcp-upstream PORT EXECUTED_LOG`.
//! Every tool, resource and prompt it executes is appended to
//! EXECUTED_LOG as a JSON line (see the library, `src/lib.rs`).

use std::sync::Arc;

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: rmcp-upstream PORT EXECUTED_LOG";
    let port: u16 = args.next().ok_or(usage)?.parse()?;
    let log = rmcp_upstream::Log::file(args.next().ok_or(usage)?);
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(true)
        .with_sse_keep_alive(None)
        .with_allowed_hosts(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]);
    let service = StreamableHttpService::new(
        move || {
            Ok(rmcp_upstream::Upstream::new(
                log.clone(),
                rmcp_upstream::subject_header,
            ))
        },
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let app = axum::Router::new().route_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("rmcp-upstream listening on {port}");
    axum::serve(listener, app).await?;
    Ok(())
}
