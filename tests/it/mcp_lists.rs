//! Filtered lists: `tools/list`, `prompts/list`, `resources/list` and
//! `resources/templates/list` as the caller may use them, in JSON and SSE
//! answers, `cacheScope: "private"` on the stateless wire, cursors kept, a
//! 502 rather than an unfiltered list when the answer cannot be read, and
//! no other way past the filter (batches, resumed streams).

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::post;
use http::{Request, StatusCode};
use mcp_resource_guard::mcp::{ListFilter, McpLayer, McpPolicy, Rule};
use serde_json::{Value, json};

use crate::common::*;

fn policy() -> McpPolicy {
    McpPolicy::builder()
        .default_rule(Rule::Allow)
        .tool("whoami", Rule::require(["todo:read"]))
        .tool("add_todo", Rule::require(["todo:write"]))
        .tool("admin_*", Rule::Deny)
        .prompt("secret_prompt", Rule::require(["todo:admin"]))
        .resource("file:///secret/*", Rule::Deny)
        .build()
        .unwrap()
}

fn list_result(method: &str) -> Value {
    match method {
        "tools/list" => json!({"tools": [
            {"name": "whoami"}, {"name": "add_todo"}, {"name": "admin_reset"}, {"name": "echo"}
        ], "nextCursor": "page-2"}),
        "prompts/list" => json!({"prompts": [{"name": "secret_prompt"}, {"name": "hello"}]}),
        "resources/templates/list" => json!({"resourceTemplates": [
            {"uriTemplate": "file:///secret/{name}", "name": "secret"},
            {"uriTemplate": "file:///public/{name}", "name": "public"},
            {"uriTemplate": "file://localhost/secret/{name}", "name": "secret-too"},
            {"name": "unattributable"}
        ]}),
        // The last two cannot be judged (a dot segment; a drive letter
        // spelled `c|`): left out like any entry the layer cannot attribute.
        _ => json!({"resources": [
            {"uri": "file:///secret/a"}, {"uri": "file:///public/b"},
            {"uri": "file:///public/../secret/a"}, {"uri": "file:///c|/x"}
        ]}),
    }
}

/// An upstream answering lists as JSON, or as SSE (a progress
/// notification, then the response), or as plain text.
fn app(filter: ListFilter, answer: &'static str) -> Router {
    let guard = builder()
        .scopes_supported(["todo:read", "todo:write", "todo:admin"])
        .build()
        .unwrap();
    let handler = move |body: Bytes| async move {
        let req: Value = serde_json::from_slice(&body).unwrap_or_default();
        if let Some(batch) = req.as_array() {
            let replies: Vec<Value> = batch
                .iter()
                .map(|m| json!({"jsonrpc": "2.0", "id": m["id"], "result": {}}))
                .collect();
            return http::Response::builder()
                .header("content-type", "application/json")
                .body(Body::from(Value::Array(replies).to_string()))
                .unwrap();
        }
        let method = req["method"].as_str().unwrap_or("tools/list");
        let reply = json!({"jsonrpc": "2.0", "id": req["id"], "result": list_result(method)});
        let (ct, text) = match answer {
            "sse" => (
                "text/event-stream",
                format!(
                    "event: message\ndata: {}\n\nevent: message\nid: 1\ndata: {reply}\n\n",
                    json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}})
                ),
            ),
            "text" => ("text/plain", reply.to_string()),
            _ => ("application/json", reply.to_string()),
        };
        http::Response::builder()
            .header("content-type", ct)
            .body(Body::from(text))
            .unwrap()
    };
    let mcp = McpLayer::new(&guard, policy()).list_filter(filter);
    Router::new()
        .route("/mcp", post(handler).get(handler))
        .layer(mcp)
        .layer(guard)
}

fn list(token: &str, method: &str, stateless: bool) -> Request<Body> {
    let mut params = json!({});
    let mut b = Request::post("/mcp")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"));
    if stateless {
        params["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28"});
        b = b
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method);
    }
    let body = json!({"jsonrpc": "2.0", "id": 3, "method": method, "params": params});
    b.body(Body::from(body.to_string())).unwrap()
}

/// The result object of a JSON or SSE answer.
fn result(r: &Reply) -> Value {
    let data = r
        .body
        .split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .last()
        .unwrap_or(&r.body);
    let reply: Value = serde_json::from_str(data).unwrap();
    assert_eq!(reply["id"], 3);
    reply["result"].clone()
}

fn names(result: &Value, field: &str, key: &str) -> Vec<String> {
    result[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t[key].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn off_by_default_lists_pass_untouched() {
    let app = app(ListFilter::default(), "json");
    let t = token(&claims_with(json!({"scope": "todo:read"})));
    let r = send(&app, list(&t, "tools/list", true)).await;
    assert_eq!(result(&r), list_result("tools/list"));
}

#[tokio::test]
async fn callable_only_lists_what_the_token_may_call() {
    let read = token(&claims_with(json!({"scope": "todo:read"})));
    let admin = token(&claims_with(
        json!({"scope": "todo:read todo:write todo:admin"}),
    ));
    for answer in ["json", "sse"] {
        let app = app(ListFilter::CallableOnly, answer);
        let r = send(&app, list(&read, "tools/list", true)).await;
        assert_eq!(r.status, StatusCode::OK, "{answer}: {}", r.body);
        let res = result(&r);
        assert_eq!(names(&res, "tools", "name"), ["whoami", "echo"], "{answer}");
        assert_eq!(res["cacheScope"], "private", "{answer}");
        assert_eq!(res["nextCursor"], "page-2", "{answer}: the cursor is kept");
        let res = result(&send(&app, list(&admin, "tools/list", true)).await);
        // admin_* is denied to everyone.
        assert_eq!(
            names(&res, "tools", "name"),
            ["whoami", "add_todo", "echo"],
            "{answer}"
        );
        // The session wire: filtered, but no cacheScope is added.
        let res = result(&send(&app, list(&read, "tools/list", false)).await);
        assert_eq!(names(&res, "tools", "name"), ["whoami", "echo"], "{answer}");
        assert_eq!(res.get("cacheScope"), None, "{answer}");
    }
    if let Some(progress) = send(
        &app(ListFilter::CallableOnly, "sse"),
        list(&read, "tools/list", true),
    )
    .await
    .body
    .split("\n\n")
    .next()
    {
        assert!(
            progress.contains("notifications/progress"),
            "other events pass: {progress}"
        );
    }
    let app = app(ListFilter::CallableOnly, "json");
    let res = result(&send(&app, list(&read, "prompts/list", true)).await);
    assert_eq!(names(&res, "prompts", "name"), ["hello"]);
    let res = result(&send(&app, list(&admin, "resources/list", true)).await);
    assert_eq!(names(&res, "resources", "uri"), ["file:///public/b"]);
    // Templates are judged as the resources they name, in every spelling.
    let res = result(&send(&app, list(&admin, "resources/templates/list", true)).await);
    assert_eq!(
        names(&res, "resourceTemplates", "uriTemplate"),
        ["file:///public/{name}"]
    );
    assert_eq!(res["cacheScope"], "private");
}

#[tokio::test]
async fn no_list_passes_the_filter_in_a_batch_or_a_resumed_stream() {
    let read = token(&claims_with(json!({"scope": "todo:read"})));
    let batch = |methods: &[&str]| {
        let msgs: Vec<Value> = methods
            .iter()
            .enumerate()
            .map(|(i, m)| json!({"jsonrpc": "2.0", "id": i, "method": m}))
            .collect();
        Request::post("/mcp")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {read}"))
            .body(Body::from(Value::Array(msgs).to_string()))
            .unwrap()
    };
    let filtered = app(ListFilter::CallableOnly, "json");
    for methods in [
        &["tools/list", "ping"][..],
        &["ping", "resources/templates/list"],
        &["prompts/list"],
    ] {
        let r = send(&filtered, batch(methods)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{methods:?}");
        assert_eq!(
            r.json(),
            rpc_error(Value::Null, -32600, "Invalid Request"),
            "{methods:?}"
        );
    }
    // A batch without a list, or any batch with the filter off, passes.
    assert_eq!(
        send(&filtered, batch(&["ping", "ping"])).await.status,
        StatusCode::OK
    );
    let off = app(ListFilter::Off, "json");
    assert_eq!(
        send(&off, batch(&["tools/list", "ping"])).await.status,
        StatusCode::OK
    );
    // Resuming a stream (its replay may hold a list answer) is refused while
    // filtering, on POST and GET alike; with the filter off it passes.
    for method in [http::Method::POST, http::Method::GET] {
        let mut req = list(&read, "tools/list", false);
        *req.method_mut() = method.clone();
        req.headers_mut()
            .insert("last-event-id", "stream-1:7".parse().unwrap());
        let r = send(&filtered, req).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{method}");
        assert_eq!(r.json()["error"]["code"], -32600, "{method}");
    }
    let mut req = list(&read, "tools/list", false);
    req.headers_mut()
        .insert("last-event-id", "stream-1:7".parse().unwrap());
    assert_eq!(send(&off, req).await.status, StatusCode::OK);
}

#[tokio::test]
async fn hide_denied_keeps_what_a_step_up_would_open() {
    let app = app(ListFilter::HideDenied, "json");
    let read = token(&claims_with(json!({"scope": "todo:read"})));
    let res = result(&send(&app, list(&read, "tools/list", true)).await);
    assert_eq!(names(&res, "tools", "name"), ["whoami", "add_todo", "echo"]);
}

#[tokio::test]
async fn an_answer_it_cannot_filter_is_a_502_not_a_leak() {
    let app = app(ListFilter::CallableOnly, "text");
    let read = token(&claims_with(json!({"scope": "todo:read"})));
    let r = send(&app, list(&read, "tools/list", true)).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(!r.body.contains("admin_reset"), "{}", r.body);
    assert_eq!(
        r.json(),
        rpc_error(
            r.json()["id"].clone(),
            -32603,
            "The server's list could not be filtered for this caller"
        )
    );
    assert_ne!(r.json()["id"], Value::Null, "the request's id");
}
