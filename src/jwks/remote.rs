//! A remote JWK Set: discovery, a lock-free snapshot cache, background
//! refresh, single-flight refetch with cooldown, stale-if-error. Its
//! settings and their bounds are in `remote_builder.rs`.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use async_trait::async_trait;

use super::discovery::discover;
use super::fetch::{HttpFetch, freshness};
use super::remote_builder::RemoteJwksBuilder;
use super::{KeyHealth, KeyRef, KeySet, KeySource, KeySourceError, RefreshReason};
use crate::clock::Clock;
use crate::error::ConfigError;
use crate::observe::log::event;

const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
const NEGATIVE_CAPACITY: u64 = 10_000;

#[derive(Debug)]
struct Snapshot {
    keys: Arc<KeySet>,
    fetched_at: Instant,
    refresh_at: Instant,
    expires_at: Instant,
    stale_until: Instant,
}

/// Where the keys come from.
#[derive(Debug, Clone)]
pub(super) enum Target {
    JwksUri(Arc<String>),
    Discover(String),
}

impl Target {
    /// The issuer or JWKS URL, for metrics.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn label(&self) -> &str {
        match self {
            Self::JwksUri(u) => u,
            Self::Discover(i) => i,
        }
    }
}

/// The cache's settings, checked by the builder.
#[derive(Debug, Clone, Copy)]
pub(super) struct Settings {
    pub(super) default_ttl: Duration,
    pub(super) min_ttl: Duration,
    pub(super) max_ttl: Duration,
    pub(super) stale_window: Duration,
    pub(super) cooldown: Duration,
    pub(super) timeout: Duration,
    pub(super) max_bytes: usize,
}

/// Keys fetched from an issuer's `jwks_uri` (given, or found by discovery)
/// and cached; see the [module docs](crate::jwks) for the cache's design.
///
/// Cheap to clone; clones share the cache.
///
/// ```
/// # fn main() -> Result<(), mcp_resource_guard::ConfigError> {
/// use std::time::Duration;
/// use mcp_resource_guard::jwks::RemoteJwks;
///
/// let keys = RemoteJwks::builder("https://auth.example.com/.well-known/jwks.json")
///     .refetch_cooldown(Duration::from_secs(30))
///     .build()?;
/// let discovered = RemoteJwks::discover("https://auth.example.com").build()?;
/// # let _ = (keys, discovered); Ok(()) }
/// ```
#[derive(Clone)]
pub struct RemoteJwks {
    inner: Arc<Inner>,
}

struct Inner {
    target: Target,
    jwks_uri: ArcSwapOption<String>,
    fetcher: Arc<dyn HttpFetch>,
    snapshot: ArcSwapOption<Snapshot>,
    /// Held only by fetches: single flight. Guards the failure count.
    fetch_lock: tokio::sync::Mutex<u32>,
    /// Milliseconds after `epoch` of the last unknown-`kid` refetch, plus one (0: never).
    last_refetch: AtomicU64,
    /// Milliseconds after `epoch` before which no retry may start (0: none).
    next_retry: AtomicU64,
    refreshing: AtomicBool,
    /// Hashes of `kid`s found unknown within the cooldown.
    negative: moka::sync::Cache<u64, ()>,
    hasher: RandomState,
    settings: Settings,
    clock: Clock,
    epoch: Instant,
}

impl fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("target", &self.inner.target)
            .field("health", &self.health())
            .finish_non_exhaustive()
    }
}

fn jitter(max: Duration) -> Duration {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let r = RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed));
    max.mul_f64((r >> 11) as f64 / (1u64 << 53) as f64)
}

impl RemoteJwks {
    /// A key source for this `jwks_uri`, with the default settings.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidJwksUri`] when the URL is not an absolute
    /// `https` URL (`http` is allowed for loopback hosts).
    pub fn new(jwks_uri: impl Into<String>) -> Result<Self, ConfigError> {
        Self::builder(jwks_uri).build()
    }

    /// A builder for a key source with a known `jwks_uri` (no discovery).
    pub fn builder(jwks_uri: impl Into<String>) -> RemoteJwksBuilder {
        RemoteJwksBuilder::new(Target::JwksUri(Arc::new(jwks_uri.into())))
    }

    /// A builder for a key source that finds the `jwks_uri` of `issuer` by
    /// RFC 8414 metadata (`/.well-known/oauth-authorization-server`, inserted
    /// before the issuer's path), then OpenID Connect Discovery
    /// (`/.well-known/openid-configuration`, appended). The metadata's
    /// `issuer` must equal `issuer` exactly. Discovery runs at the first
    /// fetch; its result is kept.
    pub fn discover(issuer: impl Into<String>) -> RemoteJwksBuilder {
        RemoteJwksBuilder::new(Target::Discover(issuer.into()))
    }
}

impl RemoteJwks {
    /// A source over checked settings (see the builder).
    pub(super) fn from_parts(
        target: Target,
        jwks_uri: Option<Arc<String>>,
        settings: Settings,
        fetcher: Arc<dyn HttpFetch>,
        clock: Clock,
    ) -> Self {
        let negative = moka::sync::Cache::builder()
            .max_capacity(NEGATIVE_CAPACITY)
            .time_to_live(settings.cooldown.max(Duration::from_millis(1)))
            .build();
        RemoteJwks {
            inner: Arc::new(Inner {
                target,
                jwks_uri: ArcSwapOption::new(jwks_uri),
                fetcher,
                snapshot: ArcSwapOption::empty(),
                fetch_lock: tokio::sync::Mutex::new(0),
                last_refetch: AtomicU64::new(0),
                next_retry: AtomicU64::new(0),
                refreshing: AtomicBool::new(false),
                negative,
                hasher: RandomState::new(),
                settings,
                epoch: clock.now(),
                clock,
            }),
        }
    }

    /// The `jwks_uri`, once known.
    pub fn jwks_uri(&self) -> Option<String> {
        self.inner.jwks_uri.load_full().map(|u| u.to_string())
    }

    /// How many unknown `kid`s are remembered (hashed) so that they do not
    /// trigger refetches; at most 10,000. For metrics.
    pub fn unknown_kid_entries(&self) -> u64 {
        self.inner.negative.run_pending_tasks();
        self.inner.negative.entry_count()
    }
}

impl Inner {
    fn ms(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    fn in_cooldown(&self, now: Instant) -> bool {
        match self.last_refetch.load(Ordering::Acquire) {
            0 => false,
            t => self.ms(now) < (t - 1).saturating_add(self.settings.cooldown.as_millis() as u64),
        }
    }

    fn backing_off(&self, now: Instant) -> bool {
        self.ms(now) < self.next_retry.load(Ordering::Acquire)
    }

    fn kid_hash(&self, kid: &str) -> u64 {
        self.hasher.hash_one(kid)
    }

    async fn fetch_once(&self) -> Result<(KeySet, Duration), KeySourceError> {
        let uri = match self.jwks_uri.load_full() {
            Some(u) => u,
            None => {
                let Target::Discover(issuer) = &self.target else {
                    return Err(KeySourceError::new("no jwks_uri"));
                };
                let found =
                    Arc::new(discover(&*self.fetcher, issuer, self.settings.max_bytes).await?);
                event!(info, KEYS, issuer = %issuer, jwks_uri = %found, "discovered jwks_uri");
                self.jwks_uri.store(Some(found.clone()));
                found
            }
        };
        let resp = self.fetcher.get(&uri, self.settings.max_bytes).await?;
        if resp.status != 200 {
            return Err(KeySourceError::new(format!(
                "the JWKS endpoint {uri} answered {}",
                resp.status
            )));
        }
        let set = KeySet::from_json(&resp.body).map_err(|e| {
            KeySourceError::with_source(format!("the response of {uri} is not a JWK Set"), e)
        })?;
        for s in set.skipped() {
            event!(warn, KEYS, jwks_uri = %uri, kid = ?s.kid, reason = s.reason, "skipped an unusable JWK");
            let _ = s;
        }
        if set.is_empty() {
            return Err(KeySourceError::new(format!(
                "the JWKS at {uri} holds no usable key"
            )));
        }
        let s = self.settings;
        let ttl = freshness(&resp, self.clock.unix_now())
            .unwrap_or(s.default_ttl)
            .clamp(s.min_ttl, s.max_ttl);
        Ok((set, ttl))
    }

    /// Fetches under the fetch lock (single flight). `seen` is the snapshot
    /// the caller found wanting (`None`: it found none usable); if another
    /// fetch replaced it meanwhile, that result is returned instead.
    async fn fetch(&self, seen: Option<&Arc<KeySet>>) -> Result<Arc<KeySet>, KeySourceError> {
        let mut failures = self.fetch_lock.lock().await;
        let now = self.clock.now();
        if let Some(s) = self.snapshot.load_full() {
            match seen {
                Some(seen) if !Arc::ptr_eq(seen, &s.keys) => return Ok(s.keys.clone()),
                None if now < s.stale_until => return Ok(s.keys.clone()),
                _ => {}
            }
        }
        self.fetch_locked(&mut failures).await
    }

    /// Fetches and stores a snapshot; the caller holds the fetch lock
    /// (`failures` is its guarded value). Refuses while backing off.
    async fn fetch_locked(&self, failures: &mut u32) -> Result<Arc<KeySet>, KeySourceError> {
        let now = self.clock.now();
        if self.backing_off(now) {
            return Err(KeySourceError::new(
                "backing off after a failed fetch of the issuer's keys",
            ));
        }
        let result = match tokio::time::timeout(self.settings.timeout, self.fetch_once()).await {
            Ok(r) => r,
            Err(_) => Err(KeySourceError::new("fetching the issuer's keys timed out")),
        };
        match result {
            Ok((set, ttl)) => {
                let keys = Arc::new(set);
                let now = self.clock.now();
                let expires_at = now + ttl;
                self.snapshot.store(Some(Arc::new(Snapshot {
                    keys: keys.clone(),
                    fetched_at: now,
                    refresh_at: now + ttl.mul_f64(0.75) + jitter(ttl.mul_f64(0.15)),
                    expires_at,
                    stale_until: expires_at + self.settings.stale_window,
                })));
                *failures = 0;
                self.next_retry.store(0, Ordering::Release);
                crate::observe::metrics::key_fetch(self.target.label(), true);
                event!(
                    debug,
                    KEYS,
                    keys = keys.keys().len(),
                    ttl_secs = ttl.as_secs(),
                    "fetched the issuer's keys"
                );
                Ok(keys)
            }
            Err(e) => {
                *failures = failures.saturating_add(1);
                let delay = BACKOFF_BASE
                    .saturating_mul(1u32 << (*failures - 1).min(16))
                    .min(BACKOFF_MAX);
                self.next_retry
                    .store(self.ms(self.clock.now() + delay), Ordering::Release);
                crate::observe::metrics::key_fetch(self.target.label(), false);
                let stale = self.snapshot.load().is_some();
                event!(warn, KEYS, error = %e, failures = *failures, retry_in_ms = delay.as_millis() as u64, serving_stale_keys = stale, "fetching the issuer's keys failed");
                let _ = stale;
                Err(e)
            }
        }
    }

    fn spawn_refresh(self: &Arc<Self>, seen: Arc<KeySet>, now: Instant) {
        if self.backing_off(now) || self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.refreshing.store(false, Ordering::Release);
            return;
        };
        let inner = self.clone();
        rt.spawn(async move {
            let _ = inner.fetch(Some(&seen)).await;
            inner.refreshing.store(false, Ordering::Release);
        });
    }
}

#[async_trait]
impl KeySource for RemoteJwks {
    async fn keys(&self) -> Result<Arc<KeySet>, KeySourceError> {
        let now = self.inner.clock.now();
        if let Some(s) = self.inner.snapshot.load_full() {
            if now < s.refresh_at {
                return Ok(s.keys.clone());
            }
            if now < s.stale_until {
                self.inner.spawn_refresh(s.keys.clone(), now);
                return Ok(s.keys.clone());
            }
        }
        self.inner.fetch(None).await
    }

    async fn refresh(
        &self,
        reason: RefreshReason<'_>,
        seen: &Arc<KeySet>,
    ) -> Result<Option<Arc<KeySet>>, KeySourceError> {
        let inner = &self.inner;
        if let Some(s) = inner.snapshot.load_full()
            && !Arc::ptr_eq(&s.keys, seen)
        {
            return Ok(Some(s.keys.clone()));
        }
        let kid = match reason {
            RefreshReason::UnknownKid(k) => Some(inner.kid_hash(k)),
            RefreshReason::NoMatchingKey => None,
        };
        if let Some(h) = kid
            && inner.negative.contains_key(&h)
        {
            return Ok(None);
        }
        // Single flight: every refetch runs under the fetch lock, so callers
        // queue behind a fetch in flight and then share its result.
        let mut failures = inner.fetch_lock.lock().await;
        if let Some(s) = inner.snapshot.load_full()
            && !Arc::ptr_eq(&s.keys, seen)
        {
            return Ok(Some(s.keys.clone()));
        }
        let now = inner.clock.now();
        if inner.in_cooldown(now) {
            if let Some(h) = kid {
                inner.negative.insert(h, ());
            }
            return Ok(None);
        }
        inner
            .last_refetch
            .store(inner.ms(now) + 1, Ordering::Release);
        let result = inner.fetch_locked(&mut failures).await;
        drop(failures);
        if let (Some(h), RefreshReason::UnknownKid(k)) = (kid, reason) {
            let found = result.as_ref().is_ok_and(|set| set.has_kid(k));
            if !found {
                inner.negative.insert(h, ());
            }
        }
        result.map(Some)
    }

    fn holds(&self, key: &KeyRef) -> bool {
        let snapshot = self.inner.snapshot.load();
        let Some(s) = snapshot.as_deref() else {
            return false;
        };
        // Requests served from the token cache never call `keys()`: let them
        // start the due background refresh too, so a key the issuer removed
        // is noticed within the refresh interval.
        let now = self.inner.clock.now();
        if now >= s.refresh_at {
            self.inner.spawn_refresh(s.keys.clone(), now);
        }
        s.keys.contains(key)
    }

    fn age(&self) -> Option<std::time::Duration> {
        let s = self.inner.snapshot.load_full()?;
        Some(
            self.inner
                .clock
                .now()
                .saturating_duration_since(s.fetched_at),
        )
    }

    fn health(&self) -> KeyHealth {
        let now = self.inner.clock.now();
        match self.inner.snapshot.load().as_deref() {
            Some(s) if now < s.expires_at => KeyHealth::Fresh,
            Some(s) if now < s.stale_until => KeyHealth::Stale,
            _ => KeyHealth::Absent,
        }
    }
}
