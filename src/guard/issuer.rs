//! [`Issuer`]: a trusted authorization server and where its keys come from.

use std::fmt;
use std::sync::Arc;

use super::policy::IssuerPolicy;
use crate::clock::Clock;
use crate::config::{AlgSet, Algorithm, ScopeClaim};
use crate::error::ConfigError;
use crate::guard::resource::{ResourceUrl, check_issuer};
use crate::introspection::Introspection;
use crate::jwks::{KeySource, RemoteJwks};
use crate::verify::jwt::TrustedIssuer;

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

    /// Also accept tokens of this issuer whose `aud` names this value, for
    /// issuers that cannot put the resource URL in `aud` (an Entra ID
    /// application ID URI, say). The canonical resource URL is always
    /// accepted (and, for a resource at the root such as `https://h`, also
    /// `https://h/`). Defaults to none.
    pub fn add_audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Where this issuer's tokens carry scopes. Defaults to
    /// [`ScopeClaim::Auto`].
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

/// What every issuer inherits from the guard's settings.
pub(super) struct IssuerDefaults<'a> {
    pub(super) resource: &'a ResourceUrl,
    pub(super) clock: &'a Clock,
    /// A custom verifier was given: issuers need no key source.
    pub(super) custom_verifier: bool,
}

/// Each issuer as the verifier sees it (with keys) and as the guard does
/// (with its accepted audiences).
pub(super) fn resolve_issuers(
    issuers: &[Issuer],
    d: &IssuerDefaults<'_>,
) -> Result<(Vec<TrustedIssuer>, Vec<IssuerPolicy>), ConfigError> {
    let resource = d.resource;
    let mut global = vec![resource.as_str().to_owned()];
    if resource.path().is_empty() {
        // Clients send a root resource either way (RFC 8707 examples
        // carry the slash): `https://h` and `https://h/` name it.
        global.push(format!("{}/", resource.as_str()));
    }
    let mut trusted = Vec::with_capacity(issuers.len());
    let mut policies: Vec<IssuerPolicy> = Vec::with_capacity(issuers.len());
    for i in issuers {
        check_issuer(&i.issuer)?;
        if policies.iter().any(|p| p.issuer == i.issuer) {
            return Err(ConfigError::DuplicateIssuer {
                issuer: i.issuer.clone(),
            });
        }
        let (algorithms, explicit_algorithms) = match &i.algorithms {
            Some(list) if list.is_empty() => {
                return Err(ConfigError::EmptyAlgorithms {
                    issuer: i.issuer.clone(),
                });
            }
            Some(list) => (list.iter().copied().collect::<AlgSet>(), true),
            None => (AlgSet::ALL, false),
        };
        let mut audiences = global.clone();
        push_unique(&mut audiences, i.audiences.iter().cloned());
        let keys: Option<Arc<dyn KeySource>> = match &i.keys {
            Some(IssuerKeys::Source(s)) => Some(s.clone()),
            Some(IssuerKeys::Uri(u)) => Some(Arc::new(
                RemoteJwks::builder(u.clone())
                    .with_clock(d.clock.clone())
                    .build()?,
            )),
            None if d.custom_verifier => None,
            None => Some(Arc::new(
                RemoteJwks::discover(i.issuer.clone())
                    .with_clock(d.clock.clone())
                    .build()?,
            )),
        };
        if let Some(keys) = &keys {
            trusted.push(TrustedIssuer {
                issuer: i.issuer.clone(),
                keys: keys.clone(),
                algorithms,
                explicit_algorithms,
                audiences: audiences.clone(),
                scope_claim: i.scope_claim.clone().unwrap_or_default(),
            });
        }
        policies.push(IssuerPolicy {
            issuer: i.issuer.clone(),
            audiences,
            keys,
        });
    }
    Ok((trusted, policies))
}

fn push_unique(list: &mut Vec<String>, items: impl IntoIterator<Item = String>) {
    for a in items {
        if !list.contains(&a) {
            list.push(a);
        }
    }
}
