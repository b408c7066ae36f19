//! Both MCP wires: the `2026-07-28` header cross-check (`-32020`), scope
//! hierarchies wherever a scope is checked, challenges per revision, and
//! `offline_access` hygiene.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::post;
use http::{Request, StatusCode};
use mcp_resource_guard::mcp::{McpLayer, McpPolicy, Rule};
use mcp_resource_guard::{ConfigError, GuardLayer, RequireScopeLayer, ScopeHierarchy};
use serde_json::json;

use crate::common::*;

const SCOPES: [&str; 4] = ["todo:read", "todo:write", "todo:delete", "todo:admin"];

fn hierarchy() -> ScopeHierarchy {
    ScopeHierarchy::new()
        .implies("todo:admin", ["todo:write", "todo:delete"])
        .implies("todo:write", ["todo:read"])
}

fn todo_guard() -> GuardLayer {
    builder()
        .scopes_supported(SCOPES)
        .required_scopes(["todo:read"])
        .scope_hierarchy(hierarchy())
        .build()
        .unwrap()
}

fn policy() -> McpPolicy {
    McpPolicy::builder()
        .default_rule(Rule::Deny)
        .method("tools/list", Rule::require(["todo:read"]))
        .tool("add_todo", Rule::require(["todo:write"]))
        .tool("delete_todo", Rule::require(["todo:delete"]))
        .tool("reset", Rule::require(["todo:admin"]))
        .tool("edit", Rule::require(["todo:read", "todo:write"]))
        .build()
        .unwrap()
}

/// The MCP endpoint (an echo server counting what reaches it) and a plain
/// route behind `RequireScopeLayer` (`todo:delete`).
fn app(guard: GuardLayer, seen: Arc<AtomicUsize>) -> Router {
    let echo = move |body: Bytes| {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            body
        }
    };
    Router::new()
        .route(
            "/mcp",
            post(echo.clone()).layer(McpLayer::new(&guard, policy())),
        )
        .route(
            "/purge",
            post(echo).route_layer(RequireScopeLayer::all(&guard, ["todo:delete"]).unwrap()),
        )
        .layer(guard)
}

/// A `tools/call` on the given wire: stateless with `Mcp-Method`/`Mcp-Name`
/// (overridable), or the session wire's plain POST.
fn call(token: &str, tool: &str, stateless: bool, headers: &[(&str, &str)]) -> Request<Body> {
    let mut params = json!({"name": tool, "arguments": {}});
    let mut b = Request::post("/mcp")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"));
    if stateless {
        params["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28"});
        b = b.header("mcp-protocol-version", "2026-07-28");
        if !headers.iter().any(|(k, _)| *k == "mcp-method") {
            b = b.header("mcp-method", "tools/call");
        }
        if !headers.iter().any(|(k, _)| *k == "mcp-name") {
            b = b.header("mcp-name", tool);
        }
    } else {
        b = b.header("mcp-protocol-version", "2025-11-25");
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params});
    b.body(Body::from(body.to_string())).unwrap()
}

fn scoped(scope: &str) -> String {
    token(&claims_with(json!({"scope": scope})))
}

#[tokio::test]
async fn stateless_headers_must_agree_with_the_body() {
    let seen = Arc::new(AtomicUsize::new(0));
    let app = app(todo_guard(), seen.clone());
    let admin = scoped("todo:admin");
    assert_eq!(
        send(&app, call(&admin, "add_todo", true, &[])).await.status,
        StatusCode::OK
    );
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    let mismatch = |r: &Reply| {
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert_eq!(r.www(), "");
        assert_eq!(
            r.json(),
            json!({"jsonrpc": "2.0", "id": 7, "error": {"code": -32020, "message": "Header mismatch"}})
        );
    };
    // A header naming a harmless tool over a body calling another: the
    // body decides, and the disagreement is refused before any policy.
    let ro = scoped("todo:read");
    let without_method = {
        let (mut parts, body) = call(&ro, "add_todo", true, &[]).into_parts();
        parts.headers.remove("mcp-method");
        Request::from_parts(parts, body)
    };
    for req in [
        call(&ro, "add_todo", true, &[("mcp-name", "list_todos")]),
        call(&ro, "add_todo", true, &[("mcp-method", "tools/list")]),
        call(
            &ro,
            "add_todo",
            true,
            &[("mcp-name", "=?base64?bGlzdF90b2Rvcw==?=")],
        ),
        without_method,
    ] {
        mismatch(&send(&app, req).await);
    }
    // The Base64 form of the right name passes (then the policy decides).
    let r = send(
        &app,
        call(
            &admin,
            "add_todo",
            true,
            &[("mcp-name", "=?base64?YWRkX3RvZG8=?=")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        seen.load(Ordering::SeqCst),
        2,
        "a refused request reached the server"
    );
    // The session wire keeps its behaviour: no Mcp-* headers needed.
    assert_eq!(
        send(&app, call(&admin, "add_todo", false, &[]))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_hierarchy_applies_wherever_a_scope_is_checked() {
    let seen = Arc::new(AtomicUsize::new(0));
    let app = app(todo_guard(), seen);
    let admin = scoped("todo:admin");
    // The guard's required todo:read, the MCP rules and the route's
    // todo:delete are all given by todo:admin.
    for tool in ["add_todo", "delete_todo", "reset", "edit"] {
        let r = send(&app, call(&admin, tool, false, &[])).await;
        assert_eq!(r.status, StatusCode::OK, "{tool}");
    }
    let purge = |t: &str| {
        Request::post("/purge")
            .header("authorization", format!("Bearer {t}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(send(&app, purge(&admin)).await.status, StatusCode::OK);
    // todo:write gives todo:read (the guard lets it in) but not todo:delete.
    let writer = scoped("todo:write");
    assert_eq!(
        send(&app, call(&writer, "add_todo", false, &[]))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, call(&writer, "delete_todo", false, &[]))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&app, purge(&writer)).await.status,
        StatusCode::FORBIDDEN
    );
}

fn insufficient(scope: &str) -> String {
    format!(
        "Bearer error=\"insufficient_scope\", error_description=\"The access token lacks a scope this request needs\", resource_metadata=\"{METADATA_URL}\", scope=\"{scope}\""
    )
}

#[tokio::test]
async fn challenges_follow_the_revision() {
    let seen = Arc::new(AtomicUsize::new(0));
    let app = app(todo_guard(), seen);
    let ro = scoped("todo:read");
    let none = scoped("profile");
    // (token, tool, session wire's scope=, stateless wire's scope=)
    let cases = [
        // Session: what to hold afterwards (required, needed, kept).
        // Stateless: exactly what is still needed, the narrowest.
        (&ro, "add_todo", "todo:read todo:write", "todo:write"),
        (&ro, "reset", "todo:read todo:admin", "todo:admin"),
        (&ro, "edit", "todo:read todo:write", "todo:write"),
        (&none, "delete_todo", "todo:read", "todo:read"),
    ];
    for (t, tool, session, stateless) in cases {
        let r = send(&app, call(t, tool, false, &[])).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.www(), insufficient(session), "session wire, {tool}");
        let r = send(&app, call(t, tool, true, &[])).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.www(), insufficient(stateless), "stateless wire, {tool}");
    }
    // Both todo:read and todo:write missing: the narrowest is todo:write.
    let open = builder()
        .scopes_supported(SCOPES)
        .scope_hierarchy(hierarchy())
        .build()
        .unwrap();
    let open_app = self::app(open, Arc::new(AtomicUsize::new(0)));
    let r = send(&open_app, call(&none, "edit", false, &[])).await;
    assert_eq!(r.www(), insufficient("todo:read todo:write"));
    let r = send(&open_app, call(&none, "edit", true, &[])).await;
    assert_eq!(r.www(), insufficient("todo:write"));
    // The guard's own 403 (`profile` lacks the required todo:read) and the
    // route layer's, per wire.
    let purge = |t: &str, version: &str| {
        Request::post("/purge")
            .header("authorization", format!("Bearer {t}"))
            .header("mcp-protocol-version", version)
            .body(Body::empty())
            .unwrap()
    };
    let r = send(&app, purge(&ro, "2025-11-25")).await;
    assert_eq!(r.www(), insufficient("todo:read todo:delete"));
    let r = send(&app, purge(&ro, "2026-07-28")).await;
    assert_eq!(r.www(), insufficient("todo:delete"));
    let strict = builder()
        .scopes_supported(SCOPES)
        .required_scopes(["todo:read", "todo:write"])
        .scope_hierarchy(hierarchy())
        .build()
        .unwrap();
    let app = crate::common::app(strict);
    let get = |version: &str| {
        Request::get("/mcp")
            .header("authorization", format!("Bearer {ro}"))
            .header("mcp-protocol-version", version)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        send(&app, get("2025-11-25")).await.www(),
        insufficient("todo:read todo:write")
    );
    assert_eq!(
        send(&app, get("2026-07-28")).await.www(),
        insufficient("todo:write")
    );
}

#[test]
fn offline_access_is_never_a_resource_scope() {
    let err = |r: Result<GuardLayer, ConfigError>| r.unwrap_err();
    assert_eq!(
        err(builder()
            .scopes_supported(["todo:read", "offline_access"])
            .build()),
        ConfigError::OfflineAccess
    );
    assert_eq!(
        err(builder().required_scopes(["offline_access"]).build()),
        ConfigError::OfflineAccess
    );
    let g = guard();
    assert_eq!(
        RequireScopeLayer::all(&g, ["offline_access"]).unwrap_err(),
        ConfigError::OfflineAccess
    );
    assert_eq!(
        McpPolicy::builder()
            .tool("x", Rule::require(["offline_access"]))
            .build()
            .unwrap_err(),
        ConfigError::OfflineAccess
    );
}

#[test]
fn hierarchy_config_errors_reach_the_builder() {
    let cyc = builder()
        .scopes_supported(SCOPES)
        .scope_hierarchy(hierarchy().implies("todo:read", ["todo:admin"]))
        .build()
        .unwrap_err();
    assert!(matches!(cyc, ConfigError::ScopeCycle { .. }), "{cyc}");
    let unknown = builder()
        .scopes_supported(["todo:read"])
        .scope_hierarchy(hierarchy())
        .build()
        .unwrap_err();
    assert!(
        matches!(unknown, ConfigError::UnknownScope { .. }),
        "{unknown}"
    );
}
