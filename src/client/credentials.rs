//! [`ClientCredentials`]: tokens from the `client_credentials` grant,
//! cached per (resource, scopes), refreshed ahead of expiry, one request at
//! a time per key, backing off when the authorization server fails.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::exchange::TokenExchange;
use super::token::{AccessToken, ClientError, TokenSource};
use super::token_request::{Issued, MAX_RESPONSE, TokenEndpoint};
use crate::claims::AuthContext;
use crate::clock::Clock;
use crate::error::ConfigError;
use crate::guard::resource::is_web_url;
use crate::introspection::ClientAuth;
use crate::jwks::HttpFetch;

/// At most this many (resource, scopes) keys are cached; beyond, the
/// least recently used one goes.
const MAX_KEYS: usize = 1024;
/// The longest backoff after repeated failures.
const MAX_BACKOFF: u64 = 60;

/// One cached token and what to do next.
#[derive(Default)]
struct Slot {
    token: Option<AccessToken>,
    /// Unix seconds: refresh from then on (80 % of the lifetime, jittered).
    refresh_at: u64,
    /// Unix seconds: the token's expiry.
    expires_at: u64,
    failures: u32,
    /// Unix seconds: no new request before then.
    backoff_until: u64,
    last_used: u64,
}

/// A slot shared by the callers of one (resource, scopes) key; its async
/// lock makes them wait for one token request.
type SharedSlot = Arc<tokio::sync::Mutex<Slot>>;

/// Tokens for this client from the `client_credentials` grant (RFC 6749
/// §4.4), with RFC 8707 `resource` and scopes. Clone it freely: clones
/// share the cache.
///
/// ```no_run
/// use mcp_resource_guard::client::{ClientCredentials, TokenSource};
/// use mcp_resource_guard::introspection::ClientAuth;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let source = ClientCredentials::builder(
///     "https://auth.example.com",
///     ClientAuth::client_secret_basic("my-agent", std::env::var("AGENT_SECRET")?),
/// )
/// .build()?;
/// let token = source
///     .token("https://mcp.example.com/mcp", &["todo:read".to_owned()])
///     .await?;
/// println!("{token:?}"); // the secret is redacted
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClientCredentials {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    auth: ClientAuth,
    configured_endpoint: Option<String>,
    endpoint: tokio::sync::OnceCell<String>,
    fetcher: Arc<dyn HttpFetch>,
    timeout: Duration,
    clock: Clock,
    #[cfg(feature = "signing")]
    dpop: Option<Arc<super::DpopKey>>,
    slots: Mutex<HashMap<(String, String), SharedSlot>>,
    jitter: RandomState,
    requests: std::sync::atomic::AtomicU64,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("issuer", &self.inner.issuer)
            .field("auth", &self.inner.auth)
            .finish_non_exhaustive()
    }
}

/// Builds [`ClientCredentials`].
#[must_use]
pub struct ClientCredentialsBuilder {
    issuer: String,
    auth: ClientAuth,
    endpoint: Option<String>,
    fetcher: Option<Arc<dyn HttpFetch>>,
    timeout: Duration,
    clock: Clock,
    #[cfg(feature = "signing")]
    dpop: Option<Arc<super::DpopKey>>,
}

impl fmt::Debug for ClientCredentialsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsBuilder")
            .field("issuer", &self.issuer)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl ClientCredentialsBuilder {
    /// The token endpoint. Defaults to the `token_endpoint` of the issuer's
    /// RFC 8414 (then OIDC) metadata.
    pub fn token_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// Use this HTTP client. Defaults to a
    /// [`ReqwestFetch`](crate::jwks::ReqwestFetch) (feature `reqwest`).
    pub fn http_fetch(mut self, fetcher: impl HttpFetch) -> Self {
        self.fetcher = Some(Arc::new(fetcher));
        self
    }

    /// Ask for DPoP-bound tokens (RFC 9449), proving possession of `key`
    /// at the token endpoint. Feature `signing`.
    #[cfg(feature = "signing")]
    pub fn dpop(mut self, key: Arc<super::DpopKey>) -> Self {
        self.dpop = Some(key);
        self
    }

    /// The total time one token request may take. Defaults to 10 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Read time from this clock (a test's `ManualClock`).
    #[cfg(feature = "testing")]
    pub(crate) fn with_clock(mut self, clock: crate::clock::Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidIssuer`] for an issuer or token endpoint that is
    /// not `https` (`http` only on a loopback host);
    /// [`ConfigError::OutOfRange`] for a zero timeout;
    /// [`ConfigError::HttpClient`] when the default HTTP client cannot be built.
    pub fn build(self) -> Result<ClientCredentials, ConfigError> {
        for url in std::iter::once(&self.issuer).chain(self.endpoint.as_ref()) {
            if !is_web_url(url) {
                return Err(ConfigError::InvalidIssuer {
                    issuer: url.clone(),
                    reason: "must be an https URL (http only on a loopback host)",
                });
            }
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::OutOfRange {
                setting: "client credentials timeout",
                reason: "more than zero",
            });
        }
        let fetcher: Arc<dyn HttpFetch> = match self.fetcher {
            Some(f) => f,
            #[cfg(feature = "reqwest")]
            None => Arc::new(crate::jwks::ReqwestFetch::new()?),
            #[cfg(not(feature = "reqwest"))]
            None => {
                return Err(ConfigError::HttpClient {
                    reason: "without the reqwest feature, give an HttpFetch".into(),
                });
            }
        };
        Ok(ClientCredentials {
            inner: Arc::new(Inner {
                issuer: self.issuer,
                auth: self.auth,
                configured_endpoint: self.endpoint,
                endpoint: tokio::sync::OnceCell::new(),
                fetcher,
                timeout: self.timeout,
                clock: self.clock,
                #[cfg(feature = "signing")]
                dpop: self.dpop,
                slots: Mutex::default(),
                jitter: RandomState::new(),
                requests: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }
}

impl ClientCredentials {
    /// Exchanges the access token this server received (`subject_token`,
    /// verified by the guard as `subject`) for one for a downstream
    /// resource (RFC 8693), authenticated as this server's client. Set the
    /// [`resource`](TokenExchange::resource) (required), the narrowed
    /// [`scopes`](TokenExchange::scopes) and, to record the delegation
    /// (`act`), this server's own [`actor_token`](TokenExchange::actor_token).
    ///
    /// Cached per (hash of the subject token, resource, scopes, actor),
    /// never beyond the subject token's `exp` (a subject token without
    /// `exp` is exchanged every time).
    ///
    /// ```no_run
    /// # async fn demo(cc: mcp_resource_guard::client::ClientCredentials,
    /// #   ctx: mcp_resource_guard::AuthContext, incoming: &str) -> Result<(), mcp_resource_guard::client::ClientError> {
    /// let downstream = cc
    ///     .exchange(incoming, &ctx)
    ///     .resource("https://api.example.com")
    ///     .scopes(["read"])
    ///     .send()
    ///     .await?;
    /// # let _ = downstream; Ok(()) }
    /// ```
    pub fn exchange<'a>(
        &'a self,
        subject_token: &'a str,
        subject: &'a AuthContext,
    ) -> TokenExchange<'a> {
        TokenExchange::new(self, subject_token, subject)
    }

    /// Credentials of a client of `issuer`, authenticated with `auth`.
    pub fn builder(issuer: impl Into<String>, auth: ClientAuth) -> ClientCredentialsBuilder {
        ClientCredentialsBuilder {
            issuer: issuer.into(),
            auth,
            endpoint: None,
            fetcher: None,
            timeout: Duration::from_secs(10),
            clock: Clock::default(),
            #[cfg(feature = "signing")]
            dpop: None,
        }
    }

    /// How many token requests were sent so far (for tests and metrics).
    pub fn requests_sent(&self) -> u64 {
        self.inner
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn slot(&self, key: (String, String), now: u64) -> SharedSlot {
        let mut slots = self.inner.slots.lock().unwrap_or_else(|p| p.into_inner());
        if !slots.contains_key(&key) && slots.len() >= MAX_KEYS {
            // The least recently used key goes (those busy right now count
            // as used now).
            let oldest = slots
                .iter()
                .min_by_key(|(_, s)| s.try_lock().map_or(now, |s| s.last_used))
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                slots.remove(&k);
            }
        }
        slots.entry(key).or_default().clone()
    }

    async fn endpoint(&self) -> Result<&str, ClientError> {
        if let Some(e) = &self.inner.configured_endpoint {
            return Ok(e);
        }
        self.inner
            .endpoint
            .get_or_try_init(|| async {
                crate::jwks::discover_field(
                    &*self.inner.fetcher,
                    &self.inner.issuer,
                    "token_endpoint",
                    MAX_RESPONSE,
                )
                .await
                .map_err(|e| ClientError::Discovery(e.to_string()))
            })
            .await
            .map(String::as_str)
    }

    /// The token endpoint, as the grants post to it.
    pub(super) async fn token_endpoint(&self) -> Result<TokenEndpoint, ClientError> {
        Ok(TokenEndpoint {
            issuer: self.inner.issuer.clone(),
            url: self.endpoint().await?.to_owned(),
            fetcher: self.inner.fetcher.clone(),
            timeout: self.inner.timeout,
            clock: self.inner.clock.clone(),
            #[cfg(feature = "signing")]
            dpop: self.inner.dpop.clone(),
        })
    }

    /// One token request with `form` (the grant's parameters; client
    /// authentication is added here): the token and its lifetime in seconds.
    pub(super) async fn post(
        &self,
        form: Vec<(&'static str, String)>,
    ) -> Result<Issued, ClientError> {
        let endpoint = self.token_endpoint().await?;
        self.inner
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        endpoint.request(&self.inner.auth, form).await
    }

    /// Forgets the token cached for (`resource`, `scopes`): the server
    /// refused it, so the next call gets a new one.
    #[cfg(feature = "reqwest")]
    pub(super) fn forget(&self, resource: &str, scopes: &[String]) {
        let key = (resource.to_owned(), scope_key(scopes));
        let mut slots = self.inner.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.remove(&key);
    }
}

/// `scopes` sorted, deduplicated, space-separated: one cache key per set.
pub(super) fn scope_key(scopes: &[String]) -> String {
    let mut sorted: Vec<&str> = scopes.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.join(" ")
}

impl ClientCredentials {
    /// The token cached under `key`, or the one `fetch` gets (one caller
    /// per key asks; the others wait and take its token). A fetched token
    /// is kept no later than `cap` (Unix seconds).
    pub(super) async fn cached<F, Fut>(
        &self,
        key: (String, String),
        cap: u64,
        fetch: F,
    ) -> Result<AccessToken, ClientError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(AccessToken, u64), ClientError>>,
    {
        let slot = self.slot(key, self.inner.clock.unix_now());
        let mut s = slot.lock().await;
        let now = self.inner.clock.unix_now();
        s.last_used = now;
        if let Some(t) = &s.token
            && now < s.refresh_at
        {
            return Ok(t.clone());
        }
        let still_valid = |s: &Slot| s.token.clone().filter(|_| now < s.expires_at);
        if now < s.backoff_until {
            return still_valid(&s).ok_or(ClientError::BackingOff(Duration::from_secs(
                s.backoff_until - now,
            )));
        }
        match fetch().await {
            Ok((token, lifetime)) => {
                let lifetime = lifetime.min(cap.saturating_sub(now));
                // Refresh at 80 % of the lifetime, minus up to 10 % jitter
                // so a fleet does not refresh in step.
                let jitter = self.inner.jitter.hash_one(now) % (lifetime / 10 + 1);
                s.refresh_at = now + lifetime * 8 / 10 - jitter.min(lifetime * 8 / 10);
                s.expires_at = now.saturating_add(lifetime);
                s.failures = 0;
                s.backoff_until = 0;
                s.token = Some(token.clone());
                Ok(token)
            }
            Err(e) => {
                s.failures = s.failures.saturating_add(1);
                let wait = (1u64 << s.failures.min(6)).min(MAX_BACKOFF);
                s.backoff_until = now.saturating_add(wait);
                // A token still within its lifetime is better than none.
                still_valid(&s).ok_or(e)
            }
        }
    }
}

#[async_trait]
impl TokenSource for ClientCredentials {
    async fn token(&self, resource: &str, scopes: &[String]) -> Result<AccessToken, ClientError> {
        let scope = scope_key(scopes);
        // The form is built only when a request is needed.
        let fetch = || {
            let mut form = vec![
                ("grant_type", "client_credentials".to_owned()),
                ("resource", resource.to_owned()),
            ];
            if !scope.is_empty() {
                form.push(("scope", scope.clone()));
            }
            self.post(form)
        };
        self.cached((resource.to_owned(), scope.clone()), u64::MAX, fetch)
            .await
    }
}
