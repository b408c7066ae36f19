//! [`Issuer`]: a trusted authorization server and where its keys come from.

use std::fmt;
use std::sync::Arc;

use crate::config::{Algorithm, ScopeClaim};
use crate::introspection::Introspection;
use crate::jwks::KeySource;

/// A trusted authorization server: its issuer identifier and where its keys come from.
///
/// ```
/// use mcp_resource_guard::{Algorithm, Issuer};
///
/// let issuer = Issuer::new("https://auth.example.com")
///     .jwks_uri("https://auth.example.com/.well-known/jwks.json")
///     .algorithms([Algorithm::RS256, Algorithm::PS256]);
/// # let _ = issuer;
/// ```
#[must_use]
#[derive(Clone)]
pub struct Issuer {
    pub(super) issuer: String,
    pub(super) keys: Option<IssuerKeys>,
    pub(super) algorithms: Option<Vec<Algorithm>>,
    pub(super) audiences: Vec<String>,
    pub(super) scope_claim: Option<ScopeClaim>,
    pub(super) introspection: Option<Introspection>,
}

#[derive(Clone)]
pub(super) enum IssuerKeys {
    Uri(String),
    Source(Arc<dyn KeySource>),
}

impl Issuer {
    /// An issuer identifier, compared byte for byte with the token's `iss`
    /// (so `https://as.example.com` and `https://as.example.com/` differ).
    ///
    /// Without [`jwks_uri`](Issuer::jwks_uri) or
    /// [`key_source`](Issuer::key_source), keys are found by discovery
    /// ([`RemoteJwks::discover`](crate::jwks::RemoteJwks::discover)) at the first request or [`GuardLayer::warm_up`](crate::GuardLayer::warm_up).
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            keys: None,
            algorithms: None,
            audiences: Vec::new(),
            scope_claim: None,
            introspection: None,
        }
    }

    /// Introspect this issuer's tokens (RFC 7662): opaque tokens, every
    /// token, or JWTs after local verification, per the
    /// [`IntrospectionMode`](crate::introspection::IntrospectionMode). See
    /// [`introspection`](crate::introspection).
    pub fn introspection(mut self, introspection: Introspection) -> Self {
        self.introspection = Some(introspection);
        self
    }

    /// Also accept this `aud` in this issuer's tokens (on top of the
    /// canonical resource and the guard-wide
    /// [`add_audience`](crate::GuardBuilder::add_audience)s). Defaults to none.
    pub fn add_audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Where this issuer's tokens carry scopes. Defaults to the guard's
    /// [`scope_claim`](crate::GuardBuilder::scope_claim).
    pub fn scope_claim(mut self, claim: ScopeClaim) -> Self {
        self.scope_claim = Some(claim);
        self
    }

    /// Fetch keys from this `jwks_uri` (a [`RemoteJwks`](crate::jwks::RemoteJwks) with default
    /// settings and the guard's clock, no discovery).
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.keys = Some(IssuerKeys::Uri(uri.into()));
        self
    }

    /// Use this key source: a [`StaticJwks`](crate::jwks::StaticJwks), a
    /// tuned [`RemoteJwks`](crate::jwks::RemoteJwks), or your own [`KeySource`].
    pub fn key_source(mut self, source: impl KeySource) -> Self {
        self.keys = Some(IssuerKeys::Source(Arc::new(source)));
        self
    }

    /// The algorithms this issuer's tokens may use. A JWK's own `alg` still
    /// wins; an RSA JWK without `alg` accepts the RSA algorithms listed here.
    /// Defaults to every [`Algorithm`], with an RSA JWK lacking `alg`
    /// inferred as RS256 only.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = match &self.keys {
            None => "discovery".to_owned(),
            Some(IssuerKeys::Uri(u)) => format!("jwks_uri {u}"),
            Some(IssuerKeys::Source(s)) => format!("{s:?}"),
        };
        f.debug_struct("Issuer")
            .field("issuer", &self.issuer)
            .field("keys", &keys)
            .field("algorithms", &self.algorithms)
            .field("audiences", &self.audiences)
            .field("scope_claim", &self.scope_claim)
            .field("introspection", &self.introspection)
            .finish()
    }
}
