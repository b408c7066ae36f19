//! Revocation at this resource: single tokens, and every token of a subject
//! issued up to the moment of revocation.
//!
//! A JWT stays valid until its `exp` wherever it is checked; revoking it here
//! refuses it at this guard (and evicts it from the verified-token cache)
//! for the retention window, default 24 hours. Revoke at the authorization
//! server too, and keep access tokens short-lived, so that no token outlives
//! the window.
//!
//! - Tokens are remembered by a keyed hash (never the token itself).
//! - A revoked subject refuses that subject's tokens whose `iat` is at or
//!   before the revocation (and tokens without `iat`); tokens issued later
//!   work again, so a user who signs in anew is not locked out.
//! - Bounded: at most 100,000 revoked tokens and 16 MiB of revoked subjects.
//! - Free when unused: until the first revocation, a request pays one
//!   atomic load.
//! - With a [shared store](crate::store), every revocation is also written
//!   there (keyed by digests, with the retention as TTL), and a token is
//!   checked against it whenever it is verified in full; cached
//!   verifications are kept at most the recheck interval, so a revocation
//!   made on one replica reaches every replica within it.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::claims::AuthContext;
use crate::clock::Clock;
use crate::store::{KeyKind, RevocationsWhenDown, SharedStore, StoreError, StoreKey};

const MAX_TOKENS: u64 = 100_000;
const MAX_SUBJECT_BYTES: u64 = 16 * 1024 * 1024;

/// The revocation list of one guard configuration.
#[derive(Debug)]
pub(crate) struct Revocations {
    /// Hashes of revoked tokens.
    tokens: moka::sync::Cache<u64, ()>,
    /// (issuer, subject) -> revoked at (Unix seconds).
    subjects: moka::sync::Cache<(Box<str>, Box<str>), u64>,
    /// Revoked (issuer, jti)s.
    jtis: moka::sync::Cache<(Box<str>, Box<str>), ()>,
    /// Where the replicas share revocations, if anywhere.
    shared: Option<SharedStore>,
    hasher: RandomState,
    /// Unix seconds until which an entry may exist (0: never revoked).
    active_until: AtomicU64,
    retention: Duration,
    clock: Clock,
}

impl Revocations {
    pub(crate) fn new(retention: Duration, clock: Clock, shared: Option<SharedStore>) -> Self {
        let pair_weigher = |k: &(Box<str>, Box<str>)| {
            u32::try_from(k.0.len() + k.1.len() + 64).unwrap_or(u32::MAX)
        };
        Self {
            jtis: moka::sync::Cache::builder()
                .max_capacity(MAX_SUBJECT_BYTES)
                .weigher(move |k: &(Box<str>, Box<str>), _: &()| pair_weigher(k))
                .time_to_live(retention)
                .build(),
            shared,
            tokens: moka::sync::Cache::builder()
                .max_capacity(MAX_TOKENS)
                .time_to_live(retention)
                .build(),
            subjects: moka::sync::Cache::builder()
                .max_capacity(MAX_SUBJECT_BYTES)
                .weigher(move |k: &(Box<str>, Box<str>), _: &u64| pair_weigher(k))
                .time_to_live(retention)
                .build(),
            hasher: RandomState::new(),
            active_until: AtomicU64::new(0),
            retention,
            clock,
        }
    }

    fn hash(&self, token: &[u8]) -> u64 {
        self.hasher.hash_one(token)
    }

    fn activate(&self) {
        let until = self
            .clock
            .unix_now()
            .saturating_add(self.retention.as_secs())
            .saturating_add(1);
        self.active_until.fetch_max(until, Ordering::AcqRel);
    }

    /// Refuses `token` from now on (for the retention window), here at
    /// once and on the other replicas through the shared store.
    pub(crate) async fn revoke_token(&self, token: &[u8]) -> Result<(), StoreError> {
        self.activate();
        self.tokens.insert(self.hash(token), ());
        self.share(StoreKey::new(KeyKind::RevokedToken, &[token]), &[])
            .await
    }

    /// Refuses the token of `issuer` with this `jti`.
    pub(crate) async fn revoke_jti(&self, issuer: &str, jti: &str) -> Result<(), StoreError> {
        self.activate();
        self.jtis.insert((issuer.into(), jti.into()), ());
        let key = StoreKey::new(KeyKind::RevokedJti, &[issuer.as_bytes(), jti.as_bytes()]);
        self.share(key, &[]).await
    }

    /// Refuses every token of `subject` from `issuer` issued up to now.
    pub(crate) async fn revoke_subject(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<(), StoreError> {
        self.activate();
        let now = self.clock.unix_now();
        self.subjects.insert((issuer.into(), subject.into()), now);
        let key = StoreKey::new(
            KeyKind::RevokedSubject,
            &[issuer.as_bytes(), subject.as_bytes()],
        );
        self.share(key, &now.to_be_bytes()).await
    }

    async fn share(&self, key: StoreKey, value: &[u8]) -> Result<(), StoreError> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let result = shared.store.set(&key, value, self.retention).await;
        match &result {
            Ok(()) => shared.uses.revocation.succeeded(shared.store.name()),
            Err(e) => shared.uses.revocation.failed(
                shared.store.name(),
                e,
                "this revocation is not shared with the other replicas",
            ),
        }
        result
    }

    /// The guard's clock, in Unix seconds.
    pub(crate) fn unix_now(&self) -> u64 {
        self.clock.unix_now()
    }

    /// How long a verification may be cached before the shared store is
    /// asked again (`None`: no shared store, no limit).
    pub(crate) fn recheck(&self) -> Option<Duration> {
        self.shared.as_ref().map(|s| s.recheck)
    }

    /// `true` when the shared store lists `token`, its `jti` or its subject
    /// (revoked at or after its `iat`). `Ok(false)` without a shared store.
    pub(crate) async fn is_revoked_elsewhere(
        &self,
        token: &[u8],
        ctx: &AuthContext,
    ) -> Result<bool, StoreError> {
        let Some(shared) = &self.shared else {
            return Ok(false);
        };
        let iss = ctx.issuer().as_bytes();
        let mut keys = vec![StoreKey::new(KeyKind::RevokedToken, &[token])];
        if let Some(jti) = ctx.jti() {
            keys.push(StoreKey::new(KeyKind::RevokedJti, &[iss, jti.as_bytes()]));
        }
        if let Some(sub) = ctx.subject() {
            keys.push(StoreKey::new(
                KeyKind::RevokedSubject,
                &[iss, sub.as_bytes()],
            ));
        }
        let store = shared.store.name();
        let values = match shared.store.get_many(&keys).await {
            Ok(v) => v,
            Err(e) => {
                let outage = &shared.uses.revocation;
                if shared.revocations_when_down == RevocationsWhenDown::LocalListOnly {
                    outage.failed(store, &e, "only this replica's revocations are checked");
                    return Ok(false);
                }
                outage.failed(store, &e, "tokens verified in full get 503");
                return Err(e);
            }
        };
        shared.uses.revocation.succeeded(store);
        for (key, value) in keys.iter().zip(values) {
            let Some(value) = value else { continue };
            if key.kind() != KeyKind::RevokedSubject {
                return Ok(true);
            }
            // Revoked at (8 bytes, big-endian); anything else: revoked.
            let at = <[u8; 8]>::try_from(value.as_slice()).map_or(u64::MAX, u64::from_be_bytes);
            if ctx.issued_at_unix().is_none_or(|iat| iat <= at) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// `true` when `token` (whose verified context is `ctx`) was revoked.
    #[inline]
    pub(crate) fn is_revoked(&self, token: &[u8], ctx: &AuthContext) -> bool {
        let until = self.active_until.load(Ordering::Acquire);
        if until == 0 || self.clock.unix_now() >= until {
            return false;
        }
        self.is_listed(token, ctx)
    }

    fn is_listed(&self, token: &[u8], ctx: &AuthContext) -> bool {
        if self.tokens.contains_key(&self.hash(token)) {
            return true;
        }
        if let Some(jti) = ctx.jti()
            && self
                .jtis
                .contains_key(&(Box::<str>::from(ctx.issuer()), Box::<str>::from(jti)))
        {
            return true;
        }
        let Some(sub) = ctx.subject() else {
            return false;
        };
        let key = (Box::<str>::from(ctx.issuer()), Box::<str>::from(sub));
        self.subjects
            .get(&key)
            .is_some_and(|at| ctx.issued_at_unix().is_none_or(|iat| iat <= at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ScopeClaim;
    use serde_json::json;

    fn ctx(sub: &str, iat: Option<u64>) -> AuthContext {
        let mut c = json!({"iss": "i", "sub": sub});
        if let Some(t) = iat {
            c["iat"] = json!(t);
        }
        AuthContext::from_claims(c.as_object().unwrap().clone(), &ScopeClaim::Auto).unwrap()
    }

    #[tokio::test]
    async fn tokens_jtis_and_subjects() {
        let clock = Clock::default();
        let r = Revocations::new(Duration::from_secs(60), clock.clone(), None);
        let now = clock.unix_now();
        assert!(!r.is_revoked(b"t1", &ctx("alice", Some(now))));
        r.revoke_token(b"t1").await.unwrap();
        assert!(r.is_revoked(b"t1", &ctx("alice", Some(now))));
        assert!(!r.is_revoked(b"t2", &ctx("alice", Some(now))));
        r.revoke_subject("i", "bob").await.unwrap();
        assert!(r.is_revoked(b"t3", &ctx("bob", Some(now))));
        assert!(r.is_revoked(b"t3", &ctx("bob", None)));
        // Issued after the revocation: a new sign-in works.
        assert!(!r.is_revoked(b"t4", &ctx("bob", Some(now + 5))));
        // Same subject at another issuer: another person.
        let other = AuthContext::from_claims(
            json!({"iss": "j", "sub": "bob", "iat": now})
                .as_object()
                .unwrap()
                .clone(),
            &ScopeClaim::Auto,
        )
        .unwrap();
        assert!(!r.is_revoked(b"t5", &other));
        // By jti, at its issuer only.
        let with_jti = |iss: &str| {
            AuthContext::from_claims(
                json!({"iss": iss, "sub": "carol", "jti": "j-1"})
                    .as_object()
                    .unwrap()
                    .clone(),
                &ScopeClaim::Auto,
            )
            .unwrap()
        };
        assert!(!r.is_revoked(b"t6", &with_jti("i")));
        r.revoke_jti("i", "j-1").await.unwrap();
        assert!(r.is_revoked(b"t6", &with_jti("i")));
        assert!(!r.is_revoked(b"t6", &with_jti("j")));
    }
}
