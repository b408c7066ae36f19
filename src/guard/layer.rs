//! [`GuardLayer`]: the tower layer, its accessors and its readiness.

use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use super::builder::GuardBuilder;
use super::policy::Shared;
use super::service::Guard;
use crate::config::AuthMode;
use crate::guard::cache::TokenCache;
use crate::guard::resource::{ResourceUrl, WELL_KNOWN_PATH};
use crate::guard::token::BearerToken;
use crate::jwks::{KeyHealth, KeySourceError};
use crate::metadata::{MetadataService, ProtectedResourceMetadata};
use crate::store::StoreError;

/// The guard: a tower [`Layer`] that makes a service an OAuth 2.1 protected
/// resource.
///
/// For each request the guard:
/// 1. answers the RFC 9728 metadata routes itself (see [`metadata`](crate::metadata));
/// 2. answers CORS preflight requests itself (see [`CorsPolicy`](crate::CorsPolicy));
/// 3. reads the Bearer token from the `Authorization` header only;
/// 4. verifies it and checks the scopes every request needs;
/// 5. forwards the request with an [`AuthContext`](crate::AuthContext) in
///    its extensions, or answers with an exact challenge (see
///    [`challenge`](crate::challenge)).
///
/// The layers that refine its decision are built *from* it, so they share
/// its configuration (required scopes, challenge wording, rejection body)
/// and cannot be mixed up with another guard's:
/// [`RequireScopeLayer::all`](crate::RequireScopeLayer::all) and
/// [`McpLayer::new`](crate::mcp::McpLayer::new). Apply the guard outside
/// them (the last `.layer()` call); a layer that finds no guard in front of
/// it refuses every request with `500` and a log line saying so.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use mcp_resource_guard::{GuardLayer, Issuer, RequireScopeLayer};
///
/// let guard = GuardLayer::builder("https://mcp.example.com/mcp")
///     .add_issuer(Issuer::new("https://auth.example.com").jwks_uri("https://auth.example.com/jwks"))
///     .scopes_supported(["todo:read", "todo:write"])
///     .required_scopes(["todo:read"])
///     .build()?;
/// let app: axum::Router = axum::Router::new()
///     .route("/mcp", axum::routing::post(|| async { "ok" }))
///     .route(
///         "/admin",
///         axum::routing::post(|| async { "admin" })
///             .route_layer(RequireScopeLayer::all(&guard, ["todo:admin"])?),
///     )
///     .layer(guard);
/// # let _ = app; Ok(()) }
/// ```
#[derive(Clone)]
pub struct GuardLayer {
    pub(crate) shared: Arc<Shared>,
    pub(crate) mode: AuthMode,
}

impl GuardLayer {
    /// Starts a configuration for the resource at `resource_url`: the URL
    /// clients use to reach this MCP server (see [`ResourceUrl`]).
    pub fn builder(resource_url: impl Into<String>) -> GuardBuilder {
        GuardBuilder::new(resource_url.into())
    }
}

impl GuardLayer {
    /// The same guard with another [`AuthMode`], sharing everything else:
    /// `guard.with_mode(AuthMode::Optional)` for routes that allow anonymous callers.
    pub fn with_mode(&self, mode: AuthMode) -> Self {
        Self {
            shared: self.shared.clone(),
            mode,
        }
    }

    /// The canonical resource URL.
    pub fn resource(&self) -> &ResourceUrl {
        &self.shared.resource
    }

    /// The token verifier in use: signature and claims only, without the
    /// guard's audience-per-issuer, scope and revocation checks (so not
    /// public; the fuzz targets and tests reach it through `fuzzing`).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn verifier(&self) -> Arc<dyn crate::verify::TokenVerifier> {
        self.shared.verifier.clone()
    }

    /// The metadata document.
    pub fn metadata(&self) -> &ProtectedResourceMetadata {
        &self.shared.metadata_doc
    }

    /// A standalone service for the metadata document, to mount yourself.
    pub fn metadata_service(&self) -> MetadataService {
        self.shared.metadata.clone()
    }

    /// The paths the metadata is served at: the path-inserted one, then the
    /// root one (one path when the resource is at the root).
    pub fn metadata_paths(&self) -> Vec<String> {
        let mut v = vec![self.shared.metadata_path.clone()];
        if self.shared.metadata_path != WELL_KNOWN_PATH {
            v.push(WELL_KNOWN_PATH.to_owned());
        }
        v
    }

    /// Fetches every issuer's keys now, so the first requests do not wait
    /// (and a misconfigured issuer shows up at startup). Tries every issuer.
    ///
    /// ```no_run
    /// # async fn demo(guard: mcp_resource_guard::GuardLayer) {
    /// if let Err(e) = guard.warm_up().await {
    ///     eprintln!("keys not available yet: {e}");
    /// }
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// The first issuer's error, when some issuer's keys cannot be obtained.
    pub async fn warm_up(&self) -> Result<(), KeySourceError> {
        let mut first = None;
        for p in &self.shared.issuers {
            if let Some(keys) = &p.keys
                && let Err(e) = keys.warm_up().await
            {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// How many verified tokens the token cache holds (0 when disabled);
    /// never more than [`TokenCacheConfig`](crate::TokenCacheConfig)'s capacity. For metrics.
    pub fn token_cache_entries(&self) -> u64 {
        self.shared.token_cache.as_ref().map_or(0, TokenCache::len)
    }

    /// Forgets every cached verification: the next request of each token is
    /// verified in full.
    pub fn clear_token_cache(&self) {
        if let Some(c) = &self.shared.token_cache {
            c.clear();
        }
    }

    /// Refuses `token` at this guard from now on (401 `invalid_token`),
    /// for the [revocation retention](crate::GuardBuilder::revocation_retention).
    /// With a [shared store](crate::GuardBuilder::shared_store) every
    /// replica refuses it within the
    /// [recheck interval](crate::store::SharedStore::revocation_recheck).
    /// Revoke it at the authorization server too: other resources still
    /// accept it until it expires.
    ///
    /// # Errors
    ///
    /// When the revocation could not be recorded everywhere: this guard's
    /// own list is full ([`StoreError::is_full`]: it holds 100,000 tokens, or
    /// 16 MiB of `jti`s or subjects, until their retention ends; the token
    /// is not refused here then, though replicas reading the shared store
    /// refuse it), or the shared store cannot be written (this guard refuses
    /// the token anyway; the other replicas may not). Retry, or answer 503.
    pub async fn revoke_token(&self, token: &BearerToken) -> Result<(), StoreError> {
        let raw = token.secret().as_bytes();
        let shared = self.shared.revocations.revoke_token(raw).await;
        if let Some(c) = &self.shared.token_cache {
            c.remove(raw);
        }
        self.shared.verifier.forget(token);
        shared
    }

    /// Refuses the token of `issuer` whose `jti` is `jti` (as the audit
    /// trail shows it), like [`revoke_token`](Self::revoke_token) when the
    /// token itself is not at hand.
    ///
    /// # Errors
    ///
    /// As for [`revoke_token`](Self::revoke_token).
    pub async fn revoke_jti(&self, issuer: &str, jti: &str) -> Result<(), StoreError> {
        self.shared.revocations.revoke_jti(issuer, jti).await
    }

    /// Refuses every token of `subject` from `issuer` issued up to now (by
    /// `iat`; tokens without `iat` too), for the
    /// [revocation retention](crate::GuardBuilder::revocation_retention).
    /// Tokens issued later are accepted, so the subject can sign in again.
    ///
    /// # Errors
    ///
    /// As for [`revoke_token`](Self::revoke_token).
    pub async fn revoke_subject(&self, issuer: &str, subject: &str) -> Result<(), StoreError> {
        self.shared
            .revocations
            .revoke_subject(issuer, subject)
            .await
    }

    /// The freshness of every issuer's keys, for a readiness probe. With
    /// the `metrics` feature it also sets the `mcp_resource_guard_key_health`
    /// and `mcp_resource_guard_key_age_seconds` gauges (call it from the
    /// probe or the scrape handler).
    ///
    /// ```
    /// # fn demo(guard: mcp_resource_guard::GuardLayer) {
    /// let ready = guard.readiness();
    /// let status = if ready.is_ready() { 200 } else { 503 };
    /// # let _ = status; }
    /// ```
    pub fn readiness(&self) -> Readiness {
        Readiness {
            issuers: self
                .shared
                .issuers
                .iter()
                .map(|p| {
                    let h = p.keys.as_ref().map_or(KeyHealth::Fresh, |k| k.health());
                    let level = match h {
                        KeyHealth::Fresh => 2,
                        KeyHealth::Stale => 1,
                        KeyHealth::Absent => 0,
                    };
                    let age = p.keys.as_ref().and_then(|k| k.age());
                    crate::observe::metrics::key_state(&p.issuer, level, age);
                    (p.issuer.clone(), h)
                })
                .collect(),
        }
    }
}

impl fmt::Debug for GuardLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardLayer")
            .field("resource", &self.shared.resource)
            .field("issuers", &self.shared.metadata_doc.authorization_servers)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guard {
            inner,
            shared: self.shared.clone(),
            mode: self.mode,
        }
    }
}

/// The freshness of each issuer's keys; see [`GuardLayer::readiness`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    issuers: Vec<(String, KeyHealth)>,
}

impl Readiness {
    /// `true` when every issuer has usable keys (fresh or stale).
    pub fn is_ready(&self) -> bool {
        self.issuers.iter().all(|(_, h)| *h != KeyHealth::Absent)
    }

    /// Each issuer and the health of its keys.
    pub fn issuers(&self) -> &[(String, KeyHealth)] {
        &self.issuers
    }
}
