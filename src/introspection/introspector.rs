//! [`Introspector`]: one issuer's introspection at request time: the result
//! cache (keyed by a keyed hash of the token, single flight per token), the
//! bound on calls in flight, the HTTP call and its failure modes.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

use super::response::{self, Expect, Verdict};
use super::shared_answers;
use super::{ClientAuth, Introspection, IntrospectionMode};
use crate::claims::AuthContext;
use crate::clock::Clock;
use crate::config::ScopeClaim;
use crate::error::{AuthError, AuthErrorKind};
use crate::guard::token::BearerToken;
use crate::jwks::HttpFetch;
use crate::observe::log::event;
use crate::store::{KeyKind, SharedStore, StoreKey};
use crate::verify::JwtVerifier;

/// The media type of RFC 9701 signed introspection responses.
const JWT_RESPONSE: &str = "application/token-introspection+jwt";

/// A result: what the server said, until when it holds, and its weight.
#[derive(Clone)]
enum Outcome {
    Active(AuthContext, u64, u32),
    Refused(AuthError, u64),
    /// The call failed (503). Kept for one second so that the requests
    /// waiting on this call, and those right behind them, do not each
    /// call a server that is down.
    Failed(AuthError, u64),
}

impl Outcome {
    fn until(&self) -> u64 {
        match self {
            Self::Active(_, u, _) | Self::Refused(_, u) | Self::Failed(_, u) => *u,
        }
    }

    /// Bytes held, for the cache's byte bound.
    fn weight(&self) -> u32 {
        match self {
            Self::Active(_, _, w) => *w,
            Self::Refused(..) | Self::Failed(..) => ENTRY_OVERHEAD,
        }
    }

    fn into_result(self) -> Result<AuthContext, AuthError> {
        match self {
            Self::Active(ctx, ..) => Ok(ctx),
            Self::Refused(e, _) | Self::Failed(e, _) => Err(e),
        }
    }
}

/// The bytes an entry costs besides its response.
const ENTRY_OVERHEAD: u32 = 256;

/// How many tokens seen active are remembered (16 bytes each, plus moka's
/// node).
const SEEN_ACTIVE: u64 = 100_000;

/// A cache slot: filled once by the call that all concurrent requests for
/// the token share.
type Slot = Arc<tokio::sync::OnceCell<Outcome>>;

/// One issuer's introspection, as built from its [`Introspection`].
pub(crate) struct Introspector {
    issuer: String,
    mode: IntrospectionMode,
    auth: ClientAuth,
    configured_endpoint: Option<String>,
    endpoint: tokio::sync::OnceCell<String>,
    fetcher: Arc<dyn HttpFetch>,
    /// Every call in flight.
    limiter: tokio::sync::Semaphore,
    /// The calls for tokens never seen active: a quarter of the limit.
    unknown_limiter: tokio::sync::Semaphore,
    /// Tokens seen active (keyed like the cache), so their calls are not
    /// counted against `unknown_limiter`. Bounded; forgetting one only puts
    /// it back among the unknown.
    seen_active: moka::sync::Cache<u128, ()>,
    max_wait: Duration,
    timeout: Duration,
    max_response_bytes: usize,
    positive_ttl: u64,
    negative_ttl: u64,
    cache: moka::sync::Cache<u128, Slot>,
    /// Two independent per-process keys: the cache key is 128 bits.
    hashers: [RandomState; 2],
    clock: Clock,
    leeway: u64,
    scope_claim: ScopeClaim,
    audience_if_missing: Option<String>,
    resource: String,
    jwt_response: bool,
    dpop: bool,
    /// Where the replicas share answers, if anywhere.
    shared: Option<SharedStore>,
}

impl fmt::Debug for Introspector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introspector")
            .field("issuer", &self.issuer)
            .field("mode", &self.mode)
            .field("auth", &self.auth)
            .field("endpoint", &self.endpoint.get())
            .field("cached", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

fn unavailable(detail: &'static str) -> AuthError {
    AuthError::new(AuthErrorKind::IntrospectionUnavailable, detail)
}

/// What the builder hands over besides the [`Introspection`] itself.
pub(crate) struct Settings {
    pub(crate) issuer: String,
    pub(crate) fetcher: Arc<dyn HttpFetch>,
    pub(crate) clock: Clock,
    pub(crate) leeway: u64,
    pub(crate) scope_claim: ScopeClaim,
    /// The canonical resource, used as `aud` under the missing-audience opt-in.
    pub(crate) resource: String,
    /// DPoP is accepted: keep `cnf.jkt` bindings.
    pub(crate) dpop: bool,
    pub(crate) shared: Option<SharedStore>,
}

impl Introspector {
    pub(crate) fn new(config: &Introspection, settings: Settings) -> Self {
        // The cache's own expiry is a memory backstop only: freshness is
        // judged with the guard's clock on every read.
        let backstop = config
            .positive_ttl
            .max(config.negative_ttl)
            .max(Duration::from_secs(1));
        Self {
            mode: config.mode,
            auth: config.auth.clone(),
            configured_endpoint: config.endpoint.clone(),
            endpoint: tokio::sync::OnceCell::new(),
            fetcher: settings.fetcher,
            limiter: tokio::sync::Semaphore::new(config.max_in_flight),
            unknown_limiter: tokio::sync::Semaphore::new((config.max_in_flight / 4).max(1)),
            seen_active: moka::sync::Cache::builder()
                .max_capacity(SEEN_ACTIVE)
                .time_to_idle(Duration::from_secs(24 * 3600))
                .build(),
            max_wait: config.max_wait,
            timeout: config.timeout,
            max_response_bytes: config.max_response_bytes,
            positive_ttl: config.positive_ttl.as_secs(),
            negative_ttl: config.negative_ttl.as_secs(),
            cache: moka::sync::Cache::builder()
                .max_capacity(config.cache_bytes)
                .weigher(|_, slot: &Slot| slot.get().map_or(ENTRY_OVERHEAD, Outcome::weight))
                .time_to_live(backstop)
                .build(),
            hashers: [RandomState::new(), RandomState::new()],
            clock: settings.clock,
            leeway: settings.leeway,
            scope_claim: settings.scope_claim,
            audience_if_missing: config
                .accept_missing_audience
                .then(|| settings.resource.clone()),
            resource: settings.resource,
            jwt_response: config.jwt_response,
            dpop: settings.dpop,
            shared: settings.shared,
            issuer: settings.issuer,
        }
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    pub(crate) fn mode(&self) -> IntrospectionMode {
        self.mode
    }

    fn key(&self, token: &BearerToken) -> u128 {
        let raw = token.secret().as_bytes();
        (u128::from(self.hashers[0].hash_one(raw)) << 64)
            | u128::from(self.hashers[1].hash_one(raw))
    }

    /// Forgets the cached result for `token`.
    pub(crate) fn forget(&self, token: &BearerToken) {
        self.cache.invalidate(&self.key(token));
    }

    /// What the authorization server says about `token`: the context of an
    /// active token for this resource, or why not. `signed` verifies RFC
    /// 9701 responses (the guard's JWT verifier, when it has the keys).
    pub(crate) async fn introspect(
        &self,
        token: &BearerToken,
        signed: Option<&JwtVerifier>,
    ) -> Result<AuthContext, AuthError> {
        let key = self.key(token);
        let now = self.clock.unix_now();
        let slot = match self.cache.get(&key) {
            // A filled slot past its time: drop it and ask again.
            Some(slot) if slot.get().is_some_and(|o| now >= o.until()) => {
                self.cache.invalidate(&key);
                self.cache.get_with(key, Slot::default)
            }
            Some(slot) => slot,
            None => self.cache.get_with(key, Slot::default),
        };
        let mut filled = false;
        let outcome = slot
            .get_or_init(|| async {
                filled = true;
                match self.call(token, key, signed).await {
                    Ok(o) => o,
                    Err(e) => Outcome::Failed(e, self.clock.unix_now().saturating_add(1)),
                }
            })
            .await
            .clone();
        if filled {
            // Weigh the slot now that it holds its result.
            self.cache.insert(key, slot);
        }
        outcome.into_result()
    }

    async fn call(
        &self,
        token: &BearerToken,
        key: u128,
        signed: Option<&JwtVerifier>,
    ) -> Result<Outcome, AuthError> {
        let shared_key = self.shared.as_ref().map(|_| {
            StoreKey::new(
                KeyKind::Introspection,
                &[self.issuer.as_bytes(), token.secret().as_bytes()],
            )
        });
        if let (Some(shared), Some(store_key)) = (&self.shared, &shared_key)
            && let Some(answer) =
                shared_answers::get(shared, store_key, self.clock.unix_now()).await
        {
            crate::observe::metrics::introspection_shared_hit(&self.issuer);
            let outcome = self
                .judge(&answer.body, answer.is_jwt, signed, answer.until)
                .await;
            if let Ok(Outcome::Active(..)) = &outcome {
                self.seen_active.insert(key, ());
            }
            return outcome;
        }
        let too_many = || unavailable("too many introspection calls are in flight");
        let deadline = tokio::time::Instant::now() + self.max_wait;
        let _unknown = if self.seen_active.contains_key(&key) {
            None
        } else {
            let p = tokio::time::timeout_at(deadline, self.unknown_limiter.acquire())
                .await
                .ok()
                .and_then(Result::ok)
                .ok_or_else(|| {
                    unavailable("too many calls for tokens never seen active are in flight")
                })?;
            Some(p)
        };
        let _permit = tokio::time::timeout_at(deadline, self.limiter.acquire())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(too_many)?;
        let started = std::time::Instant::now();
        crate::observe::metrics::introspection_in_flight(&self.issuer, 1.0);
        let result = self.fetch(token).await;
        crate::observe::metrics::introspection_in_flight(&self.issuer, -1.0);
        let (body, is_jwt) = match result {
            Ok(r) => r,
            Err(e) => {
                crate::observe::metrics::introspection_call(
                    &self.issuer,
                    "error",
                    started.elapsed(),
                );
                return Err(e);
            }
        };
        let outcome = self.judge(&body, is_jwt, signed, u64::MAX).await;
        if let Ok(Outcome::Active(..)) = &outcome {
            self.seen_active.insert(key, ());
        }
        let label = match &outcome {
            Ok(Outcome::Active(..)) => "active",
            Ok(_) => "refused",
            Err(_) => "error",
        };
        crate::observe::metrics::introspection_call(&self.issuer, label, started.elapsed());
        if let (Some(shared), Some(key), Ok(o)) = (&self.shared, &shared_key, &outcome) {
            let answer = shared_answers::Answer {
                is_jwt,
                until: o.until(),
                body,
            };
            shared_answers::put(shared, key, &answer, self.clock.unix_now()).await;
        }
        outcome
    }

    /// Asks the introspection endpoint: the answer's body, and whether it
    /// is an RFC 9701 signed answer.
    async fn fetch(&self, token: &BearerToken) -> Result<(Vec<u8>, bool), AuthError> {
        let endpoint = self.endpoint().await?;
        let accept = if self.jwt_response {
            JWT_RESPONSE
        } else {
            "application/json"
        };
        let mut headers = vec![(http::header::ACCEPT, HeaderValue::from_static(accept))];
        let mut form: Vec<(&'static str, String)> = vec![
            ("token", token.secret().to_owned()),
            ("token_type_hint", "access_token".to_owned()),
        ];
        self.auth
            .apply(&self.issuer, &self.clock, &mut headers, &mut form)?;
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let resp = match tokio::time::timeout(self.timeout, self.post(endpoint, &headers, &form))
            .await
        {
            Err(_) => {
                event!(warn, INTROSPECTION, issuer = %self.issuer, "the introspection call timed out");
                return Err(unavailable("the introspection call timed out"));
            }
            Ok(Err(e)) => {
                event!(warn, INTROSPECTION, issuer = %self.issuer, error = %e, "the introspection call failed");
                let _ = e;
                return Err(unavailable("the introspection call failed"));
            }
            Ok(Ok(r)) => r,
        };
        if resp.status != 200 {
            event!(warn, INTROSPECTION, issuer = %self.issuer, status = resp.status,
                "the introspection endpoint answered with an error status (check the resource server's client credentials)");
            return Err(unavailable(
                "the introspection endpoint answered with an error status",
            ));
        }
        let is_jwt = resp.content_type.as_deref().is_some_and(|t| {
            t.trim_start()
                .to_ascii_lowercase()
                .starts_with(JWT_RESPONSE)
        });
        Ok((resp.body, is_jwt))
    }

    /// Judges an answer (fresh from the endpoint, or from the shared
    /// store), holding at most until `cap`.
    async fn judge(
        &self,
        body: &[u8],
        is_jwt: bool,
        signed: Option<&JwtVerifier>,
        cap: u64,
    ) -> Result<Outcome, AuthError> {
        let now = self.clock.unix_now();
        let expect = Expect {
            issuer: &self.issuer,
            audience_if_missing: self.audience_if_missing.as_deref(),
            scope_claim: &self.scope_claim,
            leeway: self.leeway,
            now,
            dpop: self.dpop,
        };
        let verdict = if is_jwt {
            let Some(verifier) = signed else {
                return Err(unavailable(
                    "a signed introspection response cannot be verified without the issuer's keys",
                ));
            };
            let map = verifier
                .verify_introspection_jwt(
                    &self.issuer,
                    &[self.auth.client_id(), &self.resource],
                    body,
                )
                .await?;
            response::judge(map, &expect)?
        } else {
            response::judge_json(body, &expect)?
        };
        Ok(match verdict {
            Verdict::Active(ctx) => {
                let until = ctx
                    .expires_at_unix()
                    .map_or(u64::MAX, |e| e.saturating_add(self.leeway))
                    .min(now.saturating_add(self.positive_ttl))
                    .min(cap);
                let weight = u32::try_from(2 * body.len())
                    .unwrap_or(u32::MAX)
                    .saturating_add(ENTRY_OVERHEAD);
                Outcome::Active(ctx.limit_caching(until), until, weight)
            }
            Verdict::Refused(e) => {
                Outcome::Refused(e, now.saturating_add(self.negative_ttl).min(cap))
            }
        })
    }

    async fn post(
        &self,
        endpoint: &str,
        headers: &[(HeaderName, HeaderValue)],
        form: &[(&str, &str)],
    ) -> Result<crate::jwks::HttpResponse, crate::jwks::KeySourceError> {
        self.fetcher
            .post_form(endpoint, headers, form, self.max_response_bytes)
            .await
    }

    /// The configured endpoint, or the one the issuer's metadata names
    /// (found once; a failed discovery is retried by the next call).
    async fn endpoint(&self) -> Result<&str, AuthError> {
        if let Some(e) = &self.configured_endpoint {
            return Ok(e);
        }
        self.endpoint
            .get_or_try_init(|| async {
                crate::jwks::discover_field(
                    &*self.fetcher,
                    &self.issuer,
                    "introspection_endpoint",
                    self.max_response_bytes,
                )
                .await
                .map_err(|e| {
                    event!(warn, INTROSPECTION, issuer = %self.issuer, error = %e, "finding the introspection endpoint failed");
                    let _ = e;
                    unavailable("the issuer's introspection endpoint could not be found")
                })
            })
            .await
            .map(String::as_str)
    }
}

/// Each issuer's introspection (issuer, settings, scope claim), checked; at
/// most one issuer takes opaque tokens.
pub(crate) fn build_all<'a>(
    issuers: impl Iterator<Item = (&'a str, &'a Introspection, &'a crate::config::ScopeClaim)>,
    clock: &crate::clock::Clock,
    leeway: u64,
    resource: &crate::guard::resource::ResourceUrl,
    dpop: bool,
    shared: Option<&SharedStore>,
) -> Result<Vec<Arc<Introspector>>, crate::error::ConfigError> {
    let mut out = Vec::new();
    let mut opaque = false;
    for (issuer, config, scope_claim) in issuers {
        let fetcher = config.check(issuer)?;
        if config.mode != IntrospectionMode::JwtThenIntrospect {
            if opaque {
                return Err(crate::error::ConfigError::InvalidIntrospection {
                    issuer: issuer.to_owned(),
                    reason: "only one issuer may take opaque tokens (an opaque token does not say who issued it, and sending it to another server would leak it): use IntrospectionMode::JwtThenIntrospect for the others",
                });
            }
            opaque = true;
        }
        out.push(Arc::new(Introspector::new(
            config,
            Settings {
                issuer: issuer.to_owned(),
                fetcher,
                clock: clock.clone(),
                leeway,
                scope_claim: scope_claim.clone(),
                resource: resource.as_str().to_owned(),
                dpop,
                shared: shared.cloned(),
            },
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwks::{HttpResponse, KeySourceError};

    /// Answers `{"active": false}` to everything.
    #[derive(Debug)]
    struct Inactive;

    #[async_trait::async_trait]
    impl HttpFetch for Inactive {
        async fn get(&self, _: &str, _: usize) -> Result<HttpResponse, KeySourceError> {
            Err(KeySourceError::new("unused"))
        }
        async fn post_form(
            &self,
            _: &str,
            _: &[(HeaderName, HeaderValue)],
            _: &[(&str, &str)],
            _: usize,
        ) -> Result<HttpResponse, KeySourceError> {
            Ok(HttpResponse::new(200, br#"{"active":false}"#.to_vec()))
        }
    }

    #[tokio::test]
    async fn distinct_tokens_never_grow_the_cache_past_its_byte_bound() {
        let config = Introspection::new(ClientAuth::client_secret_post("rs", "s"))
            .endpoint("https://as.example.com/introspect")
            .cache_max_bytes(64 * 1024);
        let i = Introspector::new(
            &config,
            Settings {
                issuer: "https://as.example.com".into(),
                fetcher: Arc::new(Inactive),
                clock: Clock::default(),
                leeway: 0,
                scope_claim: ScopeClaim::default(),
                resource: "https://mcp.example.com/mcp".into(),
                dpop: false,
                shared: None,
            },
        );
        for n in 0..5_000 {
            let e = i
                .introspect(&BearerToken::new(format!("garbage-{n}")), None)
                .await
                .unwrap_err();
            assert_eq!(e.kind(), AuthErrorKind::InvalidToken);
        }
        i.cache.run_pending_tasks();
        // 64 KiB at 256 bytes an entry.
        assert!(i.cache.entry_count() <= 256, "{}", i.cache.entry_count());
        assert!(i.cache.weighted_size() <= 64 * 1024);
        // The keys are hashes: no token is held.
        assert!(!format!("{i:?}").contains("garbage"));
    }
}
