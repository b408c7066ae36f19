//! Several guards (replicas) sharing one store: DPoP replay, revocations,
//! the failure policy when the store is down, outages counted once. The
//! store here is the in-process `MemoryStore` (and a switchable failing
//! wrapper); `redis_store.rs` runs the same against a real Redis.

use mcp_resource_guard::testing::Clocked;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode};
use mcp_resource_guard::dpop::{Dpop, DpopMode};
use mcp_resource_guard::store::{
    MemoryStore, ReplayWhenDown, SharedStore, Store, StoreError, StoreKey,
};
use mcp_resource_guard::testing::{ManualClock, TestKey};
use mcp_resource_guard::{Algorithm, AuthContext, BearerToken, GuardLayer};
use serde_json::{Value, json};

use crate::common::*;

/// A store that fails while `down` is set (a Redis that is down).
#[derive(Debug, Clone)]
pub struct Switchable {
    inner: MemoryStore,
    down: Arc<AtomicBool>,
}

impl Switchable {
    pub fn new() -> Self {
        Self {
            inner: MemoryStore::new(1 << 20),
            down: Arc::default(),
        }
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::new("connection refused"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Store for Switchable {
    async fn insert_if_absent(
        &self,
        key: &StoreKey,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.insert_if_absent(key, value, ttl).await
    }
    async fn set(&self, key: &StoreKey, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        self.check()?;
        self.inner.set(key, value, ttl).await
    }
    async fn get_many(&self, keys: &[StoreKey]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.check()?;
        self.inner.get_many(keys).await
    }
    async fn remove(&self, key: &StoreKey) -> Result<(), StoreError> {
        self.check()?;
        self.inner.remove(key).await
    }
    fn name(&self) -> &'static str {
        "switchable"
    }
}

const URL: &str = "https://mcp.example.com/mcp";

pub fn client_key() -> &'static TestKey {
    static KEY: std::sync::OnceLock<TestKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| TestKey::generate(Algorithm::ES256).unwrap())
}

/// A token bound to the client key.
pub fn bound_token() -> String {
    let key = client_key();
    token(&claims_with(
        json!({"cnf": {"jkt": key.thumbprint()}, "jti": "bound-1"}),
    ))
}

/// A replica: the default test guard with DPoP, sharing `store`.
pub fn replica(store: &SharedStore) -> Router {
    let guard = builder()
        .dpop(Dpop::new(DpopMode::Allowed))
        .shared_store(store.clone())
        .build()
        .unwrap();
    replica_app(guard)
}

fn replica_app(guard: GuardLayer) -> Router {
    Router::new()
        .route("/mcp", get(identity).post(identity))
        .layer(guard)
}

async fn identity(ctx: AuthContext) -> axum::Json<Value> {
    axum::Json(json!({"sub": ctx.subject()}))
}

pub fn dpop_request(token: &str, proof: &str) -> Request<Body> {
    Request::builder()
        .uri("/mcp")
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .body(Body::empty())
        .unwrap()
}

/// The DPoP challenge of `r` carries `error="<code>"`.
pub fn assert_dpop_error(r: &Reply, code: &str) {
    let dpop: Vec<&str> = r
        .headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .filter(|v| v.starts_with("DPoP "))
        .collect();
    assert_eq!(dpop.len(), 1, "{dpop:?}");
    assert!(
        dpop[0].starts_with(&format!("DPoP error=\"{code}\"")),
        "{dpop:?}"
    );
}

fn assert_store_503(r: &Reply) {
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(r.headers["retry-after"], "10");
    assert!(r.headers.get("www-authenticate").is_none());
    assert_eq!(r.json()["error"], "temporarily_unavailable");
}

#[tokio::test]
async fn a_dpop_proof_replayed_against_another_replica_is_refused() {
    let store = SharedStore::new(MemoryStore::new(1 << 20));
    let (a, b) = (replica(&store), replica(&store));
    let token = bound_token();
    let proof = client_key().dpop_proof("GET", URL, &token);
    let first = send(&a, dpop_request(&token, &proof)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let replay = send(&b, dpop_request(&token, &proof)).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_dpop_error(&replay, "invalid_dpop_proof");
    // Without a shared store each replica has its own memory: the replay
    // passes on the other replica. This is what the store is for.
    let (c, d) = (
        replica_app(
            builder()
                .dpop(Dpop::new(DpopMode::Allowed))
                .build()
                .unwrap(),
        ),
        replica_app(
            builder()
                .dpop(Dpop::new(DpopMode::Allowed))
                .build()
                .unwrap(),
        ),
    );
    let proof = client_key().dpop_proof("GET", URL, &token);
    assert_eq!(
        send(&c, dpop_request(&token, &proof)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&d, dpop_request(&token, &proof)).await.status,
        StatusCode::OK
    );
}

async fn reply(guard: &GuardLayer, token: &str) -> Reply {
    send(&app(guard.clone()), request("/mcp", Some(token))).await
}

async fn status(guard: &GuardLayer, token: &str) -> StatusCode {
    reply(guard, token).await.status
}

async fn assert_revoked(guard: &GuardLayer, token: &str) {
    assert_invalid(
        &reply(guard, token).await,
        "The access token has been revoked",
    );
}

fn guard_with(store: &SharedStore, clock: &ManualClock) -> GuardLayer {
    builder()
        .shared_store(store.clone())
        .clock(clock)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_revocation_on_one_replica_is_seen_by_the_others_at_once_with_recheck_zero() {
    let store = SharedStore::new(MemoryStore::new(1 << 20)).revocation_recheck(Duration::ZERO);
    let clock = ManualClock::new();
    let (a, b) = (guard_with(&store, &clock), guard_with(&store, &clock));
    let t = token(&claims_with(json!({"sub": "alice", "jti": "j-1"})));
    assert_eq!(status(&b, &t).await, StatusCode::OK);
    a.revoke_token(&BearerToken::new(t.clone())).await.unwrap();
    assert_revoked(&b, &t).await;

    // By jti (as the audit trail shows it), and by subject.
    let t2 = token(&claims_with(json!({"sub": "bob", "jti": "j-2"})));
    assert_eq!(status(&b, &t2).await, StatusCode::OK);
    a.revoke_jti(ISSUER, "j-2").await.unwrap();
    assert_revoked(&b, &t2).await;
    let t3 = token(&claims_with(json!({"sub": "carol", "jti": "j-3"})));
    assert_eq!(status(&b, &t3).await, StatusCode::OK);
    a.revoke_subject(ISSUER, "carol").await.unwrap();
    assert_revoked(&b, &t3).await;
    // A token carol gets after the revocation works again.
    clock.advance(Duration::from_secs(2));
    let later = token(&claims_with(
        json!({"sub": "carol", "jti": "j-4", "iat": now() + 2}),
    ));
    assert_eq!(status(&b, &later).await, StatusCode::OK);
}

#[tokio::test]
async fn with_the_default_recheck_other_replicas_refuse_within_a_second() {
    let store = SharedStore::new(MemoryStore::new(1 << 20));
    let clock = ManualClock::new();
    let (a, b) = (guard_with(&store, &clock), guard_with(&store, &clock));
    let t = token(&claims_with(json!({"sub": "alice", "jti": "j-5"})));
    assert_eq!(status(&b, &t).await, StatusCode::OK);
    a.revoke_token(&BearerToken::new(t.clone())).await.unwrap();
    // Revoked here at once.
    assert_revoked(&a, &t).await;
    // The other replica may serve its cached verification until the
    // recheck interval (1 s) is over, then asks the store.
    clock.advance(Duration::from_secs(2));
    assert_revoked(&b, &t).await;
}

#[tokio::test]
async fn store_down_replay_checks_fail_closed_with_503_or_401_as_configured() {
    let switch = Switchable::new();
    let store = SharedStore::new(switch.clone());
    let a = replica(&store);
    let token = bound_token();
    // The token is verified (and its revocation checked) while the store
    // is up; then the store goes down and only the replay check needs it.
    let proof = client_key().dpop_proof("GET", URL, &token);
    assert_eq!(
        send(&a, dpop_request(&token, &proof)).await.status,
        StatusCode::OK
    );
    switch.set_down(true);
    for _ in 0..5 {
        let proof = client_key().dpop_proof("GET", URL, &token);
        assert_store_503(&send(&a, dpop_request(&token, &proof)).await);
    }
    // Logged (and counted) once per outage, not per request.
    let o = store.outages();
    assert_eq!(
        (o.replay, o.introspection, o.revocation, o.sessions, o.tasks),
        (1, 0, 0, 0, 0)
    );
    switch.set_down(false);
    let proof = client_key().dpop_proof("GET", URL, &token);
    assert_eq!(
        send(&a, dpop_request(&token, &proof)).await.status,
        StatusCode::OK
    );

    // Configured: 401 invalid_dpop_proof instead.
    let store = SharedStore::new(switch.clone()).replay_when_down(ReplayWhenDown::Unauthorized);
    let b = replica(&store);
    let proof = client_key().dpop_proof("GET", URL, &token);
    assert_eq!(
        send(&b, dpop_request(&token, &proof)).await.status,
        StatusCode::OK
    );
    switch.set_down(true);
    let proof = client_key().dpop_proof("GET", URL, &token);
    let r = send(&b, dpop_request(&token, &proof)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_dpop_error(&r, "invalid_dpop_proof");
    switch.set_down(false);
}

#[tokio::test]
async fn store_down_unverified_tokens_get_503_cached_ones_are_served_until_the_recheck() {
    let switch = Switchable::new();
    let store = SharedStore::new(switch.clone());
    let clock = ManualClock::new();
    let a = guard_with(&store, &clock);
    let seen = token(&claims_with(json!({"sub": "alice", "jti": "j-6"})));
    assert_eq!(status(&a, &seen).await, StatusCode::OK);
    switch.set_down(true);
    // Verified within the last second: served from the cache.
    assert_eq!(status(&a, &seen).await, StatusCode::OK);
    // A token never verified here cannot be checked: 503, not 200.
    let fresh = token(&claims_with(json!({"sub": "bob", "jti": "j-7"})));
    for _ in 0..3 {
        assert_store_503(&reply(&a, &fresh).await);
    }
    // Past the recheck interval the cached one is asked about too.
    clock.advance(Duration::from_secs(2));
    assert_store_503(&reply(&a, &seen).await);
    let o = store.outages();
    assert_eq!(
        (o.replay, o.introspection, o.revocation, o.sessions, o.tasks),
        (0, 0, 1, 0, 0)
    );
    // Back: served again, without restarting anything.
    switch.set_down(false);
    assert_eq!(status(&a, &fresh).await, StatusCode::OK);
    assert_eq!(status(&a, &seen).await, StatusCode::OK);
    // Revoking while the store is down: refused here, and the caller told.
    switch.set_down(true);
    let b = guard_with(&store, &clock);
    assert!(b.revoke_jti(ISSUER, "j-8").await.is_err());
    switch.set_down(false);
}
