//! The proxy's policy file, and the proxy in front of an
//! in-process upstream that records what reaches it (what passes, what is
//! stripped, what is refused before it, streaming, 502/504). The real
//! Python and TypeScript SDK upstreams are in the interop suite.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::IntoResponse;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use mcp_guard_proxy::front::Front;
use mcp_guard_proxy::upstream::PeerAddr;
use mcp_guard_proxy::{app, config, policy};
use mcp_resource_guard::testing::TestIssuer;

use crate::common::{env, write_policy};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::POLICY;
const RESOURCE: &str = "http://127.0.0.1:3000/mcp";

#[test]
fn the_documented_policy_file_is_accepted_as_it_is() {
    let p = policy::parse("todo-policy.toml", POLICY).unwrap();
    assert_eq!(p.file.required_scopes(), ["todo:read"]);
    assert_eq!(
        p.file.scopes_supported(),
        ["todo:read", "todo:write", "todo:delete", "todo:admin"]
    );
    let path = write_policy(POLICY);
    let c = config::parse(
        "(test)",
        "",
        &env(&[
            ("MCP_UPSTREAM", "http://127.0.0.1:8000/mcp"),
            ("MCP_ISSUER", "https://auth.example.com"),
            ("MCP_POLICY", &path),
        ]),
    )
    .unwrap();
    let r = &c.routes[0];
    assert_eq!(r.resource, "http://127.0.0.1:3000/mcp");
    assert_eq!(r.response_timeout, Duration::from_secs(30));
    assert_eq!(r.identity.subject.as_str(), "x-mcp-subject");
}

#[test]
fn malformed_files_unknown_keys_and_bad_values_name_the_line() {
    let cases = [
        // A syntax error.
        ("required = [\"todo:read\"\nscopes_supported = []", "line 2"),
        // An unknown top-level key, and one in a known table.
        (&format!("requird = [\"todo:read\"]\n{POLICY}"), "line 1"),
        (
            &format!("{POLICY}\n[proxy]\nlist_filtr = \"off\"\n"),
            "line 20",
        ),
        // A scope that is not a scope token (even in scopes_supported), or
        // not supported.
        (
            &POLICY.replace(
                "\"todo:admin\"]\ndefault",
                "\"todo:admin\", \"bad scope\"]\ndefault",
            ),
            "line 3",
        ),
        (
            &POLICY.replace("add_todo = [\"todo:write\"]", "add_todo = [\"todo write\"]"),
            "line 16",
        ),
        (
            &POLICY.replace("add_todo = [\"todo:write\"]", "add_todo = [\"todo:wirte\"]"),
            "line 16",
        ),
        (
            &POLICY.replace("default = \"deny\"", "default = \"maybe\""),
            "line 4",
        ),
        (
            &POLICY.replace("\"ping\" = []", "\"ping\" = [\"offline_access\"]"),
            "line 10",
        ),
        (
            &format!("{POLICY}\n[proxy.identity_headers]\nsubject = \"authorization\"\n"),
            "line 20",
        ),
        (
            &format!("{POLICY}\n[proxy]\nresponse_timeout_ms = 0\n"),
            "line 20",
        ),
    ];
    for (text, line) in cases {
        let e = policy::parse("p.toml", text).err().expect(text).to_string();
        assert!(
            e.contains(&format!("{line}:")) || e.contains(&format!("{line},")),
            "{line} not in: {e}"
        );
    }
    assert!(policy::load("/nonexistent/policy.toml").is_err());
}

/// What the upstream received: one entry per request.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(HeaderMap, Bytes)>>>);

impl Seen {
    fn all(&self) -> Vec<(HeaderMap, Bytes)> {
        self.0.lock().unwrap().clone()
    }
}

#[derive(Clone)]
struct Upstream {
    seen: Seen,
    /// The query string of each request the upstream received.
    queries: Arc<Mutex<Vec<Option<String>>>>,
    release: Arc<tokio::sync::Notify>,
}

/// An upstream MCP endpoint: answers `initialize` with a session, lists
/// five tools (one the policy does not know), streams `slow_stream` as SSE
/// in two parts, sleeps on `slow_head`, echoes anything else.
async fn upstream_handler(
    State(u): State<Upstream>,
    uri: http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    u.seen.0.lock().unwrap().push((headers, body.clone()));
    u.queries
        .lock()
        .unwrap()
        .push(uri.query().map(str::to_owned));
    let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = msg["id"].clone();
    match (msg["method"].as_str(), msg["params"]["name"].as_str()) {
        (Some("initialize"), _) => (
            [("mcp-session-id", "session-1"), ("content-type", "application/json"), ("keep-alive", "timeout=5"), ("connection", "x-upstream-private"), ("x-upstream-private", "1")],
            json!({"jsonrpc": "2.0", "id": id, "result": {"protocolVersion": "2025-11-25", "capabilities": {}, "serverInfo": {"name": "up", "version": "1"}}}).to_string(),
        )
            .into_response(),
        (Some("tools/list"), _) => {
            let tools: Vec<Value> = ["whoami", "list_todos", "add_todo", "delete_todo", "drop_database"]
                .iter()
                .map(|n| json!({"name": n, "inputSchema": {"type": "object"}}))
                .collect();
            ([("content-type", "application/json")], json!({"jsonrpc": "2.0", "id": id, "result": {"tools": tools}}).to_string()).into_response()
        }
        (Some("tools/call"), Some("list_todos")) if msg["params"]["arguments"]["stream"] == true => {
            let release = u.release.clone();
            let stream = async_stream(id, release);
            ([("content-type", "text/event-stream")], Body::from_stream(stream)).into_response()
        }
        (Some("tools/call"), Some("list_todos")) if msg["params"]["arguments"]["slow"] == true => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            ([("content-type", "application/json")], "{}").into_response()
        }
        _ => ([("content-type", "application/json")], json!({"jsonrpc": "2.0", "id": id, "result": {"content": []}}).to_string()).into_response(),
    }
}

/// Two SSE events; the second only once the test has seen the first (so a
/// proxy that buffered would never deliver it), 700 ms after it (over the
/// 500 ms response timeout of the test policy: a started stream is not cut).
fn async_stream(
    id: Value,
    release: Arc<tokio::sync::Notify>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tokio::spawn(async move {
        let _ = tx
            .send(Ok(Bytes::from(
                "event: message\ndata: {\"progress\":1}\n\n",
            )))
            .await;
        release.notified().await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        let last = json!({"jsonrpc": "2.0", "id": id, "result": {"content": []}});
        let _ = tx
            .send(Ok(Bytes::from(format!("event: message\ndata: {last}\n\n"))))
            .await;
    });
    tokio_stream_from(rx)
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn start_upstream() -> (String, Upstream) {
    let u = Upstream {
        seen: Seen::default(),
        queries: Arc::default(),
        release: Arc::new(tokio::sync::Notify::new()),
    };
    let app = Router::new()
        .route(
            "/up/mcp",
            axum::routing::post(upstream_handler)
                .get(upstream_handler)
                .delete(upstream_handler),
        )
        .with_state(u.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/up/mcp"), u)
}

struct Setup {
    app: Front,
    dev: TestIssuer,
    up: Upstream,
}

async fn setup(policy_text: &str) -> Setup {
    let (url, up) = start_upstream().await;
    setup_with(policy_text, &url, up).await
}

async fn setup_with(policy_text: &str, upstream_url: &str, up: Upstream) -> Setup {
    let dev = TestIssuer::start().await.unwrap();
    let path = write_policy(policy_text);
    let config = config::parse(
        "(test)",
        "",
        &env(&[
            ("MCP_UPSTREAM", upstream_url),
            ("MCP_ISSUER", dev.issuer()),
            ("MCP_RESOURCE", RESOURCE),
            ("MCP_POLICY", &path),
        ]),
    )
    .unwrap();
    Setup {
        app: app::build(&config).await.unwrap().front,
        dev,
        up,
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

fn stateless(tool: &str, args: Value) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": tool, "arguments": args,
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}});
    (
        vec![
            ("mcp-protocol-version", "2026-07-28".to_owned()),
            ("mcp-method", "tools/call".to_owned()),
            ("mcp-name", tool.to_owned()),
        ],
        body.to_string().into_bytes(),
    )
}

async fn post(app: &Front, token: &str, headers: &[(&str, String)], body: Vec<u8>) -> Reply {
    let mut b = Request::post("/mcp")
        .header("host", "127.0.0.1:3000")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (k, v) in headers {
        b = b.header(*k, v);
    }
    let res = app
        .clone()
        .oneshot(b.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body =
        String::from_utf8_lossy(&res.into_body().collect().await.unwrap().to_bytes()).into_owned();
    Reply {
        status,
        headers,
        body,
    }
}

#[tokio::test]
async fn the_token_never_goes_upstream_the_identity_does_and_hop_by_hop_headers_stop() {
    let s = setup(POLICY).await;
    let token = s.dev.token("alice", RESOURCE, "todo:read");
    let (mut h, body) = stateless("whoami", json!({}));
    // Forged identity, credentials and hop-by-hop headers from the client.
    h.extend([
        ("x-mcp-subject", "root".to_owned()),
        ("x-mcp-scopes", "todo:admin".to_owned()),
        ("dpop", "proof".to_owned()),
        ("cookie", "session=secret".to_owned()),
        ("connection", "keep-alive, TE".to_owned()),
        ("te", "trailers".to_owned()),
        ("proxy-authorization", "Basic Zm9vOmJhcg==".to_owned()),
        ("last-event-id", "ev-9".to_owned()),
        ("accept-encoding", "gzip".to_owned()),
    ]);
    let r = post(&s.app, &token, &h, body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let seen = s.up.seen.all();
    assert_eq!(seen.len(), 1);
    let (up_headers, up_body) = &seen[0];
    assert_eq!(up_body.as_ref(), body.as_slice(), "the exact bytes");
    for gone in [
        "authorization",
        "dpop",
        "cookie",
        "connection",
        "te",
        "proxy-authorization",
        "accept-encoding",
        // The stateless wire has no resumable streams: the layer removes it.
        "last-event-id",
    ] {
        assert!(
            up_headers.get(gone).is_none(),
            "{gone} reached the upstream"
        );
    }
    assert_eq!(up_headers["x-mcp-subject"], "alice");
    assert_eq!(up_headers.get_all("x-mcp-subject").iter().count(), 1);
    assert_eq!(up_headers["x-mcp-scopes"], "todo:read");
    assert_eq!(up_headers["x-mcp-client-id"], "alice");
    assert_eq!(up_headers["x-mcp-issuer"], s.dev.issuer());
    for kept in ["mcp-protocol-version", "mcp-method", "mcp-name"] {
        assert!(up_headers.get(kept).is_some(), "{kept} was not forwarded");
    }
}

#[tokio::test]
async fn glob_patterns_are_tried_in_the_order_the_file_lists_them() {
    // Alphabetically "*" comes first and would open every x_ tool to
    // todo:read; the file lists x_* first, so it decides.
    let text = POLICY.replace(
        "[tools]\n",
        "[tools]\n\"x_*\" = [\"todo:write\"]\n\"*\" = [\"todo:read\"]\n",
    );
    let s = setup(&text).await;
    let token = s.dev.token("alice", RESOURCE, "todo:read");
    let (h, body) = stateless("x_tool", json!({}));
    let r = post(&s.app, &token, &h, body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let (h, body) = stateless("y_tool", json!({}));
    assert_eq!(post(&s.app, &token, &h, body).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_connection_header_naming_an_end_to_end_header_is_refused() {
    let s = setup(POLICY).await;
    let token = s.dev.token("alice", RESOURCE, "todo:read");
    let (mut h, body) = stateless("whoami", json!({}));
    h.push(("connection", String::new()));
    for named in [
        "MCP-Protocol-Version",
        "keep-alive, mcp-protocol-version",
        "Mcp-Session-Id",
        "mcp-method",
        "x-mcp-subject",
        "authorization",
        "dpop",
        "content-type",
        "content-encoding",
        "last-event-id",
        "x-client-private",
    ] {
        h.last_mut().unwrap().1 = named.to_owned();
        let r = post(&s.app, &token, &h, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{named}");
        assert_eq!(
            r.json(),
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32603, "message": "the Connection header names an end-to-end header"}}),
            "{named}"
        );
    }
    assert!(s.up.seen.all().is_empty());
    for fine in ["keep-alive", "close", "Keep-Alive, TE", "upgrade"] {
        h.last_mut().unwrap().1 = fine.to_owned();
        let r = post(&s.app, &token, &h, body.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{fine}: {}", r.body);
    }
}

#[tokio::test]
async fn what_the_layers_did_not_judge_never_goes_upstream() {
    let s = setup(POLICY).await;
    let token = s.dev.token("alice", RESOURCE, "todo:read");
    let (mut h, body) = stateless("whoami", json!({}));
    h.extend([
        ("x-http-method-override", "DELETE".to_owned()),
        ("x-http-method", "DELETE".to_owned()),
        ("x-method-override", "DELETE".to_owned()),
        ("forwarded", "for=10.0.0.1;proto=https".to_owned()),
        ("x-forwarded-for", "10.0.0.1".to_owned()),
        ("x-forwarded-host", "admin.internal".to_owned()),
        ("x-forwarded-proto", "gopher".to_owned()),
        ("x-forwarded-prefix", "/admin".to_owned()),
        ("x-real-ip", "10.0.0.1".to_owned()),
        ("x_mcp_subject", "root".to_owned()),
        ("x_mcp_scopes", "todo:admin".to_owned()),
        ("mcp_session_id", "session-1".to_owned()),
    ]);
    h.retain(|(k, _)| *k != "content-type");
    let req = |query: &str| {
        let mut b = Request::post(format!("/mcp{query}"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "Application/JSON; charset=UTF-8");
        for (k, v) in &h {
            b = b.header(*k, v);
        }
        let mut r = b.body(Body::from(body.clone())).unwrap();
        // The peer's address, as the server gives it.
        let peer: std::net::SocketAddr = "192.0.2.7:40000".parse().unwrap();
        r.extensions_mut().insert(PeerAddr::new(peer));
        r
    };
    let res = s
        .app
        .clone()
        .oneshot(req("?sessionId=abc&x=1"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (up, _) = s.up.seen.all().pop().unwrap();
    for gone in [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "forwarded",
        "x-forwarded-prefix",
        "x-real-ip",
        "x_mcp_subject",
        "x_mcp_scopes",
        "mcp_session_id",
    ] {
        assert!(
            up.get(gone).is_none(),
            "{gone} reached the upstream: {up:?}"
        );
    }
    // The proxy's own, from the peer and its canonical URL (not the client's).
    assert_eq!(up.get_all("x-forwarded-for").iter().count(), 1);
    assert_eq!(up["x-forwarded-for"], "192.0.2.7");
    assert_eq!(up["x-forwarded-proto"], "http");
    assert_eq!(up["x-forwarded-host"], "127.0.0.1:3000");
    assert_eq!(up["x-mcp-subject"], "alice");
    assert_eq!(up.get_all("content-type").iter().count(), 1);
    assert_eq!(up["content-type"], "application/json");
    assert_eq!(s.up.queries.lock().unwrap().pop().unwrap(), None);
    // Allowed by the policy file, the query string passes.
    let open = setup(&format!("{POLICY}\n[proxy]\nforward_query = true\n")).await;
    let token = open.dev.token("alice", RESOURCE, "todo:read");
    let mut r = req("?x=1");
    r.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    assert_eq!(
        open.app.clone().oneshot(r).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        open.up.queries.lock().unwrap().pop().unwrap().as_deref(),
        Some("x=1")
    );
}

#[tokio::test]
async fn only_get_post_and_delete_are_forwarded_and_get_and_delete_without_a_body() {
    let s = setup(POLICY).await;
    let token = s.dev.token("alice", RESOURCE, "todo:read");
    let (_, body) = stateless("whoami", json!({}));
    for method in ["PUT", "PATCH", "post", "OPTIONS"] {
        let req = Request::builder()
            .method(http::Method::from_bytes(method.as_bytes()).unwrap())
            .uri("/mcp")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body.clone()))
            .unwrap();
        let res = s.app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(res.headers()["allow"], "GET, POST, DELETE");
    }
    for method in ["GET", "DELETE"] {
        let req = Request::builder()
            .method(method)
            .uri("/mcp")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body.clone()))
            .unwrap();
        let res = s.app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{method}");
    }
    assert!(s.up.seen.all().is_empty());
}

#[tokio::test]
async fn a_forged_identity_header_is_removed_even_when_the_token_has_no_such_claim() {
    let s = setup(POLICY).await;
    // A client-credentials style token: no `sub`.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = s.dev.mint(&json!({"aud": RESOURCE, "client_id": "agent-7",
        "scope": "todo:read", "iat": now, "exp": now + 300}));
    let (mut h, body) = stateless("whoami", json!({}));
    h.push(("x-mcp-subject", "root".to_owned()));
    let r = post(&s.app, &token, &h, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let seen = s.up.seen.all();
    assert!(seen[0].0.get("x-mcp-subject").is_none(), "{:?}", seen[0].0);
    assert_eq!(seen[0].0["x-mcp-client-id"], "agent-7");
}

#[tokio::test]
async fn sessions_pass_and_are_bound_to_their_caller_and_response_hop_by_hop_headers_stop() {
    let s = setup(POLICY).await;
    let alice = s.dev.token("alice", RESOURCE, "todo:read");
    let mallory = s.dev.token("mallory", RESOURCE, "todo:read");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let r = post(&s.app, &alice, &[], init.to_string().into_bytes()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers["mcp-session-id"], "session-1");
    for gone in ["keep-alive", "connection", "x-upstream-private"] {
        assert!(r.headers.get(gone).is_none(), "{gone} reached the client");
    }
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        .to_string()
        .into_bytes();
    let session = [
        ("mcp-session-id", "session-1".to_owned()),
        ("mcp-protocol-version", "2025-11-25".to_owned()),
    ];
    let r = post(&s.app, &mallory, &session, list.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"]["code"], -31403);
    assert_eq!(
        r.json()["error"]["message"],
        "This MCP session belongs to another principal"
    );
    let r = post(&s.app, &alice, &session, list).await;
    assert_eq!(r.status, StatusCode::OK);
    // The session id reached the upstream with alice's request only.
    let with_session =
        s.up.seen
            .all()
            .iter()
            .filter(|(h, _)| h.get("mcp-session-id").is_some())
            .count();
    assert_eq!(with_session, 1);
}

#[tokio::test]
async fn the_scope_hierarchy_opens_calls_and_step_ups_name_the_narrowest_scope() {
    let s = setup(POLICY).await;
    let admin = s.dev.token("alice", RESOURCE, "todo:admin");
    let (h, body) = stateless("add_todo", json!({"title": "x"}));
    // todo:admin implies todo:read (required) and todo:write (add_todo).
    let r = post(&s.app, &admin, &h, body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(s.up.seen.all().len(), 1);
    // A read-only token is told the one scope the call still needs.
    let ro = s.dev.token("bob", RESOURCE, "todo:read");
    let r = post(&s.app, &ro, &h, body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.headers["www-authenticate"],
        "Bearer error=\"insufficient_scope\", error_description=\"The access token lacks a scope this request needs\", resource_metadata=\"http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp\", scope=\"todo:write\""
    );
    assert_eq!(s.up.seen.all().len(), 1);
}

#[tokio::test]
async fn lists_are_filtered_and_private_on_the_stateless_wire() {
    let s = setup(POLICY).await;
    let token = s.dev.token("alice", RESOURCE, "todo:read");
    let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}});
    let h = [
        ("mcp-protocol-version", "2026-07-28".to_owned()),
        ("mcp-method", "tools/list".to_owned()),
    ];
    let r = post(&s.app, &token, &h, body.to_string().into_bytes()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let names: Vec<String> = r.json()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    // drop_database: no rule, default deny: hidden; the others need at most
    // a step-up: listed (hide-denied, the proxy's default).
    assert_eq!(names, ["whoami", "list_todos", "add_todo", "delete_todo"]);
    assert_eq!(r.json()["result"]["cacheScope"], "private");
}

#[tokio::test]
async fn what_the_layer_cannot_judge_or_a_read_only_token_may_not_do_never_reaches_the_upstream() {
    let s = setup(POLICY).await;
    let ro = s.dev.token("alice", RESOURCE, "todo:read");
    let (h, add) = stateless("add_todo", json!({"title": "x"}));
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(&add);
    let repeated = String::from_utf8(add.clone()).unwrap().replacen(
        "\"name\":\"add_todo\"",
        "\"name\":\"whoami\",\"name\":\"add_todo\"",
        1,
    );
    assert!(repeated.contains("\"name\":\"whoami\",\"name\":\"add_todo\""));
    let junk_batch = format!("[{}, 1]", String::from_utf8(add.clone()).unwrap());
    let cases: Vec<Case<'_>> = vec![
        (
            "insufficient scope",
            h.clone(),
            add.clone(),
            StatusCode::FORBIDDEN,
        ),
        ("byte-order mark", h.clone(), bom, StatusCode::BAD_REQUEST),
        (
            "repeated name",
            h.clone(),
            repeated.into_bytes(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "junk batch element",
            vec![],
            junk_batch.into_bytes(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "gzip",
            [h.clone(), vec![("content-encoding", "gzip".to_owned())]].concat(),
            add.clone(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "not JSON",
            h.clone(),
            b"add_todo please".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "oversize",
            h.clone(),
            vec![b' '; 5 * 1024 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "header mismatch",
            [vec![
                ("mcp-protocol-version", "2026-07-28".to_owned()),
                ("mcp-method", "tools/call".to_owned()),
                ("mcp-name", "whoami".to_owned()),
            ]]
            .concat(),
            add.clone(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown tool",
            stateless("drop_database", json!({})).0,
            stateless("drop_database", json!({})).1,
            StatusCode::FORBIDDEN,
        ),
    ];
    for (name, headers, body, status) in cases {
        let r = post(&s.app, &ro, &headers, body).await;
        assert_eq!(r.status, status, "{name}: {}", r.body);
        if name == "header mismatch" {
            assert_eq!(r.json()["error"]["code"], -32020, "{name}");
            assert_eq!(r.json()["id"], 7, "{name}");
        }
    }
    assert!(
        s.up.seen.all().is_empty(),
        "the upstream saw {} requests",
        s.up.seen.all().len()
    );
}

/// An attack: its name, headers, body and the status it gets.
type Case<'a> = (&'a str, Vec<(&'a str, String)>, Vec<u8>, StatusCode);

const FAST: &str = "\n[proxy]\nresponse_timeout_ms = 500\n";

#[tokio::test]
async fn a_dead_upstream_is_502_a_silent_one_504_both_with_the_request_id() {
    // Nothing listens on this port.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", dead.local_addr().unwrap());
    drop(dead);
    let up = Upstream {
        seen: Seen::default(),
        queries: Arc::default(),
        release: Arc::new(tokio::sync::Notify::new()),
    };
    let s = setup_with(&format!("{POLICY}{FAST}"), &url, up).await;
    let token = s.dev.token("alice", RESOURCE, "todo:read");
    let (h, body) = stateless("whoami", json!({}));
    let r = post(&s.app, &token, &h, body).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"jsonrpc": "2.0", "id": 7, "error": {"code": -32603, "message": "the upstream MCP server cannot be reached"}})
    );

    let s = setup(&format!("{POLICY}{FAST}")).await;
    let token = s.dev.token("alice", RESOURCE, "todo:read");
    let (h, body) = stateless("list_todos", json!({"slow": true}));
    let started = std::time::Instant::now();
    let r = post(&s.app, &token, &h, body).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{}", r.body);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        r.json(),
        json!({"jsonrpc": "2.0", "id": 7, "error": {"code": -32603, "message": "the upstream MCP server did not answer in time"}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_answers_are_streamed_and_a_started_stream_outlives_the_response_timeout() {
    let s = setup(&format!("{POLICY}{FAST}")).await;
    let token = s.dev.token("alice", RESOURCE, "todo:read");
    let (h, body) = stateless("list_todos", json!({"stream": true}));
    let mut b = Request::post("/mcp")
        .header("host", "127.0.0.1:3000")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (k, v) in &h {
        b = b.header(*k, v);
    }
    // The head comes at once: a proxy that buffered would wait for the
    // end, which the upstream holds back.
    let res = tokio::time::timeout(
        Duration::from_secs(5),
        s.app.clone().oneshot(b.body(Body::from(body)).unwrap()),
    )
    .await
    .expect("the answer is streamed, not buffered")
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut body = res.into_body();
    // The first event arrives while the upstream holds the second back.
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("the first event is streamed, not buffered")
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("progress"));
    s.up.release.notify_one();
    // The rest comes 700 ms later: past the 500 ms response timeout.
    let rest = tokio::time::timeout(Duration::from_secs(5), body.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert!(
        String::from_utf8_lossy(&rest).contains("\"id\":7"),
        "{rest:?}"
    );
}
