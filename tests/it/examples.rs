//! The examples, run as users run them: each binary (built by `cargo test`)
//! in development mode, its printed `curl` tokens used as printed, and
//! against a real issuer (`MCP_ISSUER`, found by discovery), over TCP.

use http::StatusCode;
use mcp_resource_guard::testing::TestIssuer;
use serde_json::{Value, json};

use crate::common::free_port;

/// A running example: its URL base and what it printed before listening.
pub(crate) struct Example {
    _child: tokio::process::Child,
    pub(crate) base: String,
    printed: String,
}

/// Starts `examples/<name>` on a free port with `env`; `MCP_ISSUER` unset
/// unless `env` sets it (development mode).
pub(crate) async fn start(name: &str, path: &str, env: &[(&str, &str)]) -> Example {
    use tokio::io::AsyncBufReadExt;
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut cmd = tokio::process::Command::new(bin);
    cmd.env("MCP_RESOURCE", format!("{base}{path}"))
        .env("MCP_BIND", format!("127.0.0.1:{port}"))
        .env_remove("MCP_ISSUER")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .expect("the example binary (cargo test builds it)");
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Ok(Some(l)) = out.next_line().await {
            if l.starts_with("listening on") {
                return;
            }
            printed.push_str(&l);
            printed.push('\n');
        }
        panic!("{name} exited:\n{printed}");
    })
    .await
    .expect("the example starts");
    Example {
        _child: child,
        base,
        printed,
    }
}

/// The tokens the example printed, in order.
fn printed_tokens(printed: &str) -> Vec<String> {
    let mut tokens: Vec<String> = printed
        .split("Bearer ")
        .skip(1)
        .map(|s| s.split('\'').next().unwrap().to_owned())
        .collect();
    tokens.dedup();
    tokens
}

async fn send(method: &str, url: &str, token: Option<&str>) -> (StatusCode, String, String) {
    let mut req = reqwest::Client::new().request(method.parse().unwrap(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    reply(req.body("milk")).await
}

/// Sends `req`: the status, the `WWW-Authenticate` value and the body.
async fn reply(req: reqwest::RequestBuilder) -> (StatusCode, String, String) {
    let res = req.send().await.unwrap();
    let status = res.status();
    let www = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, www.unwrap_or_default(), res.text().await.unwrap())
}

/// The 401 challenge of a resource at `resource` (the metadata URL with
/// its path inserted) asking for `scope`.
fn challenge(resource: &str, scope: &str) -> String {
    format!(
        "Bearer resource_metadata=\"{}\", scope=\"{scope}\"",
        metadata_url(resource)
    )
}

/// The 403 step-up challenge of a resource at `resource` for `scope`.
fn step_up(resource: &str, scope: &str) -> String {
    format!(
        "Bearer error=\"insufficient_scope\", error_description=\"The access token lacks a scope this request needs\", resource_metadata=\"{}\", scope=\"{scope}\"",
        metadata_url(resource)
    )
}

fn metadata_url(resource: &str) -> String {
    let url = url::Url::parse(resource).unwrap();
    let path = url.path().trim_end_matches('/');
    format!(
        "{}/.well-known/oauth-protected-resource{path}",
        url.origin().ascii_serialization()
    )
}

/// The example serves RFC 9728 metadata naming `resource`.
async fn assert_metadata_names(resource: &str) {
    let (status, _, body) = send("GET", &metadata_url(resource), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["resource"],
        resource
    );
}

#[tokio::test]
async fn axum_basic_in_development_mode_behaves_as_printed() {
    let ex = start("axum_basic", "", &[]).await;
    let base = &ex.base;
    let [rw, ro] = <[String; 2]>::try_from(printed_tokens(&ex.printed)).unwrap();
    assert_eq!(
        send("GET", &format!("{base}/public"), None).await.0,
        StatusCode::OK
    );
    let (status, www, _) = send("GET", &format!("{base}/me"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(www, challenge(base, "todo:read todo:write"));
    let (status, _, body) = send("GET", &format!("{base}/me"), Some(&ro)).await;
    assert_eq!(status, StatusCode::OK);
    let me: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (me["sub"].as_str(), me["client_id"].as_str()),
        (Some("bob"), Some("bob"))
    );
    let (status, www, _) = send("POST", &format!("{base}/todos"), Some(&ro)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(www, step_up(base, "todo:write"));
    let (status, _, body) = send("POST", &format!("{base}/todos"), Some(&rw)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"created": "milk", "by": "alice"})
    );
    assert_metadata_names(base).await;
    // `route_layer` keeps unknown paths a 404.
    assert_eq!(
        send("GET", &format!("{base}/nope"), None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn hyper_basic_trusts_a_discovered_issuer() {
    let dev = TestIssuer::start().await.unwrap();
    let ex = start("hyper_basic", "", &[("MCP_ISSUER", dev.issuer())]).await;
    let base = &ex.base;
    assert!(
        ex.printed.is_empty(),
        "no development output: {}",
        ex.printed
    );
    let rw = dev.token("alice", base, "todo:read todo:write");
    let ro = dev.token("bob", base, "todo:read");
    let (status, www, _) = send("GET", &format!("{base}/me"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(www, challenge(base, "todo:read todo:write"));
    let (status, _, body) = send("GET", &format!("{base}/me"), Some(&rw)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "hello alice\n"));
    assert_eq!(
        send("POST", &format!("{base}/todos"), Some(&rw)).await.0,
        StatusCode::CREATED
    );
    let (status, www, _) = send("POST", &format!("{base}/todos"), Some(&ro)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(www, step_up(base, "todo:write"));
    // A token for another resource.
    let other = dev.token(
        "alice",
        "https://elsewhere.example.com",
        "todo:read todo:write",
    );
    assert_eq!(
        send("GET", &format!("{base}/me"), Some(&other)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_metadata_names(base).await;
}

/// A stateless `tools/call` (MCP `2026-07-28`), as the example's printed
/// `curl` sends it.
async fn call_tool(url: &str, token: &str, tool: &str) -> (StatusCode, String, String) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": tool, "arguments": {"title": "milk"},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}});
    let req = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .json(&body);
    reply(req).await
}

#[tokio::test]
async fn todo_server_in_development_mode_behaves_as_printed() {
    let ex = start("todo_server", "/mcp", &[]).await;
    let url = format!("{}/mcp", ex.base);
    let [rw, ro] = <[String; 2]>::try_from(printed_tokens(&ex.printed)).unwrap();
    let (status, _, body) = call_tool(&url, &rw, "add_todo").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(r#""text":"milk""#), "{body}");
    let (status, _, body) = call_tool(&url, &ro, "whoami").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(r#"Some(\"bob\")"#), "{body}");
    let (status, www, body) = call_tool(&url, &ro, "add_todo").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(www, step_up(&url, "todo:write"));
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -31403,
               "message": "The access token lacks a scope this request needs"}})
    );
    // A tool the server does not have is denied by the policy.
    let (status, _, _) = call_tool(&url, &rw, "delete_everything").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn todo_server_trusts_a_discovered_issuer() {
    let dev = TestIssuer::start().await.unwrap();
    let ex = start("todo_server", "/mcp", &[("MCP_ISSUER", dev.issuer())]).await;
    let url = format!("{}/mcp", ex.base);
    let (status, _, body) = call_tool(
        &url,
        &dev.token("carol", &url, "todo:read todo:write"),
        "add_todo",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Without todo:read (every MCP request needs it).
    let (status, www, _) =
        call_tool(&url, &dev.token("carol", &url, "todo:write"), "add_todo").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(www, step_up(&url, "todo:read"));
}
