//! The audit trail: one event per decision on `mcp_resource_guard::audit`,
//! with every field an auditor needs, and never any part of a token.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::common::*;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::{get, post};
use http::{Request, StatusCode};
use mcp_resource_guard::RequireScopeLayer;
use mcp_resource_guard::mcp::{McpLayer, McpPolicy, Rule};
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

type Fields = BTreeMap<String, String>;

/// Every event, as (target, level, fields incl. `message`).
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(String, Level, Fields)>>>);

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::new();
        event.record(&mut Visitor(&mut fields));
        let m = event.metadata();
        self.0
            .lock()
            .unwrap()
            .push((m.target().to_owned(), *m.level(), fields));
    }
}

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn app() -> Router {
    let policy = McpPolicy::builder()
        .default_rule(Rule::Allow)
        .tool("delete_todo", Rule::require(["todo:delete"]))
        .tool("admin_*", Rule::Deny)
        .build()
        .unwrap();
    let guard = guard();
    Router::new()
        .route("/mcp", post(|body: Bytes| async move { body }))
        .layer(McpLayer::new(&guard, policy).max_body_bytes(1024).unwrap())
        .route(
            "/admin",
            get(|| async { "ok" }).layer(RequireScopeLayer::all(&guard, ["todo:admin"]).unwrap()),
        )
        .layer(guard)
}

fn call_tool(token: Option<&str>, tool: &str) -> Request<Body> {
    let mut b = Request::post("/mcp").header("content-type", "application/json");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool}});
    b.body(Body::from(body.to_string())).unwrap()
}

fn audit_events(c: &Capture) -> Vec<(Level, Fields)> {
    c.0.lock()
        .unwrap()
        .iter()
        .filter(|(t, _, _)| t == "mcp_resource_guard::audit")
        .map(|(_, l, f)| (*l, f.clone()))
        .collect()
}

/// Captures every event (fields, and the fmt subscriber's text) while the
/// returned guard lives.
fn record_events() -> (Capture, Buf, tracing::subscriber::DefaultGuard) {
    let capture = Capture::default();
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::registry().with(capture.clone()).with(
        tracing_subscriber::fmt::layer()
            .with_writer(move || writer.clone())
            .with_ansi(false),
    );
    let guard = tracing::subscriber::set_default(subscriber);
    (capture, buf, guard)
}

fn field<'a>(f: &'a Fields, name: &str) -> &'a str {
    f.get(name).map_or("<absent>", String::as_str)
}

#[tokio::test]
async fn every_decision_is_audited_with_its_fields_and_no_token() {
    let (capture, buf, _guard) = record_events();

    let app = app();
    let good = token(&claims_with(json!({"jti": "jti-audit-1"})));
    let expired = token(&claims_with(json!({"exp": now() - 3600})));
    let stranger = keys().stranger.sign(&claims());
    let (input, _) = good.rsplit_once('.').unwrap();
    let bad_sig = format!("{input}.{}", stranger.rsplit_once('.').unwrap().1);

    let r = send(&app, call_tool(Some(&good), "add_todo")).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(&app, call_tool(Some(&good), "delete_todo")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&app, call_tool(Some(&good), "admin_wipe")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&app, request("/admin", Some(&good))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The second time from the verified-token cache.
    let r = send(&app, request("/admin", Some(&good))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    for t in [&expired, &bad_sig] {
        let r = send(&app, call_tool(Some(t), "add_todo")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = send(&app, call_tool(None, "add_todo")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = send(&app, request(&format!("/mcp?access_token={good}"), None)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let events = audit_events(&capture);
    let got: Vec<String> = events
        .iter()
        .map(|(_, f)| {
            format!(
                "{} {} {} {}",
                field(f, "layer"),
                field(f, "outcome"),
                field(f, "reason"),
                field(f, "status")
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "guard allow verified <absent>",
            "mcp allow policy_satisfied <absent>",
            "guard allow verified <absent>",
            "mcp deny insufficient_scope 403",
            "guard allow verified <absent>",
            "mcp deny access_denied 403",
            "guard allow verified <absent>",
            "require_scope deny insufficient_scope 403",
            "guard allow verified <absent>",
            "require_scope deny insufficient_scope 403",
            "guard deny expired 401",
            "guard deny invalid_token 401",
            "guard deny missing_token 401",
            "guard deny malformed_request 400",
        ],
        "{events:#?}"
    );

    // The identity of a verified token, on allow and on the denials after it.
    for i in [0, 1, 3, 7] {
        let f = &events[i].1;
        assert_eq!(field(f, "issuer"), ISSUER, "{f:?}");
        assert_eq!(field(f, "sub"), "alice", "{f:?}");
        assert_eq!(field(f, "client_id"), "agent-1", "{f:?}");
        assert_eq!(field(f, "jti"), "jti-audit-1", "{f:?}");
        assert_eq!(field(f, "scopes_granted"), "todo:read todo:write");
    }
    assert_eq!(field(&events[0].1, "cached"), "false");
    assert_eq!(field(&events[8].1, "cached"), "true");
    // MCP method and tool; required scopes.
    let f = &events[1].1;
    assert_eq!(
        (field(f, "mcp_method"), field(f, "mcp_tool")),
        ("tools/call", "add_todo")
    );
    let f = &events[3].1;
    assert_eq!(
        (
            field(f, "mcp_tool"),
            field(f, "scopes_required"),
            field(f, "detail")
        ),
        (
            "delete_todo",
            "todo:delete",
            "the token lacks a scope this MCP call needs"
        )
    );
    assert_eq!(field(&events[5].1, "mcp_tool"), "admin_wipe");
    assert_eq!(field(&events[7].1, "scopes_required"), "todo:admin");
    // A token that failed verification contributes no identity.
    for i in [10, 11, 12, 13] {
        let f = &events[i].1;
        assert_eq!(
            (field(f, "issuer"), field(f, "sub"), field(f, "jti")),
            ("<absent>", "<absent>", "<absent>"),
            "{f:?}"
        );
    }
    assert_eq!(field(&events[10].1, "detail"), "exp is in the past");
    assert!(events.iter().all(|(l, _)| *l == Level::INFO));

    // No token material anywhere: not in the captured fields, not in the
    // formatted output of every event of every target.
    let all_fields = format!("{:?}", capture.0.lock().unwrap());
    let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(out.contains("mcp_resource_guard::audit"), "{out}");
    for t in [&good, &expired, &stranger, &bad_sig] {
        for segment in t.split('.') {
            // Any 16-character window of any segment.
            for w in segment.as_bytes().windows(16).step_by(4) {
                let w = std::str::from_utf8(w).unwrap();
                assert!(!out.contains(w), "token material {w} in the logs");
                assert!(!all_fields.contains(w), "token material {w} in a field");
            }
        }
    }
}

#[tokio::test]
async fn no_usable_keys_is_a_warning() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    // A remote key source that can never be reached.
    let guard = mcp_resource_guard::GuardLayer::builder(RESOURCE)
        .add_issuer(
            mcp_resource_guard::Issuer::new(ISSUER).key_source(
                mcp_resource_guard::jwks::RemoteJwks::builder("http://127.0.0.1:9/jwks")
                    .build()
                    .unwrap(),
            ),
        )
        .build()
        .unwrap();
    let r = send(
        &crate::common::app(guard),
        request("/mcp", Some(&token(&claims()))),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let events = audit_events(&capture);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].0, Level::WARN);
    assert_eq!(field(&events[0].1, "reason"), "keys_unavailable");
}

#[tokio::test]
async fn request_text_cannot_forge_log_lines() {
    let (capture, buf, _guard) = record_events();
    let app = app();
    let good = token(&claims());
    let tool = "add_todo\nINFO mcp_resource_guard::audit: outcome=\"allow\" sub=\"root\"\u{1b}[2J";
    let r = send(&app, call_tool(Some(&good), tool)).await;
    assert_eq!(r.status, StatusCode::OK);
    let events = audit_events(&capture);
    let f = &events.last().unwrap().1;
    assert_eq!(
        field(f, "mcp_tool"),
        "add_todo\\nINFO mcp_resource_guard::audit: outcome=\"allow\" sub=\"root\"\\u{1b}[2J"
    );
    let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    // One line per event: the newline and the escape stayed escaped.
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(!out.contains('\u{1b}'));
}

#[tokio::test]
async fn token_claims_cannot_forge_log_lines_either() {
    let (capture, buf, _guard) = record_events();
    let app = app();
    let forged = "root\nINFO mcp_resource_guard::audit: outcome=\"allow\"\u{1b}[2J";
    let t = token(&claims_with(json!({
        "sub": forged, "client_id": forged, "jti": forged,
    })));
    let r = send(&app, call_tool(Some(&t), "list_todos")).await;
    assert_eq!(r.status, StatusCode::OK);
    let escaped = "root\\nINFO mcp_resource_guard::audit: outcome=\"allow\"\\u{1b}[2J";
    for (_, f) in audit_events(&capture) {
        for name in ["sub", "client_id", "jti"] {
            assert_eq!(field(&f, name), escaped, "{name}");
        }
    }
    let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(!out.contains('\u{1b}'));
}

#[tokio::test]
async fn a_delegated_token_is_audited_with_its_act_chain() {
    let (capture, _buf, _guard) = record_events();
    let t = token(&claims_with(
        json!({"act": {"sub": "gateway", "act": {"client_id": "agent-7"}}}),
    ));
    let r = send(&app(), call_tool(Some(&t), "list_todos")).await;
    assert_eq!(r.status, StatusCode::OK);
    let events = audit_events(&capture);
    assert!(!events.is_empty());
    for (_, f) in &events {
        assert_eq!(field(f, "act"), "gateway < agent-7", "{f:?}");
    }
    // Without act: an empty chain.
    let (capture, _buf, _guard2) = record_events();
    send(&app(), call_tool(Some(&token(&claims())), "list_todos")).await;
    for (_, f) in &audit_events(&capture) {
        assert_eq!(field(f, "act"), "", "{f:?}");
    }
}
