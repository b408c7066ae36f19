//! CORS (SPEC A5): the guard answers preflights itself, never passing an
//! unauthenticated `OPTIONS` to the inner service or the layers after it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use http::{Request, StatusCode};
use mcp_resource_guard::mcp::{McpLayer, McpPolicy, Rule};
use mcp_resource_guard::{CorsPolicy, GuardLayer, RequireScopeLayer};

use crate::common::*;

fn app(guard: GuardLayer, seen: Arc<AtomicUsize>) -> Router {
    let count = move || {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            "inner"
        }
    };
    let policy = McpPolicy::builder()
        .default_rule(Rule::Deny)
        .build()
        .unwrap();
    Router::new()
        .route(
            "/mcp",
            post(count.clone())
                .options(count.clone())
                .route_layer(McpLayer::new(&guard, policy)),
        )
        .route(
            "/admin",
            post(count.clone())
                .options(count)
                .route_layer(RequireScopeLayer::all(&guard, ["todo:admin"]).unwrap()),
        )
        .layer(guard)
}

fn preflight(path: &str, origin: &str) -> Request<Body> {
    Request::options(path)
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, mcp-protocol-version",
        )
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn preflights_are_answered_by_the_guard() {
    let seen = Arc::new(AtomicUsize::new(0));
    let app = app(guard(), seen.clone());
    for path in ["/mcp", "/admin", "/elsewhere"] {
        let r = send(&app, preflight(path, "https://inspector.example")).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{path}");
        assert_eq!(r.headers["access-control-allow-origin"], "*");
        assert_eq!(
            r.headers["access-control-allow-methods"],
            "GET, POST, DELETE, OPTIONS"
        );
        assert_eq!(
            r.headers["access-control-allow-headers"],
            "authorization, content-type, mcp-protocol-version"
        );
        assert_eq!(r.headers["access-control-max-age"], "86400");
        assert!(r.headers.get("www-authenticate").is_none());
    }
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "a preflight reached the inner service"
    );
    // A plain OPTIONS (not a preflight) is a request like any other.
    let r = send(&app, Request::options("/mcp").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn actual_responses_carry_the_cors_headers() {
    let seen = Arc::new(AtomicUsize::new(0));
    let app = app(guard(), seen);
    let t = token(&claims());
    let with_origin = |token: Option<&str>| {
        let mut b = Request::post("/admin").header("origin", "https://inspector.example");
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        b.body(Body::empty()).unwrap()
    };
    // A denial by the guard, one by a layer after it: both readable by the page.
    for req in [with_origin(None), with_origin(Some(&t))] {
        let r = send(&app, req).await;
        assert!(r.status == 401 || r.status == 403, "{}", r.status);
        assert_eq!(r.headers["access-control-allow-origin"], "*");
        assert_eq!(
            r.headers["access-control-expose-headers"],
            "WWW-Authenticate, Mcp-Session-Id, DPoP-Nonce"
        );
    }
    // Without an Origin, no CORS headers.
    let r = send(&app, request("/mcp", Some(&t))).await;
    assert!(r.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_list_of_origins_is_enforced() {
    let seen = Arc::new(AtomicUsize::new(0));
    let guard = builder()
        .cors(CorsPolicy::origins(["https://app.example.com"]))
        .build()
        .unwrap();
    let app = app(guard, seen.clone());
    let r = send(&app, preflight("/mcp", "https://app.example.com")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(r.headers["vary"], "Origin");
    let r = send(&app, preflight("/mcp", "https://evil.example")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.headers.get("access-control-allow-origin").is_none());
    let disabled = builder().cors(CorsPolicy::Disabled).build().unwrap();
    let app = self::app(disabled, seen.clone());
    let r = send(&app, preflight("/mcp", "https://app.example.com")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.headers.get("access-control-allow-origin").is_none());
    assert_eq!(seen.load(Ordering::SeqCst), 0);
    assert!(
        builder()
            .cors(CorsPolicy::origins(["https://app.example.com/"]))
            .build()
            .is_err()
    );
}
