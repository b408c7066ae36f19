//! A remote JWK Set: discovery, a lock-free snapshot cache, background
//! refresh, single-flight refetch with cooldown, stale-if-error.
//!

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use async_trait::async_trait;

use super::discovery::discover;
use super::fetch::{HttpFetch, freshness};
use super::{KeyHealth, KeySet, KeySource, KeySourceError, RefreshReason};
use crate::config::check_web_url;
use crate::error::ConfigError;
use crate::log::event;

const DEFAULT_TTL: Duration = Duration::from_secs(3600);
const MIN_TTL: Duration = Duration::from_secs(300);
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
const STALE_WINDOW: Duration = Duration::from_secs(24 * 3600);
const COOLDOWN: Duration = Duration::from_secs(10);
const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BYTES: usize = 1024 * 1024;
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
const NEGATIVE_CAPACITY: u64 = 10_000;

/// The time source of a cache: the real clock, or a manual one in tests.
#[derive(Debug, Clone, Default)]
pub(crate) struct Clock(Option<Arc<AtomicU64>>);

impl Clock {
    fn offset(&self) -> Duration {
        self.0.as_ref().map_or(Duration::ZERO, |o| {
            Duration::from_millis(o.load(Ordering::Relaxed))
        })
    }
    fn now(&self) -> Instant {
        Instant::now() + self.offset()
    }
    fn unix_now(&self) -> u64 {
        (SystemTime::now() + self.offset())
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A clock for tests (feature `testing`): the real time plus every
/// [`advance`](ManualClock::advance) made so far, so hours pass in a test
/// without waiting.
#[cfg(feature = "testing")]
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

#[cfg(feature = "testing")]
impl ManualClock {
    /// A clock at the real time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.0.fetch_add(ms, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Snapshot {
    keys: Arc<KeySet>,
    refresh_at: Instant,
    expires_at: Instant,
    stale_until: Instant,
}

#[derive(Debug, Clone)]
enum Target {
    JwksUri(Arc<String>),
    Discover(String),
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    default_ttl: Duration,
    min_ttl: Duration,
    max_ttl: Duration,
    stale_window: Duration,
    cooldown: Duration,
    timeout: Duration,
    max_bytes: usize,
}

/// Keys fetched from an issuer's `jwks_uri` (given, or found by discovery)
/// and cached; see the [module docs](crate::jwks) for the cache's design.
///
/// Cheap to clone; clones share the cache.
///
/// ```
/// # fn main() -> Result<(), mcp_resource_guard::ConfigError> {
/// use std::time::Duration;
/// use mcp_resource_guard::RemoteJwks;
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

/// Builds a [`RemoteJwks`].
#[must_use]
pub struct RemoteJwksBuilder {
    target: Target,
    settings: Settings,
    fetcher: Option<Arc<dyn HttpFetch>>,
    clock: Clock,
}

impl fmt::Debug for RemoteJwksBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJwksBuilder")
            .field("target", &self.target)
            .field("settings", &self.settings)
            .field("fetcher", &self.fetcher)
            .finish()
    }
}

fn jitter(max: Duration) -> Duration {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let r = RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed));
    max.mul_f64((r >> 11) as f64 / (1u64 << 53) as f64)
}

impl RemoteJwks {
    /// A key source for this `jwks_uri`, with the default settings.
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
                    refresh_at: now + ttl.mul_f64(0.75) + jitter(ttl.mul_f64(0.15)),
                    expires_at,
                    stale_until: expires_at + self.settings.stale_window,
                })));
                *failures = 0;
                self.next_retry.store(0, Ordering::Release);
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

    fn health(&self) -> KeyHealth {
        let now = self.inner.clock.now();
        match self.inner.snapshot.load().as_deref() {
            Some(s) if now < s.expires_at => KeyHealth::Fresh,
            Some(s) if now < s.stale_until => KeyHealth::Stale,
            _ => KeyHealth::Absent,
        }
    }
}

impl RemoteJwksBuilder {
    fn new(target: Target) -> Self {
        Self {
            target,
            settings: Settings {
                default_ttl: DEFAULT_TTL,
                min_ttl: MIN_TTL,
                max_ttl: MAX_TTL,
                stale_window: STALE_WINDOW,
                cooldown: COOLDOWN,
                timeout: TIMEOUT,
                max_bytes: MAX_BYTES,
            },
            fetcher: None,
            clock: Clock::default(),
        }
    }

    /// How long keys are fresh when the response says nothing
    /// (`Cache-Control: max-age`, `Expires`). Defaults to 1 hour.
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.settings.default_ttl = ttl;
        self
    }

    /// The shortest freshness honoured, whatever the response says.
    /// Defaults to 5 minutes.
    pub fn min_ttl(mut self, ttl: Duration) -> Self {
        self.settings.min_ttl = ttl;
        self
    }

    /// The longest freshness honoured, whatever the response says.
    /// Defaults to 24 hours.
    pub fn max_ttl(mut self, ttl: Duration) -> Self {
        self.settings.max_ttl = ttl;
        self
    }

    /// How long past their expiry keys are still used while refreshes fail
    /// (stale-if-error). Defaults to 24 hours.
    pub fn stale_window(mut self, window: Duration) -> Self {
        self.settings.stale_window = window;
        self
    }

    /// After a refetch for an unknown `kid`, how long further unknown `kid`s
    /// cause no refetch. Defaults to 10 seconds.
    pub fn refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.settings.cooldown = cooldown;
        self
    }

    /// The total time allowed for one fetch (discovery included).
    /// Defaults to 10 seconds.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }

    /// The largest response accepted, in bytes. Defaults to 1 MiB.
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.settings.max_bytes = bytes;
        self
    }

    /// Fetch with this [`HttpFetch`] instead of the built-in reqwest client.
    pub fn http_fetch(mut self, fetcher: impl HttpFetch) -> Self {
        self.fetcher = Some(Arc::new(fetcher));
        self
    }

    /// Fetch with your own reqwest client (proxy, private CA); see
    /// [`ReqwestFetch::with_client`](super::ReqwestFetch::with_client).
    #[cfg(feature = "reqwest")]
    pub fn http_client(self, client: reqwest::Client) -> Self {
        self.http_fetch(super::ReqwestFetch::with_client(client))
    }

    /// Use a manual clock (tests only; feature `testing`).
    #[cfg(feature = "testing")]
    pub fn clock(mut self, clock: &ManualClock) -> Self {
        self.clock = Clock(Some(clock.0.clone()));
        self
    }

    /// Builds the key source. Fails when the URL is not an absolute `https`
    /// URL (`http` is allowed for loopback hosts) or a setting is out of range.
    pub fn build(self) -> Result<RemoteJwks, ConfigError> {
        let jwks_uri = match &self.target {
            Target::JwksUri(u) => {
                let bad = |reason| ConfigError::InvalidJwksUri {
                    uri: u.to_string(),
                    reason,
                };
                let url = url::Url::parse(u).map_err(|_| bad("not an absolute URL"))?;
                check_web_url(&url, false).map_err(bad)?;
                if url.fragment().is_some() {
                    return Err(bad("a jwks_uri must not have a fragment"));
                }
                Some(u.clone())
            }
            Target::Discover(issuer) => {
                crate::config::check_issuer(issuer)?;
                None
            }
        };
        let s = self.settings;
        let range = |setting, reason| ConfigError::OutOfRange { setting, reason };
        if s.min_ttl.is_zero() || s.min_ttl > s.max_ttl {
            return Err(range("min_ttl", "greater than zero and at most max_ttl"));
        }
        if s.timeout.is_zero() {
            return Err(range("timeout", "greater than zero"));
        }
        if s.max_bytes == 0 {
            return Err(range("max_response_size", "greater than zero"));
        }
        let fetcher: Arc<dyn HttpFetch> = match self.fetcher {
            Some(f) => f,
            #[cfg(feature = "reqwest")]
            None => Arc::new(super::ReqwestFetch::new()?),
            #[cfg(not(feature = "reqwest"))]
            None => {
                return Err(ConfigError::HttpClient {
                    reason: "the `reqwest` feature is off: supply a fetcher with `http_fetch`"
                        .to_owned(),
                });
            }
        };
        let negative = moka::sync::Cache::builder()
            .max_capacity(NEGATIVE_CAPACITY)
            .time_to_live(s.cooldown.max(Duration::from_millis(1)))
            .build();
        Ok(RemoteJwks {
            inner: Arc::new(Inner {
                target: self.target,
                jwks_uri: ArcSwapOption::new(jwks_uri),
                fetcher,
                snapshot: ArcSwapOption::empty(),
                fetch_lock: tokio::sync::Mutex::new(0),
                last_refetch: AtomicU64::new(0),
                next_retry: AtomicU64::new(0),
                refreshing: AtomicBool::new(false),
                negative,
                hasher: RandomState::new(),
                settings: s,
                clock: self.clock,
                epoch: Instant::now(),
            }),
        })
    }
}
