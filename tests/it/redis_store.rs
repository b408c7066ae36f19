//! The shared store on a real `redis-server` (started here on a free
//! loopback port): its semantics, keys that hold no secret, replay and
//! revocation across two guards, and a Redis restarted mid-test.

use std::time::{Duration, Instant};

use http::StatusCode;
use mcp_resource_guard::store::{KeyKind, RedisStore, SharedStore, Store, StoreKey};
use mcp_resource_guard::{BearerToken, ConfigError};
use serde_json::json;

use crate::common::redis_server::RedisServer;
use crate::common::*;
use crate::shared_store::{assert_dpop_error, bound_token, client_key, dpop_request, replica};

const URL: &str = "https://mcp.example.com/mcp";

#[tokio::test]
async fn the_redis_store_keeps_its_contract() {
    let redis = RedisServer::start();
    let store = RedisStore::builder(redis.url())
        .prefix("t1")
        .connect()
        .await
        .unwrap();
    let ttl = Duration::from_secs(60);
    let key = |s: &str| {
        StoreKey::new(
            KeyKind::RevokedJti,
            &[b"https://as.example.com", s.as_bytes()],
        )
    };
    assert!(
        store
            .insert_if_absent(&key("jti-secret-1"), b"a", ttl)
            .await
            .unwrap()
    );
    assert!(
        !store
            .insert_if_absent(&key("jti-secret-1"), b"b", ttl)
            .await
            .unwrap()
    );
    store.set(&key("jti-secret-2"), b"c", ttl).await.unwrap();
    let got = store
        .get_many(&[key("jti-secret-1"), key("jti-secret-2"), key("absent")])
        .await
        .unwrap();
    assert_eq!(got, vec![Some(b"a".to_vec()), Some(b"c".to_vec()), None]);
    store.remove(&key("jti-secret-1")).await.unwrap();
    assert_eq!(
        store.get_many(&[key("jti-secret-1")]).await.unwrap(),
        vec![None]
    );
    // TTLs are honoured...
    store
        .set(&key("short"), b"x", Duration::from_millis(50))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(store.get_many(&[key("short")]).await.unwrap(), vec![None]);
    // ... values are bounded ...
    // One byte over the store's value limit (64 KiB + 64 bytes).
    let big = vec![0u8; 64 * 1024 + 64 + 1];
    assert!(store.set(&key("big"), &big, ttl).await.is_err());
    // ... and what is in Redis: namespaced digests, each with a TTL.
    let keys = redis.command("KEYS *");
    assert!(keys.contains("t1:revoked-jti:"), "{keys}");
    assert!(!keys.contains("secret"), "{keys}");
    for line in keys.lines().filter(|l| l.starts_with("t1:")) {
        let pttl = redis.command(&format!("PTTL {line}"));
        let ms: i64 = pttl.trim().trim_start_matches(':').parse().unwrap();
        assert!(ms > 0, "{line}: {pttl}");
    }
}

#[tokio::test]
async fn configuration_mistakes_are_errors_that_hide_the_password() {
    let e = RedisStore::connect("http://user:hunter2@127.0.0.1:1/")
        .await
        .unwrap_err();
    assert!(matches!(e, ConfigError::InvalidUrl { .. }), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let e = RedisStore::builder("redis://127.0.0.1:1/")
        .timeout(Duration::ZERO)
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(e, ConfigError::OutOfRange { .. }), "{e}");
    let e = RedisStore::builder("redis://127.0.0.1:1/")
        .prefix("")
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(e, ConfigError::OutOfRange { .. }), "{e}");
    // A Redis that is not there: the store is built (connects lazily) and
    // each call fails within its timeout, never hangs.
    let store = RedisStore::builder("redis://127.0.0.1:1/")
        .timeout(Duration::from_millis(100))
        .connect()
        .await
        .unwrap();
    let started = Instant::now();
    let k = StoreKey::new(KeyKind::DpopProof, &[b"x"]);
    assert!(store.get_many(&[k]).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_redis_that_accepts_but_never_answers_fails_each_call_within_the_timeout() {
    // The kernel accepts connections on a listener nobody serves.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}/", hung.local_addr().unwrap());
    let store = RedisStore::builder(url)
        .timeout(Duration::from_millis(100))
        .connect()
        .await
        .unwrap();
    let k = StoreKey::new(KeyKind::DpopProof, &[b"y"]);
    for _ in 0..3 {
        let started = Instant::now();
        let e = store
            .insert_if_absent(&k, b"", Duration::from_secs(1))
            .await;
        assert!(e.is_err());
        assert!(
            started.elapsed() < Duration::from_millis(1000),
            "{:?}",
            started.elapsed()
        );
    }
    drop(hung);
}

async fn shared(redis: &RedisServer, recheck: Duration) -> SharedStore {
    let store = RedisStore::builder(redis.url())
        .timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    SharedStore::new(store).revocation_recheck(recheck)
}

#[tokio::test]
async fn two_guards_sharing_redis_refuse_a_replayed_proof_and_see_revocations_at_once() {
    let redis = RedisServer::start();
    let store = shared(&redis, Duration::ZERO).await;
    let (a, b) = (replica(&store), replica(&store));
    let bound = bound_token();
    let proof = client_key().dpop_proof("GET", URL, &bound);
    let first = send(&a, dpop_request(&bound, &proof)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let replay = send(&b, dpop_request(&bound, &proof)).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_dpop_error(&replay, "invalid_dpop_proof");

    // Revoked through one guard, refused by the other on the next request.
    let guard_a = builder().shared_store(store.clone()).build().unwrap();
    let guard_b = builder().shared_store(store.clone()).build().unwrap();
    let t = token(&claims_with(json!({"sub": "alice", "jti": "r-1"})));
    assert_eq!(
        send(&app(guard_b.clone()), request("/mcp", Some(&t)))
            .await
            .status,
        StatusCode::OK
    );
    guard_a
        .revoke_token(&BearerToken::new(t.clone()))
        .await
        .unwrap();
    assert_invalid(
        &send(&app(guard_b.clone()), request("/mcp", Some(&t))).await,
        "The access token has been revoked",
    );
    let t2 = token(&claims_with(json!({"sub": "dave", "jti": "r-2"})));
    guard_a.revoke_subject(ISSUER, "dave").await.unwrap();
    assert_invalid(
        &send(&app(guard_b), request("/mcp", Some(&t2))).await,
        "The access token has been revoked",
    );
}

#[tokio::test]
async fn a_redis_restart_gives_503s_not_panics_and_the_guard_recovers_by_itself() {
    let mut redis = RedisServer::start();
    let store = shared(&redis, Duration::ZERO).await;
    let guard = builder().shared_store(store.clone()).build().unwrap();
    let t = token(&claims_with(json!({"sub": "alice", "jti": "x-1"})));
    assert_eq!(
        send(&app(guard.clone()), request("/mcp", Some(&t)))
            .await
            .status,
        StatusCode::OK
    );
    let dpop = replica(&store);
    let bound = bound_token();

    redis.stop();
    for _ in 0..5 {
        let r = send(&app(guard.clone()), request("/mcp", Some(&t))).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
        assert_eq!(r.headers["retry-after"], "10");
        let proof = client_key().dpop_proof("GET", URL, &bound);
        let r = send(&dpop, dpop_request(&bound, &proof)).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    }
    // One outage, logged once.
    assert_eq!(store.outages().revocation, 1);

    redis.restart();
    // The connection manager reconnects by itself: no restart of the app.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = send(&app(guard.clone()), request("/mcp", Some(&t))).await;
        if r.status == StatusCode::OK {
            break;
        }
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
        assert!(Instant::now() < deadline, "the guard did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let proof = client_key().dpop_proof("GET", URL, &bound);
    assert_eq!(
        send(&dpop, dpop_request(&bound, &proof)).await.status,
        StatusCode::OK
    );
    assert_eq!(store.outages().revocation, 1);
}

#[tokio::test]
async fn a_redis_short_of_memory_refuses_new_proofs_with_503_and_forgets_no_old_one() {
    let redis = RedisServer::start();
    let store = RedisStore::builder(redis.url()).connect().await.unwrap();
    // Debian's redis-server: noeviction, the only policy that keeps entries.
    assert_eq!(
        store.eviction_policy().await.unwrap().as_deref(),
        Some("noeviction")
    );
    let shared = SharedStore::new(store.clone());
    let a = replica(&shared);
    let bound = bound_token();
    let first = client_key().dpop_proof("GET", URL, &bound);
    assert_eq!(
        send(&a, dpop_request(&bound, &first)).await.status,
        StatusCode::OK
    );
    // Memory is full: Redis refuses writes, so no proof can be remembered
    // and each is refused (503; Redis refuses the write before it looks at
    // the key). Nothing was forgotten to make room: with memory back, the
    // proof seen before is still a replay (401).
    let used: u64 = redis
        .command("INFO memory")
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    redis.command(&format!("CONFIG SET maxmemory {}", used / 2));
    let fresh = client_key().dpop_proof("GET", URL, &bound);
    let r = send(&a, dpop_request(&bound, &fresh)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    let replay = send(&a, dpop_request(&bound, &first)).await;
    assert_eq!(replay.status, StatusCode::SERVICE_UNAVAILABLE);
    redis.command("CONFIG SET maxmemory 0");
    let replay = send(&a, dpop_request(&bound, &first)).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_dpop_error(&replay, "invalid_dpop_proof");
    // A policy that evicts is reported.
    redis.command("CONFIG SET maxmemory-policy allkeys-lru");
    assert_eq!(
        store.eviction_policy().await.unwrap().as_deref(),
        Some("allkeys-lru")
    );
}
