//! The MCP policy layer against an echo server: rule selection, batches,
//! exact bytes, pattern scopes, anonymous callers, denials.

use crate::common::*;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::post;
use http::{Request, StatusCode};
use mcp_resource_guard::ScopeHierarchy;
use mcp_resource_guard::mcp::{McpLayer, McpPolicy, Rule};
use mcp_resource_guard::{AuthMode, GuardLayer};
use serde_json::{Value, json};

fn policy() -> McpPolicy {
    McpPolicy::builder()
        .default_rule(Rule::Allow)
        .method("tools/list", Rule::require(["todo:read"]))
        .tool(
            "delete_todo",
            Rule::require(["mcp:exec:functions.delete_todo"]),
        )
        .tool("admin_*", Rule::Deny)
        .resource("file:///secret/*", Rule::require(["secrets:read"]))
        .prompt("summarize", Rule::require(["prompts:use"]))
        .method("forbidden/*", Rule::Deny)
        .build()
        .unwrap()
}

fn echo_app(guard: GuardLayer, policy: McpPolicy) -> Router {
    Router::new()
        .route("/mcp", post(|body: Bytes| async move { body }))
        .layer(McpLayer::new(&guard, policy).max_body_bytes(1024).unwrap())
        .layer(guard)
}

fn mcp(token: Option<&str>, body: &str) -> Request<Body> {
    let mut b = Request::post("/mcp").header("content-type", "application/json");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

fn rpc(method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string()
}

fn step_up(scope: &str) -> String {
    format!(
        "Bearer error=\"insufficient_scope\", error_description=\"The access token lacks a scope this request needs\", resource_metadata=\"{METADATA_URL}\", scope=\"{scope}\""
    )
}

#[tokio::test]
async fn the_exact_bytes_reach_the_server() {
    let app = echo_app(guard(), policy());
    let t = token(&claims());
    let body = "  {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\" ,\"x\":[1, 2]}\n";
    let r = send(&app, mcp(Some(&t), body)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, body);
}

#[tokio::test]
async fn rules_by_method_tool_resource_and_prompt() {
    let app = echo_app(guard(), policy());
    // The default test token: todo:read todo:write.
    let t = token(&claims());
    let cases = [
        (rpc("tools/list", json!({})), StatusCode::OK, ""),
        (
            rpc("tools/call", json!({"name": "list_todos"})),
            StatusCode::OK,
            "",
        ),
        (
            rpc("tools/call", json!({"name": "delete_todo"})),
            StatusCode::FORBIDDEN,
            "mcp:exec:functions.delete_todo todo:read todo:write",
        ),
        (
            rpc("resources/read", json!({"uri": "file:///secret/a"})),
            StatusCode::FORBIDDEN,
            "secrets:read todo:read todo:write",
        ),
        (
            rpc("resources/read", json!({"uri": "file:///public/a"})),
            StatusCode::OK,
            "",
        ),
        (
            rpc("prompts/get", json!({"name": "summarize"})),
            StatusCode::FORBIDDEN,
            "prompts:use todo:read todo:write",
        ),
        (
            rpc("prompts/get", json!({"name": "other"})),
            StatusCode::OK,
            "",
        ),
    ];
    for (body, status, scope) in cases {
        let r = send(&app, mcp(Some(&t), &body)).await;
        assert_eq!(r.status, status, "{body}");
        if !scope.is_empty() {
            assert_eq!(r.www(), step_up(scope), "{body}");
        }
    }
    // A token lacking todo:read is told to get it for tools/list.
    let w = token(&claims_with(json!({"scope": "todo:write"})));
    let r = send(&app, mcp(Some(&w), &rpc("tools/list", json!({})))).await;
    assert_eq!(r.www(), step_up("todo:read todo:write"));
}

#[tokio::test]
async fn deny_rules_are_plain_403s_without_step_up() {
    let app = echo_app(guard(), policy());
    let t = token(&claims());
    for body in [
        rpc("tools/call", json!({"name": "admin_reset"})),
        rpc("forbidden/thing", json!({})),
    ] {
        let r = send(&app, mcp(Some(&t), &body)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.www(), "");
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(
            r.json(),
            rpc_error(
                json!(1),
                ACCESS_DENIED,
                "The server's policy does not allow this request"
            )
        );
    }
}

#[tokio::test]
async fn batches_pass_only_when_every_call_does() {
    let app = echo_app(guard(), policy());
    let t = token(&claims());
    let ok = json!([{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, {"jsonrpc": "2.0", "id": 9, "result": {}}]).to_string();
    assert_eq!(send(&app, mcp(Some(&t), &ok)).await.status, StatusCode::OK);
    let bad = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "delete_todo"}},
        {"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {"uri": "file:///secret/x"}}
    ])
    .to_string();
    let r = send(&app, mcp(Some(&t), &bad)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.www(),
        step_up("mcp:exec:functions.delete_todo secrets:read todo:read todo:write")
    );
}

#[tokio::test]
async fn ambiguous_messages_are_refused_never_judged_by_the_default_rule() {
    // A permissive default: if an ambiguous message fell to it, it would pass.
    let lax = McpPolicy::builder()
        .default_rule(Rule::Allow)
        .tool("safe", Rule::Allow)
        .tool("dangerous", Rule::Deny)
        .build()
        .unwrap();
    let app = echo_app(guard(), lax);
    let t = token(&claims());
    assert_eq!(
        send(
            &app,
            mcp(Some(&t), &rpc("tools/call", json!({"name": "safe"})))
        )
        .await
        .status,
        StatusCode::OK
    );
    // The `id` is the request's once the body could be read, else null.
    let null = serde_json::Value::Null;
    for (body, code, id) in [
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe","name":"dangerous"}}"#,
            -32600,
            &null,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"dangerous","name":"safe"}}"#,
            -32600,
            &null,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/call","params":{"name":"safe"}}"#,
            -32600,
            &null,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["dangerous"]}}"#,
            -32602,
            &null,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}"#,
            -32602,
            &json!(1),
        ),
        (r#"{"jsonrpc":"2.0","id":1,"method":7}"#, -32600, &null),
        (r#"[1]"#, -32600, &null),
    ] {
        let r = send(&app, mcp(Some(&t), body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(r.www(), "", "{body}");
        assert_eq!(r.json()["error"]["code"], code, "{body}");
        assert_eq!(&r.json()["id"], id, "{body}");
    }
}

#[tokio::test]
async fn granted_scope_patterns_are_declared_in_the_hierarchy() {
    let t = token(&claims_with(
        json!({"scope": "todo:read mcp:exec:functions.*"}),
    ));
    let body = rpc("tools/call", json!({"name": "delete_todo"}));
    let exact = echo_app(guard(), policy());
    assert_eq!(
        send(&exact, mcp(Some(&t), &body)).await.status,
        StatusCode::FORBIDDEN
    );
    // Declared in the guard's scope hierarchy, the pattern grants what it matches.
    let with_pattern = builder()
        .scopes_supported(["todo:read", "todo:write", "mcp:exec:functions.*"])
        .scope_hierarchy(ScopeHierarchy::new().pattern("mcp:exec:functions.*"))
        .build()
        .unwrap();
    let patterns = echo_app(with_pattern, policy());
    assert_eq!(
        send(&patterns, mcp(Some(&t), &body)).await.status,
        StatusCode::OK
    );
    // A pattern the hierarchy does not declare is just a name.
    let other = token(&claims_with(json!({"scope": "todo:read mcp:exec:other.*"})));
    assert_eq!(
        send(&patterns, mcp(Some(&other), &body)).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn anonymous_callers_get_the_401_where_a_scope_is_needed() {
    let app = echo_app(guard().with_mode(AuthMode::Optional), policy());
    let r = send(
        &app,
        mcp(None, &rpc("tools/call", json!({"name": "list_todos"}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(&app, mcp(None, &rpc("tools/list", json!({})))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.www(), PLAIN_CHALLENGE);
}

#[tokio::test]
async fn over_the_limit_is_413_and_without_its_guard_in_front_is_500() {
    let app = echo_app(guard(), policy());
    let t = token(&claims());
    let call = rpc("tools/list", json!({}));
    let padded = |n: usize| format!("{call}{}", " ".repeat(n - call.len()));
    let r = send(&app, mcp(Some(&t), &padded(1025))).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.json(),
        rpc_error(
            serde_json::Value::Null,
            -32600,
            "The request body exceeds the size limit"
        )
    );
    let r = send(&app, mcp(Some(&t), &padded(1024))).await;
    assert_eq!(r.status, StatusCode::OK);
    // Built from a guard that is not applied: every request is refused.
    let g = guard();
    let bare: Router = Router::new()
        .route("/mcp", post(|| async { "x" }))
        .layer(McpLayer::new(&g, policy()));
    for token in [None, Some(t.as_str())] {
        let r = send(&bare, mcp(token, &call)).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            r.json(),
            rpc_error(
                serde_json::Value::Null,
                -32603,
                "The server is misconfigured"
            )
        );
    }
}

/// A body that never yields a byte.
struct Stalled;

impl http_body::Body for Stalled {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

#[tokio::test]
async fn a_declared_oversize_body_is_refused_before_it_is_read() {
    let app = echo_app(guard(), policy());
    let req = Request::post("/mcp")
        .header("authorization", format!("Bearer {}", token(&claims())))
        .header("content-type", "application/json")
        .header("content-length", "5000000")
        .body(Body::new(Stalled))
        .unwrap();
    let r = tokio::time::timeout(std::time::Duration::from_secs(5), send(&app, req))
        .await
        .expect("answered without waiting for the body");
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}
