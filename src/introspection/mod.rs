//! Opaque tokens and real-time revocation: RFC 7662 token introspection.
//!
//! Give an [`Issuer`](crate::Issuer) an [`Introspection`] and the guard asks
//! that authorization server about tokens it cannot (or should not only)
//! judge locally, per [`IntrospectionMode`]:
//!
//! - [`OpaqueTokens`](IntrospectionMode::OpaqueTokens) (the default): a
//!   token that is not a JWS goes to introspection; this issuer's JWTs are
//!   still verified locally. At most one issuer may take opaque tokens (an
//!   opaque token names no issuer, and sending it to the wrong one would
//!   leak it).
//! - [`EveryToken`](IntrospectionMode::EveryToken): opaque tokens and the
//!   JWTs whose `iss` names this issuer are introspected; the
//!   authorization server's answer is authoritative.
//! - [`JwtThenIntrospect`](IntrospectionMode::JwtThenIntrospect): this
//!   issuer's JWTs are verified locally first (every check), then
//!   introspected, so a token revoked at the authorization server stops
//!   working within the positive cache window. For high-security routes.
//!   Opaque tokens are not sent to this issuer.
//!
//! The answer is checked like a JWT: `active` must be `true`, `iss` (when
//! present) the issuer, `aud` must name this resource (a response without
//! `aud` is refused unless you opt in with
//! [`dangerous::accept_missing_audience`](crate::dangerous::accept_missing_audience)),
//! `exp`/`nbf` with the guard's leeway, no `cnf`. `scope`, `client_id`,
//! `sub` and every other member land in the same
//! [`AuthContext`](crate::AuthContext) a JWT gives, so policies, extractors
//! and the audit trail work unchanged; the client cannot tell the token
//! format from the challenges. Responses signed as RFC 9701 JWTs
//! (`application/token-introspection+jwt`) are verified with the issuer's
//! keys.
//!
//! Results are cached, keyed by a keyed 128-bit hash of the token (never
//! the token), bounded in bytes (32 MiB by default): active ones until
//! `exp` or the positive TTL (default 60 s), inactive ones for the negative
//! TTL (default 10 s), a failed call for one second. Concurrent requests
//! with one new token make one call (single flight). Calls are bounded (32
//! in flight by default; the rest wait at most 1 s, then 503 with
//! `Retry-After`), time out after 5 s, and read at most 64 KiB. An
//! authorization server that is down or answers garbage gives 503, never
//! 401 (which would send clients into a re-authorization loop); tokens in
//! their positive cache window keep working.
//! [`GuardLayer::revoke_token`](crate::GuardLayer::revoke_token) evicts a
//! token's cached result.
//!
//! ```no_run
//! use mcp_resource_guard::introspection::{ClientAuth, Introspection, IntrospectionMode};
//! use mcp_resource_guard::{GuardLayer, Issuer};
//!
//! # fn demo() -> Result<(), mcp_resource_guard::ConfigError> {
//! let guard = GuardLayer::builder("https://mcp.example.com/mcp")
//!     .add_issuer(Issuer::new("https://auth.example.com").introspection(
//!         // The endpoint comes from the issuer's RFC 8414 / OIDC metadata
//!         // unless you set it with `.endpoint(…)`.
//!         Introspection::new(ClientAuth::client_secret_basic(
//!             "mcp-resource-server",
//!             std::env::var("INTROSPECTION_SECRET").unwrap_or_default(),
//!         ))
//!         .mode(IntrospectionMode::OpaqueTokens),
//!     ))
//!     .build()?;
//! # let _ = guard; Ok(()) }
//! ```

mod client_auth;
mod introspector;
mod response;
mod routing;
mod shared_answers;

use std::sync::Arc;
use std::time::Duration;

pub use client_auth::{ClientAssertionKey, ClientAuth};
pub(crate) use introspector::{Introspector, build_all};
pub(crate) use routing::RoutingVerifier;

use crate::error::ConfigError;
use crate::guard::resource::is_web_url;
use crate::jwks::HttpFetch;

/// Which of an issuer's tokens are introspected. See the [module
/// docs](self).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IntrospectionMode {
    /// Tokens that are not a JWS; this issuer's JWTs are verified locally.
    #[default]
    OpaqueTokens,
    /// Opaque tokens and this issuer's JWTs, without local verification.
    EveryToken,
    /// JWTs verified locally, then introspected (real-time revocation).
    JwtThenIntrospect,
}

/// How the guard introspects one issuer's tokens (RFC 7662). See the
/// [module docs](self).
#[must_use]
#[derive(Clone)]
pub struct Introspection {
    pub(crate) auth: ClientAuth,
    pub(crate) endpoint: Option<String>,
    pub(crate) mode: IntrospectionMode,
    pub(crate) positive_ttl: Duration,
    pub(crate) negative_ttl: Duration,
    pub(crate) cache_bytes: u64,
    pub(crate) max_in_flight: usize,
    pub(crate) max_wait: Duration,
    pub(crate) timeout: Duration,
    pub(crate) max_response_bytes: usize,
    pub(crate) accept_missing_audience: bool,
    pub(crate) jwt_response: bool,
    pub(crate) fetcher: Option<Arc<dyn HttpFetch>>,
}

impl std::fmt::Debug for Introspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspection")
            .field("auth", &self.auth)
            .field("endpoint", &self.endpoint)
            .field("mode", &self.mode)
            .field("positive_ttl", &self.positive_ttl)
            .field("negative_ttl", &self.negative_ttl)
            .field("cache_bytes", &self.cache_bytes)
            .field("max_in_flight", &self.max_in_flight)
            .finish_non_exhaustive()
    }
}

/// The bounds of each setting, checked by `GuardBuilder::build`.
pub(crate) const MAX_POSITIVE_TTL: Duration = Duration::from_secs(3600);
pub(crate) const MAX_NEGATIVE_TTL: Duration = Duration::from_secs(300);
pub(crate) const MIN_CACHE_BYTES: u64 = 64 * 1024;
pub(crate) const MAX_CACHE_BYTES: u64 = 4 << 30;
pub(crate) const MAX_IN_FLIGHT: usize = 4096;
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(30);
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(60);
pub(crate) const MAX_RESPONSE_BYTES: usize = 1 << 20;

impl Introspection {
    /// Introspection authenticated with `auth`, every other setting at its
    /// default.
    pub fn new(auth: ClientAuth) -> Self {
        Self {
            auth,
            endpoint: None,
            mode: IntrospectionMode::default(),
            positive_ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(10),
            cache_bytes: 32 * 1024 * 1024,
            max_in_flight: 32,
            max_wait: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            max_response_bytes: 64 * 1024,
            accept_missing_audience: false,
            jwt_response: false,
            fetcher: None,
        }
    }

    /// The introspection endpoint. Defaults to the `introspection_endpoint`
    /// of the issuer's RFC 8414 (then OIDC) metadata. Must be `https`
    /// (`http` only on a loopback host).
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// Which tokens are introspected. Defaults to
    /// [`IntrospectionMode::OpaqueTokens`].
    pub fn mode(mut self, mode: IntrospectionMode) -> Self {
        self.mode = mode;
        self
    }

    /// How long an active result is reused: until the token's `exp` or
    /// this long, whichever is sooner. Defaults to 60 s; at most 1 hour;
    /// zero asks on every request (revocation takes effect at once).
    pub fn positive_ttl(mut self, ttl: Duration) -> Self {
        self.positive_ttl = ttl;
        self
    }

    /// How long an inactive result is reused. Defaults to 10 s; at most 5
    /// minutes.
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// The bytes cached results may take: each counts twice its response's
    /// size plus 256 bytes, so at most `bytes / 256` entries (least
    /// recently used evicted first). Defaults to 32 MiB (131,072 entries at
    /// most); from 64 KiB to 4 GiB.
    pub fn cache_max_bytes(mut self, bytes: u64) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// At most this many introspection calls in flight; further requests
    /// wait up to `max_wait`, then get 503 with `Retry-After`. Defaults to
    /// 32 and 1 s; from 1 to 4096, and at most 30 s.
    ///
    /// Tokens never seen active may hold at most a quarter of the calls (at
    /// least one): anyone can send a new random string, and a flood of
    /// them then waits among itself while the tokens of callers already
    /// served keep the rest (re-introspected when their cache window ends).
    pub fn max_in_flight(mut self, calls: usize, max_wait: Duration) -> Self {
        self.max_in_flight = calls;
        self.max_wait = max_wait;
        self
    }

    /// The total time one call may take. Defaults to 5 s; at most 60 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest response read. Defaults to 64 KiB; at most 1 MiB.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// See [`dangerous::accept_missing_audience`](crate::dangerous::accept_missing_audience).
    pub(crate) fn accept_missing_audience(mut self) -> Self {
        self.accept_missing_audience = true;
        self
    }

    /// Ask for RFC 9701 signed responses (`Accept:
    /// application/token-introspection+jwt`). Such responses are verified
    /// with the issuer's keys whether asked for or not. Off by default.
    pub fn request_jwt_response(mut self) -> Self {
        self.jwt_response = true;
        self
    }

    /// Use this HTTP client (its [`HttpFetch::post_form`]). Defaults to a
    /// [`ReqwestFetch`](crate::jwks::ReqwestFetch) (feature `reqwest`).
    pub fn http_fetch(mut self, fetcher: impl HttpFetch) -> Self {
        self.fetcher = Some(Arc::new(fetcher));
        self
    }
}

impl Introspection {
    /// Checks every setting against its bounds; the HTTP client to use.
    pub(crate) fn check(&self, issuer: &str) -> Result<Arc<dyn HttpFetch>, ConfigError> {
        let range = |setting, reason| Err(ConfigError::OutOfRange { setting, reason });
        if self.auth.method_name() == "none" {
            return Err(ConfigError::InvalidIntrospection {
                issuer: issuer.to_owned(),
                reason: "RFC 7662 requires the resource server to authenticate: use client_secret_basic, client_secret_post or private_key_jwt, not ClientAuth::none",
            });
        }
        if self.positive_ttl > MAX_POSITIVE_TTL {
            return range("introspection positive_ttl", "at most 1 hour");
        }
        if self.negative_ttl > MAX_NEGATIVE_TTL {
            return range("introspection negative_ttl", "at most 5 minutes");
        }
        if !(MIN_CACHE_BYTES..=MAX_CACHE_BYTES).contains(&self.cache_bytes) {
            return range("introspection cache_max_bytes", "from 64 KiB to 4 GiB");
        }
        if !(1..=MAX_IN_FLIGHT).contains(&self.max_in_flight) || self.max_wait > MAX_WAIT {
            return range(
                "introspection max_in_flight",
                "from 1 to 4096 calls, waiting at most 30 s",
            );
        }
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return range("introspection timeout", "more than zero, at most 60 s");
        }
        if !(1024..=MAX_RESPONSE_BYTES).contains(&self.max_response_bytes) {
            return range("introspection max_response_bytes", "from 1 KiB to 1 MiB");
        }
        if let Some(e) = &self.endpoint
            && !is_web_url(e)
        {
            return Err(ConfigError::InvalidIntrospection {
                issuer: issuer.to_owned(),
                reason: "the endpoint must be an https URL (http only on a loopback host)",
            });
        }
        match &self.fetcher {
            Some(f) => Ok(f.clone()),
            #[cfg(feature = "reqwest")]
            None => Ok(Arc::new(crate::jwks::ReqwestFetch::new()?)),
            #[cfg(not(feature = "reqwest"))]
            None => Err(ConfigError::InvalidIntrospection {
                issuer: issuer.to_owned(),
                reason: "without the reqwest feature, give it an HttpFetch with Introspection::http_fetch",
            }),
        }
    }
}
