//! The remote key source under faults: discovery, rotation, outages, floods,
//! freshness. A real HTTP server on 127.0.0.1 counts every fetch.

use mcp_resource_guard::testing::Clocked;
use std::sync::Arc;
use std::time::Duration;

use crate::common::fault_server::{FaultServer, Reply};
use crate::common::*;
use axum::Router;
use http::StatusCode;
use mcp_resource_guard::jwks::{KeyHealth, KeySource, RemoteJwks};
use mcp_resource_guard::testing::ManualClock;
use mcp_resource_guard::testing::{TestKey, jwks};
use mcp_resource_guard::{Algorithm, GuardLayer, Issuer, TokenCacheConfig};
use serde_json::{Value, json};

const JWKS: &str = "/jwks";

struct Setup {
    server: FaultServer,
    app: Router,
    guard: GuardLayer,
    clock: ManualClock,
    k1: TestKey,
}

/// A guard whose only issuer fetches its keys from the fault server.
async fn setup(
    tune: impl FnOnce(
        mcp_resource_guard::jwks::RemoteJwksBuilder,
    ) -> mcp_resource_guard::jwks::RemoteJwksBuilder,
) -> Setup {
    let server = FaultServer::start().await;
    let k1 = TestKey::generate(Algorithm::ES256).unwrap();
    server.json(JWKS, &jwks(&[&k1]));
    let clock = ManualClock::new();
    let source = tune(RemoteJwks::builder(server.url(JWKS)).clock(&clock))
        .build()
        .unwrap();
    // The verified-token cache would answer repeated tokens without asking
    // the key source: these tests are about the key source.
    let guard = GuardLayer::builder(RESOURCE)
        .add_issuer(Issuer::new(ISSUER).key_source(source))
        .scopes_supported(["todo:read", "todo:write"])
        .token_cache(TokenCacheConfig::disabled())
        .build()
        .unwrap();
    Setup {
        server,
        app: app(guard.clone()),
        guard,
        clock,
        k1,
    }
}

async fn status(app: &Router, token: &str) -> StatusCode {
    send(app, request("/mcp", Some(token))).await.status
}

// Discovery.

fn discovery_doc(issuer: &str, jwks_uri: &str) -> Value {
    json!({"issuer": issuer, "jwks_uri": jwks_uri, "token_endpoint": format!("{issuer}/token")})
}

async fn discovery_guard(issuer: &str) -> GuardLayer {
    GuardLayer::builder(RESOURCE)
        .add_issuer(Issuer::new(issuer))
        .scopes_supported(["todo:read", "todo:write"])
        .build()
        .unwrap()
}

#[tokio::test]
async fn discovery_by_rfc8414_with_a_path_inserted_issuer() {
    let server = FaultServer::start().await;
    let issuer = server.url("/tenant/t1");
    let k = TestKey::generate(Algorithm::RS256).unwrap();
    server.json(
        "/.well-known/oauth-authorization-server/tenant/t1",
        &discovery_doc(&issuer, &server.url(JWKS)),
    );
    server.json(JWKS, &jwks(&[&k]));
    let app = app(discovery_guard(&issuer).await);
    let t = k.sign(&claims_with(json!({"iss": issuer})));
    assert_eq!(status(&app, &t).await, StatusCode::OK);
    assert_eq!(status(&app, &t).await, StatusCode::OK);
    assert_eq!(
        server.hits("/.well-known/oauth-authorization-server/tenant/t1"),
        1
    );
    assert_eq!(
        server.hits("/tenant/t1/.well-known/openid-configuration"),
        0
    );
    assert_eq!(server.hits(JWKS), 1);
}

#[tokio::test]
async fn discovery_falls_back_to_openid_configuration() {
    let server = FaultServer::start().await;
    let issuer = server.url("/realms/r1");
    let k = TestKey::generate(Algorithm::PS256).unwrap();
    server.json(
        "/realms/r1/.well-known/openid-configuration",
        &discovery_doc(&issuer, &server.url(JWKS)),
    );
    server.json(JWKS, &jwks(&[&k]));
    let guard = discovery_guard(&issuer).await;
    guard.warm_up().await.unwrap();
    assert!(guard.readiness().is_ready());
    let t = k.sign(&claims_with(json!({"iss": issuer})));
    assert_eq!(status(&app(guard), &t).await, StatusCode::OK);
    assert_eq!(
        server.hits("/.well-known/oauth-authorization-server/realms/r1"),
        1
    );
    assert_eq!(
        server.hits("/realms/r1/.well-known/openid-configuration"),
        1
    );
}

#[tokio::test]
async fn discovery_rejects_a_document_for_another_issuer() {
    let server = FaultServer::start().await;
    let issuer = server.base.clone();
    server.json(
        "/.well-known/oauth-authorization-server",
        &discovery_doc("https://evil.example.com", &server.url(JWKS)),
    );
    server.json(JWKS, &jwks(&[&keys().stranger]));
    let guard = discovery_guard(&issuer).await;
    let err = guard.warm_up().await.unwrap_err().to_string();
    assert!(
        err.contains("names issuer \"https://evil.example.com\""),
        "{err}"
    );
    assert_eq!(server.hits(JWKS), 0);
    assert!(!guard.readiness().is_ready());
    assert_eq!(guard.readiness().issuers()[0].1, KeyHealth::Absent);
}

#[tokio::test]
async fn an_explicit_jwks_uri_skips_discovery() {
    let s = setup(|b| b).await;
    assert_eq!(status(&s.app, &s.k1.sign(&claims())).await, StatusCode::OK);
    assert_eq!(s.server.hits("/.well-known/oauth-authorization-server"), 0);
    assert_eq!(s.server.hits("/.well-known/openid-configuration"), 0);
}

#[tokio::test]
async fn an_unknown_issuer_is_rejected_before_any_io() {
    let server = FaultServer::start().await;
    let guard = discovery_guard(&server.base).await;
    let t = keys()
        .stranger
        .sign(&claims_with(json!({"iss": "https://unknown.example.com"})));
    let r = send(&app(guard), request("/mcp", Some(&t))).await;
    assert_invalid(&r, UNTRUSTED);
    assert_eq!(server.hits("/.well-known/oauth-authorization-server"), 0);
    assert_eq!(server.hits("/.well-known/openid-configuration"), 0);
}

// Faults when keys were never obtained: 503 with Retry-After, bounded fetching.

#[tokio::test]
async fn every_fault_without_keys_gives_503() {
    let big = format!(r#"{{"keys":[],"pad":"{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let faults = [
        ("down", Reply::Close),
        ("slow", Reply::Slow(Duration::from_secs(3), "{}".into())),
        ("500", Reply::Status(500)),
        ("garbage", Reply::Json("<html>not json".into(), vec![])),
        ("empty set", Reply::Json(r#"{"keys":[]}"#.into(), vec![])),
        ("2 MiB", Reply::Json(big, vec![])),
        ("redirect loop", Reply::Redirect("/jwks".into())),
    ];
    for (name, fault) in faults {
        let s = setup(|b| b.timeout(Duration::from_millis(500))).await;
        s.server.route(JWKS, fault);
        let r = send(&s.app, request("/mcp", Some(&s.k1.sign(&claims())))).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{name}");
        assert_eq!(r.headers["retry-after"], "10", "{name}");
        assert!(!s.guard.readiness().is_ready(), "{name}");
        // Backing off: the next requests do not hammer the endpoint.
        let before = s.server.hits(JWKS);
        for _ in 0..20 {
            assert_eq!(
                status(&s.app, &s.k1.sign(&claims())).await,
                StatusCode::SERVICE_UNAVAILABLE,
                "{name}"
            );
        }
        assert_eq!(s.server.hits(JWKS), before, "{name}");
        // Tokens that fail before key lookup are still 401s.
        let bad = s.k1.sign(&claims_with(json!({"aud": "https://x"})));
        assert_eq!(
            status(&s.app, &bad).await,
            StatusCode::UNAUTHORIZED,
            "{name}"
        );
    }
}

#[tokio::test]
async fn redirects_are_followed_a_bounded_number_of_times() {
    let s = setup(|b| b).await;
    s.server.route(JWKS, Reply::Redirect("/jwks2".into()));
    s.server.json("/jwks2", &jwks(&[&s.k1]));
    assert_eq!(status(&s.app, &s.k1.sign(&claims())).await, StatusCode::OK);
    let loop_ = setup(|b| b).await;
    loop_.server.route(JWKS, Reply::Redirect("/jwks".into()));
    assert_eq!(
        status(&loop_.app, &loop_.k1.sign(&claims())).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // The first request and 3 redirects (the documented limit).
    assert_eq!(loop_.server.hits(JWKS), 1 + 3);
}

// Unknown kids: single flight and cooldown.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_requests_with_one_new_kid_cause_one_fetch() {
    let s = setup(|b| b).await;
    s.guard.warm_up().await.unwrap();
    assert_eq!(s.server.hits(JWKS), 1);
    let k2 = TestKey::generate(Algorithm::ES256).unwrap();
    s.server.json(JWKS, &jwks(&[&s.k1, &k2]));
    let token = Arc::new(k2.sign(&claims()));
    let tasks: Vec<_> = (0..10_000)
        .map(|_| {
            let app = s.app.clone();
            let token = token.clone();
            tokio::spawn(async move { status(&app, &token).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == StatusCode::OK {
            ok += 1;
        }
    }
    assert_eq!(ok, 10_000);
    assert_eq!(s.server.hits(JWKS), 2, "exactly one refetch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_random_kids_cause_at_most_one_fetch_per_cooldown() {
    let s = setup(|b| b).await;
    s.guard.warm_up().await.unwrap();
    let stranger = &keys().stranger;
    let tokens: Vec<String> = (0..10_000)
        .map(|i| {
            stranger.sign_with_header(
                &json!({"alg": "ES256", "typ": "at+jwt", "kid": format!("random-{i}")}),
                &claims(),
            )
        })
        .collect();
    let started = std::time::Instant::now();
    let tasks: Vec<_> = tokens
        .into_iter()
        .map(|t| {
            let app = s.app.clone();
            tokio::spawn(async move { send(&app, request("/mcp", Some(&t))).await })
        })
        .collect();
    for t in tasks {
        assert_invalid(&t.await.unwrap(), UNKNOWN_KEY);
    }
    let windows = 1 + started.elapsed().as_secs() / 10;
    let refetches = s.server.hits(JWKS) - 1;
    assert!(
        refetches >= 1 && refetches as u64 <= windows,
        "{refetches} refetches in {windows} cooldown windows"
    );
}

#[tokio::test]
async fn rotation_without_overlap_and_key_removal() {
    let s = setup(|b| b.refetch_cooldown(Duration::ZERO)).await;
    assert_eq!(status(&s.app, &s.k1.sign(&claims())).await, StatusCode::OK);
    let k2 = TestKey::generate(Algorithm::EdDSA).unwrap();
    s.server.json(JWKS, &jwks(&[&k2]));
    // The new key is fetched on first sight, without a restart.
    assert_eq!(status(&s.app, &k2.sign(&claims())).await, StatusCode::OK);
    assert_eq!(s.server.hits(JWKS), 2);
    // The removed key no longer verifies.
    let r = send(&s.app, request("/mcp", Some(&s.k1.sign(&claims())))).await;
    assert_invalid(&r, UNKNOWN_KEY);
}

#[tokio::test]
async fn rotation_with_overlap_is_picked_up_by_the_scheduled_refresh() {
    let s = setup(|b| b).await;
    s.guard.warm_up().await.unwrap();
    let k2 = TestKey::generate(Algorithm::RS256).unwrap();
    s.server.json(JWKS, &jwks(&[&s.k1, &k2]));
    // Past the refresh point (at most 90 % of the default hour).
    s.clock.advance(Duration::from_secs(55 * 60));
    assert_eq!(status(&s.app, &s.k1.sign(&claims())).await, StatusCode::OK);
    assert!(s.server.wait_hits(JWKS, 2).await, "background refresh");
    assert_eq!(status(&s.app, &k2.sign(&claims())).await, StatusCode::OK);
    assert_eq!(status(&s.app, &s.k1.sign(&claims())).await, StatusCode::OK);
    // Later k1 is retired; the next scheduled refresh drops it.
    s.server.json(JWKS, &jwks(&[&k2]));
    s.clock.advance(Duration::from_secs(55 * 60));
    assert_eq!(status(&s.app, &k2.sign(&claims())).await, StatusCode::OK);
    assert!(s.server.wait_hits(JWKS, 3).await, "background refresh");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = send(&s.app, request("/mcp", Some(&s.k1.sign(&claims())))).await;
    assert_invalid(&r, UNKNOWN_KEY);
}

// Outages after warm-up: stale-if-error.

#[tokio::test]
async fn an_outage_after_warm_up_rejects_no_valid_token_inside_the_stale_window() {
    let s = setup(|b| b.timeout(Duration::from_millis(300))).await;
    s.guard.warm_up().await.unwrap();
    assert_eq!(s.guard.readiness().issuers()[0].1, KeyHealth::Fresh);
    let token = s.k1.sign(&claims());
    let mut rejections = 0;
    for (i, fault) in [
        Reply::Status(500),
        Reply::Close,
        Reply::Json("garbage".into(), vec![]),
        Reply::Slow(Duration::from_secs(2), "{}".into()),
    ]
    .into_iter()
    .enumerate()
    {
        s.server.route(JWKS, fault);
        // Hours pass: past the expiry, inside the 24 h stale window.
        s.clock
            .advance(Duration::from_secs(if i == 0 { 3700 } else { 4 * 3600 }));
        for _ in 0..50 {
            let st = status(&s.app, &token).await;
            assert!(!st.is_server_error(), "{st}");
            if st != StatusCode::OK {
                rejections += 1;
            }
        }
        s.server.wait_hits(JWKS, 2 + i).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rejections, 0);
    assert_eq!(s.guard.readiness().issuers()[0].1, KeyHealth::Stale);
    // Backoff: the failing endpoint saw a handful of attempts, not hundreds.
    assert!(s.server.hits(JWKS) <= 10, "{}", s.server.hits(JWKS));
    // Past the stale window the keys are gone: 503, not a 401 loop.
    s.server.route(JWKS, Reply::Status(500));
    s.clock.advance(Duration::from_secs(25 * 3600));
    assert_eq!(s.guard.readiness().issuers()[0].1, KeyHealth::Absent);
    assert_eq!(
        status(&s.app, &token).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Recovery once the endpoint is back (after the backoff delay).
    s.server.json(JWKS, &jwks(&[&s.k1]));
    s.clock.advance(Duration::from_secs(600));
    assert_eq!(status(&s.app, &token).await, StatusCode::OK);
    assert_eq!(s.guard.readiness().issuers()[0].1, KeyHealth::Fresh);
}

// Freshness from Cache-Control / Expires, within clamps.

async fn fetches_after(headers: Vec<(String, String)>, quiet: u64, due: u64) {
    let s = setup(|b| b).await;
    s.server.route(
        JWKS,
        Reply::Json(jwks(&[&s.k1]).to_string(), headers.clone()),
    );
    let token = s.k1.sign(&claims());
    assert_eq!(status(&s.app, &token).await, StatusCode::OK);
    s.clock.advance(Duration::from_secs(quiet));
    assert_eq!(status(&s.app, &token).await, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        s.server.hits(JWKS),
        1,
        "{headers:?}: no fetch after {quiet}s"
    );
    s.clock.advance(Duration::from_secs(due - quiet));
    assert_eq!(status(&s.app, &token).await, StatusCode::OK);
    assert!(
        s.server.wait_hits(JWKS, 2).await,
        "{headers:?}: a fetch by {due}s"
    );
}

fn h(name: &str, value: &str) -> Vec<(String, String)> {
    vec![(name.to_owned(), value.to_owned())]
}

#[tokio::test]
async fn cache_control_max_age_is_honoured() {
    // Refresh between 75 % and 90 % of max-age.
    fetches_after(h("cache-control", "public, max-age=1200"), 850, 1100).await;
}

#[tokio::test]
async fn a_short_max_age_is_clamped_to_five_minutes() {
    fetches_after(h("cache-control", "max-age=5"), 200, 300).await;
    fetches_after(h("cache-control", "no-store"), 200, 300).await;
}

#[tokio::test]
async fn a_long_max_age_is_clamped_to_a_day() {
    fetches_after(h("cache-control", "max-age=9999999"), 17 * 3600, 24 * 3600).await;
}

#[tokio::test]
async fn no_caching_headers_mean_one_hour() {
    fetches_after(vec![], 40 * 60, 3600).await;
}

#[tokio::test]
async fn expires_is_honoured() {
    let at = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2400));
    fetches_after(h("expires", &at), 1700, 2400).await;
}

#[tokio::test]
async fn unusable_jwks_entries_are_skipped() {
    let s = setup(|b| b).await;
    let mut set = jwks(&[&s.k1]);
    set["keys"].as_array_mut().unwrap().extend([
        json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}),
        json!({"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB", "kid": "enc"}),
        json!({"kty": "EC", "crv": "P-256", "kid": "broken"}),
        json!({"kty": "XYZ"}),
    ]);
    s.server.json(JWKS, &set);
    assert_eq!(status(&s.app, &s.k1.sign(&claims())).await, StatusCode::OK);
}

#[tokio::test]
async fn a_custom_fetcher_plugs_in() {
    #[derive(Debug)]
    struct Fixed(String);
    #[async_trait::async_trait]
    impl mcp_resource_guard::jwks::HttpFetch for Fixed {
        async fn get(
            &self,
            url: &str,
            _max: usize,
        ) -> Result<mcp_resource_guard::jwks::HttpResponse, mcp_resource_guard::jwks::KeySourceError>
        {
            assert_eq!(url, "https://as.example.com/jwks");
            Ok(mcp_resource_guard::jwks::HttpResponse::new(
                200,
                self.0.clone().into_bytes(),
            ))
        }
    }
    let k = TestKey::generate(Algorithm::EdDSA).unwrap();
    let source = RemoteJwks::builder("https://as.example.com/jwks")
        .http_fetch(Fixed(jwks(&[&k]).to_string()))
        .build()
        .unwrap();
    assert_eq!(source.health(), KeyHealth::Absent);
    source.warm_up().await.unwrap();
    assert_eq!(source.health(), KeyHealth::Fresh);
    let guard = GuardLayer::builder(RESOURCE)
        .add_issuer(Issuer::new(ISSUER).key_source(source))
        .build()
        .unwrap();
    assert_eq!(
        status(&app(guard), &k.sign(&claims())).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_token_without_kid_from_a_new_key_triggers_one_refetch() {
    let s = setup(|b| b).await;
    s.guard.warm_up().await.unwrap();
    let k2 = TestKey::generate(Algorithm::ES256).unwrap().without_kid();
    s.server
        .json(JWKS, &json!({"keys": [s.k1.public_jwk(), k2.public_jwk()]}));
    assert_eq!(status(&s.app, &k2.sign(&claims())).await, StatusCode::OK);
    assert_eq!(s.server.hits(JWKS), 2);
}

#[tokio::test]
async fn each_issuer_has_its_own_keys_audiences_and_scope_claim() {
    let a = FaultServer::start().await;
    let b = FaultServer::start().await;
    let ka = TestKey::generate(Algorithm::ES256).unwrap();
    let kb = TestKey::generate(Algorithm::RS256).unwrap();
    a.json(JWKS, &jwks(&[&ka]));
    b.json(JWKS, &jwks(&[&kb]));
    let guard = GuardLayer::builder(RESOURCE)
        .add_issuer(Issuer::new(ISSUER).jwks_uri(a.url(JWKS)))
        .add_issuer(
            Issuer::new(OTHER_ISSUER)
                .jwks_uri(b.url(JWKS))
                .add_audience("api://todo")
                .scope_claim(mcp_resource_guard::ScopeClaim::named("roles")),
        )
        .scopes_supported(["todo:read", "todo:write"])
        .build()
        .unwrap();
    let app = app(guard);
    let other = |c: Value| kb.sign(&claims_with(c));
    let r = send(
        &app,
        request(
            "/mcp",
            Some(&other(
                json!({"iss": OTHER_ISSUER, "aud": "api://todo", "roles": ["r1"]}),
            )),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["scopes"], json!(["r1"]));
    // The extra audience is the other issuer's only.
    let r = send(
        &app,
        request(
            "/mcp",
            Some(&ka.sign(&claims_with(json!({"aud": "api://todo"})))),
        ),
    )
    .await;
    assert_invalid(&r, WRONG_AUD);
    // Each issuer's key verifies only its own tokens.
    let r = send(&app, request("/mcp", Some(&kb.sign(&claims())))).await;
    assert_invalid(&r, UNKNOWN_KEY);
    assert_eq!(status(&app, &ka.sign(&claims())).await, StatusCode::OK);
    // A: the first fetch, then one refetch for the unknown kid. B: one fetch.
    assert_eq!((a.hits(JWKS), b.hits(JWKS)), (2, 1));
}
