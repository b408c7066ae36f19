//! The MCP layer refuses what it cannot judge, and the inner server never
//! sees it: bodies (not JSON, a byte-order mark, UTF-16, compressed, junk
//! batch elements), batch bounds, every method that names a resource or
//! prompt, normalized resource URIs, and session binding.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use axum::routing::post;
use http::{Request, StatusCode};
use mcp_resource_guard::mcp::{McpLayer, McpPolicy, Rule, SessionBinding};
use mcp_resource_guard::{AuthMode, GuardLayer};
use serde_json::{Value, json};

use crate::common::*;

/// An echo server that counts the requests it sees and, like a
/// `2025-11-25` server, issues a session id to an `initialize` without one.
#[derive(Clone, Default)]
struct Upstream(Arc<AtomicUsize>);

impl Upstream {
    fn seen(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    fn app(&self, guard: GuardLayer, layer: impl FnOnce(&GuardLayer) -> McpLayer) -> Router {
        let count = self.0.clone();
        let next = Arc::new(AtomicUsize::new(0));
        let handler = move |headers: HeaderMap, body: Bytes| {
            let count = count.clone();
            let next = next.clone();
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                let initialize = body.windows(12).any(|w| w == b"\"initialize\"");
                let mut res = http::Response::new(Body::from(body));
                if initialize && !headers.contains_key("mcp-session-id") {
                    let id = format!("session-{}", next.fetch_add(1, Ordering::SeqCst));
                    res.headers_mut()
                        .insert("mcp-session-id", id.parse().unwrap());
                }
                res
            }
        };
        let mcp = layer(&guard);
        Router::new()
            .route(
                "/mcp",
                post(handler.clone()).get(handler.clone()).delete(handler),
            )
            .layer(mcp)
            .layer(guard)
    }
}

fn policy() -> McpPolicy {
    McpPolicy::builder()
        .default_rule(Rule::Allow)
        .tool("add_todo", Rule::require(["todo:write"]))
        .resource("file:///secret/*", Rule::require(["secrets:read"]))
        .prompt("summarize", Rule::require(["prompts:use"]))
        .build()
        .unwrap()
}

fn plain(g: &GuardLayer) -> McpLayer {
    McpLayer::new(g, policy())
}

fn rpc(method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string()
}

fn post_raw(token: &str, headers: &[(&str, &str)], body: impl Into<Body>) -> Request<Body> {
    let mut b = Request::post("/mcp")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body.into()).unwrap()
}

/// A refusal of a body that could not be read: `id` null.
fn jsonrpc_error(code: i64, message: &str) -> Value {
    rpc_error(Value::Null, code, message)
}

#[tokio::test]
async fn bodies_it_cannot_judge_are_refused_with_a_jsonrpc_error() {
    let up = Upstream::default();
    let app = up.app(guard(), plain);
    let t = token(&claims_with(json!({"scope": "todo:read"})));
    let call = rpc(
        "tools/call",
        json!({"name": "add_todo", "arguments": {"title": "x"}}),
    );
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(call.as_bytes());
    let utf16: Vec<u8> = call.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut utf16_bom = vec![0xFF, 0xFE];
    utf16_bom.extend_from_slice(&utf16);
    let parse = "Parse error";
    /// What, the body, extra headers, the JSON-RPC code and message.
    type Case<'a> = (&'a str, Vec<u8>, &'a [(&'a str, &'a str)], i64, &'a str);
    let cases: Vec<Case<'_>> = vec![
        ("not JSON", b"add_todo please".to_vec(), &[], -32700, parse),
        ("empty", Vec::new(), &[], -32700, parse),
        (
            "trailing bytes",
            format!("{call} x").into_bytes(),
            &[],
            -32700,
            parse,
        ),
        ("UTF-8 byte-order mark", bom, &[], -32700, parse),
        ("UTF-16LE", utf16, &[], -32700, parse),
        ("UTF-16 with BOM", utf16_bom, &[], -32700, parse),
        (
            "gzip",
            call.clone().into_bytes(),
            &[("content-encoding", "gzip")],
            -32700,
            parse,
        ),
        (
            "deflate",
            call.clone().into_bytes(),
            &[("content-encoding", "deflate")],
            -32700,
            parse,
        ),
        (
            "junk batch element",
            format!(r#"[{}, 1]"#, rpc("tools/list", json!({}))).into_bytes(),
            &[],
            -32600,
            "Invalid Request",
        ),
        (
            "batch element without jsonrpc",
            format!(
                r#"[{}, {{"method": "tools/call", "params": {{"name": "add_todo"}}}}]"#,
                rpc("tools/list", json!({}))
            )
            .into_bytes(),
            &[],
            -32600,
            "Invalid Request",
        ),
        (
            "empty batch",
            b"[]".to_vec(),
            &[],
            -32600,
            "Invalid Request",
        ),
        ("a string", b"\"tools/call\"".to_vec(), &[], -32700, parse),
    ];
    for (what, body, headers, code, message) in cases {
        let r = send(&app, post_raw(&t, headers, body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.body);
        assert_eq!(r.www(), "", "{what}");
        assert_eq!(r.json(), jsonrpc_error(code, message), "{what}");
    }
    assert_eq!(up.seen(), 0, "the upstream saw a refused request");
    // The same call, readable, is judged: a step-up, still not forwarded.
    let r = send(
        &app,
        post_raw(&t, &[("content-encoding", "identity")], call),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(up.seen(), 0);
}

#[tokio::test]
async fn batches_are_bounded() {
    let up = Upstream::default();
    let small = |g: &GuardLayer| McpLayer::new(g, policy()).max_batch_messages(3).unwrap();
    let app = up.app(guard(), small);
    let t = token(&claims());
    let batch = |n: usize| {
        let one: Value = serde_json::from_str(&rpc("tools/list", json!({}))).unwrap();
        Value::Array(vec![one; n]).to_string()
    };
    assert_eq!(
        send(&app, post_raw(&t, &[], batch(3))).await.status,
        StatusCode::OK
    );
    let r = send(&app, post_raw(&t, &[], batch(4))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json(), jsonrpc_error(-32600, "Invalid Request"));
    assert_eq!(up.seen(), 1);
    // The default cap is 64.
    let app = up.app(guard(), plain);
    assert_eq!(
        send(&app, post_raw(&t, &[], batch(64))).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, post_raw(&t, &[], batch(65))).await.status,
        StatusCode::BAD_REQUEST
    );
    // Four MiB of `[1,1,1,...]` is refused at its first element.
    assert!(4 * 1024 * 1024 - format!("[{}1]", "1,".repeat(2 * 1024 * 1024 - 2)).len() < 4);
    let ones = format!("[{}1]", "1,".repeat(2 * 1024 * 1024 - 2));
    let r = send(&app, post_raw(&t, &[], ones)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json(), jsonrpc_error(-32600, "Invalid Request"));
    assert!(
        McpLayer::new(&guard(), policy())
            .max_batch_messages(0)
            .is_err()
    );
    assert!(
        McpLayer::new(&guard(), policy())
            .max_body_bytes(usize::MAX)
            .is_err()
    );
}

fn step_up(scope: &str) -> String {
    format!(
        "Bearer error=\"insufficient_scope\", error_description=\"The access token lacks a scope this request needs\", resource_metadata=\"{METADATA_URL}\", scope=\"{scope}\""
    )
}

#[tokio::test]
async fn every_method_naming_a_resource_or_prompt_is_judged_by_its_rule() {
    let up = Upstream::default();
    let app = up.app(guard(), plain);
    let t = token(&claims());
    let secret = "secrets:read todo:read todo:write";
    let prompt = "prompts:use todo:read todo:write";
    let cases = [
        (
            rpc("resources/read", json!({"uri": "file:///secret/a"})),
            secret,
        ),
        (
            rpc("resources/subscribe", json!({"uri": "file:///secret/a"})),
            secret,
        ),
        (
            rpc("resources/unsubscribe", json!({"uri": "file:///secret/a"})),
            secret,
        ),
        // Judged in one form: case, percent-encoding, and every spelling
        // WHATWG URL (the TypeScript SDK's lookup) reads as the same URI.
        (
            rpc("resources/read", json!({"uri": "FILE:///secret/%61"})),
            secret,
        ),
        (
            rpc(
                "resources/read",
                json!({"uri": "file://localhost/secret/a"}),
            ),
            secret,
        ),
        (
            rpc(
                "resources/read",
                json!({"uri": "FILE://LOCALHOST/secret/a"}),
            ),
            secret,
        ),
        (
            rpc("resources/read", json!({"uri": "file:/secret/a"})),
            secret,
        ),
        (
            rpc("resources/read", json!({"uri": "file:secret/a"})),
            secret,
        ),
        (
            rpc(
                "completion/complete",
                json!({"ref": {"type": "ref/resource", "uri": "file:///secret/{name}"}, "argument": {"name": "name", "value": ""}}),
            ),
            secret,
        ),
        (
            rpc(
                "completion/complete",
                json!({"ref": {"type": "ref/prompt", "name": "summarize"}, "argument": {"name": "x", "value": ""}}),
            ),
            prompt,
        ),
        (rpc("prompts/get", json!({"name": "summarize"})), prompt),
    ];
    for (body, scope) in cases {
        let r = send(&app, post_raw(&t, &[], body.clone())).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(r.www(), step_up(scope), "{body}");
    }
    // What cannot be normalized or attributed is refused, not defaulted:
    // dot and empty segments (a server comparing strings keeps them, a file
    // system resolves them), encoded slashes, backslashes.
    for body in [
        rpc(
            "resources/read",
            json!({"uri": "file:///public/../secret/a"}),
        ),
        rpc(
            "resources/read",
            json!({"uri": "file:///public/%2E%2E/secret/a"}),
        ),
        rpc("resources/read", json!({"uri": "file:////secret/a"})),
        rpc("resources/read", json!({"uri": "file:///public//a"})),
        rpc(
            "resources/read",
            json!({"uri": "file:///public/..%2Fsecret/a"}),
        ),
        rpc("resources/read", json!({"uri": "file:///a\\..\\secret"})),
        rpc("resources/subscribe", json!({})),
        rpc("completion/complete", json!({"ref": {"type": "ref/other"}})),
        rpc(
            "completion/complete",
            json!({"argument": {"name": "x", "value": ""}}),
        ),
    ] {
        let r = send(&app, post_raw(&t, &[], body.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            r.json(),
            rpc_error(json!(1), -32602, "Invalid params"),
            "{body}"
        );
    }
    assert_eq!(up.seen(), 0);
    // A public resource still passes.
    let r = send(
        &app,
        post_raw(
            &t,
            &[],
            rpc("resources/read", json!({"uri": "file:///public/a"})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
}

fn with_sessions(g: &GuardLayer) -> McpLayer {
    McpLayer::new(g, policy()).session_binding(SessionBinding::new())
}

fn initialize() -> String {
    rpc(
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    )
}

async fn open_session(app: &Router, token: &str) -> String {
    let r = send(app, post_raw(token, &[], initialize())).await;
    assert_eq!(r.status, StatusCode::OK);
    r.headers["mcp-session-id"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn sessions_are_bound_by_the_server_issuing_them() {
    let up = Upstream::default();
    let app = up.app(guard(), with_sessions);
    let alice = token(&claims());
    let bob = token(&claims_with(json!({"sub": "bob", "jti": "b"})));
    let list = rpc("tools/list", json!({}));
    // An id the server never issued through the layer: 404, so the client
    // starts a new session; never bound to whoever sent it first.
    for who in [&bob, &alice] {
        let r = send(
            &app,
            post_raw(who, &[("mcp-session-id", "made-up")], list.clone()),
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(
            r.json(),
            rpc_error(json!(1), -32600, "The MCP session is unknown or has ended")
        );
    }
    assert_eq!(up.seen(), 0);
    let session = open_session(&app, &alice).await;
    let r = send(
        &app,
        post_raw(&alice, &[("mcp-session-id", &session)], list.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(
        &app,
        post_raw(&bob, &[("mcp-session-id", &session)], list.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.json(),
        rpc_error(
            json!(1),
            ACCESS_DENIED,
            "This MCP session belongs to another principal"
        )
    );
    // A client whose client_id equals alice's sub is not alice.
    let lookalike = token(&claims_with(
        json!({"sub": null, "client_id": "alice", "jti": "c"}),
    ));
    let r = send(
        &app,
        post_raw(&lookalike, &[("mcp-session-id", &session)], list.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // alice's own session ends with her DELETE; then it is unknown.
    let del = Request::delete("/mcp")
        .header("authorization", format!("Bearer {alice}"))
        .header("mcp-session-id", &session)
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, del).await.status, StatusCode::OK);
    let r = send(
        &app,
        post_raw(&alice, &[("mcp-session-id", &session)], list),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_bound_session_refuses_an_anonymous_caller() {
    let up = Upstream::default();
    let app = up.app(guard().with_mode(AuthMode::Optional), with_sessions);
    let alice = token(&claims());
    let session = open_session(&app, &alice).await;
    let anon = Request::post("/mcp")
        .header("content-type", "application/json")
        .header("mcp-session-id", &session)
        .body(Body::from(rpc("tools/list", json!({}))))
        .unwrap();
    let r = send(&app, anon).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"]["code"], ACCESS_DENIED);
    assert_eq!(
        r.json()["error"]["message"],
        "This MCP session belongs to another principal"
    );
}

#[tokio::test]
async fn malformed_or_repeated_session_ids_are_400() {
    let up = Upstream::default();
    let app = up.app(guard(), with_sessions);
    let t = token(&claims());
    let long = "a".repeat(129);
    let list = rpc("tools/list", json!({}));
    for headers in [
        vec![("mcp-session-id", long.as_str())],
        vec![("mcp-session-id", "caf\u{e9}")],
        vec![("mcp-session-id", "a b")],
        vec![("mcp-session-id", "")],
        vec![("mcp-session-id", "a"), ("mcp-session-id", "b")],
    ] {
        let mut b = Request::post("/mcp")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {t}"));
        for (k, v) in &headers {
            b = b.header(*k, http::HeaderValue::from_bytes(v.as_bytes()).unwrap());
        }
        let r = send(&app, b.body(Body::from(list.clone())).unwrap()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{headers:?}");
        assert_eq!(
            r.json(),
            rpc_error(json!(1), -32600, "The Mcp-Session-Id header is malformed")
        );
    }
    assert_eq!(up.seen(), 0);
}

#[tokio::test]
async fn the_guards_rejection_body_shapes_the_mcp_answers() {
    let guard = builder()
        .rejection_body(|r: &mcp_resource_guard::challenge::Rejection| {
            http::Response::new(match r.jsonrpc_error() {
                Some(e) => format!("jsonrpc {}", e.code()),
                None => format!("oauth {}", r.status().as_u16()),
            })
        })
        .build()
        .unwrap();
    let mcp = McpLayer::new(&guard, policy());
    let app = Router::new()
        .route("/mcp", post(|| async { "upstream" }))
        .layer(mcp)
        .layer(guard);
    let ro = token(&claims_with(json!({"scope": "todo:read"})));
    let r = send(&app, post_raw(&ro, &[], "nope")).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::BAD_REQUEST, "jsonrpc -32700")
    );
    let r = send(
        &app,
        post_raw(&ro, &[], rpc("tools/call", json!({"name": "add_todo"}))),
    )
    .await;
    // Every refusal of the MCP layer carries its JSON-RPC error, a step-up
    // included (with its challenge); the guard's own refusals do not.
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::FORBIDDEN, "jsonrpc -31403")
    );
    assert_eq!(r.www(), step_up("todo:write todo:read"));
    let r = send(&app, post_raw("garbage", &[], "nope")).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::UNAUTHORIZED, "oauth 401")
    );
}

#[tokio::test]
async fn stateless_requests_neither_use_nor_bind_sessions() {
    let up = Upstream::default();
    let app = up.app(guard(), with_sessions);
    let t = token(&claims());
    let stateless = |session: Option<&str>| {
        // The body mentions "initialize", so the upstream issues a session id.
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list",
            "params": {"cursor": "initialize",
                "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}});
        let mut b = Request::post("/mcp")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {t}"))
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/list");
        if let Some(s) = session {
            b = b.header("mcp-session-id", s);
        }
        b.body(Body::from(body.to_string())).unwrap()
    };
    // An Mcp-Session-Id on a stateless request is ignored, not judged (404).
    let r = send(&app, stateless(Some("never-issued"))).await;
    assert_eq!(r.status, StatusCode::OK);
    // A session id in the answer to a stateless request is not bound.
    let r = send(&app, stateless(None)).await;
    assert_eq!(r.status, StatusCode::OK);
    let issued = r.headers["mcp-session-id"].to_str().unwrap().to_owned();
    let list = rpc("tools/list", json!({}));
    let r = send(&app, post_raw(&t, &[("mcp-session-id", &issued)], list)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
