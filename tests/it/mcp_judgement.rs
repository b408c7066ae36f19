//! Judgement = execution: what the MCP layer judges is what a server behind
//! it reads. Bodies only in the one encoding every server decodes alike
//! (media type, charset, content encoding); the wire chosen only by a
//! stateless version, sessions never reaching a server on the stateless
//! wire and always checked on the session wire; tasks bound to their
//! creator.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use axum::routing::post;
use http::{Request, StatusCode};
use mcp_resource_guard::mcp::{McpLayer, McpPolicy, Rule, SessionBinding, TaskBinding};
use mcp_resource_guard::store::{MemoryStore, SharedStore};
use mcp_resource_guard::{AuthMode, GuardLayer};
use serde_json::{Value, json};

use crate::common::*;

/// What the upstream saw: each request's headers and body.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(HeaderMap, Value)>>>);

impl Seen {
    fn all(&self) -> Vec<(HeaderMap, Value)> {
        self.0.lock().unwrap().clone()
    }
}

/// An upstream like a dual-wire MCP server: issues a session to an
/// `initialize` without one, answers `tools/call` of `slow_job` with a
/// task (`2025-11-25` shape as JSON, `2026-07-28` shape as SSE), and
/// `tasks/list` with every task it was told of.
fn app(guard: GuardLayer, layer: impl FnOnce(&GuardLayer) -> McpLayer) -> (Router, Seen) {
    let seen = Seen::default();
    let record = seen.clone();
    let sessions = Arc::new(std::sync::atomic::AtomicUsize::new(1));
    let handler = move |headers: HeaderMap, body: Bytes| {
        let record = record.clone();
        let sessions = sessions.clone();
        async move {
            let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            record
                .0
                .lock()
                .unwrap()
                .push((headers.clone(), req.clone()));
            let id = req["id"].clone();
            let method = req["method"].as_str().unwrap_or("");
            let mut res = http::Response::builder();
            let mut ct = "application/json";
            let body = match (method, req["params"]["name"].as_str()) {
                ("initialize", _) if !headers.contains_key("mcp-session-id") => {
                    let n = sessions.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    res = res.header("mcp-session-id", format!("session-{n}"));
                    json!({"jsonrpc": "2.0", "id": id, "result": {}}).to_string()
                }
                ("tools/call", Some("slow_job")) => {
                    json!({"jsonrpc": "2.0", "id": id, "result": {"task": {"taskId": "task-json", "status": "working"}}}).to_string()
                }
                ("tools/call", Some("slow_job_sse")) => {
                    ct = "text/event-stream";
                    let reply = json!({"jsonrpc": "2.0", "id": id, "result": {"resultType": "task", "taskId": "task-sse", "status": "working"}});
                    format!(
                        "event: message\ndata: {}\n\nevent: message\ndata: {reply}\n\n",
                        json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}})
                    )
                }
                ("tasks/list", _) => json!({"jsonrpc": "2.0", "id": id, "result": {"tasks": [
                    {"taskId": "task-json", "status": "working"},
                    {"taskId": "task-sse", "status": "working"},
                    {"taskId": "task-elsewhere", "status": "working"}
                ]}})
                .to_string(),
                _ => json!({"jsonrpc": "2.0", "id": id, "result": {}}).to_string(),
            };
            res.header("content-type", ct)
                .body(Body::from(body))
                .unwrap()
        }
    };
    let mcp = layer(&guard);
    let router = Router::new()
        .route(
            "/mcp",
            post(handler.clone()).get(handler.clone()).delete(handler),
        )
        .layer(mcp)
        .layer(guard);
    (router, seen)
}

fn policy() -> McpPolicy {
    McpPolicy::builder()
        .default_rule(Rule::Allow)
        .tool("delete_todo", Rule::require(["todo:delete"]))
        .build()
        .unwrap()
}

fn rpc(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

fn post_with(token: &str, headers: &[(&str, &str)], body: impl Into<Body>) -> Request<Body> {
    let mut b = Request::post("/mcp").header("authorization", format!("Bearer {token}"));
    for (k, v) in headers {
        b = b.header(*k, http::HeaderValue::from_bytes(v.as_bytes()).unwrap());
    }
    b.body(body.into()).unwrap()
}

const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn a_body_in_another_charset_or_media_type_is_refused_with_415() {
    let (app, seen) = app(guard(), |g| McpLayer::new(g, policy()));
    let t = token(&claims_with(json!({"scope": "todo:read"})));
    // Read as UTF-8, whoami with an ignored string; read as UTF-7 (as
    // express.json() does), a second "name": "delete_todo" that wins.
    let smuggled = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","x":"+ACIALAAi-name+ACIAOgAi-delete_todo"}}"#;
    for ct in [
        "application/json; charset=utf-7",
        "application/json; charset=UTF-16LE",
        "application/json; charset=latin1",
        "application/json; charset=utf8",
        "application/json; foo=bar",
        "application/json-seq",
        "text/plain",
    ] {
        let r = send(&app, post_with(&t, &[("content-type", ct)], smuggled)).await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct}");
        assert_eq!(
            r.json(),
            rpc_error(
                Value::Null,
                -32700,
                "The request body must be application/json in UTF-8 (no other charset or parameter)"
            ),
            "{ct}"
        );
    }
    // No Content-Type, or two of them.
    let r = send(&app, post_with(&t, &[], smuggled)).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let two = [JSON, ("content-type", "application/json; charset=utf-7")];
    let r = send(&app, post_with(&t, &two, smuggled)).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Every Content-Encoding value is read, not just the first.
    for enc in [
        &[("content-encoding", "identity, gzip")][..],
        &[
            ("content-encoding", "identity"),
            ("content-encoding", "gzip"),
        ],
        &[("content-encoding", "br")],
    ] {
        let mut h = vec![JSON];
        h.extend_from_slice(enc);
        let r = send(&app, post_with(&t, &h, smuggled)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{enc:?}");
        assert_eq!(r.json(), rpc_error(Value::Null, -32700, "Parse error"));
    }
    assert!(seen.all().is_empty(), "the upstream saw a refused body");
    // UTF-8, however it is spelled, is judged and passes.
    for ct in [
        "application/json",
        "Application/JSON; Charset=\"UTF-8\"",
        "application/json;charset=utf-8",
    ] {
        let r = send(&app, post_with(&t, &[("content-type", ct)], smuggled)).await;
        assert_eq!(r.status, StatusCode::OK, "{ct}: {}", r.body);
    }
    assert_eq!(seen.all().len(), 3);
}

fn stateless_headers<'a>(method: &'a str, name: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![
        JSON,
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", method),
    ];
    if let Some(n) = name {
        h.push(("mcp-name", n));
    }
    h
}

fn stateless_body(id: u64, method: &str, params: Value) -> String {
    let mut params = params;
    params["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28"});
    rpc(id, method, params).to_string()
}

#[tokio::test]
async fn sessions_never_reach_the_server_on_the_stateless_wire_and_are_always_checked_on_the_session_wire()
 {
    let (app, seen) = app(guard(), |g| {
        McpLayer::new(g, policy()).session_binding(SessionBinding::new())
    });
    let alice = token(&claims());
    let bob = token(&claims_with(json!({"sub": "bob", "jti": "b"})));
    let init = rpc(
        1,
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    );
    let r = send(&app, post_with(&alice, &[JSON], init.to_string())).await;
    let session = r.headers["mcp-session-id"].to_str().unwrap().to_owned();
    // bob, naming alice's session on the stateless wire: the session id and
    // Last-Event-ID are removed before the server sees the request.
    let mut h = stateless_headers("tools/list", None);
    h.push(("mcp-session-id", &session));
    h.push(("last-event-id", "ev-1"));
    let r = send(
        &app,
        post_with(&bob, &h, stateless_body(2, "tools/list", json!({}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (headers, _) = seen.all().pop().unwrap();
    for gone in ["mcp-session-id", "last-event-id"] {
        assert!(headers.get(gone).is_none(), "{gone} reached the server");
    }
    // The same on GET and DELETE on the stateless wire.
    for method in [http::Method::GET, http::Method::DELETE] {
        let req = Request::builder()
            .method(method.clone())
            .uri("/mcp")
            .header("authorization", format!("Bearer {bob}"))
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-session-id", &session)
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(&app, req).await.status, StatusCode::OK, "{method}");
        let (headers, _) = seen.all().pop().unwrap();
        assert!(headers.get("mcp-session-id").is_none(), "{method}");
    }
    // A body _meta naming 2025-11-25 is the session wire: bob is refused.
    let mut body = rpc(3, "tools/list", json!({}));
    body["params"]["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2025-11-25"});
    let r = send(
        &app,
        post_with(
            &bob,
            &[
                JSON,
                ("mcp-protocol-version", "2025-11-25"),
                ("mcp-session-id", &session),
            ],
            body.to_string(),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(
        r.json(),
        rpc_error(
            json!(3),
            ACCESS_DENIED,
            "This MCP session belongs to another principal"
        )
    );
    // Two MCP-Protocol-Version headers: refused whatever the method.
    let r = send(
        &app,
        Request::get("/mcp")
            .header("authorization", format!("Bearer {bob}"))
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-protocol-version", "2025-11-25")
            .header("mcp-session-id", &session)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let h = [
        JSON,
        ("mcp-protocol-version", "2025-11-25"),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-session-id", &session),
    ];
    let r = send(
        &app,
        post_with(&bob, &h, rpc(4, "ping", json!({})).to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"]["code"], -32020);
    // A session a server issues to a stateless request is never bound: it
    // is unknown (404) when used on the session wire.
    let init2 = stateless_body(
        6,
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    );
    let r = send(
        &app,
        post_with(&bob, &stateless_headers("initialize", None), init2),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let issued = r.headers["mcp-session-id"].to_str().unwrap().to_owned();
    assert_ne!(issued, session);
    let r = send(
        &app,
        post_with(
            &bob,
            &[JSON, ("mcp-session-id", &issued)],
            rpc(7, "tools/list", json!({})).to_string(),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // alice keeps her own session.
    let r = send(
        &app,
        post_with(
            &alice,
            &[JSON, ("mcp-session-id", &session)],
            rpc(5, "tools/list", json!({})).to_string(),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
}

fn with_tasks(g: &GuardLayer) -> McpLayer {
    McpLayer::new(g, policy()).task_binding(TaskBinding::new())
}

async fn create_tasks(app: &Router, token: &str) {
    // The 2025-11-25 opt-in (params.task), and the 2026-07-28 one (the
    // tasks extension in the _meta client capabilities).
    let params = [
        json!({"name": "slow_job", "arguments": {}, "task": {"ttl": 60000}}),
        json!({"name": "slow_job_sse", "arguments": {}, "_meta": {"io.modelcontextprotocol/clientCapabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}}}}}),
    ];
    for (params, id) in params.into_iter().zip(["task-json", "task-sse"]) {
        let name = params["name"].clone();
        let r = send(
            app,
            post_with(token, &[JSON], rpc(1, "tools/call", params).to_string()),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.body);
        assert!(r.body.contains(id), "{name}: the answer passes: {}", r.body);
    }
}

#[tokio::test]
async fn tasks_are_bound_to_the_principal_whose_call_created_them() {
    let (app, seen) = app(guard(), with_tasks);
    let alice = token(&claims());
    let bob = token(&claims_with(json!({"sub": "bob", "jti": "b"})));
    create_tasks(&app, &alice).await;
    let task = |who: &str, method: &str, id: &str| {
        post_with(
            who,
            &[JSON],
            rpc(9, method, json!({"taskId": id})).to_string(),
        )
    };
    for method in ["tasks/get", "tasks/result", "tasks/cancel", "tasks/update"] {
        for id in ["task-json", "task-sse"] {
            let r = send(&app, task(&alice, method, id)).await;
            assert_eq!(r.status, StatusCode::OK, "{method} {id}: {}", r.body);
            // Another principal's task, and one never issued, get the same 403.
            for (who, id) in [(&bob, id), (&alice, "task-made-up")] {
                let before = seen.all().len();
                let r = send(&app, task(who, method, id)).await;
                assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {id}");
                assert_eq!(
                    r.json(),
                    rpc_error(
                        json!(9),
                        ACCESS_DENIED,
                        "This task was not created by this caller"
                    )
                );
                assert_eq!(seen.all().len(), before, "the server saw {method} {id}");
            }
        }
    }
    // A task request that names no task, or names it with another type.
    for params in [json!({}), json!({"taskId": 7})] {
        let r = send(
            &app,
            post_with(
                &alice,
                &[JSON],
                rpc(9, "tasks/get", params.clone()).to_string(),
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{params}");
        assert_eq!(r.json()["error"]["code"], -32602, "{params}");
    }
    // Listening to task notifications: every task must be the caller's.
    let listen = |who: &str, ids: Value| {
        post_with(
            who,
            &[JSON],
            rpc(
                10,
                "subscriptions/listen",
                json!({"notifications": {"taskIds": ids}}),
            )
            .to_string(),
        )
    };
    assert_eq!(
        send(&app, listen(&alice, json!(["task-json", "task-sse"])))
            .await
            .status,
        StatusCode::OK
    );
    for ids in [json!(["task-json", "task-made-up"]), json!(["task-sse"])] {
        let who = if ids.as_array().unwrap().len() == 1 {
            &bob
        } else {
            &alice
        };
        assert_eq!(
            send(&app, listen(who, ids.clone())).await.status,
            StatusCode::FORBIDDEN,
            "{ids}"
        );
    }
    // taskIds that are not an array of strings name tasks the layer
    // cannot check: refused.
    for ids in [
        json!("task-json"),
        json!(null),
        json!([7]),
        json!(["task-json", {"taskId": "task-made-up"}]),
    ] {
        let r = send(&app, listen(&alice, ids.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{ids}");
        assert_eq!(r.json()["error"]["code"], -32602, "{ids}");
    }
    // tasks/list: each caller sees their own tasks only.
    let list = |who: &str| post_with(who, &[JSON], rpc(11, "tasks/list", json!({})).to_string());
    let ids = |r: &Reply| -> Vec<String> {
        r.json()["result"]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["taskId"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&send(&app, list(&alice)).await),
        ["task-json", "task-sse"]
    );
    assert!(ids(&send(&app, list(&bob)).await).is_empty());
    // In a batch, tasks/list cannot be filtered: refused.
    let batch = json!([rpc(1, "tasks/list", json!({})), rpc(2, "ping", json!({}))]);
    let r = send(&app, post_with(&bob, &[JSON], batch.to_string())).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_task_made_for_a_call_that_did_not_ask_for_one_stays_unbound() {
    let (app, _) = app(guard(), with_tasks);
    let alice = token(&claims());
    let r = send(
        &app,
        post_with(
            &alice,
            &[JSON],
            rpc(
                1,
                "tools/call",
                json!({"name": "slow_job", "arguments": {}}),
            )
            .to_string(),
        ),
    )
    .await;
    assert!(r.body.contains("task-json"), "{}", r.body);
    let r = send(
        &app,
        post_with(
            &alice,
            &[JSON],
            rpc(9, "tasks/get", json!({"taskId": "task-json"})).to_string(),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn task_bindings_are_shared_by_replicas_through_the_store() {
    let store = SharedStore::new(MemoryStore::new(1 << 20));
    let replica = || builder().shared_store(store.clone()).build().unwrap();
    let (one, _) = app(replica(), with_tasks);
    let (two, _) = app(replica(), with_tasks);
    let alice = token(&claims());
    let bob = token(&claims_with(json!({"sub": "bob", "jti": "b"})));
    create_tasks(&one, &alice).await;
    let get = |who: &str| {
        post_with(
            who,
            &[JSON],
            rpc(9, "tasks/get", json!({"taskId": "task-sse"})).to_string(),
        )
    };
    assert_eq!(send(&two, get(&alice)).await.status, StatusCode::OK);
    assert_eq!(send(&two, get(&bob)).await.status, StatusCode::FORBIDDEN);
    // Without task binding, the layer does not judge task ids at all.
    let (plain, _) = app(guard(), |g| McpLayer::new(g, policy()));
    assert_eq!(send(&plain, get(&bob)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_anonymous_caller_owns_no_one_elses_task() {
    let (app, _) = app(guard().with_mode(AuthMode::Optional), with_tasks);
    let alice = token(&claims());
    create_tasks(&app, &alice).await;
    let anon = Request::post("/mcp")
        .header("content-type", "application/json")
        .body(Body::from(
            rpc(9, "tasks/get", json!({"taskId": "task-json"})).to_string(),
        ))
        .unwrap();
    assert_eq!(send(&app, anon).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn only_get_post_and_delete_reach_the_server_and_get_and_delete_without_a_body() {
    let (app, seen) = app(guard(), |g| McpLayer::new(g, policy()));
    let t = token(&claims());
    let call = rpc(1, "tools/call", json!({"name": "delete_todo"})).to_string();
    for method in [
        "PUT", "PATCH", "OPTIONS", "HEAD", "post", "TRACE", "PROPFIND",
    ] {
        let req = Request::builder()
            .method(http::Method::from_bytes(method.as_bytes()).unwrap())
            .uri("/mcp")
            .header("authorization", format!("Bearer {t}"))
            .header("content-type", "application/json")
            .header("x-http-method-override", "POST")
            .body(Body::from(call.clone()))
            .unwrap();
        let r = send(&app, req).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(r.headers["allow"], "GET, POST, DELETE", "{method}");
        if method != "HEAD" {
            assert_eq!(
                r.json(),
                rpc_error(
                    Value::Null,
                    -32600,
                    "The MCP endpoint takes GET, POST and DELETE only"
                ),
                "{method}"
            );
        }
    }
    for method in [http::Method::GET, http::Method::DELETE] {
        let req = Request::builder()
            .method(method.clone())
            .uri("/mcp")
            .header("authorization", format!("Bearer {t}"))
            .header("content-type", "application/json")
            .body(Body::from(call.clone()))
            .unwrap();
        let r = send(&app, req).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{method}");
        assert_eq!(r.json(), rpc_error(Value::Null, -32600, "Invalid Request"));
    }
    assert!(seen.all().is_empty(), "the upstream saw {:?}", seen.all());
    // Without a body they pass (the stream rule decides).
    let get = Request::get("/mcp")
        .header("authorization", format!("Bearer {t}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, get).await.status, StatusCode::OK);
}
