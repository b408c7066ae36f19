//! The verified-token cache through the guard.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::*;
use async_trait::async_trait;
use http::StatusCode;
use mcp_resource_guard::{
    AuthContext, AuthError, BearerToken, GuardLayer, Issuer, RequireScopeLayer, TokenCacheConfig,
    TokenVerifier,
};
use serde_json::json;

/// The real JWT verifier, counting how often it runs.
#[derive(Debug, Clone)]
struct Counting {
    inner: Arc<dyn TokenVerifier>,
    calls: Arc<AtomicUsize>,
}

#[async_trait]
impl TokenVerifier for Counting {
    async fn verify(&self, token: &BearerToken) -> Result<AuthContext, AuthError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.verify(token).await
    }
}

fn counting_guard(cache: TokenCacheConfig) -> (GuardLayer, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let verifier = Counting {
        inner: builder().leeway(Duration::ZERO).build().unwrap().verifier(),
        calls: calls.clone(),
    };
    let guard = GuardLayer::builder(RESOURCE)
        .add_issuer(Issuer::new(ISSUER))
        .scopes_supported(["todo:read", "todo:write"])
        .leeway(Duration::ZERO)
        .token_cache(cache)
        .verifier(verifier)
        .build()
        .unwrap();
    (guard, calls)
}

#[tokio::test]
async fn a_repeated_token_is_verified_once() {
    let (guard, calls) = counting_guard(TokenCacheConfig::default());
    let app = app(guard);
    let t = token(&claims());
    for _ in 0..5 {
        let r = send(&app, request("/mcp", Some(&t))).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["sub"], "alice");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let (guard, calls) = counting_guard(TokenCacheConfig::disabled());
    let uncached = crate::common::app(guard);
    for _ in 0..5 {
        assert_eq!(
            send(&uncached, request("/mcp", Some(&t))).await.status,
            StatusCode::OK
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn failures_are_never_cached_as_successes() {
    let (guard, calls) = counting_guard(TokenCacheConfig::default());
    let app = app(guard);
    let bad = keys().stranger.sign(&claims());
    for _ in 0..3 {
        assert_invalid(&send(&app, request("/mcp", Some(&bad))).await, UNKNOWN_KEY);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn scopes_are_still_checked_on_every_hit() {
    let (guard, _) = counting_guard(TokenCacheConfig::default());
    let app: axum::Router = axum::Router::new()
        .route("/mcp", axum::routing::get(identity))
        .route(
            "/write",
            axum::routing::get(identity)
                .route_layer(RequireScopeLayer::all(&guard, ["todo:write"]).unwrap()),
        )
        .layer(guard);
    let ro = token(&claims_with(json!({"scope": "todo:read"})));
    assert_eq!(
        send(&app, request("/mcp", Some(&ro))).await.status,
        StatusCode::OK
    );
    for _ in 0..2 {
        assert_eq!(
            send(&app, request("/write", Some(&ro))).await.status,
            StatusCode::FORBIDDEN
        );
    }
}

#[tokio::test]
async fn a_hit_rechecks_expiry() {
    let (guard, calls) = counting_guard(TokenCacheConfig::default());
    let app = app(guard);
    let t = token(&claims_with(json!({"exp": now() + 2})));
    assert_eq!(
        send(&app, request("/mcp", Some(&t))).await.status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_invalid(&send(&app, request("/mcp", Some(&t))).await, EXPIRED);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn clearing_forces_a_full_verification() {
    let (guard, calls) = counting_guard(TokenCacheConfig::default());
    let app = app(guard.clone());
    let t = token(&claims());
    assert_eq!(
        send(&app, request("/mcp", Some(&t))).await.status,
        StatusCode::OK
    );
    guard.clear_token_cache();
    assert_eq!(
        send(&app, request("/mcp", Some(&t))).await.status,
        StatusCode::OK
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn only_authorized_tokens_are_cached() {
    // The guard requires todo:admin; a verified token without it is refused
    // each time, never served from the cache.
    let calls = Arc::new(AtomicUsize::new(0));
    let verifier = Counting {
        inner: builder().build().unwrap().verifier(),
        calls: calls.clone(),
    };
    let guard = GuardLayer::builder(RESOURCE)
        .add_issuer(Issuer::new(ISSUER))
        .scopes_supported(["todo:read", "todo:write", "todo:admin"])
        .required_scopes(["todo:admin"])
        .verifier(verifier)
        .build()
        .unwrap();
    let app = app(guard.clone());
    let t = token(&claims());
    for _ in 0..3 {
        let r = send(&app, request("/mcp", Some(&t))).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(guard.token_cache_entries(), 0);
    // With the required scope: verified once, then served from the cache.
    let other = token(&claims_with(json!({"scope": "todo:admin"})));
    for _ in 0..2 {
        assert_eq!(
            send(&app, request("/mcp", Some(&other))).await.status,
            StatusCode::OK
        );
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "an authorized token is cached"
    );
}
