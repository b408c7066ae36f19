//! The request-time policy one guard configuration shares with every layer
//! built from it: which issuers and audiences are trusted, which scopes every
//! request needs, how a scope is granted, and how denials are answered.

use std::sync::Arc;

use http::Response;

use crate::challenge::{Challenger, Rejection, Scheme, Shaper, respond};
use crate::claims::AuthContext;
use crate::dpop::DpopVerifier;
use crate::error::{AuthError, AuthErrorKind};
use crate::guard::cache::TokenCache;
use crate::guard::cors::CorsPolicy;
use crate::guard::resource::{ResourceUrl, WELL_KNOWN_PATH};
use crate::guard::revision::Wire;
use crate::guard::revocation::Revocations;
use crate::jwks::KeySource;
use crate::metadata::{MetadataService, ProtectedResourceMetadata};
use crate::scope_hierarchy::CompiledHierarchy;
use crate::verify::TokenVerifier;

/// One trusted issuer as the guard sees it.
#[derive(Debug)]
pub(crate) struct IssuerPolicy {
    pub(crate) issuer: String,
    /// The accepted audiences: the canonical resource first.
    pub(crate) audiences: Vec<String>,
    pub(crate) keys: Option<Arc<dyn KeySource>>,
}

/// What every guard built from one configuration shares, and what the scope
/// and MCP layers built from that guard read.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) resource: ResourceUrl,
    pub(crate) metadata_doc: ProtectedResourceMetadata,
    pub(crate) metadata: MetadataService,
    pub(crate) metadata_path: String,
    pub(crate) verifier: Arc<dyn TokenVerifier>,
    pub(crate) issuers: Vec<IssuerPolicy>,
    /// The scopes every request needs.
    pub(crate) required: Vec<String>,
    /// `scopes_supported`.
    pub(crate) supported: Vec<String>,
    pub(crate) challenger: Challenger,
    pub(crate) token_cache: Option<TokenCache>,
    pub(crate) revocations: Revocations,
    pub(crate) cors: CorsPolicy,
    pub(crate) hierarchy: CompiledHierarchy,
    /// `Some` when DPoP is accepted.
    pub(crate) dpop: Option<DpopVerifier>,
    /// DPoP is required: the Bearer scheme is refused.
    pub(crate) dpop_only: bool,
    /// Where replicas share state (the MCP layer's sessions read it here).
    pub(crate) store: Option<crate::store::SharedStore>,
    /// Shapes every refusal of this guard and of the layers built from it.
    pub(crate) rejection: Shaper,
}

/// Put in a request's extensions by a guard in optional mode that let an
/// anonymous caller through: the layers after it know a guard ran, and how
/// to challenge.
#[derive(Debug, Clone)]
pub(crate) struct Anonymous(
    // Read by the axum extractor, to answer with this guard's challenge.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))] pub(crate) Arc<Shared>,
);

/// Who is calling, as the layers after the guard see it.
pub(crate) enum Caller<'a> {
    /// A verified token.
    Token(&'a AuthContext),
    /// No credentials, let through by a guard in optional mode.
    Anonymous,
    /// No guard ran before this layer: it cannot judge the request.
    NoGuard,
}

impl Caller<'_> {
    /// The caller of a request that reached a layer after the guard.
    pub(crate) fn of(extensions: &http::Extensions) -> Caller<'_> {
        match extensions.get::<AuthContext>() {
            Some(ctx) => Caller::Token(ctx),
            None if extensions.get::<Anonymous>().is_some() => Caller::Anonymous,
            None => Caller::NoGuard,
        }
    }

    /// The verified context, if any.
    pub(crate) fn context(&self) -> Option<&AuthContext> {
        match self {
            Caller::Token(ctx) => Some(ctx),
            _ => None,
        }
    }
}

impl Shared {
    pub(crate) fn is_metadata_path(&self, path: &str) -> bool {
        path == self.metadata_path || path == WELL_KNOWN_PATH
    }

    /// `true` when the token grants `scope`, itself or through the scope
    /// hierarchy.
    #[inline]
    pub(crate) fn grants(&self, ctx: &AuthContext, scope: &str) -> bool {
        self.hierarchy.grants(ctx.scopes(), scope)
    }

    /// `true` when the token grants every scope of `scopes`.
    pub(crate) fn grants_all(&self, ctx: &AuthContext, scopes: &[String]) -> bool {
        scopes.iter().all(|s| self.grants(ctx, s))
    }

    /// The checks the guard makes on every verified context, whoever
    /// verified it: a trusted issuer, an accepted audience, the scopes every
    /// request needs. `Ok` holds the issuer's slot (its index among the
    /// guard's issuers, which never change), kept with a cached token so a
    /// hit finds the issuer's key source without comparing names.
    pub(crate) fn authorize(&self, ctx: &AuthContext) -> Result<usize, AuthError> {
        let Some((slot, policy)) = self
            .issuers
            .iter()
            .enumerate()
            .find(|(_, i)| i.issuer == ctx.issuer())
        else {
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
        if !self.grants_all(ctx, &self.required) {
            return Err(AuthError::new(
                AuthErrorKind::InsufficientScope,
                "the token lacks a scope every request needs",
            ));
        }
        Ok(slot)
    }

    /// For a verification taken from the token cache: the key that verified
    /// it is still in the key set of its issuer (`slot`, as [`authorize`]
    /// returned it: a slot that names no issuer fails closed), and the token
    /// was not revoked.
    ///
    /// [`authorize`]: Self::authorize
    pub(crate) fn still_valid(
        &self,
        raw: &[u8],
        ctx: &AuthContext,
        slot: usize,
    ) -> Result<(), AuthError> {
        if let Some(key) = ctx.key() {
            let held = self
                .issuers
                .get(slot)
                .is_some_and(|i| i.keys.as_ref().is_none_or(|keys| keys.holds(key)));
            if !held {
                return Err(AuthError::new(
                    AuthErrorKind::UnknownKey,
                    "the key that verified the token has left the issuer's key set",
                ));
            }
        }
        self.not_revoked(raw, ctx)
    }

    /// `Err` when the token, or its subject, was revoked at this resource.
    pub(crate) fn not_revoked(&self, raw: &[u8], ctx: &AuthContext) -> Result<(), AuthError> {
        if self.revocations.is_revoked(raw, ctx) {
            return Err(AuthError::new(
                AuthErrorKind::Revoked,
                "the token or its subject was revoked at this resource",
            ));
        }
        Ok(())
    }

    /// The `scope=` of a 403 for an operation that needs `needed` (besides
    /// the scopes every request needs), per wire:
    ///
    /// - session wire (`2025-11-25`): the client replaces its token with
    ///   what it asks for, so the challenge lists what it should hold
    ///   afterwards: the required scopes, then `needed`, then (with
    ///   `keep_granted`) the token's current scopes that this resource
    ///   supports, so stepping up never loses a privilege;
    /// - stateless wire (`2026-07-28`): exactly the scopes the operation
    ///   still needs (required and `needed`, minus what the token already
    ///   gives), each once, the narrowest of them (clients union them with
    ///   what they hold).
    pub(crate) fn challenge_scope(
        &self,
        wire: Wire,
        ctx: &AuthContext,
        needed: &[&str],
        keep_granted: bool,
    ) -> String {
        let wanted = self
            .required
            .iter()
            .map(String::as_str)
            .chain(needed.iter().copied());
        let mut out: Vec<&str> = Vec::new();
        match wire {
            Wire::Session => {
                let granted = ctx
                    .scopes()
                    .iter()
                    .filter(|s| keep_granted && self.supported.iter().any(|x| x == s));
                for s in wanted.chain(granted) {
                    if !out.contains(&s) {
                        out.push(s);
                    }
                }
            }
            Wire::Stateless => {
                let missing: Vec<&str> = wanted.filter(|s| !self.grants(ctx, s)).collect();
                out = self.hierarchy.narrowest(&missing);
            }
        }
        out.join(" ")
    }

    /// The response to `error`, shaped by the guard's rejection body.
    /// `scope` is the `scope=` of a 403 step-up.
    /// `scheme` is the one the client used: its challenge carries the error.
    /// `nonce`, a fresh `DPoP-Nonce` to send.
    pub(crate) fn deny<B: From<String>>(
        &self,
        error: AuthError,
        scope: Option<&str>,
        scheme: Scheme,
        nonce: Option<http::HeaderValue>,
    ) -> Response<B> {
        let mut rejection = self.challenger.rejection(error, scope, scheme);
        if let Some(n) = nonce {
            rejection.set_dpop_nonce(n);
        }
        self.respond(rejection)
    }

    /// The response to `rejection`, shaped by the guard's rejection body.
    pub(crate) fn respond<B: From<String>>(&self, rejection: Rejection) -> Response<B> {
        respond(&*self.rejection.0, rejection)
    }
}

/// The 500 a layer answers when no guard ran before it: it cannot judge
/// the request, so it refuses it, and says how to fix the wiring.
pub(crate) fn no_guard(layer: &'static str) -> AuthError {
    AuthError::new(
        AuthErrorKind::Misconfigured,
        match layer {
            "mcp" => {
                "McpLayer needs its GuardLayer in front of it: apply the guard outside the MCP layer (the last .layer() call)"
            }
            _ => {
                "RequireScopeLayer needs its GuardLayer in front of it: apply the guard with .layer() or .route_layer() outside the scope layer"
            }
        },
    )
}
