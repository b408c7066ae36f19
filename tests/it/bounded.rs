//! Bounded resources: floods of garbage tokens, random kids and distinct
//! valid tokens leave every cache and the fetch count within its bound.

use std::sync::Arc;

use crate::common::fault_server::FaultServer;
use crate::common::*;
use axum::Router;
use http::StatusCode;
use mcp_resource_guard::jwks::RemoteJwks;
use mcp_resource_guard::testing::{TestKey, jwks};
use mcp_resource_guard::{Algorithm, BearerToken, GuardLayer, Issuer, TokenCacheConfig};
use serde_json::json;

const JWKS: &str = "/jwks";

/// Sends every token, `concurrency` at a time, and counts the statuses.
async fn flood(app: &Router, tokens: Vec<String>, concurrency: usize) -> Vec<(StatusCode, usize)> {
    let tokens = Arc::new(tokens);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (app, tokens, next) = (app.clone(), tokens.clone(), next.clone());
            tokio::spawn(async move {
                let mut seen = Vec::<(StatusCode, usize)>::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(t) = tokens.get(i) else { break };
                    let status = send(&app, request("/mcp", Some(t))).await.status;
                    match seen.iter_mut().find(|(s, _)| *s == status) {
                        Some((_, n)) => *n += 1,
                        None => seen.push((status, 1)),
                    }
                }
                seen
            })
        })
        .collect();
    let mut all = Vec::<(StatusCode, usize)>::new();
    for w in workers {
        for (s, n) in w.await.unwrap() {
            match all.iter_mut().find(|(x, _)| *x == s) {
                Some((_, m)) => *m += n,
                None => all.push((s, n)),
            }
        }
    }
    all
}

/// A cheap deterministic generator (xorshift), so failures reproduce.
fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_stay_within_every_bound() {
    let server = FaultServer::start().await;
    let key = TestKey::generate(Algorithm::ES256).unwrap();
    server.json(JWKS, &jwks(&[&key]));
    // One refetch cooldown spans the whole test.
    let source = RemoteJwks::builder(server.url(JWKS))
        .refetch_cooldown(std::time::Duration::from_secs(3600))
        .build()
        .unwrap();
    let guard = GuardLayer::builder(RESOURCE)
        .add_issuer(Issuer::new(ISSUER).key_source(source.clone()))
        .scopes_supported(["todo:read", "todo:write"])
        .token_cache(TokenCacheConfig::new(
            1_000,
            std::time::Duration::from_secs(300),
        ))
        .build()
        .unwrap();
    guard.warm_up().await.unwrap();
    let app = app(guard.clone());
    assert_eq!(server.hits(JWKS), 1);

    // 100,000 distinct garbage tokens (token68, JWT-shaped or not).
    let mut next = rng(0x9e37_79b9_7f4a_7c15);
    let garbage: Vec<String> = (0..100_000)
        .map(|i| {
            let a = next();
            let b = next();
            match i % 4 {
                0 => format!("{a:x}{b:x}"),
                1 => format!("eyJ{a:x}.{b:x}.{i}"),
                2 => format!("{a:x}.{b:x}.{i}.x.y"),
                _ => format!("ey{}.e30.{a:x}", "A".repeat(i % 64)),
            }
        })
        .collect();
    let statuses = flood(&app, garbage, 64).await;
    assert_eq!(statuses, [(StatusCode::UNAUTHORIZED, 100_000)]);
    assert_eq!(guard.token_cache_entries(), 0, "a failure was cached");
    assert_eq!(server.hits(JWKS), 1, "garbage caused a fetch");

    // 100,000 random kids on tokens that pass every claim check: one
    // refetch in the cooldown, at most 10,000 remembered unknown kids.
    let stranger = TestKey::generate(Algorithm::ES256).unwrap();
    let input = |kid: String| {
        let h = json!({"alg": "ES256", "typ": "at+jwt", "kid": kid});
        stranger.sign_with_header(&h, &claims())
    };
    // Signing 100,000 tokens would dominate the run: the signature is never
    // checked (no key has the kid), so one signature serves every header.
    let sig = input("k".into()).rsplit_once('.').unwrap().1.to_owned();
    let payload = b64(claims().to_string().as_bytes());
    let random_kids: Vec<String> = (0..100_000)
        .map(|_| {
            let h = json!({"alg": "ES256", "typ": "at+jwt", "kid": format!("{:x}", next())});
            format!("{}.{payload}.{sig}", b64(h.to_string().as_bytes()))
        })
        .collect();
    let statuses = flood(&app, random_kids, 64).await;
    assert_eq!(statuses, [(StatusCode::UNAUTHORIZED, 100_000)]);
    assert_eq!(server.hits(JWKS), 2, "more than one refetch in a cooldown");
    let remembered = source.unknown_kid_entries();
    assert!(
        (1..=10_000).contains(&remembered),
        "{remembered} unknown kids remembered"
    );
    assert_eq!(guard.token_cache_entries(), 0);

    // 5,000 distinct valid tokens into a cache of 1,000.
    let valid: Vec<String> = (0..5_000)
        .map(|i| key.sign(&claims_with(json!({"jti": format!("j-{i}")}))))
        .collect();
    let statuses = flood(&app, valid, 64).await;
    assert_eq!(statuses, [(StatusCode::OK, 5_000)]);
    let entries = guard.token_cache_entries();
    assert!(
        (1..=1_000).contains(&entries),
        "{entries} entries in a cache of 1,000"
    );
    assert_eq!(server.hits(JWKS), 2);
}

#[tokio::test]
async fn oversize_tokens_are_refused_unparsed() {
    // The default limit is 8 KiB: one byte over is refused before any
    // parsing; at the limit the token is parsed (and fails on its padding).
    let verifier = mcp_resource_guard::fuzzing::verifier(&guard());
    let good = token(&claims());
    let pad = |len: usize| format!("{good}{}", "A".repeat(len - good.len()));
    for (len, detail) in [
        (8 * 1024, "signature verification failed"),
        (8 * 1024 + 1, "the token is longer than max_token_bytes"),
        (1 << 20, "the token is longer than max_token_bytes"),
    ] {
        let err = verifier
            .verify(&BearerToken::new(pad(len)))
            .await
            .unwrap_err();
        assert_eq!(err.detail(), detail, "{len} bytes");
    }
    // Through the service the answer is the plain invalid_token one.
    let r = send(&app(guard()), request("/mcp", Some(&pad(1 << 20)))).await;
    assert_invalid(&r, INVALID);
}
