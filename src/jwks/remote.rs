//! A remote `jwks_uri` with a cache.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{KeySet, KeySource, KeySourceError, RefreshReason};
use crate::config::{check_web_url, is_loopback};
use crate::error::ConfigError;
use crate::log::event;

const DEFAULT_TTL: Duration = Duration::from_secs(3600);
const DEFAULT_COOLDOWN: Duration = Duration::from_secs(10);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_MAX_BYTES: usize = 1024 * 1024;
const MAX_REDIRECTS: usize = 3;

/// Keys fetched from an issuer's `jwks_uri` and cached.
///
/// - Reads come from an in-memory cache; concurrent first fetches are
///   coalesced into one request.
/// - Keys are refetched after the TTL, or earlier when a token names an
///   unknown `kid`, at most once per cooldown.
/// - Fetches have connect and total timeouts, a response size cap and a
///   redirect limit; `https` is required except for loopback hosts.
///
/// Cheap to clone; clones share the cache.
#[derive(Debug, Clone)]
pub struct RemoteJwks {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    uri: String,
    client: reqwest::Client,
    cache: moka::future::Cache<(), Arc<KeySet>>,
    last_refresh: Mutex<Option<Instant>>,
    cooldown: Duration,
    max_bytes: usize,
}

/// Builds a [`RemoteJwks`].
#[must_use]
#[derive(Debug, Clone)]
pub struct RemoteJwksBuilder {
    uri: String,
    ttl: Duration,
    cooldown: Duration,
    timeout: Duration,
    connect_timeout: Duration,
    max_bytes: usize,
}

impl RemoteJwks {
    /// A remote key source with the default settings.
    pub fn new(jwks_uri: impl Into<String>) -> Result<Self, ConfigError> {
        Self::builder(jwks_uri).build()
    }

    /// A builder for a remote key source.
    pub fn builder(jwks_uri: impl Into<String>) -> RemoteJwksBuilder {
        RemoteJwksBuilder {
            uri: jwks_uri.into(),
            ttl: DEFAULT_TTL,
            cooldown: DEFAULT_COOLDOWN,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    /// The `jwks_uri`.
    pub fn uri(&self) -> &str {
        &self.inner.uri
    }

    async fn fetch(inner: Arc<Inner>) -> Result<Arc<KeySet>, KeySourceError> {
        let result = fetch_once(&inner).await;
        match &result {
            Ok(set) => {
                for s in set.skipped() {
                    event!(warn, KEYS, uri = %inner.uri, kid = ?s.kid, reason = s.reason, "skipped an unusable JWK");
                    let _ = s;
                }
                event!(debug, KEYS, uri = %inner.uri, keys = set.keys().len(), "fetched JWKS");
            }
            Err(e) => {
                event!(warn, KEYS, uri = %inner.uri, error = %e, "JWKS fetch failed");
                let _ = e;
            }
        }
        result
    }
}

async fn fetch_once(inner: &Inner) -> Result<Arc<KeySet>, KeySourceError> {
    let mut resp = inner
        .client
        .get(&inner.uri)
        .header(
            http::header::ACCEPT,
            "application/jwk-set+json, application/json",
        )
        .send()
        .await
        .map_err(|e| KeySourceError::with_source("JWKS request failed", e))?;
    if !resp.status().is_success() {
        return Err(KeySourceError::new(format!(
            "JWKS endpoint answered {}",
            resp.status()
        )));
    }
    if resp
        .content_length()
        .is_some_and(|l| l > inner.max_bytes as u64)
    {
        return Err(KeySourceError::new("JWKS response exceeds the size limit"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| KeySourceError::with_source("reading the JWKS response failed", e))?
    {
        if body.len() + chunk.len() > inner.max_bytes {
            return Err(KeySourceError::new("JWKS response exceeds the size limit"));
        }
        body.extend_from_slice(&chunk);
    }
    let set = KeySet::from_json(&body)
        .map_err(|e| KeySourceError::with_source("the JWKS response is not a JWK Set", e))?;
    if set.is_empty() {
        return Err(KeySourceError::new("the JWKS holds no usable key"));
    }
    Ok(Arc::new(set))
}

#[async_trait]
impl KeySource for RemoteJwks {
    async fn keys(&self) -> Result<Arc<KeySet>, KeySourceError> {
        let inner = self.inner.clone();
        self.inner
            .cache
            .try_get_with((), Self::fetch(inner))
            .await
            .map_err(|e| KeySourceError::new(e.to_string()))
    }

    async fn refresh(
        &self,
        _reason: RefreshReason<'_>,
    ) -> Result<Option<Arc<KeySet>>, KeySourceError> {
        {
            // Poisoning only happens if a thread panicked while holding this
            // lock, which cannot happen in the two lines below; recover anyway.
            let mut last = self
                .inner
                .last_refresh
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < self.inner.cooldown) {
                return Ok(None);
            }
            *last = Some(Instant::now());
        }
        let set = Self::fetch(self.inner.clone()).await?;
        self.inner.cache.insert((), set.clone()).await;
        Ok(Some(set))
    }
}

impl RemoteJwksBuilder {
    /// How long fetched keys are used before they are fetched again.
    /// Defaults to 1 hour.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The minimum time between two refetches caused by unknown `kid`s.
    /// Defaults to 10 seconds.
    pub fn refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// The total time allowed for one fetch. Defaults to 10 seconds.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The time allowed to connect. Defaults to 5 seconds.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The largest JWKS response accepted, in bytes. Defaults to 1 MiB.
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Builds the key source. Fails when the URI is not an absolute `https`
    /// URL (`http` is allowed for loopback hosts) or a setting is out of range.
    pub fn build(self) -> Result<RemoteJwks, ConfigError> {
        let bad = |reason| ConfigError::InvalidJwksUri {
            uri: self.uri.clone(),
            reason,
        };
        let url = url::Url::parse(&self.uri).map_err(|_| bad("not an absolute URL"))?;
        check_web_url(&url, false).map_err(bad)?;
        if url.fragment().is_some() {
            return Err(bad("a jwks_uri must not have a fragment"));
        }
        if self.ttl.is_zero() || self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(ConfigError::OutOfRange {
                setting: "RemoteJwks ttl/timeout",
                reason: "must be greater than zero",
            });
        }
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if attempt.url().scheme() != "https" && !is_loopback(attempt.url()) {
                attempt.error("redirect to a non-https URL")
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .redirect(redirects)
            .build()
            .map_err(|e| ConfigError::HttpClient {
                reason: e.to_string(),
            })?;
        Ok(RemoteJwks {
            inner: Arc::new(Inner {
                uri: self.uri,
                client,
                cache: moka::future::Cache::builder()
                    .max_capacity(1)
                    .time_to_live(self.ttl)
                    .build(),
                last_refresh: Mutex::new(None),
                cooldown: self.cooldown,
                max_bytes: self.max_bytes,
            }),
        })
    }
}
