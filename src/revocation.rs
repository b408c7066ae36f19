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

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::claims::AuthContext;
use crate::clock::Clock;

const MAX_TOKENS: u64 = 100_000;
const MAX_SUBJECT_BYTES: u64 = 16 * 1024 * 1024;

/// The revocation list of one guard configuration.
#[derive(Debug)]
pub(crate) struct Revocations {
    /// Hashes of revoked tokens.
    tokens: moka::sync::Cache<u64, ()>,
    /// (issuer, subject) -> revoked at (Unix seconds).
    subjects: moka::sync::Cache<(Box<str>, Box<str>), u64>,
    hasher: RandomState,
    /// Unix seconds until which an entry may exist (0: never revoked).
    active_until: AtomicU64,
    retention: Duration,
    clock: Clock,
}

impl Revocations {
    pub(crate) fn new(retention: Duration, clock: Clock) -> Self {
        Self {
            tokens: moka::sync::Cache::builder()
                .max_capacity(MAX_TOKENS)
                .time_to_live(retention)
                .build(),
            subjects: moka::sync::Cache::builder()
                .max_capacity(MAX_SUBJECT_BYTES)
                .weigher(|k: &(Box<str>, Box<str>), _: &u64| {
                    u32::try_from(k.0.len() + k.1.len() + 64).unwrap_or(u32::MAX)
                })
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

    /// Refuses `token` from now on (for the retention window).
    pub(crate) fn revoke_token(&self, token: &[u8]) {
        self.activate();
        self.tokens.insert(self.hash(token), ());
    }

    /// Refuses every token of `subject` from `issuer` issued up to now.
    pub(crate) fn revoke_subject(&self, issuer: &str, subject: &str) {
        self.activate();
        self.subjects
            .insert((issuer.into(), subject.into()), self.clock.unix_now());
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

    #[test]
    fn tokens_and_subjects() {
        let clock = Clock::default();
        let r = Revocations::new(Duration::from_secs(60), clock.clone());
        let now = clock.unix_now();
        assert!(!r.is_revoked(b"t1", &ctx("alice", Some(now))));
        r.revoke_token(b"t1");
        assert!(r.is_revoked(b"t1", &ctx("alice", Some(now))));
        assert!(!r.is_revoked(b"t2", &ctx("alice", Some(now))));
        r.revoke_subject("i", "bob");
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
    }
}
