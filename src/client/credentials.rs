//! [`ClientCredentials`]: tokens from the `client_credentials` grant,
//! cached per (resource, scopes), refreshed ahead of expiry, one request at
//! a time per key, backing off when the authorization server fails.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use http::HeaderValue;
use serde::Deserialize;

use super::token::{AccessToken, ClientError, TokenSource};
use crate::clock::Clock;
use crate::error::ConfigError;
use crate::introspection::ClientAuth;
use crate::jwks::HttpFetch;
use crate::resource::check_web_url;

/// At most this many (resource, scopes) keys are cached; beyond, the
/// least recently used one goes.
const MAX_KEYS: usize = 1024;
/// The largest token response read.
const MAX_RESPONSE: usize = 64 * 1024;
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

    /// The total time one token request may take. Defaults to 10 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Read time from a manual clock (feature `testing`).
    #[cfg(feature = "testing")]
    pub fn clock(mut self, clock: &crate::clock::ManualClock) -> Self {
        self.clock = clock.clock();
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
            let ok = url::Url::parse(url)
                .ok()
                .is_some_and(|u| check_web_url(&u, false).is_ok());
            if !ok {
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
                slots: Mutex::default(),
                jitter: RandomState::new(),
                requests: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
    scope: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: Option<String>,
    error_description: Option<String>,
}

impl ClientCredentials {
    /// Credentials of a client of `issuer`, authenticated with `auth`.
    pub fn builder(issuer: impl Into<String>, auth: ClientAuth) -> ClientCredentialsBuilder {
        ClientCredentialsBuilder {
            issuer: issuer.into(),
            auth,
            endpoint: None,
            fetcher: None,
            timeout: Duration::from_secs(10),
            clock: Clock::default(),
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

    /// One token request with `form` (the grant's parameters; client
    /// authentication is added here): the token and its lifetime in seconds.
    pub(super) async fn post(
        &self,
        mut form: Vec<(&'static str, String)>,
    ) -> Result<(AccessToken, u64), ClientError> {
        let endpoint = self.endpoint().await?;
        let mut headers = vec![(
            http::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        )];
        self.inner
            .auth
            .apply(
                &self.inner.issuer,
                &self.inner.clock,
                &mut headers,
                &mut form,
            )
            .map_err(|e| ClientError::Unavailable(e.detail().to_owned()))?;
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.inner
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let resp = tokio::time::timeout(
            self.inner.timeout,
            self.inner
                .fetcher
                .post_form(endpoint, &headers, &form, MAX_RESPONSE),
        )
        .await
        .map_err(|_| ClientError::Unavailable("the token request timed out".into()))?
        .map_err(|e| ClientError::Unavailable(e.to_string()))?;
        if resp.status != 200 {
            return Err(match serde_json::from_slice::<ErrorResponse>(&resp.body) {
                Ok(ErrorResponse {
                    error: Some(error),
                    error_description,
                }) if (400..500).contains(&resp.status) => ClientError::Refused {
                    error,
                    description: error_description.unwrap_or_default(),
                },
                _ => {
                    ClientError::Unavailable(format!("the token endpoint answered {}", resp.status))
                }
            });
        }
        let body: TokenResponse = serde_json::from_slice(&resp.body).map_err(|_| {
            ClientError::Unavailable("the token response is not a JSON object".into())
        })?;
        let secret = body
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or(ClientError::BadTokenResponse("no access_token"))?;
        let token_type = body
            .token_type
            .filter(|t| t.eq_ignore_ascii_case("bearer") || t.eq_ignore_ascii_case("dpop"))
            .ok_or(ClientError::BadTokenResponse(
                "token_type is neither Bearer nor DPoP",
            ))?;
        let lifetime = body
            .expires_in
            .as_ref()
            .and_then(serde_json::Value::as_u64)
            .filter(|l| *l > 0)
            .ok_or(ClientError::BadTokenResponse(
                "no expires_in: the client cannot know when to refresh",
            ))?;
        let now = self.inner.clock.unix_now();
        Ok((
            AccessToken {
                secret: secret.into(),
                token_type: token_type.into(),
                expires_at: UNIX_EPOCH
                    .checked_add(Duration::from_secs(now.saturating_add(lifetime))),
                scope: body.scope.map(Into::into),
            },
            lifetime,
        ))
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
