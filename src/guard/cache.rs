//! The verified-token cache: a successful verification is remembered, so a
//! token seen again skips parsing and signature checks.
//!
//! - Keyed by a keyed 64-bit mix (per-process random keys) of the token's
//!   length and last 16 bytes, the end of its signature; a hit also compares
//!   the stored token with the presented one byte for byte, so a collision
//!   can never authenticate another token.
//! - Sixteen shards, each a map behind a read-write lock: a hit is one read
//!   lock and one lookup, no allocation.
//! - Bounded by entry count and by bytes (64 MiB), oldest evicted first; an
//!   entry is served until the token's `exp` (plus the leeway) or the
//!   cache's maximum TTL after insertion, whichever comes first.
//! - Every hit re-checks `exp` and `nbf` against the guard's clock, and the
//!   guard re-checks revocation and the signing key's presence.
//! - Only successes are cached: a token is cached after a full verification
//!   and after the guard's issuer, audience and required-scope checks passed
//!   (the guard's policy never changes, so a hit needs no re-check).
//! - An entry keeps the slot of the issuer that verified the token (its key
//!   source is found without comparing names) and request extensions that
//!   hold the context with room for six more entries (about 340 bytes,
//!   counted in the byte budget): a hit on a request whose extensions are
//!   empty hands on a copy, so a router after the guard does not grow the
//!   map on every request.
//! - **Key removal:** every hit asks the issuer's key source whether the key
//!   that verified the token is still in its set
//!   ([`KeySource::holds`](crate::jwks::KeySource::holds)), so a key removed
//!   from the issuer's JWKS stops verifying as soon as the key cache sees
//!   the new set, cached tokens included.

use std::hash::{BuildHasher, RandomState};

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::claims::AuthContext;
use crate::clock::{Clock, from_unix_seconds};
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

/// What an entry's extensions take: the map, its table (8 buckets of 32
/// bytes and their control bytes), the boxed context.
const EXTENSIONS_BYTES: usize = 48 + 8 * 32 + 8 + 16 + 8;

/// Request extensions holding `ctx`, with room for six more entries: what
/// a hit hands on when the request's own extensions are empty (the guard
/// outside the router). Inserting into empty extensions allocates a map
/// for 3 entries, and a router after the guard adds its own (axum adds
/// three), which would grow (rehash and reallocate) that map on every
/// request; a clone of this one keeps its room (a cloned map has the
/// original's buckets), so they fit. Built once per cached token.
fn extensions_with(ctx: &AuthContext) -> http::Extensions {
    /// Placeholders that size the map (7 entries: 8 buckets), removed at
    /// once; a map never shrinks on removal.
    #[derive(Clone, Copy)]
    struct Room<const N: usize>;
    let mut ext = http::Extensions::new();
    ext.insert(Room::<0>);
    ext.insert(Room::<1>);
    ext.insert(Room::<2>);
    ext.insert(Room::<3>);
    ext.insert(Room::<4>);
    ext.insert(Room::<5>);
    ext.insert(ctx.clone());
    ext.remove::<Room<0>>();
    ext.remove::<Room<1>>();
    ext.remove::<Room<2>>();
    ext.remove::<Room<3>>();
    ext.remove::<Room<4>>();
    ext.remove::<Room<5>>();
    ext
}

/// The byte budget of the cache: tokens and payloads of the entries.
const MAX_BYTES: usize = 64 * 1024 * 1024;
/// Independent shards: a lookup takes one shard's read lock. A power of
/// two, as is every shard count (a mask picks the shard).
const SHARDS: usize = 16;

/// A token-cache hit: the context, the slot of the issuer that verified it
/// (as the guard's `Shared::authorize` returned it), and, when asked for,
/// request extensions that hold the context (see [`extensions_with`]).
#[derive(Debug)]
pub(crate) struct CachedToken {
    pub(crate) ctx: AuthContext,
    pub(crate) issuer_slot: usize,
    pub(crate) extensions: Option<http::Extensions>,
}

#[derive(Debug)]
struct Entry {
    token: Box<str>,
    ctx: AuthContext,
    issuer_slot: usize,
    /// Cloned into every hit's request.
    extensions: http::Extensions,
    /// Served while `now < expires` (the earlier of `exp` + leeway and the
    /// insertion plus the maximum TTL), whole Unix seconds as a `SystemTime`
    /// (a hit compares times, without converting the clock to seconds).
    expires: SystemTime,
    /// Served once `now >= valid_from` (`nbf` - leeway, whole seconds).
    valid_from: SystemTime,
    /// What the entry counts against the byte budget.
    bytes: usize,
}

/// The keys are already keyed hashes: use them as they are.
#[derive(Default)]
struct Identity(u64);

impl std::hash::Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the keys are `u64`); fold anything else.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type Map = std::collections::HashMap<u64, Arc<Entry>, std::hash::BuildHasherDefault<Identity>>;

/// One shard: its entries, their insertion order (for eviction), their bytes.
#[derive(Default)]
struct Shard {
    map: Map,
    order: std::collections::VecDeque<u64>,
    bytes: usize,
}

impl Shard {
    /// Evicts the oldest entries until one more of `bytes` fits.
    fn make_room(&mut self, capacity: usize, budget: usize, bytes: usize) {
        while !self.map.is_empty() && (self.map.len() >= capacity || self.bytes + bytes > budget) {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(e) = self.map.remove(&oldest) {
                self.bytes -= e.bytes;
            }
        }
        // Keys removed or replaced stay in `order` until popped: compact
        // when they pile up, so `order` stays within twice the entries.
        if self.order.len() > 2 * capacity.max(self.map.len()) {
            let map = &self.map;
            self.order.retain(|k| map.contains_key(k));
        }
    }

    fn remove(&mut self, key: u64) {
        if let Some(e) = self.map.remove(&key) {
            self.bytes -= e.bytes;
        }
    }
}

/// The cache itself: sharded maps behind read-write locks (a hit takes one
/// read lock and one map lookup), bounded by entries and bytes, oldest
/// evicted first.
pub(crate) struct TokenCache {
    shards: Box<[std::sync::RwLock<Shard>]>,
    /// Per-process random keys of the cache-key mix.
    keys: [u64; 2],
    per_shard: usize,
    per_shard_bytes: usize,
    max_ttl: u64,
    leeway: u64,
    clock: Clock,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.len())
            .field("max_ttl", &self.max_ttl)
            .finish()
    }
}

impl TokenCache {
    pub(crate) fn new(config: TokenCacheConfig, leeway: u64, clock: Clock) -> Self {
        let capacity = usize::try_from(config.capacity)
            .unwrap_or(usize::MAX)
            .max(1);
        // Never more entries than the capacity: fewer shards for a small one.
        // A power of two (the largest not above the capacity).
        let shards = 1usize << SHARDS.min(capacity).ilog2();
        Self {
            shards: (0..shards).map(|_| Default::default()).collect(),
            keys: {
                let r = RandomState::new();
                [r.hash_one(1u8), r.hash_one(2u8)]
            },
            per_shard: capacity / shards,
            per_shard_bytes: MAX_BYTES / shards,
            max_ttl: config.max_ttl.as_secs(),
            leeway,
            clock,
        }
    }

    fn shard(&self, key: u64) -> &std::sync::RwLock<Shard> {
        // The top bits: the map uses the low ones.
        &self.shards[(key >> 56) as usize & (self.shards.len() - 1)]
    }

    /// The context of `token` if it was verified before and is still within
    /// its validity window; with `extensions`, a copy of the entry's request
    /// extensions too (for a request whose own are empty).
    pub(crate) fn get(&self, token: &[u8], extensions: bool) -> Option<CachedToken> {
        let key = self.key(token);
        let now = self.clock.system_now();
        // Judged under the read lock: only the context is cloned out.
        let shard = self.shard(key).read().unwrap_or_else(|p| p.into_inner());
        let entry = shard.map.get(&key)?;
        (entry.token.as_bytes() == token && now < entry.expires && now >= entry.valid_from).then(
            || CachedToken {
                ctx: entry.ctx.clone(),
                issuer_slot: entry.issuer_slot,
                extensions: extensions.then(|| entry.extensions.clone()),
            },
        )
    }

    /// Remembers a verified token, and the slot of the issuer that verified
    /// it. Tokens without `exp` are not cached.
    pub(crate) fn insert(&self, token: &str, ctx: &AuthContext, issuer_slot: usize) {
        let Some(exp) = ctx.expires_at_unix() else {
            return;
        };
        let now = self.clock.unix_now();
        let expires = exp
            .saturating_add(self.leeway)
            .min(now.saturating_add(self.max_ttl))
            .min(ctx.cache_until().unwrap_or(u64::MAX));
        if expires <= now {
            return;
        }
        let nbf = ctx.not_before_unix().unwrap_or(0);
        // The token, its context's payload copy, the extensions' map and a
        // fixed overhead.
        let bytes = 2 * token.len() + 256 + EXTENSIONS_BYTES;
        let key = self.key(token.as_bytes());
        let entry = Arc::new(Entry {
            token: token.into(),
            ctx: ctx.clone(),
            issuer_slot,
            extensions: extensions_with(ctx),
            expires: from_unix_seconds(expires),
            valid_from: from_unix_seconds(nbf.saturating_sub(self.leeway)),
            bytes,
        });
        let mut shard = self.shard(key).write().unwrap_or_else(|p| p.into_inner());
        shard.remove(key);
        shard.make_room(self.per_shard, self.per_shard_bytes, bytes);
        shard.map.insert(key, entry);
        shard.order.push_back(key);
        shard.bytes += bytes;
    }

    /// The cache key: a keyed mix (a folded 128-bit multiply with
    /// per-process random keys) of the token's length and last 16 bytes,
    /// 96 bits of its signature, unique per token. Only verified tokens are
    /// inserted, and a hit compares the whole token, so a collision (even
    /// one an attacker found) only costs a failed compare and a full
    /// verification.
    fn key(&self, token: &[u8]) -> u64 {
        let tail = &token[token.len().saturating_sub(16)..];
        let mut buf = [0u8; 16];
        buf[16 - tail.len()..].copy_from_slice(tail);
        let (lo, hi) = buf.split_at(8);
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
        let a = word(lo) ^ self.keys[0];
        let b = word(hi) ^ self.keys[1] ^ token.len() as u64;
        let m = u128::from(a) * u128::from(b);
        (m >> 64) as u64 ^ m as u64
    }

    /// Forgets `token`, if cached.
    pub(crate) fn remove(&self, token: &[u8]) {
        let key = self.key(token);
        self.shard(key)
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    pub(crate) fn clear(&self) {
        for s in self.shards.iter() {
            let mut s = s.write().unwrap_or_else(|p| p.into_inner());
            *s = Shard::default();
        }
    }

    /// The number of entries (expired ones included until evicted).
    pub(crate) fn len(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|p| p.into_inner()).map.len() as u64)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ScopeClaim;
    use serde_json::json;
    use std::time::UNIX_EPOCH;

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
        cache.insert("token-a", &ctx(now + 100, None), 3);
        let hit = cache.get(b"token-a", false).unwrap();
        assert_eq!((hit.ctx.subject(), hit.issuer_slot), (Some("s"), 3));
        assert!(cache.get(b"token-b", false).is_none());
        assert!(cache.get(b"token-a ", false).is_none());
        // Already expired (with zero leeway): not cached at all.
        cache.insert("old", &ctx(now - 1, None), 0);
        assert!(cache.get(b"old", false).is_none());
        // Not yet valid: cached but not served until nbf.
        cache.insert("later", &ctx(now + 100, Some(now + 50)), 0);
        assert!(cache.get(b"later", false).is_none());
        cache.remove(b"token-a");
        assert!(cache.get(b"token-a", false).is_none());
        cache.insert("token-c", &ctx(now + 100, None), 0);
        cache.clear();
        assert!(cache.get(b"token-c", false).is_none());
    }

    #[test]
    fn a_colliding_hash_never_serves_another_token() {
        let cache = TokenCache::new(TokenCacheConfig::default(), 0, Clock::default());
        let now = Clock::default().unix_now();
        // Forge an entry under another token's hash.
        let h = cache.key(b"victim");
        cache.shard(h).write().unwrap().map.insert(
            h,
            Arc::new(Entry {
                token: "attacker".into(),
                ctx: ctx(now + 100, None),
                issuer_slot: 0,
                extensions: http::Extensions::new(),
                expires: from_unix_seconds(now + 100),
                valid_from: UNIX_EPOCH,
                bytes: 0,
            }),
        );
        assert!(cache.get(b"victim", false).is_none());
    }

    #[test]
    fn served_until_exp_plus_leeway_and_not_a_second_later() {
        let moved = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let clock = Clock::manual(moved.clone());
        let cache = TokenCache::new(TokenCacheConfig::default(), 30, clock.clone());
        let now = clock.unix_now();
        cache.insert("t", &ctx(now + 10, None), 0);
        let advance = |secs: u64| moved.store(secs * 1000, std::sync::atomic::Ordering::Relaxed);
        // (Inserted within the second `now`: 38 s on, still short of it.)
        advance(38);
        assert!(cache.get(b"t", false).is_some());
        // exp + leeway (40 s after `now`) reached: no longer served.
        advance(40);
        assert!(cache.get(b"t", false).is_none());
    }

    #[test]
    fn a_hit_hands_on_extensions_holding_only_its_context_with_room() {
        let cache = TokenCache::new(TokenCacheConfig::default(), 0, Clock::default());
        let now = Clock::default().unix_now();
        cache.insert("t", &ctx(now + 100, None), 0);
        assert!(cache.get(b"t", false).unwrap().extensions.is_none());
        let mut ext = cache.get(b"t", true).unwrap().extensions.unwrap();
        // The placeholders that sized the map are gone.
        assert_eq!(ext.len(), 1);
        assert_eq!(ext.get::<AuthContext>().unwrap().subject(), Some("s"));
        // And the copy is independent of the entry.
        ext.clear();
        let again = cache.get(b"t", true).unwrap().extensions.unwrap();
        assert_eq!(again.len(), 1);
    }

    #[test]
    fn bounded_by_bytes() {
        let cache = TokenCache::new(TokenCacheConfig::default(), 0, Clock::default());
        let now = Clock::default().unix_now();
        let big = "x".repeat(1024 * 1024);
        for i in 0..200 {
            cache.insert(&format!("{big}{i:04}"), &ctx(now + 100, None), 0);
        }
        let bytes: usize = cache.shards.iter().map(|s| s.read().unwrap().bytes).sum();
        assert!(bytes <= MAX_BYTES, "{bytes}");
        // Each entry weighs over 2 MiB: at most 32 fit in 64 MiB.
        assert!((1..=32).contains(&cache.len()), "{}", cache.len());
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
            cache.insert(&format!("t{i}"), &ctx(now + 100, None), 0);
        }
        assert!(cache.len() <= 100, "{}", cache.len());
        assert!(cache.len() >= 90, "{}", cache.len());
        // The newest are kept, the oldest evicted.
        assert!(cache.get(b"t4999", false).is_some());
        assert!(cache.get(b"t0", false).is_none());
        // Replacing the same token again and again keeps one entry.
        for _ in 0..10_000 {
            cache.insert("t4999", &ctx(now + 100, None), 0);
        }
        assert!(cache.len() <= 100);
        let order: usize = cache
            .shards
            .iter()
            .map(|s| s.read().unwrap().order.len())
            .sum();
        assert!(order <= 2 * 100 + 16, "{order}");
        assert!(!TokenCacheConfig::disabled().is_enabled());
        assert!(TokenCacheConfig::new(1, Duration::MAX).check().is_err());
    }
}
