//! Signing keys: the [`KeySource`] trait, parsed [`KeySet`]s, a static JWKS
//! and a remote `jwks_uri`.
//!
//! A key source hands out an immutable, already-parsed [`KeySet`] snapshot
//! behind an `Arc`. Verification looks the token's `kid` up in the snapshot;
//! only when the `kid` is unknown does it ask the source for a
//! [`refresh`](KeySource::refresh), which the source may decline (to rate-limit
//! refetches).
//!
//! # Design: the cache's states and transitions
//!
//! The keys live in an immutable snapshot behind an atomic pointer
//! (`arc-swap`): readers load it without locking and never wait for I/O while
//! keys are held. A snapshot records when it was fetched and three instants
//! derived from the response's freshness (`Cache-Control: max-age`, else
//! `Expires`, else the default TTL; clamped to `[min_ttl, max_ttl]`):
//!
//! ```text
//!   fetched ──────────── refresh_at ─────── expires_at ─────────── stale_until
//!      │      FRESH          │  FRESH, refresh  │  STALE, refresh      │  ABSENT
//!      │  (serve keys)       │  in background   │  in background,      │  (fetch in the
//!      │                     │  (serve keys)    │  serve old keys      │   foreground)
//! ```
//!
//! - `refresh_at` is 75–90 % of the TTL (random jitter, so many instances do
//!   not refetch in lockstep); from then on a request triggers one background
//!   refresh and is served from the current snapshot.
//! - A failed refresh keeps the snapshot (stale-if-error) until
//!   `stale_until = expires_at + stale_window`; retries back off
//!   exponentially (1 s, 2 s, 4 s … at most 5 min), each failure logged as a warning.
//! - ABSENT (never fetched, or past `stale_until`): the request waits for a
//!   fetch; if that fails the guard answers `503` with `Retry-After`. While
//!   backing off, requests fail at once without a fetch.
//! - Unknown `kid` (the verifier asks for a [`refresh`](KeySource::refresh)
//!   only after the token's unverified `iss`, `aud` and `exp` passed): if a
//!   newer snapshot exists it is returned; else, outside the cooldown, one
//!   fetch runs and every concurrent caller shares it (single flight, through
//!   one async mutex that reads of known `kid`s never touch). Then comes a cooldown
//!   (default 10 s) in which unknown `kid`s cause no fetch and are remembered
//!   as unknown for that window, so a flood of random `kid`s causes at most
//!   one fetch per cooldown.
//! - Several issuers: each has its own source and cache; the token's
//!   unverified `iss` picks one, and an unknown `iss` is rejected before any
//!   network I/O.
//! - Parsing: each key is parsed once per fetch; unusable JWKs are skipped
//!   with a warning (see [`KeySet::from_json`]).

mod discovery;
mod fetch;
mod remote;
mod remote_builder;
mod set;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{BoxError, ConfigError};

pub(crate) use discovery::discover_field;
#[cfg(all(feature = "client", feature = "reqwest"))]
pub(crate) use discovery::fetch_metadata;
#[cfg(feature = "reqwest")]
pub use fetch::ReqwestFetch;
pub use fetch::{HttpFetch, HttpResponse};
pub use remote::RemoteJwks;
pub use remote_builder::RemoteJwksBuilder;
pub use set::{KeyRef, KeySet, SkippedKey, VerificationKey};
pub(crate) use set::{parse_public_jwk, rsa_modulus_bits};

/// Why a [`KeySource`] is asked to refresh.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshReason<'a> {
    /// The token names a `kid` that is not in the current set.
    UnknownKid(&'a str),
    /// The token has no `kid` and no key of the current set verifies it.
    NoMatchingKey,
}

/// How fresh a key source's keys are: for readiness probes.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyHealth {
    /// Keys are held and within their freshness lifetime.
    Fresh,
    /// Keys are held past their freshness lifetime because refreshing failed;
    /// they are still used (stale-if-error).
    Stale,
    /// No usable keys: never obtained, or stale for too long. Requests with
    /// tokens of this issuer get 503.
    Absent,
}

/// An error obtaining keys.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct KeySourceError {
    message: String,
    #[source]
    source: Option<BoxError>,
}

impl KeySourceError {
    /// A new error with a message (no secrets, please).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// A new error with a message and an underlying cause.
    pub fn with_source(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

/// Where an issuer's signing keys come from.
///
/// Implemented by [`StaticJwks`] and [`RemoteJwks`]; implement it yourself to
/// plug in another source. One source serves one issuer: a key is trusted only
/// for the issuer whose source returned it (RFC 8725 §3.8).
#[async_trait]
pub trait KeySource: fmt::Debug + Send + Sync + 'static {
    /// The current key set, fetching it if none is held yet. Must be fast
    /// when keys are held: it is called for every verification.
    ///
    /// # Errors
    ///
    /// When no usable keys are held and none can be fetched; the guard then
    /// answers `503` with `Retry-After`.
    async fn keys(&self) -> Result<Arc<KeySet>, KeySourceError>;

    /// Asked when `seen` (a set returned earlier) cannot verify a token.
    /// Returns a newer set (one fetched meanwhile by someone else counts),
    /// or `Ok(None)` when the source declines to refetch now (rate limit).
    ///
    /// # Errors
    ///
    /// When the refetch failed. The verifier then keeps `seen`: the token is
    /// signed with a key it does not know.
    async fn refresh(
        &self,
        reason: RefreshReason<'_>,
        seen: &Arc<KeySet>,
    ) -> Result<Option<Arc<KeySet>>, KeySourceError>;

    /// How fresh the held keys are. Defaults to [`KeyHealth::Fresh`].
    fn health(&self) -> KeyHealth {
        KeyHealth::Fresh
    }

    /// How long ago the held keys were fetched (`None`: not known, or
    /// nothing fetched). For metrics.
    fn age(&self) -> Option<std::time::Duration> {
        None
    }

    /// Obtains keys now (an eager fetch at startup). Defaults to calling
    /// [`keys`](KeySource::keys).
    ///
    /// # Errors
    ///
    /// When no keys can be obtained.
    async fn warm_up(&self) -> Result<(), KeySourceError> {
        self.keys().await.map(|_| ())
    }

    /// `true` while `key` (the key that verified a token, taken from a set
    /// this source returned) is still in the source's current set, without
    /// waiting or fetching. The guard asks on every hit of its
    /// verified-token cache, so a key removed from the issuer's JWKS stops
    /// verifying as soon as the source sees the new set. Must be fast.
    ///
    /// Defaults to `true` (the source never drops keys). [`RemoteJwks`]
    /// answers from its current snapshot with [`KeySet::contains`].
    fn holds(&self, key: &KeyRef) -> bool {
        let _ = key;
        true
    }
}

/// A fixed JWK Set: for tests, air-gapped deployments, or keys you load yourself.
///
/// ```
/// use mcp_resource_guard::jwks::StaticJwks;
///
/// let jwks = StaticJwks::from_json(r#"{"keys":[{"kty":"OKP","crv":"Ed25519",
///     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1"}]}"#).unwrap();
/// # let _ = jwks;
/// ```
#[derive(Debug, Clone)]
pub struct StaticJwks {
    set: Arc<KeySet>,
}

impl StaticJwks {
    /// Parses a JWK Set.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidJwks`] when it is not a JWK Set or holds no
    /// usable key (the error lists the skipped keys and why).
    pub fn from_json(json: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        Self::from_key_set(KeySet::from_json(json)?)
    }

    /// Wraps an already parsed set.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidJwks`] when it holds no usable key.
    pub fn from_key_set(set: KeySet) -> Result<Self, ConfigError> {
        if set.is_empty() {
            return Err(ConfigError::InvalidJwks {
                reason: format!("no usable key (skipped: {:?})", set.skipped()),
            });
        }
        Ok(Self { set: Arc::new(set) })
    }
}

#[async_trait]
impl KeySource for StaticJwks {
    async fn keys(&self) -> Result<Arc<KeySet>, KeySourceError> {
        Ok(self.set.clone())
    }

    async fn refresh(
        &self,
        _reason: RefreshReason<'_>,
        _seen: &Arc<KeySet>,
    ) -> Result<Option<Arc<KeySet>>, KeySourceError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_static_jwks_needs_a_usable_key() {
        assert!(matches!(
            StaticJwks::from_json(r#"{"keys":[]}"#),
            Err(ConfigError::InvalidJwks { .. })
        ));
        assert!(matches!(
            StaticJwks::from_json("[]"),
            Err(ConfigError::InvalidJwks { .. })
        ));
    }
}
