//! The guard [`GuardLayer`] and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use crate::cache::{TokenCache, TokenCacheConfig};
use crate::challenge::{Challenger, JsonRejection};
use crate::claims::AuthContext;
use crate::config::{
    AlgSet, Algorithm, AuthMode, ChallengeMode, ResourceUrl, ScopeClaim, TypPolicy,
    WELL_KNOWN_PATH, check_issuer, check_scopes, check_web_url,
};
use crate::error::{AuthError, AuthErrorKind, ConfigError};
use crate::jwks::{KeyHealth, KeySource, KeySourceError, RemoteJwks};
use crate::metadata::{MetadataService, ProtectedResourceMetadata};
use crate::service::Guard;
use crate::verify::{JwtVerifier, TokenVerifier};

const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
const MAX_LEEWAY: Duration = Duration::from_secs(300);
const DEFAULT_MAX_TOKEN_LENGTH: usize = 8 * 1024;

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
    issuer: String,
    keys: Option<IssuerKeys>,
    algorithms: Option<Vec<Algorithm>>,
    audiences: Vec<String>,
    scope_claim: Option<ScopeClaim>,
}

#[derive(Clone)]
enum IssuerKeys {
    Uri(String),
    Source(Arc<dyn KeySource>),
}

impl Issuer {
    /// An issuer identifier, compared byte for byte with the token's `iss`
    /// (so `https://as.example.com` and `https://as.example.com/` differ).
    ///
    /// Without [`jwks_uri`](Issuer::jwks_uri) or
    /// [`key_source`](Issuer::key_source), keys are found by discovery
    /// ([`RemoteJwks::discover`]) at the first request or [`GuardLayer::warm_up`].
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            keys: None,
            algorithms: None,
            audiences: Vec::new(),
            scope_claim: None,
        }
    }

    /// Also accept this `aud` in this issuer's tokens (on top of the
    /// canonical resource and the guard-wide
    /// [`add_audience`](GuardBuilder::add_audience)s). Defaults to none.
    pub fn add_audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Where this issuer's tokens carry scopes. Defaults to the guard's
    /// [`scope_claim`](GuardBuilder::scope_claim).
    pub fn scope_claim(mut self, claim: ScopeClaim) -> Self {
        self.scope_claim = Some(claim);
        self
    }

    /// Fetch keys from this `jwks_uri` (a [`RemoteJwks`] with default
    /// settings, no discovery).
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.keys = Some(IssuerKeys::Uri(uri.into()));
        self
    }

    /// Use this key source: a [`StaticJwks`](crate::StaticJwks), a tuned
    /// [`RemoteJwks`], or your own [`KeySource`].
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
            None => "none".to_owned(),
            Some(IssuerKeys::Uri(u)) => format!("jwks_uri {u}"),
            Some(IssuerKeys::Source(s)) => format!("{s:?}"),
        };
        f.debug_struct("Issuer")
            .field("issuer", &self.issuer)
            .field("keys", &keys)
            .field("algorithms", &self.algorithms)
            .field("audiences", &self.audiences)
            .field("scope_claim", &self.scope_claim)
            .finish()
    }
}

/// Builds a [`GuardLayer`]. Start with [`GuardLayer::builder`].
#[must_use]
pub struct GuardBuilder {
    resource: String,
    issuers: Vec<Issuer>,
    scopes_supported: Vec<String>,
    required_scopes: Vec<String>,
    extra_audiences: Vec<String>,
    leeway: Duration,
    typ: TypPolicy,
    scope_claim: ScopeClaim,
    challenge_mode: ChallengeMode,
    mode: AuthMode,
    max_token_length: usize,
    token_cache: TokenCacheConfig,
    verifier: Option<Arc<dyn TokenVerifier>>,
    resource_name: Option<String>,
    resource_documentation: Option<String>,
    resource_policy_uri: Option<String>,
    resource_tos_uri: Option<String>,
    allow_insecure_http: bool,
}

impl GuardBuilder {
    /// Trust this issuer. At least one is required; several may be added,
    /// each with its own keys (the token's `iss` picks one).
    pub fn add_issuer(mut self, issuer: Issuer) -> Self {
        self.issuers.push(issuer);
        self
    }

    /// The scopes this resource understands, published as
    /// `scopes_supported`. Defaults to none (the field is then omitted).
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The scopes every request needs (all of them). A token without them
    /// gets 403 `insufficient_scope`. Defaults to none.
    pub fn required_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Also accept tokens whose `aud` names this value, for issuers that
    /// cannot put the resource URL in `aud` (an Entra ID application ID URI,
    /// say). The canonical resource URL is always accepted. Defaults to none.
    pub fn add_audience(mut self, audience: impl Into<String>) -> Self {
        self.extra_audiences.push(audience.into());
        self
    }

    /// Clock-skew tolerance for `exp`, `nbf` and `iat`. At most 5 minutes.
    /// Defaults to 60 seconds.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Which `typ` headers are accepted. Defaults to [`TypPolicy::AccessTokenOnly`].
    pub fn typ_policy(mut self, typ: TypPolicy) -> Self {
        self.typ = typ;
        self
    }

    /// Where scopes are read from. Defaults to [`ScopeClaim::Auto`].
    pub fn scope_claim(mut self, claim: ScopeClaim) -> Self {
        self.scope_claim = claim;
        self
    }

    /// How challenges are worded. Defaults to [`ChallengeMode::Rfc6750`].
    pub fn challenge_mode(mut self, mode: ChallengeMode) -> Self {
        self.challenge_mode = mode;
        self
    }

    /// Whether anonymous requests pass. Defaults to [`AuthMode::Required`].
    pub fn auth_mode(mut self, mode: AuthMode) -> Self {
        self.mode = mode;
        self
    }

    /// The longest token accepted, in bytes; longer ones are rejected as
    /// invalid before any parsing. Defaults to 8 KiB.
    pub fn max_token_length(mut self, bytes: usize) -> Self {
        self.max_token_length = bytes;
        self
    }

    /// The verified-token cache (see [`TokenCacheConfig`]). Defaults to
    /// 10,000 tokens for at most 5 minutes each.
    pub fn token_cache(mut self, config: TokenCacheConfig) -> Self {
        self.token_cache = config;
        self
    }

    /// Verify tokens with this verifier instead of the built-in
    /// [`JwtVerifier`]. Issuers then need no key source, but are still
    /// published in the metadata and enforced: the guard rejects a context
    /// whose issuer is not trusted or whose audiences miss this resource.
    pub fn verifier(mut self, verifier: impl TokenVerifier) -> Self {
        self.verifier = Some(Arc::new(verifier));
        self
    }

    /// `resource_name` in the metadata. Defaults to none.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// `resource_documentation` in the metadata. Defaults to none.
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.resource_documentation = Some(url.into());
        self
    }

    /// `resource_policy_uri` in the metadata. Defaults to none.
    pub fn resource_policy_uri(mut self, url: impl Into<String>) -> Self {
        self.resource_policy_uri = Some(url.into());
        self
    }

    /// `resource_tos_uri` in the metadata. Defaults to none.
    pub fn resource_tos_uri(mut self, url: impl Into<String>) -> Self {
        self.resource_tos_uri = Some(url.into());
        self
    }

    pub(crate) fn allow_insecure_http(mut self) -> Self {
        self.allow_insecure_http = true;
        self
    }

    /// Checks the configuration and builds the layer.
    pub fn build(self) -> Result<GuardLayer, ConfigError> {
        let resource = ResourceUrl::parse_inner(&self.resource, self.allow_insecure_http)?;
        if self.issuers.is_empty() {
            return Err(ConfigError::MissingIssuer);
        }
        let scopes_supported = check_scopes(self.scopes_supported)?;
        let required = check_scopes(self.required_scopes)?;
        if self.leeway > MAX_LEEWAY {
            return Err(ConfigError::OutOfRange {
                setting: "leeway",
                reason: "at most 5 minutes",
            });
        }
        if self.max_token_length == 0 {
            return Err(ConfigError::OutOfRange {
                setting: "max_token_length",
                reason: "must be greater than zero",
            });
        }
        let check_url = |field: &'static str, url: Option<String>| {
            if let Some(u) = &url {
                let ok = url::Url::parse(u)
                    .ok()
                    .is_some_and(|p| check_web_url(&p, true).is_ok());
                if !ok {
                    return Err(ConfigError::InvalidMetadataUrl {
                        field,
                        url: u.clone(),
                    });
                }
            }
            Ok(url)
        };
        let resource_documentation =
            check_url("resource_documentation", self.resource_documentation)?;
        let resource_policy_uri = check_url("resource_policy_uri", self.resource_policy_uri)?;
        let resource_tos_uri = check_url("resource_tos_uri", self.resource_tos_uri)?;

        let mut global_audiences = vec![resource.as_str().to_owned()];
        for a in self.extra_audiences {
            if !global_audiences.contains(&a) {
                global_audiences.push(a);
            }
        }
        let mut trusted = Vec::with_capacity(self.issuers.len());
        let mut policies: Vec<IssuerPolicy> = Vec::with_capacity(self.issuers.len());
        for i in self.issuers {
            check_issuer(&i.issuer)?;
            if policies.iter().any(|p| p.issuer == i.issuer) {
                return Err(ConfigError::DuplicateIssuer { issuer: i.issuer });
            }
            let (algorithms, explicit_algorithms) = match &i.algorithms {
                Some(list) if list.is_empty() => {
                    return Err(ConfigError::EmptyAlgorithms { issuer: i.issuer });
                }
                Some(list) => (list.iter().copied().collect::<AlgSet>(), true),
                None => (AlgSet::ALL, false),
            };
            let mut audiences = global_audiences.clone();
            for a in i.audiences {
                if !audiences.contains(&a) {
                    audiences.push(a);
                }
            }
            let keys: Option<Arc<dyn KeySource>> = match i.keys {
                Some(IssuerKeys::Source(s)) => Some(s),
                Some(IssuerKeys::Uri(u)) => Some(Arc::new(RemoteJwks::new(u)?)),
                None if self.verifier.is_some() => None,
                None => Some(Arc::new(RemoteJwks::discover(i.issuer.clone()).build()?)),
            };
            if let Some(keys) = &keys {
                trusted.push(crate::verify::jwt::TrustedIssuer {
                    issuer: i.issuer.clone(),
                    keys: keys.clone(),
                    algorithms,
                    explicit_algorithms,
                    audiences: audiences.clone(),
                    scope_claim: i.scope_claim.unwrap_or_else(|| self.scope_claim.clone()),
                });
            }
            policies.push(IssuerPolicy {
                issuer: i.issuer,
                audiences,
                keys,
            });
        }
        let issuer_ids: Vec<String> = policies.iter().map(|p| p.issuer.clone()).collect();

        let verifier: Arc<dyn TokenVerifier> = match self.verifier {
            Some(v) => v,
            None => Arc::new(JwtVerifier {
                issuers: trusted,
                leeway: self.leeway.as_secs(),
                typ: self.typ,
                max_token_length: self.max_token_length,
            }),
        };

        let challenge_scope = if required.is_empty() {
            scopes_supported.join(" ")
        } else {
            required.join(" ")
        };
        let metadata_doc = ProtectedResourceMetadata {
            resource: resource.as_str().to_owned(),
            authorization_servers: issuer_ids,
            scopes_supported: scopes_supported.clone(),
            bearer_methods_supported: vec!["header".to_owned()],
            resource_name: self.resource_name,
            resource_documentation,
            resource_policy_uri,
            resource_tos_uri,
        };
        let challenger = Challenger {
            resource_metadata: resource.metadata_url(),
            required,
            challenge_scope,
            supported: scopes_supported,
            mode: self.challenge_mode,
        };
        let metadata_path = resource.metadata_path();
        let token_cache = self
            .token_cache
            .is_enabled()
            .then(|| TokenCache::new(self.token_cache, self.leeway.as_secs()));
        Ok(GuardLayer {
            shared: Arc::new(Shared {
                token_cache,
                metadata: MetadataService::new(&metadata_doc),
                metadata_doc,
                metadata_path,
                verifier,
                issuers: policies,
                challenger: Arc::new(challenger),
                resource,
            }),
            mode: self.mode,
            rejection: JsonRejection,
        })
    }
}

impl fmt::Debug for GuardBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardBuilder")
            .field("resource", &self.resource)
            .field("issuers", &self.issuers)
            .field("scopes_supported", &self.scopes_supported)
            .field("required_scopes", &self.required_scopes)
            .field("leeway", &self.leeway)
            .field("typ", &self.typ)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// One trusted issuer as the guard sees it.
#[derive(Debug)]
pub(crate) struct IssuerPolicy {
    pub(crate) issuer: String,
    /// The accepted audiences: the canonical resource first.
    pub(crate) audiences: Vec<String>,
    pub(crate) keys: Option<Arc<dyn KeySource>>,
}

/// What every guard built from one configuration shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) resource: ResourceUrl,
    pub(crate) metadata_doc: ProtectedResourceMetadata,
    pub(crate) metadata: MetadataService,
    pub(crate) metadata_path: String,
    pub(crate) verifier: Arc<dyn TokenVerifier>,
    pub(crate) issuers: Vec<IssuerPolicy>,
    pub(crate) challenger: Arc<Challenger>,
    pub(crate) token_cache: Option<TokenCache>,
}

impl Shared {
    pub(crate) fn is_metadata_path(&self, path: &str) -> bool {
        path == self.metadata_path || path == WELL_KNOWN_PATH
    }

    /// The checks the guard makes on every verified context, whoever verified it.
    pub(crate) fn authorize(&self, ctx: &AuthContext) -> Result<(), AuthError> {
        let Some(policy) = self.issuers.iter().find(|i| i.issuer == ctx.issuer()) else {
            return Err(AuthError::new(
                AuthErrorKind::UntrustedIssuer,
                "the verified issuer is not trusted",
            ));
        };
        if !ctx
            .audiences()
            .iter()
            .any(|a| policy.audiences.iter().any(|x| x == a))
        {
            return Err(AuthError::new(
                AuthErrorKind::WrongAudience,
                "the verified audiences do not contain this resource",
            ));
        }
        if !ctx.scopes().contains_all(&self.challenger.required) {
            return Err(AuthError::new(
                AuthErrorKind::InsufficientScope,
                "the token lacks a scope every request needs",
            ));
        }
        Ok(())
    }
}

/// The guard: a tower [`Layer`] that makes a service an OAuth 2.1 protected
/// resource.
///
/// For each request the guard:
/// 1. answers the RFC 9728 metadata routes itself (see [`metadata`](crate::metadata));
/// 2. lets CORS preflight requests through ungated;
/// 3. reads the Bearer token from the `Authorization` header only;
/// 4. verifies it and checks the scopes every request needs;
/// 5. forwards the request with an [`AuthContext`] in its extensions, or
///    answers with an exact challenge (see [`challenge`](crate::challenge)).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use mcp_resource_guard::{GuardLayer, Issuer};
///
/// let guard = GuardLayer::builder("https://mcp.example.com/mcp")
///     .add_issuer(Issuer::new("https://auth.example.com").jwks_uri("https://auth.example.com/jwks"))
///     .scopes_supported(["todo:read", "todo:write"])
///     .required_scopes(["todo:read"])
///     .build()?;
/// let app: axum::Router = axum::Router::new()
///     .route("/mcp", axum::routing::post(|| async { "ok" }))
///     .layer(guard);
/// # let _ = app; Ok(()) }
/// ```
#[derive(Clone)]
pub struct GuardLayer<R = JsonRejection> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) mode: AuthMode,
    pub(crate) rejection: R,
}

impl GuardLayer {
    /// Starts a configuration for the resource at `resource_url`: the URL
    /// clients use to reach this MCP server (see [`ResourceUrl`]).
    pub fn builder(resource_url: impl Into<String>) -> GuardBuilder {
        GuardBuilder {
            resource: resource_url.into(),
            issuers: Vec::new(),
            scopes_supported: Vec::new(),
            required_scopes: Vec::new(),
            extra_audiences: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            typ: TypPolicy::default(),
            scope_claim: ScopeClaim::default(),
            challenge_mode: ChallengeMode::default(),
            mode: AuthMode::default(),
            max_token_length: DEFAULT_MAX_TOKEN_LENGTH,
            token_cache: TokenCacheConfig::default(),
            verifier: None,
            resource_name: None,
            resource_documentation: None,
            resource_policy_uri: None,
            resource_tos_uri: None,
            allow_insecure_http: false,
        }
    }
}

impl<R> GuardLayer<R> {
    /// The same guard with another [`AuthMode`], sharing everything else:
    /// `guard.with_mode(AuthMode::Optional)` for routes that allow anonymous callers.
    pub fn with_mode(&self, mode: AuthMode) -> Self
    where
        R: Clone,
    {
        Self {
            shared: self.shared.clone(),
            mode,
            rejection: self.rejection.clone(),
        }
    }

    /// The same guard with its rejection bodies shaped by `rejection`.
    pub fn rejection_body<R2>(self, rejection: R2) -> GuardLayer<R2> {
        GuardLayer {
            shared: self.shared,
            mode: self.mode,
            rejection,
        }
    }

    /// The canonical resource URL.
    pub fn resource(&self) -> &ResourceUrl {
        &self.shared.resource
    }

    /// The token verifier in use.
    pub fn verifier(&self) -> Arc<dyn TokenVerifier> {
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

    /// Fetches every issuer's keys now, so the first requests do not wait
    /// (and a misconfigured issuer shows up at startup). Tries every issuer;
    /// returns the first error.
    ///
    /// ```no_run
    /// # async fn demo(guard: mcp_resource_guard::GuardLayer) {
    /// if let Err(e) = guard.warm_up().await {
    ///     eprintln!("keys not available yet: {e}");
    /// }
    /// # }
    /// ```
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
    /// never more than [`TokenCacheConfig`]'s capacity. For metrics.
    pub fn token_cache_entries(&self) -> u64 {
        self.shared.token_cache.as_ref().map_or(0, TokenCache::len)
    }

    /// Forgets every cached verification (after an emergency key revocation,
    /// say): the next request of each token is verified in full.
    pub fn clear_token_cache(&self) {
        if let Some(c) = &self.shared.token_cache {
            c.clear();
        }
    }

    /// The freshness of every issuer's keys, for a readiness probe.
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
                    (p.issuer.clone(), h)
                })
                .collect(),
        }
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
}

impl<R: fmt::Debug> fmt::Debug for GuardLayer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardLayer")
            .field("resource", &self.shared.resource)
            .field("issuers", &self.shared.metadata_doc.authorization_servers)
            .field("mode", &self.mode)
            .field("rejection", &self.rejection)
            .finish_non_exhaustive()
    }
}

impl<S, R: Clone> Layer<S> for GuardLayer<R> {
    type Service = Guard<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        Guard {
            inner,
            shared: self.shared.clone(),
            mode: self.mode,
            rejection: self.rejection.clone(),
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
