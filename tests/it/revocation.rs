//! Revocation at the resource and the one clock: revoked tokens and
//! subjects, keys that leave the issuer's JWKS, and a `ManualClock` that
//! moves every time check (token times, the token cache, revocations).

use mcp_resource_guard::testing::Clocked;
use std::time::Duration;

use http::StatusCode;
use mcp_resource_guard::testing::{ManualClock, TestIssuer};
use mcp_resource_guard::{Algorithm, BearerToken, GuardLayer, Issuer, TokenCacheConfig};
use serde_json::json;

use crate::common::*;

const REVOKED: &str = "The access token has been revoked";

#[tokio::test]
async fn a_revoked_token_is_refused_even_from_the_cache() {
    let guard = guard();
    let app = app(guard.clone());
    let t = token(&claims());
    let other = token(&claims_with(json!({"jti": "other"})));
    assert_eq!(
        send(&app, request("/mcp", Some(&t))).await.status,
        StatusCode::OK
    );
    assert_eq!(guard.token_cache_entries(), 1);
    guard
        .revoke_token(&BearerToken::new(t.clone()))
        .await
        .unwrap();
    for _ in 0..2 {
        assert_invalid(&send(&app, request("/mcp", Some(&t))).await, REVOKED);
    }
    assert_eq!(
        send(&app, request("/mcp", Some(&other))).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_revoked_subject_signs_in_again_with_a_later_token() {
    let clock = ManualClock::new();
    let guard = builder().clock(&clock).build().unwrap();
    let app = app(guard.clone());
    let old = token(&claims());
    let bob = token(&claims_with(json!({"sub": "bob"})));
    assert_eq!(
        send(&app, request("/mcp", Some(&old))).await.status,
        StatusCode::OK
    );
    guard.revoke_subject(ISSUER, "alice").await.unwrap();
    // Refused from the cache, and when verified afresh.
    assert_invalid(&send(&app, request("/mcp", Some(&old))).await, REVOKED);
    let unseen = token(&claims_with(json!({"jti": "unseen"})));
    assert_invalid(&send(&app, request("/mcp", Some(&unseen))).await, REVOKED);
    // Another subject, or the same subject at another issuer, is not affected.
    assert_eq!(
        send(&app, request("/mcp", Some(&bob))).await.status,
        StatusCode::OK
    );
    guard.revoke_subject(OTHER_ISSUER, "bob").await.unwrap();
    assert_eq!(
        send(&app, request("/mcp", Some(&bob))).await.status,
        StatusCode::OK
    );
    // A token issued after the revocation works.
    clock.advance(Duration::from_secs(10));
    let fresh = token(&claims_with(json!({"iat": now() + 10, "exp": now() + 600})));
    assert_eq!(
        send(&app, request("/mcp", Some(&fresh))).await.status,
        StatusCode::OK
    );
    // The revocation is remembered for the retention window (24 h), no longer.
    clock.advance(Duration::from_secs(24 * 3600 + 60));
    let long = token(&claims_with(json!({"exp": now() + 48 * 3600})));
    assert_eq!(
        send(&app, request("/mcp", Some(&long))).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_manual_clock_moves_every_time_check() {
    let clock = ManualClock::new();
    let guard = builder().clock(&clock).build().unwrap();
    let app = app(guard.clone());
    let t = token(&claims_with(json!({"exp": now() + 120})));
    let later = token(&claims_with(
        json!({"nbf": now() + 600, "exp": now() + 3600, "jti": "later"}),
    ));
    assert_eq!(
        send(&app, request("/mcp", Some(&t))).await.status,
        StatusCode::OK
    );
    assert_invalid(&send(&app, request("/mcp", Some(&later))).await, NOT_YET);
    // 120 s of lifetime + 60 s of leeway: expired at +181 s, cached or not.
    clock.advance(Duration::from_secs(181));
    assert_eq!(guard.token_cache_entries(), 1);
    assert_invalid(&send(&app, request("/mcp", Some(&t))).await, EXPIRED);
    guard.clear_token_cache();
    assert_invalid(&send(&app, request("/mcp", Some(&t))).await, EXPIRED);
    // And a token not valid before +600 s becomes valid.
    clock.advance(Duration::from_secs(600));
    assert_eq!(
        send(&app, request("/mcp", Some(&later))).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_key_that_leaves_the_jwks_stops_verifying_at_once() {
    let dev = TestIssuer::builder()
        .algorithm(Algorithm::ES256)
        .start()
        .await
        .unwrap();
    let guard = GuardLayer::builder(RESOURCE)
        .add_issuer(Issuer::new(dev.issuer()).jwks_uri(dev.jwks_uri()))
        .token_cache(TokenCacheConfig::new(100, Duration::from_secs(300)))
        .build()
        .unwrap();
    let app = app(guard.clone());
    let old = dev.token("alice", RESOURCE, "todo:read");
    assert_eq!(
        send(&app, request("/mcp", Some(&old))).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, request("/mcp", Some(&old))).await.status,
        StatusCode::OK
    );
    // The issuer drops every old key; a token of the new key makes the
    // guard refetch (unknown kid).
    dev.rotate_without_overlap(Algorithm::ES256).unwrap();
    let new = dev.token("bob", RESOURCE, "todo:read");
    assert_eq!(
        send(&app, request("/mcp", Some(&new))).await.status,
        StatusCode::OK
    );
    // The old token was cached as verified, but its key is gone.
    let r = send(&app, request("/mcp", Some(&old))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.www(),
        format!(
            "Bearer error=\"invalid_token\", error_description=\"{UNKNOWN_KEY}\", resource_metadata=\"{METADATA_URL}\""
        )
    );
    assert_eq!(
        send(&app, request("/mcp", Some(&new))).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn settings_out_of_range_are_config_errors_not_panics() {
    let range = |b: mcp_resource_guard::GuardBuilder| match b.build() {
        Err(mcp_resource_guard::ConfigError::OutOfRange { setting, .. }) => setting,
        other => panic!("{other:?}"),
    };
    assert_eq!(range(builder().leeway(Duration::MAX)), "leeway");
    assert_eq!(range(builder().max_token_bytes(0)), "max_token_bytes");
    assert_eq!(
        range(builder().max_token_bytes(usize::MAX)),
        "max_token_bytes"
    );
    assert_eq!(
        range(builder().token_cache(TokenCacheConfig::new(10, Duration::MAX))),
        "token_cache max_ttl"
    );
    assert_eq!(
        range(builder().revocation_retention(Duration::MAX)),
        "revocation_retention"
    );
    assert_eq!(
        range(builder().revocation_retention(Duration::ZERO)),
        "revocation_retention"
    );
}
