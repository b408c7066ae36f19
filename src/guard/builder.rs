//! Configuring a guard: [`GuardBuilder`] and its `build()`, in small steps.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::issuer::{Issuer, IssuerDefaults, resolve_issuers};
use super::layer::GuardLayer;
use super::policy::Shared;
use crate::challenge::{Challenger, JsonRejection, RejectionBody, Shaper};
use crate::clock::Clock;
use crate::config::{AuthMode, ChallengeMode, ScopeClaim, TypPolicy, check_scopes};
use crate::dpop::{Dpop, DpopMode, DpopVerifier};
use crate::error::ConfigError;
use crate::guard::cache::{TokenCache, TokenCacheConfig};
use crate::guard::cors::CorsPolicy;
use crate::guard::resource::{ResourceUrl, check_web_url};
use crate::guard::revocation::Revocations;
use crate::introspection::RoutingVerifier;
use crate::metadata::{MetadataService, ProtectedResourceMetadata};
use crate::scope_hierarchy::ScopeHierarchy;
use crate::store::SharedStore;
use crate::verify::{JwtVerifier, TokenVerifier};

const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
const MAX_LEEWAY: Duration = Duration::from_secs(300);
const DEFAULT_MAX_TOKEN_LENGTH: usize = 8 * 1024;
const MAX_TOKEN_LENGTH: usize = 1024 * 1024;
const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 3600);
const MAX_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Builds a [`GuardLayer`]. Start with [`GuardLayer::builder`].
#[must_use]
pub struct GuardBuilder {
    resource: String,
    issuers: Vec<Issuer>,
    scopes_supported: Vec<String>,
    required_scopes: Vec<String>,
    leeway: Duration,
    typ: TypPolicy,
    challenge_mode: ChallengeMode,
    max_token_bytes: usize,
    token_cache: TokenCacheConfig,
    verifier: Option<Arc<dyn TokenVerifier>>,
    resource_name: Option<String>,
    resource_documentation: Option<String>,
    resource_policy_uri: Option<String>,
    resource_tos_uri: Option<String>,
    cors: CorsPolicy,
    hierarchy: ScopeHierarchy,
    retention: Duration,
    clock: Clock,
    allow_insecure_http: bool,
    dpop: Dpop,
    shared_store: Option<SharedStore>,
    rejection: Shaper,
}

impl GuardBuilder {
    /// The defaults, for [`GuardLayer::builder`].
    pub(crate) fn new(resource: String) -> Self {
        Self {
            resource,
            issuers: Vec::new(),
            scopes_supported: Vec::new(),
            required_scopes: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            typ: TypPolicy::default(),
            challenge_mode: ChallengeMode::default(),
            max_token_bytes: DEFAULT_MAX_TOKEN_LENGTH,
            token_cache: TokenCacheConfig::default(),
            verifier: None,
            resource_name: None,
            resource_documentation: None,
            resource_policy_uri: None,
            resource_tos_uri: None,
            cors: CorsPolicy::default(),
            hierarchy: ScopeHierarchy::default(),
            retention: DEFAULT_RETENTION,
            clock: Clock::default(),
            allow_insecure_http: false,
            dpop: Dpop::default(),
            shared_store: None,
            rejection: Shaper(Box::new(JsonRejection)),
        }
    }
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

    /// How challenges are worded. Defaults to [`ChallengeMode::Rfc6750`].
    pub fn challenge_mode(mut self, mode: ChallengeMode) -> Self {
        self.challenge_mode = mode;
        self
    }

    /// Shapes the body of every refusal of this guard and of the layers
    /// built from it ([`RequireScopeLayer`](crate::RequireScopeLayer),
    /// [`McpLayer`](crate::mcp::McpLayer)); the status and the challenge
    /// stay the guard's. Defaults to [`JsonRejection`].
    pub fn rejection_body(mut self, body: impl RejectionBody) -> Self {
        self.rejection = Shaper(Box::new(body));
        self
    }

    /// The longest token accepted, in bytes; longer ones are rejected as
    /// invalid before any parsing. From 1 byte to 1 MiB. Defaults to 8 KiB.
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// The verified-token cache (see [`TokenCacheConfig`]). Defaults to
    /// 10,000 tokens for at most 5 minutes each.
    pub fn token_cache(mut self, config: TokenCacheConfig) -> Self {
        self.token_cache = config;
        self
    }

    /// Verify tokens with this verifier instead of the built-in JWT
    /// verifier. Issuers then need no key source, but are still
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

    /// Which scopes imply which (see [`ScopeHierarchy`]): applied by the
    /// guard's required scopes and by every layer built from the guard.
    /// Every scope it names must be in
    /// [`scopes_supported`](GuardBuilder::scopes_supported). Defaults to
    /// none (a scope is granted only by itself).
    pub fn scope_hierarchy(mut self, hierarchy: ScopeHierarchy) -> Self {
        self.hierarchy = hierarchy;
        self
    }

    /// Which browser origins may call the server (see [`CorsPolicy`]). The
    /// guard answers CORS preflights itself. Defaults to
    /// [`CorsPolicy::AnyOrigin`].
    pub fn cors(mut self, policy: CorsPolicy) -> Self {
        self.cors = policy;
        self
    }

    /// How long a revocation made with
    /// [`GuardLayer::revoke_token`] or [`GuardLayer::revoke_subject`] is
    /// remembered; make it longer than your access tokens live. At most 30
    /// days. Defaults to 24 hours.
    pub fn revocation_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Accept DPoP-bound tokens (RFC 9449); see [`dpop`](crate::dpop).
    pub fn dpop(mut self, dpop: Dpop) -> Self {
        self.dpop = dpop;
        self
    }

    /// Share state with the other replicas of this server: DPoP proofs
    /// seen, revocations, introspection answers, and (through the MCP layer
    /// built from this guard) session owners. See [`store`](crate::store).
    pub fn shared_store(mut self, store: SharedStore) -> Self {
        self.shared_store = Some(store);
        self
    }

    /// Read time from this clock (a test's `ManualClock`).
    #[cfg(feature = "testing")]
    pub(crate) fn with_clock(mut self, clock: crate::clock::Clock) -> Self {
        self.clock = clock;
        self
    }

    pub(crate) fn allow_insecure_http(mut self) -> Self {
        self.allow_insecure_http = true;
        self
    }

    /// Checks the configuration and builds the layer.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the setting to fix: the resource URL
    /// ([`MissingResource`](ConfigError::MissingResource),
    /// [`InvalidResource`](ConfigError::InvalidResource)), no or a bad or
    /// repeated issuer, an empty algorithm list, a scope that is not a
    /// valid scope token or is `offline_access`, a scope hierarchy with a
    /// cycle or a scope not in `scopes_supported`, a metadata URL that is
    /// not http(s), a CORS origin,
    /// a duration or size out of its range
    /// ([`OutOfRange`](ConfigError::OutOfRange)), or a key source that
    /// cannot be built.
    pub fn build(self) -> Result<GuardLayer, ConfigError> {
        self.check_settings()?;
        let resource = ResourceUrl::parse_inner(&self.resource, self.allow_insecure_http)?;
        if self.issuers.is_empty() {
            return Err(ConfigError::MissingIssuer);
        }
        let supported = check_scopes(self.scopes_supported.clone())?;
        let required = check_scopes(self.required_scopes.clone())?;
        let hierarchy = self.hierarchy.compile(&supported)?;
        let metadata_doc = self.metadata(&resource, &supported)?;
        let (trusted, issuers) = resolve_issuers(
            &self.issuers,
            &IssuerDefaults {
                resource: &resource,
                clock: &self.clock,
                custom_verifier: self.verifier.is_some(),
            },
        )?;
        let default_scope = if required.is_empty() {
            supported.join(" ")
        } else {
            required.join(" ")
        };
        let token_cache = self
            .token_cache
            .is_enabled()
            .then(|| TokenCache::new(self.token_cache, self.leeway.as_secs(), self.clock.clone()));
        let jwt = self.verifier.is_none().then(|| {
            Arc::new(JwtVerifier {
                issuers: trusted,
                leeway: self.leeway.as_secs(),
                typ: self.typ,
                max_token_bytes: self.max_token_bytes,
                clock: self.clock.clone(),
                dpop: self.dpop.enabled(),
            })
        });
        let local: Arc<dyn TokenVerifier> = match (&self.verifier, &jwt) {
            (Some(v), _) => v.clone(),
            (None, Some(j)) => j.clone(),
            // `jwt` is built exactly when no verifier was given.
            (None, None) => return Err(ConfigError::MissingIssuer),
        };
        let introspectors = crate::introspection::build_all(
            self.issuers.iter().filter_map(|i| {
                let scope_claim = i.scope_claim.as_ref().unwrap_or(&ScopeClaim::Auto);
                Some((i.issuer.as_str(), i.introspection.as_ref()?, scope_claim))
            }),
            &self.clock,
            self.leeway.as_secs(),
            &resource,
            self.dpop.enabled(),
            self.shared_store.as_ref(),
        )?;
        let verifier = RoutingVerifier::wrap(local, jwt, introspectors, self.max_token_bytes);
        Ok(GuardLayer {
            shared: Arc::new(Shared {
                token_cache,
                metadata: MetadataService::new(&metadata_doc),
                metadata_path: resource.metadata_path(),
                metadata_doc,
                verifier,
                issuers,
                challenger: Challenger {
                    resource_metadata: resource.metadata_url(),
                    default_scope,
                    mode: self.challenge_mode,
                    dpop: DpopVerifier::challenge(&self.dpop),
                },
                dpop: DpopVerifier::new(
                    &self.dpop,
                    &resource,
                    &self.clock,
                    self.shared_store.as_ref(),
                ),
                dpop_only: self.dpop.mode == DpopMode::Required,
                required,
                supported,
                revocations: Revocations::new(
                    self.retention,
                    self.clock.clone(),
                    self.shared_store.clone(),
                ),
                store: self.shared_store,
                cors: self.cors,
                hierarchy,
                resource,
                rejection: self.rejection,
            }),
            mode: AuthMode::Required,
        })
    }

    /// The durations and sizes, each within its documented range.
    fn check_settings(&self) -> Result<(), ConfigError> {
        let range = |setting, reason| Err(ConfigError::OutOfRange { setting, reason });
        if self.leeway > MAX_LEEWAY {
            return range("leeway", "at most 5 minutes");
        }
        if self.max_token_bytes == 0 || self.max_token_bytes > MAX_TOKEN_LENGTH {
            return range("max_token_bytes", "from 1 byte to 1 MiB");
        }
        if self.retention.is_zero() || self.retention > MAX_RETENTION {
            return range("revocation_retention", "from 1 second to 30 days");
        }
        self.token_cache.check()?;
        self.dpop.check()?;
        self.cors.check()
    }

    /// The RFC 9728 document, with its optional URLs checked.
    fn metadata(
        &self,
        resource: &ResourceUrl,
        supported: &[String],
    ) -> Result<ProtectedResourceMetadata, ConfigError> {
        let check_url = |field: &'static str, url: &Option<String>| {
            if let Some(u) = url {
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
            Ok(url.clone())
        };
        Ok(ProtectedResourceMetadata {
            resource: resource.as_str().to_owned(),
            authorization_servers: self.issuers.iter().map(|i| i.issuer.clone()).collect(),
            scopes_supported: supported.to_vec(),
            bearer_methods_supported: vec!["header".to_owned()],
            resource_name: self.resource_name.clone(),
            resource_documentation: check_url(
                "resource_documentation",
                &self.resource_documentation,
            )?,
            resource_policy_uri: check_url("resource_policy_uri", &self.resource_policy_uri)?,
            resource_tos_uri: check_url("resource_tos_uri", &self.resource_tos_uri)?,
            dpop_signing_alg_values_supported: self.dpop.advertised_algorithms(),
            dpop_bound_access_tokens_required: self.dpop.mode == DpopMode::Required,
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
            .field("cors", &self.cors)
            .finish_non_exhaustive()
    }
}
