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
//! - Bounded: at most 100,000 revoked tokens, 16 MiB of revoked `jti`s and
//!   16 MiB of revoked subjects. A full list refuses a new revocation (an
//!   error, [`StoreError::is_full`]) and never forgets one before its
//!   retention ends: a forgotten revocation would let the token back in.
//! - Free when unused: until the first revocation, a request pays one
//!   atomic load.
//! - With a [shared store](crate::store), every revocation is also written
//!   there (keyed by digests, with the retention as TTL), and a token is
//!   checked against it whenever it is verified in full; cached
//!   verifications are kept at most the recheck interval, so a revocation
//!   made on one replica reaches every replica within it.

use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::claims::AuthContext;
use crate::clock::Clock;
use crate::store::budget::Budget;
use crate::store::{KeyKind, RevocationsWhenDown, SharedStore, StoreError, StoreKey};

const MAX_TOKENS: u64 = 100_000;
const MAX_SUBJECT_BYTES: u64 = 16 * 1024 * 1024;

/// A list of revoked things that expire after the retention and refuses
/// new ones when its budget is spent (never evicting one it holds).
struct List<K, V> {
    entries: moka::sync::Cache<K, V>,
    budget: Arc<Budget>,
    weigh: fn(&K) -> u64,
    what: &'static str,
}

impl<K, V> std::fmt::Debug for List<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("List")
            .field("what", &self.what)
            .field("bytes", &self.budget.used())
            .finish()
    }
}

impl<K, V> List<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn new(max: u64, retention: Duration, weigh: fn(&K) -> u64, what: &'static str) -> Self {
        let budget = Budget::new(max);
        let released = budget.clone();
        Self {
            entries: moka::sync::Cache::builder()
                .time_to_live(retention)
                .eviction_listener(move |k: Arc<K>, _, _| released.release(weigh(&k)))
                .build(),
            budget,
            weigh,
            what,
        }
    }

    /// Adds `key`, or replaces its value; refused when the list is full.
    fn insert(&self, key: K, value: V) -> Result<(), StoreError> {
        let room = self
            .budget
            .reserve_or_drop_expired((self.weigh)(&key), || self.entries.run_pending_tasks());
        if !room {
            return Err(StoreError::full(format!(
                "this guard's list of revoked {} is full: the revocation was not recorded here",
                self.what
            )));
        }
        // A replaced entry gives its room back through the listener.
        self.entries.insert(key, value);
        Ok(())
    }
}

/// The revocation list of one guard configuration.
#[derive(Debug)]
pub(crate) struct Revocations {
    /// Hashes of revoked tokens.
    tokens: List<u64, ()>,
    /// (issuer, subject) -> revoked at (Unix seconds).
    subjects: List<(Box<str>, Box<str>), u64>,
    /// Revoked (issuer, jti)s.
    jtis: List<(Box<str>, Box<str>), ()>,
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
        Self::with_limits(retention, clock, shared, MAX_TOKENS, MAX_SUBJECT_BYTES)
    }

    fn with_limits(
        retention: Duration,
        clock: Clock,
        shared: Option<SharedStore>,
        max_tokens: u64,
        max_pair_bytes: u64,
    ) -> Self {
        fn pair(k: &(Box<str>, Box<str>)) -> u64 {
            (k.0.len() + k.1.len() + 64) as u64
        }
        Self {
            jtis: List::new(max_pair_bytes, retention, pair, "jtis"),
            shared,
            tokens: List::new(max_tokens, retention, |_| 1, "tokens"),
            subjects: List::new(max_pair_bytes, retention, pair, "subjects"),
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
        let local = self.tokens.insert(self.hash(token), ());
        let shared = self
            .share(StoreKey::new(KeyKind::RevokedToken, &[token]), &[])
            .await;
        local.and(shared)
    }

    /// Refuses the token of `issuer` with this `jti`.
    pub(crate) async fn revoke_jti(&self, issuer: &str, jti: &str) -> Result<(), StoreError> {
        self.activate();
        let local = self.jtis.insert((issuer.into(), jti.into()), ());
        let key = StoreKey::new(KeyKind::RevokedJti, &[issuer.as_bytes(), jti.as_bytes()]);
        local.and(self.share(key, &[]).await)
    }

    /// Refuses every token of `subject` from `issuer` issued up to now.
    pub(crate) async fn revoke_subject(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<(), StoreError> {
        self.activate();
        let now = self.clock.unix_now();
        let local = self.subjects.insert((issuer.into(), subject.into()), now);
        let key = StoreKey::new(
            KeyKind::RevokedSubject,
            &[issuer.as_bytes(), subject.as_bytes()],
        );
        local.and(self.share(key, &now.to_be_bytes()).await)
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
        if self.tokens.entries.contains_key(&self.hash(token)) {
            return true;
        }
        if let Some(jti) = ctx.jti()
            && self
                .jtis
                .entries
                .contains_key(&(Box::<str>::from(ctx.issuer()), Box::<str>::from(jti)))
        {
            return true;
        }
        let Some(sub) = ctx.subject() else {
            return false;
        };
        let key = (Box::<str>::from(ctx.issuer()), Box::<str>::from(sub));
        self.subjects
            .entries
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

    #[tokio::test]
    async fn a_full_list_refuses_new_revocations_and_forgets_none() {
        let clock = Clock::default();
        let now = clock.unix_now();
        let r = Revocations::with_limits(Duration::from_secs(60), clock, None, 3, 200);
        for t in [b"t1", b"t2", b"t3"] {
            r.revoke_token(t).await.unwrap();
        }
        let e = r.revoke_token(b"t4").await.unwrap_err();
        assert!(e.is_full(), "{e}");
        for t in [b"t1", b"t2", b"t3"] {
            assert!(r.is_revoked(t, &ctx("alice", Some(now))), "forgotten");
        }
        // Revoking again what is listed replaces it in place.
        r.revoke_subject("i", "bob").await.unwrap();
        r.revoke_subject("i", "bob").await.unwrap();
        assert!(
            r.revoke_subject("i", &"x".repeat(200))
                .await
                .unwrap_err()
                .is_full()
        );
        assert!(r.is_revoked(b"t5", &ctx("bob", Some(now))));
        assert!(
            r.revoke_jti("i", &"j".repeat(200))
                .await
                .unwrap_err()
                .is_full()
        );
    }
}
