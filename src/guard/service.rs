//! [`Guard`]: the service. `call` classifies the request (metadata,
//! preflight, credentials) and hands the rest to the response future.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{HeaderValue, ORIGIN};
use http::{Request, Response};
use tower_service::Service;

use super::future::{self, DpopRequest, GuardFuture, State, VerifyFuture};
use super::policy::{Anonymous, Shared};
use crate::claims::AuthContext;
use crate::config::AuthMode;
use crate::error::{AuthError, AuthErrorKind};
use crate::guard::cache::CachedToken;
use crate::guard::cors::is_preflight;
use crate::guard::token::{self, BearerToken, Credentials};

/// The guard service made by [`GuardLayer`](crate::GuardLayer).
#[derive(Clone)]
pub struct Guard<S> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared>,
    pub(crate) mode: AuthMode,
}

impl<S: fmt::Debug> fmt::Debug for Guard<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("inner", &self.inner)
            .field("resource", &self.shared.resource)
            .field("mode", &self.mode)
            .finish()
    }
}

impl<S> Guard<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Guard<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    ResB: From<String>,
    ResB: From<String>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = GuardFuture<S, ReqB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let origin = req.headers().get(ORIGIN).cloned().map(Box::new);
        let mut dpop = None;
        // Judged from the request's head; the request itself moves once, to
        // where it goes next.
        match self.judge(&req, &mut dpop) {
            Verdict::Cached(ctx, extensions) => match extensions {
                // The request had none: the entry's map, with room for what
                // the layers after the guard add.
                Some(extensions) => *req.extensions_mut() = extensions,
                None => {
                    req.extensions_mut().insert(ctx);
                }
            },
            Verdict::Anonymous => {
                req.extensions_mut().insert(Anonymous(self.shared.clone()));
            }
            Verdict::Verify(fut) => {
                let pending = Some(Box::new((self.take_ready(), req)));
                return self.future(State::Verify { fut, pending }, origin, dpop);
            }
            Verdict::Done(state) => return self.future(state, origin, dpop),
        }
        // On to the inner service (a cached token, or anonymous).
        GuardFuture {
            state: State::Inner {
                fut: self.inner.call(req),
            },
            shared: self.shared.clone(),
            origin,
            dpop,
        }
    }
}

/// What becomes of a request, judged from its head.
enum Verdict<S: Service<Request<ReqB>>, ReqB> {
    /// On to the inner service with the context of a token verified and
    /// authorized before (the token cache), and the cache's extensions
    /// holding it when the request's own were empty.
    Cached(AuthContext, Option<http::Extensions>),
    /// On to the inner service without credentials (optional mode).
    Anonymous,
    /// The token (and a DPoP proof's binding) must be verified first.
    Verify(VerifyFuture),
    /// Answered or refused here.
    Done(State<S, ReqB>),
}

impl<S> Guard<S> {
    /// The response future for a state other than the hot path's.
    fn future<ReqB>(
        &self,
        state: State<S, ReqB>,
        origin: Option<Box<HeaderValue>>,
        dpop: Option<Box<DpopRequest>>,
    ) -> GuardFuture<S, ReqB>
    where
        S: Service<Request<ReqB>>,
    {
        GuardFuture {
            state,
            shared: self.shared.clone(),
            origin,
            dpop,
        }
    }
}

impl<S> Guard<S> {
    /// Decides what to do with a request: answer it here, reject it, verify
    /// its token, or pass it on.
    /// `dpop` is set for a request with the DPoP scheme (with the proof's
    /// key thumbprint once the proof checks out).
    fn judge<ReqB>(
        &self,
        req: &Request<ReqB>,
        dpop: &mut Option<Box<DpopRequest>>,
    ) -> Verdict<S, ReqB>
    where
        S: Service<Request<ReqB>>,
    {
        let shared = &self.shared;
        if shared.is_metadata_path(req.uri().path()) {
            return Verdict::Done(State::answer(shared.metadata.respond(req.method())));
        }
        if is_preflight(req) {
            // A preflight carries no credentials by design: answer it here
            // rather than hand the inner service an unauthenticated request.
            return Verdict::Done(State::answer(shared.cors.preflight(req.headers())));
        }
        let raw = match token::extract(req.headers(), req.uri()) {
            Err(e) => return Verdict::Done(State::reject(e, None)),
            Ok(Credentials::Dpop(raw)) if shared.dpop.is_some() => {
                *dpop = Some(Box::default());
                // Validated (token68) on a cache miss only, as for Bearer.
                return self.judge_dpop(req, raw.into(), dpop);
            }
            Ok(Credentials::Bearer(raw)) => raw,
            Ok(Credentials::None | Credentials::OtherScheme | Credentials::Dpop(_))
                if self.mode == AuthMode::Optional =>
            {
                future::allow(&self.shared, None, false);
                return Verdict::Anonymous;
            }
            Ok(Credentials::None | Credentials::OtherScheme | Credentials::Dpop(_)) => {
                return Verdict::Done(State::reject(
                    AuthError::new(
                        AuthErrorKind::MissingToken,
                        "no Bearer token in the Authorization header",
                    ),
                    None,
                ));
            }
        };
        if shared.dpop_only {
            return Verdict::Done(State::reject(
                AuthError::new(
                    AuthErrorKind::InvalidToken,
                    "this resource accepts DPoP-bound tokens only: use the DPoP scheme",
                ),
                None,
            ));
        }
        if let Some(CachedToken {
            ctx,
            issuer_slot,
            extensions,
        }) = shared
            .token_cache
            .as_ref()
            .and_then(|c| c.get(raw, req.extensions().is_empty()))
        {
            crate::observe::metrics::token_cache(true);
            // Hot path: this exact token was verified and authorized before
            // (only such tokens are cached, and the guard's policy never
            // changes) and is still within its validity window; no boxing,
            // no parsing. Its key and revocation are re-checked.
            return match shared
                .still_valid(raw, &ctx, issuer_slot)
                .and_then(|()| not_bound(&ctx))
            {
                Ok(()) => {
                    future::allow(shared, Some(&ctx), true);
                    Verdict::Cached(ctx, extensions)
                }
                Err(error) => Verdict::Done(State::refuse(shared, error, ctx, req.headers())),
            };
        }
        let token = match token::validate(raw) {
            Ok(token) => token,
            Err(error) => return Verdict::Done(State::reject(error, None)),
        };
        let shared = shared.clone();
        Verdict::Verify(Box::pin(async move {
            let ctx = verify_and_authorize(&shared, &token).await?;
            not_bound(&ctx).map_err(|e| (e, Some(ctx.clone())))?;
            Ok(ctx)
        }))
    }

    /// The service that was made ready; a fresh clone stays behind.
    fn take_ready(&mut self) -> S
    where
        S: Clone,
    {
        let clone = self.inner.clone();
        std::mem::replace(&mut self.inner, clone)
    }

    /// A request with the DPoP scheme: the proof is checked here, on every
    /// request; the token (from the cache or verified), its binding to the
    /// proof's key, the nonce and the replay store in the future.
    #[inline(never)]
    fn judge_dpop<ReqB>(
        &self,
        req: &Request<ReqB>,
        raw: Box<[u8]>,
        dpop: &mut Option<Box<DpopRequest>>,
    ) -> Verdict<S, ReqB>
    where
        S: Service<Request<ReqB>>,
    {
        let shared = &self.shared;
        let Some(verifier) = &shared.dpop else {
            return Verdict::Done(State::reject(
                AuthError::new(AuthErrorKind::MissingToken, "DPoP is not enabled"),
                None,
            ));
        };
        let proof = match verifier.check_proof(req.headers(), req.method(), req.uri().path()) {
            Ok(proof) => proof,
            Err(error) => return Verdict::Done(State::reject(error, None)),
        };
        if let Some(d) = dpop.as_mut() {
            d.jkt = Some(proof.jkt.clone().into_boxed_str());
        }
        let shared = shared.clone();
        Verdict::Verify(Box::pin(async move {
            let raw = &raw[..];
            let cached = shared.token_cache.as_ref().and_then(|c| c.get(raw, false));
            let ctx = match cached {
                Some(CachedToken {
                    ctx, issuer_slot, ..
                }) => {
                    shared
                        .still_valid(raw, &ctx, issuer_slot)
                        .map_err(|e| (e, None))?;
                    ctx
                }
                None => {
                    let token = token::validate(raw).map_err(|e| (e, None))?;
                    verify_and_authorize(&shared, &token).await?
                }
            };
            let Some(verifier) = &shared.dpop else {
                return Err((
                    AuthError::new(AuthErrorKind::MissingToken, "DPoP is not enabled"),
                    None,
                ));
            };
            match verifier.check_bound(&ctx, &proof, raw).await {
                Ok(()) => Ok(ctx),
                Err(e) => Err((e, Some(ctx))),
            }
        }))
    }
}

/// A cache miss: verification, revocation and the guard's own checks;
/// only a token that passes them all is cached, so a hit needs no re-check
/// of the (immutable) issuer, audience and required scopes.
async fn verify_and_authorize(
    shared: &Shared,
    token: &BearerToken,
) -> Result<AuthContext, (AuthError, Option<AuthContext>)> {
    crate::observe::metrics::token_cache(false);
    let mut ctx = shared.verifier.verify(token).await.map_err(|e| (e, None))?;
    let raw = token.secret().as_bytes();
    let issuer_slot = match shared
        .not_revoked(raw, &ctx)
        .and_then(|()| shared.authorize(&ctx))
    {
        Ok(slot) => slot,
        Err(e) => return Err((e, Some(ctx))),
    };
    let revocations = &shared.revocations;
    match revocations.is_revoked_elsewhere(raw, &ctx).await {
        Ok(false) => {}
        Ok(true) => {
            let e = AuthError::new(
                AuthErrorKind::Revoked,
                "the token or its subject was revoked (on another replica)",
            );
            return Err((e, Some(ctx)));
        }
        Err(source) => {
            let e = AuthError::with_source(
                AuthErrorKind::StoreUnavailable,
                "the shared store could not say whether the token was revoked",
                source,
            );
            return Err((e, Some(ctx)));
        }
    }
    let cache = match (&shared.token_cache, revocations.recheck()) {
        (Some(_), Some(every)) if every.is_zero() => None,
        (Some(cache), Some(every)) => {
            // Asked again once the recheck interval is over.
            let until = revocations
                .unix_now()
                .saturating_add(every.as_secs().max(1));
            ctx = ctx.limit_caching(until);
            Some(cache)
        }
        (cache, _) => cache.as_ref(),
    };
    if let Some(cache) = cache {
        cache.insert(token.secret(), &ctx, issuer_slot);
        #[cfg(feature = "metrics")]
        crate::observe::metrics::token_cache_entries(cache.len());
    }
    Ok(ctx)
}

/// A DPoP-bound token sent with the Bearer scheme is refused (RFC 9449 §7.2).
#[inline]
fn not_bound(ctx: &AuthContext) -> Result<(), AuthError> {
    match ctx.dpop_thumbprint() {
        None => Ok(()),
        Some(_) => Err(AuthError::new(
            AuthErrorKind::InvalidToken,
            "the token is DPoP-bound: send it with the DPoP scheme and a proof",
        )),
    }
}
