//! The verified-token cache through the guard.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::*;
use async_trait::async_trait;
use http::StatusCode;
use mcp_resource_guard::jwks::{
    KeyRef, KeySet, KeySource, KeySourceError, RefreshReason, StaticJwks,
};
use mcp_resource_guard::{
    Algorithm, AuthContext, AuthError, BearerToken, GuardLayer, Issuer, RequireScopeLayer,
    TokenCacheConfig, TokenVerifier,
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
        inner: mcp_resource_guard::fuzzing::verifier(
            &builder().leeway(Duration::ZERO).build().unwrap(),
        ),
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
        inner: mcp_resource_guard::fuzzing::verifier(&builder().build().unwrap()),
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

/// What an outer layer put in a request's extensions.
#[derive(Debug, Clone, PartialEq)]
struct Marker(u32);

/// The guard around a service that reports what its request's extensions
/// hold: the number of entries, the caller's subject, the marker.
async fn report(guard: &GuardLayer, req: http::Request<()>) -> String {
    use tower::{Layer, ServiceExt};
    let svc = guard.layer(tower::service_fn(|req: http::Request<()>| async move {
        let ext = req.extensions();
        let sub = ext
            .get::<AuthContext>()
            .and_then(|c| c.subject().map(str::to_owned));
        let text = format!("{} {sub:?} {:?}", ext.len(), ext.get::<Marker>());
        Ok::<_, std::convert::Infallible>(http::Response::new(text))
    }));
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{}", res.body());
    res.into_body()
}

#[tokio::test]
async fn a_hit_hands_on_the_context_and_keeps_what_outer_layers_put_there() {
    let (guard, calls) = counting_guard(TokenCacheConfig::default());
    let t = token(&claims());
    let req = |marker: Option<u32>| {
        let mut r = http::Request::get("/mcp")
            .header("authorization", format!("Bearer {t}"))
            .body(())
            .unwrap();
        if let Some(m) = marker {
            r.extensions_mut().insert(Marker(m));
        }
        r
    };
    // Verified, then three hits: with and without an outer layer's entry;
    // the context, the marker if any, and nothing else.
    assert_eq!(
        report(&guard, req(Some(1))).await,
        r#"2 Some("alice") Some(Marker(1))"#
    );
    assert_eq!(
        report(&guard, req(Some(2))).await,
        r#"2 Some("alice") Some(Marker(2))"#
    );
    assert_eq!(report(&guard, req(None)).await, r#"1 Some("alice") None"#);
    assert_eq!(
        report(&guard, req(Some(3))).await,
        r#"2 Some("alice") Some(Marker(3))"#
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A key source that verifies with static keys but, asked on a cache hit,
/// says it no longer holds any key.
#[derive(Debug)]
struct HoldsNothing(StaticJwks);

#[async_trait]
impl KeySource for HoldsNothing {
    async fn keys(&self) -> Result<Arc<KeySet>, KeySourceError> {
        self.0.keys().await
    }

    async fn refresh(
        &self,
        reason: RefreshReason<'_>,
        seen: &Arc<KeySet>,
    ) -> Result<Option<Arc<KeySet>>, KeySourceError> {
        self.0.refresh(reason, seen).await
    }

    fn holds(&self, _: &KeyRef) -> bool {
        false
    }
}

#[tokio::test]
async fn a_hit_asks_the_key_source_of_the_issuer_that_verified_it() {
    let k = keys();
    // The first issuer's source disowns its keys on every hit; the second's
    // keeps them.
    let first = HoldsNothing(static_jwks(&[k.get(Algorithm::ES256)]));
    let guard = GuardLayer::builder(RESOURCE)
        .add_issuer(Issuer::new(ISSUER).key_source(first))
        .add_issuer(Issuer::new(OTHER_ISSUER).key_source(static_jwks(&[&k.other])))
        .scopes_supported(["todo:read", "todo:write"])
        .build()
        .unwrap();
    let app = app(guard);
    let other = k.other.sign(&claims_with(json!({"iss": OTHER_ISSUER})));
    for _ in 0..3 {
        assert_eq!(
            send(&app, request("/mcp", Some(&other))).await.status,
            StatusCode::OK
        );
    }
    // The first issuer's token verifies, then its hit finds the key gone.
    let mine = token(&claims());
    assert_eq!(
        send(&app, request("/mcp", Some(&mine))).await.status,
        StatusCode::OK
    );
    assert_invalid(&send(&app, request("/mcp", Some(&mine))).await, UNKNOWN_KEY);
}

#[tokio::test]
async fn the_guard_around_a_router_served_by_axum_as_the_readme_shows() {
    use axum::extract::MatchedPath;
    use axum::routing::post;
    use mcp_resource_guard::mcp::{McpLayer, McpPolicy, Rule};
    let guard = guard();
    let policy = McpPolicy::builder()
        .default_rule(Rule::Deny)
        .method("tools/list", Rule::require(["todo:read"]))
        .build()
        .unwrap();
    // The handler reads the context and the router's own entry, both in
    // the map the guard handed on.
    let router = axum::Router::new().route(
        "/mcp",
        post(|ctx: AuthContext, path: MatchedPath| async move {
            format!("{} {}", ctx.subject().unwrap_or("?"), path.as_str())
        }),
    );
    // The manual's code (manual::mounting), as written there.
    let mcp = McpLayer::new(&guard, policy); // if any: inside the guard
    let app = tower::ServiceBuilder::new()
        .layer(guard)
        .layer(mcp)
        .service(router);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::ServiceExt::<axum::extract::Request>::into_make_service(app),
        )
        .await
        .unwrap();
    });
    let http = reqwest::Client::new();
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let t = token(&claims());
    // Verified, then twice from the cache.
    for _ in 0..3 {
        let r = http
            .post(format!("http://{addr}/mcp"))
            .bearer_auth(&t)
            .header("content-type", "application/json")
            .body(list)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.text().await.unwrap(), "alice /mcp");
    }
    // The guard still sees every request: the metadata, and no token.
    let r = http
        .get(format!(
            "http://{addr}/.well-known/oauth-protected-resource/mcp"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = http
        .post(format!("http://{addr}/mcp"))
        .body(list)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], PLAIN_CHALLENGE);
    // A method the policy does not list is refused by the MCP layer.
    let r = http
        .post(format!("http://{addr}/mcp"))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":2,"method":"prompts/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}
