//! The verified-token cache: a successful verification is remembered, so a
//! token seen again skips parsing and signature checks.
//!
//! - Keyed by a keyed 64-bit hash (SipHash with a per-process random key) of
//!   the token's last 64 bytes, its signature; a hit also compares the stored
//!   token with the presented one byte for byte, so a hash collision can never
//!   authenticate another token.
//! - Bounded by entry count; an entry expires at the token's `exp` (plus the
//!   leeway) or after the cache's maximum TTL, whichever comes first.
//! - Every hit re-checks `exp` and `nbf` against the guard's clock; issuer,
//!   audience, scopes and revocation are still checked by the guard on every
//!   request.
//! - Only successes are cached; a token is never cached as valid without a
//!   full verification.
//! - **Key removal:** every hit asks the issuer's key source whether the key
//!   that verified the token is still in its set
//!   ([`KeySource::holds`](crate::jwks::KeySource::holds)), so a key removed
//!   from the issuer's JWKS stops verifying as soon as the key cache sees
//!   the new set, cached tokens included.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use crate::claims::AuthContext;
use crate::clock::Clock;
use crate::error::ConfigError;

/// The longest `max_ttl` accepted.
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// Settings of the verified-token cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCacheConfig {
    pub(crate) capacity: u64,
    pub(crate) max_ttl: Duration,
}

impl Default for TokenCacheConfig {
    /// 10,000 tokens, each for at most 5 minutes.
    fn default() -> Self {
        Self {
            capacity: 10_000,
            max_ttl: Duration::from_secs(300),
        }
    }
}

impl TokenCacheConfig {
    /// At most `capacity` tokens, each remembered for at most `max_ttl` (and
    /// never past its `exp`). `max_ttl` is at most 24 hours (checked by
    /// [`GuardBuilder::build`](crate::GuardBuilder::build)).
    pub fn new(capacity: u64, max_ttl: Duration) -> Self {
        Self { capacity, max_ttl }
    }

    /// No cache: every request is fully verified.
    pub fn disabled() -> Self {
        Self {
            capacity: 0,
            max_ttl: Duration::ZERO,
        }
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.capacity > 0 && !self.max_ttl.is_zero()
    }

    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if self.max_ttl > MAX_TTL {
            return Err(ConfigError::OutOfRange {
                setting: "token_cache max_ttl",
                reason: "at most 24 hours",
            });
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Entry {
    token: Box<str>,
    ctx: AuthContext,
    /// Accepted while `now < valid_until` (`exp` + leeway), Unix seconds.
    valid_until: u64,
    /// Accepted once `now >= valid_from` (`nbf` - leeway), Unix seconds.
    valid_from: u64,
    ttl: Duration,
}

struct PerEntry;

impl moka::Expiry<u64, Arc<Entry>> for PerEntry {
    fn expire_after_create(
        &self,
        _key: &u64,
        value: &Arc<Entry>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// The cache itself.
pub(crate) struct TokenCache {
    entries: moka::sync::Cache<u64, Arc<Entry>>,
    hasher: RandomState,
    max_ttl: Duration,
    leeway: u64,
    clock: Clock,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.entries.entry_count())
            .field("max_ttl", &self.max_ttl)
            .finish()
    }
}

impl TokenCache {
    pub(crate) fn new(config: TokenCacheConfig, leeway: u64, clock: Clock) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(config.capacity)
                .expire_after(PerEntry)
                .build(),
            hasher: RandomState::new(),
            max_ttl: config.max_ttl,
            leeway,
            clock,
        }
    }

    /// The context of `token` if it was verified before and is still within
    /// its validity window.
    pub(crate) fn get(&self, token: &[u8]) -> Option<AuthContext> {
        let entry = self.entries.get(&self.key(token))?;
        if entry.token.as_bytes() != token {
            return None;
        }
        let now = self.clock.unix_now();
        (now < entry.valid_until && now >= entry.valid_from).then(|| entry.ctx.clone())
    }

    /// Remembers a verified token. Tokens without `exp` are not cached.
    pub(crate) fn insert(&self, token: &str, ctx: &AuthContext) {
        let Some(exp) = ctx.expires_at_unix() else {
            return;
        };
        let valid_until = exp.saturating_add(self.leeway);
        let now = self.clock.unix_now();
        let left = Duration::from_secs(valid_until.saturating_sub(now));
        let ttl = left.min(self.max_ttl);
        if ttl.is_zero() {
            return;
        }
        let nbf = ctx.not_before_unix().unwrap_or(0);
        self.entries.insert(
            self.key(token.as_bytes()),
            Arc::new(Entry {
                token: token.into(),
                ctx: ctx.clone(),
                valid_until,
                valid_from: nbf.saturating_sub(self.leeway),
                ttl,
            }),
        );
    }

    /// The cache key: a keyed hash of the token's last 64 bytes (its
    /// signature, unique per token). A collision only costs a failed compare.
    fn key(&self, token: &[u8]) -> u64 {
        self.hasher
            .hash_one(&token[token.len().saturating_sub(64)..])
    }

    /// Forgets `token`, if cached.
    pub(crate) fn remove(&self, token: &[u8]) {
        self.entries.invalidate(&self.key(token));
    }

    pub(crate) fn clear(&self) {
        self.entries.invalidate_all();
    }

    /// The exact entry count (pending evictions applied first).
    pub(crate) fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ScopeClaim;
    use serde_json::json;

    fn ctx(exp: u64, nbf: Option<u64>) -> AuthContext {
        let mut c = json!({"iss": "i", "sub": "s", "exp": exp});
        if let Some(n) = nbf {
            c["nbf"] = json!(n);
        }
        AuthContext::from_claims(c.as_object().unwrap().clone(), &ScopeClaim::Auto).unwrap()
    }

    #[test]
    fn hits_only_for_the_same_token_within_its_window() {
        let cache = TokenCache::new(TokenCacheConfig::default(), 0, Clock::default());
        let now = Clock::default().unix_now();
        cache.insert("token-a", &ctx(now + 100, None));
        assert_eq!(cache.get(b"token-a").unwrap().subject(), Some("s"));
        assert!(cache.get(b"token-b").is_none());
        assert!(cache.get(b"token-a ").is_none());
        // Already expired (with zero leeway): not cached at all.
        cache.insert("old", &ctx(now - 1, None));
        assert!(cache.get(b"old").is_none());
        // Not yet valid: cached but not served until nbf.
        cache.insert("later", &ctx(now + 100, Some(now + 50)));
        assert!(cache.get(b"later").is_none());
        cache.remove(b"token-a");
        assert!(cache.get(b"token-a").is_none());
        cache.insert("token-c", &ctx(now + 100, None));
        cache.clear();
        assert!(cache.get(b"token-c").is_none());
    }

    #[test]
    fn a_colliding_hash_never_serves_another_token() {
        let cache = TokenCache::new(TokenCacheConfig::default(), 0, Clock::default());
        let now = Clock::default().unix_now();
        // Forge an entry under another token's hash.
        let h = cache.key(b"victim");
        cache.entries.insert(
            h,
            Arc::new(Entry {
                token: "attacker".into(),
                ctx: ctx(now + 100, None),
                valid_until: now + 100,
                valid_from: 0,
                ttl: Duration::from_secs(60),
            }),
        );
        assert!(cache.get(b"victim").is_none());
    }

    #[test]
    fn bounded_by_count() {
        let cache = TokenCache::new(
            TokenCacheConfig::new(100, Duration::from_secs(60)),
            0,
            Clock::default(),
        );
        let now = Clock::default().unix_now();
        for i in 0..5_000 {
            cache.insert(&format!("t{i}"), &ctx(now + 100, None));
        }
        assert!(cache.len() <= 100, "{}", cache.len());
        assert!(!TokenCacheConfig::disabled().is_enabled());
        assert!(TokenCacheConfig::new(1, Duration::MAX).check().is_err());
    }
}
