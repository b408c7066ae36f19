//! The interop suite's todo server: per-tool scopes, step-up, bounded
//! bodies, session binding and identity inside tools, driven by rmcp's own
//! client and by raw HTTP; the conformance kit on it; a fleet of its binary
//! sharing a real `redis-server`.

mod fleet;
// The main crate's tests start `redis-server` the same way.
use test_support::{free_port, redis_server};

use interop_harness as example;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use mcp_resource_guard::testing::TestIssuer;
use mcp_resource_guard::testing::conformance::{Call, Conformance};
use mcp_resource_guard::{Issuer, TypPolicy};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig, ProtocolVersion};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const RESOURCE: &str = "http://127.0.0.1:3000/mcp";
const METADATA: &str = "http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp";

struct Dev(TestIssuer);

impl Dev {
    fn token(&self, aud: &str, sub: &str, scope: &str) -> String {
        self.0.token(sub, aud, scope)
    }
}

async fn setup(resource: &str) -> (Router, Dev) {
    let dev = TestIssuer::start().await.unwrap();
    let issuer = mcp_resource_guard::Issuer::new(dev.issuer()).jwks_uri(dev.jwks_uri());
    let guard = example::guard(resource, issuer, TypPolicy::AccessTokenOnly).unwrap();
    (example::app(guard, example::Store::default()), Dev(dev))
}

struct Reply {
    status: StatusCode,
    www: String,
    session: Option<String>,
    body: String,
}

async fn post(app: &Router, token: Option<&str>, session: Option<&str>, body: Vec<u8>) -> Reply {
    let mut b = Request::post("/mcp")
        .header("host", "127.0.0.1:3000")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    if let Some(s) = session {
        b = b.header("mcp-session-id", s);
    }
    let res = app
        .clone()
        .oneshot(b.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let header = |n: &str| res.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
    let www = header("www-authenticate").unwrap_or_default();
    let session = header("mcp-session-id");
    let body =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    Reply {
        status,
        www,
        session,
        body,
    }
}

fn call(tool: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": args}})
}

fn initialize() -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw-test", "version": "1"}}})
    .to_string()
    .into_bytes()
}

fn insufficient(scope: &str) -> String {
    format!(
        "Bearer error=\"insufficient_scope\", error_description=\"The access token lacks a scope this request needs\", resource_metadata=\"{METADATA}\", scope=\"{scope}\""
    )
}

#[tokio::test]
async fn rmcp_client_lists_tools_and_sees_its_identity_inside_whoami() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let (app, dev) = setup(&url).await;
    tokio::spawn(axum::serve(listener, app).into_future());
    let token = dev.token(&url, "alice", "todo:read todo:write");
    for version in [ProtocolVersion::LATEST, ProtocolVersion::V_2025_06_18] {
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(url.clone()).auth_header(token.clone()),
        );
        let client = ClientConfig::default()
            .with_protocol_version(version.clone())
            .serve(transport)
            .await
            .unwrap();
        let tools: Vec<String> = client
            .list_all_tools()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        for t in ["whoami", "list_todos", "add_todo", "delete_todo"] {
            assert!(tools.contains(&t.to_owned()), "{version:?}: {tools:?}");
        }
        let who = client
            .call_tool(CallToolRequestParams::new("whoami"))
            .await
            .unwrap();
        let text = serde_json::to_value(&who.content).unwrap()[0]["text"]
            .as_str()
            .unwrap()
            .to_owned();
        let who: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            who,
            json!({"sub": "alice", "client_id": "alice", "scopes": ["todo:read", "todo:write"]})
        );
        let added = client
            .call_tool(
                CallToolRequestParams::new("add_todo")
                    .with_arguments(json!({"title": "milk"}).as_object().unwrap().clone()),
            )
            .await
            .unwrap();
        let text = serde_json::to_value(&added.content).unwrap()[0]["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap()["owner"],
            "alice"
        );
        // delete_todo needs todo:delete: the client sees the call fail.
        let denied = client
            .call_tool(
                CallToolRequestParams::new("delete_todo")
                    .with_arguments(json!({"id": 1}).as_object().unwrap().clone()),
            )
            .await;
        assert!(denied.is_err(), "{version:?}: {denied:?}");
        let _ = client.cancel().await;
    }
    // Without a token the client cannot even connect.
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.clone()),
    );
    assert!(ClientConfig::default().serve(transport).await.is_err());
}

#[tokio::test]
async fn a_disallowed_tool_gets_403_with_the_step_up_challenge() {
    let (app, dev) = setup(RESOURCE).await;
    let rw = dev.token(RESOURCE, "alice", "todo:read todo:write");
    let r = post(
        &app,
        Some(&rw),
        None,
        call("delete_todo", json!({"id": 1}))
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Needed: the scope every request needs, this call's, then what the token keeps.
    assert_eq!(r.www, insufficient("todo:read todo:delete todo:write"));
    assert_eq!(
        serde_json::from_str::<Value>(&r.body).unwrap(),
        json!({"jsonrpc": "2.0", "id": 7, "error": {"code": -31403, "message": "The access token lacks a scope this request needs"}})
    );
    let ro = dev.token(RESOURCE, "bob", "todo:read");
    let r = post(
        &app,
        Some(&ro),
        None,
        call("add_todo", json!({"title": "x"}))
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.www, insufficient("todo:read todo:write"));
    // Without todo:read nothing passes, and the 401 says todo:read.
    let none = dev.token(RESOURCE, "carol", "profile");
    let r = post(&app, Some(&none), None, initialize()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.www, insufficient("todo:read"));
    let r = post(&app, None, None, initialize()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.www,
        format!("Bearer resource_metadata=\"{METADATA}\", scope=\"todo:read\"")
    );
}

#[tokio::test]
async fn a_batch_with_one_disallowed_call_is_refused_whole() {
    let (app, dev) = setup(RESOURCE).await;
    let ro = dev.token(RESOURCE, "bob", "todo:read");
    let batch = json!([
        call("list_todos", json!({})),
        call("delete_todo", json!({"id": 1}))
    ]);
    let r = post(&app, Some(&ro), None, batch.to_string().into_bytes()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.www, insufficient("todo:read todo:delete"));
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413() {
    let (app, dev) = setup(RESOURCE).await;
    let t = dev.token(RESOURCE, "alice", "todo:read todo:write");
    let big = call("add_todo", json!({"title": "x".repeat(5 * 1024 * 1024)}))
        .to_string()
        .into_bytes();
    let r = post(&app, Some(&t), None, big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        serde_json::from_str::<Value>(&r.body).unwrap(),
        json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "The request body exceeds the size limit"}})
    );
    // Without a Content-Length (streamed), the limit still holds.
    let stream = futures_body(vec![
        vec![b' '; 3 * 1024 * 1024],
        vec![b' '; 2 * 1024 * 1024],
    ]);
    let req = Request::post("/mcp")
        .header("host", "127.0.0.1:3000")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {t}"))
        .body(stream)
        .unwrap();
    assert_eq!(
        app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

/// A body streamed in chunks, with no Content-Length.
fn futures_body(chunks: Vec<Vec<u8>>) -> Body {
    Body::new(Chunks(chunks.into_iter()))
}

struct Chunks(std::vec::IntoIter<Vec<u8>>);

impl http_body::Body for Chunks {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        std::task::Poll::Ready(
            self.0
                .next()
                .map(|c| Ok(http_body::Frame::data(bytes::Bytes::from(c)))),
        )
    }
}

#[tokio::test]
async fn invalid_json_is_refused_by_the_layer_before_the_mcp_server() {
    let (app, dev) = setup(RESOURCE).await;
    let t = dev.token(RESOURCE, "alice", "todo:read todo:write");
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend(
        call("add_todo", json!({"title": "bom"}))
            .to_string()
            .into_bytes(),
    );
    for body in [b"{\"jsonrpc\": \"2.0\", oops".to_vec(), bom] {
        let r = post(&app, Some(&t), None, body).await;
        assert!(r.www.is_empty(), "{}", r.www);
        // The layer's JSON-RPC parse error, not rmcp's own answer (415).
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert_eq!(
            serde_json::from_str::<Value>(&r.body).unwrap(),
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "Parse error"}})
        );
    }
}

#[tokio::test]
async fn a_session_reused_by_another_subject_is_rejected() {
    let (app, dev) = setup(RESOURCE).await;
    let alice = dev.token(RESOURCE, "alice", "todo:read todo:write");
    let mallory = dev.token(RESOURCE, "mallory", "todo:read todo:write");
    let r = post(&app, Some(&alice), None, initialize()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let session = r.session.expect("the server issues a session id");
    let list = call("list_todos", json!({})).to_string().into_bytes();
    let r = post(&app, Some(&mallory), Some(&session), list.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        serde_json::from_str::<Value>(&r.body).unwrap(),
        json!({"jsonrpc": "2.0", "id": 7, "error": {"code": -31403, "message": "This MCP session belongs to another principal"}})
    );
    // Its owner may use it.
    let r = post(&app, Some(&alice), Some(&session), list).await;
    assert_ne!(r.status, StatusCode::FORBIDDEN);
    // A DELETE (session end) by another principal is refused too.
    let req = Request::delete("/mcp")
        .header("host", "127.0.0.1:3000")
        .header("authorization", format!("Bearer {mallory}"))
        .header("mcp-session-id", &session)
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn get_and_delete_follow_the_stream_rule() {
    let (app, dev) = setup(RESOURCE).await;
    let none = dev.token(RESOURCE, "carol", "profile");
    let req = Request::get("/mcp")
        .header("host", "127.0.0.1:3000")
        .header("accept", "text/event-stream")
        .header("authorization", format!("Bearer {none}"))
        .body(Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        res.headers()["www-authenticate"],
        insufficient("todo:read").as_str()
    );
}

/// A stateless (`2026-07-28`) tool call, as the dev-mode curl sends it; the
/// tool's text result, parsed.
async fn stateless_call(app: &Router, token: &str, tool: &str, args: Value) -> (StatusCode, Value) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": tool, "arguments": args,
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}});
    let req = Request::post("/mcp")
        .header("host", "127.0.0.1:3000")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(body.to_string()))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let json = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or(&text);
    let reply: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    let result = reply["result"]["content"][0]["text"]
        .as_str()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(reply);
    (status, result)
}

#[tokio::test]
async fn delete_todo_only_deletes_the_callers_own_items() {
    let (app, dev) = setup(RESOURCE).await;
    let all = "todo:read todo:write todo:delete";
    let alice = dev.token(RESOURCE, "alice", all);
    let bob = dev.token(RESOURCE, "bob", all);
    let (status, added) = stateless_call(&app, &alice, "add_todo", json!({"title": "milk"})).await;
    assert_eq!(status, StatusCode::OK);
    let id = added["id"].clone();
    assert_eq!(added["owner"], "alice");
    let (_, r) = stateless_call(&app, &bob, "delete_todo", json!({"id": id})).await;
    assert_eq!(r, json!({"deleted": false}));
    let (_, list) = stateless_call(&app, &alice, "list_todos", json!({})).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, r) = stateless_call(&app, &alice, "delete_todo", json!({"id": id})).await;
    assert_eq!(r, json!({"deleted": true}));
    let (_, list) = stateless_call(&app, &alice, "list_todos", json!({})).await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn tools_and_methods_the_server_does_not_have_are_denied() {
    let (app, dev) = setup(RESOURCE).await;
    let all = dev.token(RESOURCE, "alice", "todo:read todo:write todo:delete");
    for body in [
        call("drop_tables", json!({})),
        json!({"jsonrpc": "2.0", "id": 2, "method": "logging/setLevel", "params": {"level": "debug"}}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "sampling/createMessage", "params": {}}),
    ] {
        let r = post(&app, Some(&all), None, body.to_string().into_bytes()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{body}");
        assert!(r.www.is_empty(), "no scope would help: {}", r.www);
        // A JSON-RPC error answering the request: MCP clients read it as
        // the call's error.
        assert_eq!(
            serde_json::from_str::<Value>(&r.body).unwrap(),
            json!({"jsonrpc": "2.0", "id": body["id"], "error": {"code": -31403, "message": "The server's policy does not allow this request"}})
        );
    }
}

/// The server's binary (cargo builds it for this package's tests).
fn example_binary() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_todo_server").into()
}

/// Starts the example against `issuer` with `env`; its stderr lines arrive
/// on the returned channel.
pub(crate) async fn spawn_example(
    issuer: &str,
    env: &[(&str, &str)],
) -> (
    tokio::process::Child,
    String,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    use tokio::io::AsyncBufReadExt;
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let mut cmd = tokio::process::Command::new(example_binary());
    cmd.env("MCP_ISSUER", issuer)
        .env("MCP_RESOURCE", &url)
        .env("MCP_BIND", format!("127.0.0.1:{port}"))
        .env_remove("RUST_LOG")
        .env_remove("MCP_TYP_POLICY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .expect("the example binary (cargo test builds it)");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::spawn(async move {
        while let Ok(Some(l)) = lines.next_line().await {
            let _ = tx.send(l);
        }
    });
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Ok(Some(l)) = out.next_line().await {
            if l.starts_with("listening on") {
                break;
            }
        }
    })
    .await
    .expect("the example starts");
    (child, url, rx)
}

async fn whoami_over_http(url: &str, token: &str) -> reqwest::Response {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "whoami", "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}});
    reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "whoami")
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_example_logs_why_it_refused_a_token_and_takes_mcp_typ_policy() {
    let dev = TestIssuer::start().await.unwrap();
    let (mut child, url, mut stderr) = spawn_example(dev.issuer(), &[]).await;
    // A Keycloak-style token: `typ: JWT`.
    let jwt = dev.mint_with_typ(
        Some("JWT"),
        &json!({"sub": "alice", "aud": url, "scope": "todo:read"}),
    );
    let res = whoami_over_http(&url, &jwt).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let why = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let line = stderr.recv().await.expect("the example's stderr");
            assert!(!line.contains(&jwt[20..60]), "a token was logged: {line}");
            if line.contains("mcp_resource_guard::audit") && line.contains("deny") {
                return line;
            }
        }
    })
    .await
    .expect("the refusal is logged");
    assert!(why.contains("typ is not at+jwt (see TypPolicy)"), "{why}");
    assert!(why.contains("invalid_token"), "{why}");
    child.kill().await.unwrap();

    let (mut child, url, _stderr) =
        spawn_example(dev.issuer(), &[("MCP_TYP_POLICY", "allow-jwt")]).await;
    let jwt = dev.mint_with_typ(
        Some("JWT"),
        &json!({"sub": "alice", "aud": url, "scope": "todo:read"}),
    );
    let res = whoami_over_http(&url, &jwt).await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(text.contains(r#"\"sub\":\"alice\""#), "{text}");
    child.kill().await.unwrap();
}

#[tokio::test]
async fn the_todo_server_passes_on_the_stateless_wire() {
    let dev = TestIssuer::start().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let url = format!("{base}/mcp");
    let issuer = Issuer::new(dev.issuer()).jwks_uri(dev.jwks_uri());
    let guard = example::guard(&url, issuer, TypPolicy::AccessTokenOnly).unwrap();
    let app = example::app(guard, example::Store::default());
    tokio::spawn(axum::serve(listener, app).into_future());
    let report = Conformance::new(&url, &dev)
        .granted("todo:read")
        .needs_more(Call::mcp_tool("add_todo"), "todo:write")
        .implied("todo:admin", Call::mcp_tool("whoami"))
        .run()
        .await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.checks.len(), 13, "{report}");
}
