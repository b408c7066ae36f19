//! The differential harness in process: `McpLayer` in front of a real rmcp
//! server (the interop suite's `rmcp_upstream`, included here), which logs
//! everything it executes. Every request of the corpus: what the layer
//! judged (its audit event) against what rmcp ran. A refused request runs
//! nothing; one let through runs only what was judged, for the principal
//! judged, in a session that principal owns. (The interop suite runs the
//! larger corpus through the guard proxy against the TypeScript, Python
//! and rmcp servers.)

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use mcp_resource_guard::mcp::{McpLayer, McpPolicy, Rule, SessionBinding, TaskBinding};
use mcp_resource_guard::{AuthContext, GuardLayer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use crate::common::*;

use rmcp_upstream as upstream;

/// The MCP layer's audit events: (outcome, sub, methods, targets).
#[derive(Clone, Default)]
struct Judged(Arc<Mutex<Vec<[String; 4]>>>);

struct Fields([String; 5]);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let v = format!("{value:?}");
        self.record_str(field, v.trim_start_matches("Some(").trim_end_matches(')'));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let i = match field.name() {
            "layer" => 0,
            "outcome" => 1,
            "sub" => 2,
            "mcp_method" => 3,
            "mcp_tool" => 4,
            _ => return,
        };
        self.0[i] = value.to_owned();
    }
}

impl<S: Subscriber> Layer<S> for Judged {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != "mcp_resource_guard::audit" {
            return;
        }
        let mut f = Fields(Default::default());
        event.record(&mut f);
        let [layer, outcome, sub, methods, targets] = f.0;
        if layer == "mcp" {
            self.0
                .lock()
                .unwrap()
                .push([outcome, sub, methods, targets]);
        }
    }
}

const HOST: &str = "mcp.example.com";

fn app(ran: Arc<Mutex<Vec<Value>>>) -> Router {
    let guard: GuardLayer = builder()
        .scopes_supported(["todo:read", "todo:write", "todo:delete"])
        .required_scopes(["todo:read"])
        .build()
        .unwrap();
    let policy = McpPolicy::builder()
        .default_rule(Rule::Deny)
        .stream_rule(Rule::Allow)
        .method("initialize", Rule::Allow)
        .method("notifications/initialized", Rule::Allow)
        .method("tools/list", Rule::Allow)
        .method("resources/read", Rule::Allow)
        .method("prompts/get", Rule::Allow)
        .tool("whoami", Rule::Allow)
        .tool("add_todo", Rule::require(["todo:write"]))
        .tool("delete_todo", Rule::require(["todo:delete"]))
        .resource("file:///public/*", Rule::Allow)
        .resource("file:///secret/*", Rule::require(["todo:delete"]))
        .prompt("secret_prompt", Rule::require(["todo:delete"]))
        .build()
        .unwrap();
    let subject: upstream::SubjectOf = |p| {
        AuthContext::from_extensions(&p.extensions).and_then(|c| c.subject().map(str::to_owned))
    };
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(true)
        .with_sse_keep_alive(None)
        .with_allowed_hosts(vec![HOST.to_owned()]);
    let rmcp = StreamableHttpService::new(
        move || {
            Ok(upstream::Upstream::new(
                upstream::Log::Memory(ran.clone()),
                subject,
            ))
        },
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let mcp = McpLayer::new(&guard, policy)
        .session_binding(SessionBinding::new())
        .task_binding(TaskBinding::new());
    Router::new()
        .route_service("/mcp", rmcp)
        .layer(mcp)
        .layer(guard)
}

/// One request of the corpus.
struct Case {
    name: String,
    who: &'static str,
    method: &'static str,
    headers: Vec<(String, String)>,
    /// Whose session it names: "own", "alice", or none.
    session: Option<&'static str>,
    body: Vec<u8>,
}

fn call(name: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": args}})
}

fn read(uri: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "resources/read", "params": {"uri": uri}})
}

/// `m` on the session wire (in the sender's session) or the stateless one.
fn case(name: &str, m: &Value, stateless: bool) -> Case {
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        (
            "accept".to_owned(),
            "application/json, text/event-stream".to_owned(),
        ),
    ];
    let mut m = m.clone();
    if stateless {
        m["params"]["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}});
        headers.push(("mcp-protocol-version".to_owned(), "2026-07-28".to_owned()));
        headers.push((
            "mcp-method".to_owned(),
            m["method"].as_str().unwrap().to_owned(),
        ));
        let p = &m["params"];
        if let Some(n) = p["name"].as_str().or(p["uri"].as_str())
            && n.bytes().all(|b| (0x20..0x7f).contains(&b))
        {
            headers.push(("mcp-name".to_owned(), n.to_owned()));
        }
    } else {
        headers.push(("mcp-protocol-version".to_owned(), "2025-11-25".to_owned()));
    }
    Case {
        name: format!(
            "{name} ({})",
            if stateless { "stateless" } else { "session" }
        ),
        who: "bob",
        method: "POST",
        headers,
        session: (!stateless).then_some("own"),
        body: m.to_string().into_bytes(),
    }
}

fn corpus() -> Vec<Case> {
    let mut out = Vec::new();
    for stateless in [false, true] {
        out.push(case("whoami", &call("whoami", json!({})), stateless));
        out.push(Case {
            who: "alice",
            ..case(
                "alice deletes",
                &call("delete_todo", json!({"id": 1})),
                stateless,
            )
        });
        out.push(case(
            "bob deletes",
            &call("delete_todo", json!({"id": 1})),
            stateless,
        ));
        let who = call("whoami", json!({"id": 1})).to_string();
        for body in [
            who.replace(
                r#""name":"whoami""#,
                r#""name":"whoami","name":"delete_todo""#,
            ),
            who.replace(
                r#""name":"whoami""#,
                r#""name":"delete_todo","name":"whoami""#,
            ),
            who.replace(r#""name":"whoami""#, r#""n\u0061me":"delete_todo""#),
            who.replace(r#""name":"whoami""#, r#""name":"delete\u005ftodo""#),
            who.replace(
                r#""params":{"#,
                r#""params":{"name":"delete_todo"},"params":{"#,
            ),
        ] {
            let mut c = case("json", &call("whoami", json!({})), stateless);
            c.name = format!("{} {body}", c.name);
            c.body = body.into_bytes();
            out.push(c);
        }
        for ct in [
            "application/json; charset=utf-7",
            "application/json; charset=utf-16le",
            "text/plain",
            "application/json; x=1",
        ] {
            let mut c = case(ct, &call("delete_todo", json!({"id": 1})), stateless);
            c.headers[0].1 = ct.to_owned();
            out.push(c);
        }
        for uri in [
            "file:///secret/a",
            "file://localhost/secret/a",
            "file:/secret/a",
            "file:secret/a",
            "FILE:///secret/%61",
            "file:///%73ecret/a",
            "file:////secret/a",
            "file:///secret//a",
            "file:///public/../secret/a",
            "file:///public/%2e%2e/secret/a",
            "file:///public/..%2fsecret/a",
            "file://127.0.0.1/secret/a",
            "file:///secret/a?x",
            "file:///secret/a#x",
            "file:///public/a",
            "file:///public/a?../../secret/a",
        ] {
            out.push(case(&format!("read {uri:?}"), &read(uri), stateless));
        }
    }
    // Sessions.
    let whoami = call("whoami", json!({}));
    let mut hijack = case("bob in alice's session", &whoami, false);
    hijack.session = Some("alice");
    out.push(hijack);
    let mut stateless = case("bob, alice's session, stateless header", &whoami, true);
    stateless.session = Some("alice");
    out.push(stateless);
    let mut old_meta = case(
        "bob, alice's session, body _meta 2025-11-25",
        &whoami,
        false,
    );
    old_meta.session = Some("alice");
    let mut b = whoami.clone();
    b["params"]["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2025-11-25"});
    old_meta.body = b.to_string().into_bytes();
    out.push(old_meta);
    let mut two = case(
        "bob, two MCP-Protocol-Version headers, alice's session",
        &whoami,
        false,
    );
    two.session = Some("alice");
    two.headers
        .push(("mcp-protocol-version".to_owned(), "2026-07-28".to_owned()));
    out.push(two);
    // Batches and methods.
    let mut batch = case("batch [whoami, delete]", &whoami, false);
    batch.body = json!([
        call("whoami", json!({})),
        call("delete_todo", json!({"id": 1}))
    ])
    .to_string()
    .into_bytes();
    out.push(batch);
    for method in ["PUT", "PATCH", "GET", "DELETE"] {
        out.push(Case {
            method,
            ..case(method, &call("delete_todo", json!({"id": 1})), false)
        });
    }
    out
}

async fn send(app: &Router, c: &Case, token: &str, sessions: &[(&str, String)]) -> StatusCode {
    let mut b = Request::builder()
        .method(c.method)
        .uri("/mcp")
        .header("host", HOST)
        .header("authorization", format!("Bearer {token}"));
    for (k, v) in &c.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let whose = match c.session {
        Some("own") => Some(c.who),
        other => other,
    };
    if let Some(whose) = whose
        && let Some((_, id)) = sessions.iter().find(|(w, _)| *w == whose)
    {
        b = b.header("mcp-session-id", id.as_str());
    }
    send_status(app, b.body(Body::from(c.body.clone())).unwrap()).await
}

async fn send_status(app: &Router, req: Request<Body>) -> StatusCode {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    // Read the answer to its end: rmcp runs the call as the stream is read.
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(2), res.into_body().collect()).await;
    status
}

/// Why what ran disagrees with what was judged, if it does.
fn disagreement(judged: &[[String; 4]], ran: &[Value], principal: &str) -> Option<String> {
    let allowed: Vec<&[String; 4]> = judged.iter().filter(|j| j[0] == "allow").collect();
    if allowed.is_empty() {
        return (!ran.is_empty()).then(|| format!("refused, yet ran {ran:?}"));
    }
    for e in ran {
        let matches = |[_, sub, methods, targets]: &[String; 4]| {
            let has = |list: &str, v: &str| list.split(',').any(|x| x == v);
            sub == principal
                && if let Some(t) = e["tool"].as_str() {
                    has(methods, "tools/call") && has(targets, t)
                } else if let Some(r) = e["resource"].as_str() {
                    // The layer judges the URI, without its fragment, and
                    // without its query and fragment.
                    has(methods, "resources/read")
                        && targets.split(',').any(|t| {
                            let no_fragment = t.split('#').next().unwrap_or(t);
                            [t, no_fragment, no_fragment.split('?').next().unwrap_or(t)]
                                .contains(&r)
                        })
                } else {
                    false
                }
        };
        if !allowed.iter().any(|j| matches(j)) {
            return Some(format!("ran {e} but judged {allowed:?}"));
        }
        if e["subject"] != principal {
            return Some(format!("ran for {}, judged for {principal}", e["subject"]));
        }
        if !e["session"].is_null() && e["owner"] != principal {
            return Some(format!("ran in {}'s session for {principal}", e["owner"]));
        }
    }
    None
}

#[tokio::test]
async fn every_request_runs_exactly_what_the_layer_judged_or_nothing() {
    let judged = Judged::default();
    let _capture =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(judged.clone()));
    let ran = Arc::new(Mutex::new(Vec::new()));
    let app = app(ran.clone());
    let tokens = [
        (
            "alice",
            token(&claims_with(
                json!({"sub": "alice", "scope": "todo:read todo:write todo:delete"}),
            )),
        ),
        (
            "bob",
            token(&claims_with(
                json!({"sub": "bob", "jti": "b", "scope": "todo:read"}),
            )),
        ),
    ];
    let token_of = |who: &str| tokens.iter().find(|(w, _)| *w == who).unwrap().1.clone();
    // Each principal's session.
    let mut sessions = Vec::new();
    for who in ["alice", "bob"] {
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
        let req = |body: &Value, session: Option<&str>| {
            let mut b = Request::post("/mcp")
                .header("host", HOST)
                .header("authorization", format!("Bearer {}", token_of(who)))
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream");
            if let Some(s) = session {
                b = b.header("mcp-session-id", s);
            }
            b.body(Body::from(body.to_string())).unwrap()
        };
        let res = tower::ServiceExt::oneshot(app.clone(), req(&init, None))
            .await
            .unwrap();
        let id = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        send_status(&app, req(&done, Some(&id))).await;
        sessions.push((who, id));
    }
    let mut failures = Vec::new();
    let mut executed = 0;
    for c in corpus() {
        let j0 = judged.0.lock().unwrap().len();
        let r0 = ran.lock().unwrap().len();
        send(&app, &c, &token_of(c.who), &sessions).await;
        let j = judged.0.lock().unwrap()[j0..].to_vec();
        let r = ran.lock().unwrap()[r0..].to_vec();
        executed += r.len();
        if let Some(why) = disagreement(&j, &r, c.who) {
            failures.push(format!("{}: {why}", c.name));
        }
    }
    assert_eq!(failures, Vec::<String>::new());
    // Not vacuous: whoami, alice's deletes, public reads ran.
    assert!(executed >= 6, "only {executed} executions");
}
