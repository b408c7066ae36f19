//! [`Guard`]: the service. `call` classifies the request (metadata,
//! preflight, credentials) and hands the rest to the response future.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::ORIGIN;
use http::{Request, Response};
use tower_service::Service;

use super::future::{GuardFuture, State};
use super::policy::{Anonymous, Shared};
use crate::audit::{self, Decision};
use crate::challenge::RejectionBody;
use crate::config::AuthMode;
use crate::cors::is_preflight;
use crate::error::{AuthError, AuthErrorKind};
use crate::token::{self, Credentials};

/// The guard service made by [`GuardLayer`](crate::GuardLayer).
#[derive(Clone)]
pub struct Guard<S, R> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared>,
    pub(crate) mode: AuthMode,
    pub(crate) rejection: R,
}

impl<S: fmt::Debug, R: fmt::Debug> fmt::Debug for Guard<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("inner", &self.inner)
            .field("resource", &self.shared.resource)
            .field("mode", &self.mode)
            .field("rejection", &self.rejection)
            .finish()
    }
}

impl<S, R> Guard<S, R> {
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

impl<S, R, ReqB, ResB> Service<Request<ReqB>> for Guard<S, R>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    R: RejectionBody<ResB>,
    ResB: From<String>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = GuardFuture<S, ReqB, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let origin = req.headers().get(ORIGIN).cloned();
        let state = self.classify(req);
        GuardFuture {
            state,
            shared: self.shared.clone(),
            rejection: self.rejection.clone(),
            origin,
        }
    }
}

impl<S, R> Guard<S, R> {
    /// Decides what to do with a request: answer it here, reject it, verify
    /// its token, or pass it on.
    fn classify<ReqB, ResB>(&mut self, mut req: Request<ReqB>) -> State<S, ReqB>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    {
        let shared = &self.shared;
        if shared.is_metadata_path(req.uri().path()) {
            return State::answer(shared.metadata.respond(req.method()));
        }
        if is_preflight(&req) {
            // A preflight carries no credentials by design: answer it here
            // rather than hand the inner service an unauthenticated request.
            return State::answer(shared.cors.preflight(req.headers()));
        }
        let raw = match token::extract(req.headers(), req.uri()) {
            Err(e) => return State::reject(e, None),
            Ok(Credentials::Bearer(raw)) => raw,
            Ok(Credentials::None | Credentials::OtherScheme) if self.mode == AuthMode::Optional => {
                audit::record(&Decision {
                    layer: "guard",
                    allow: true,
                    reason: "anonymous",
                    ..Decision::default()
                });
                req.extensions_mut().insert(Anonymous(shared.clone()));
                return State::Inner {
                    fut: self.inner.call(req),
                };
            }
            Ok(Credentials::None | Credentials::OtherScheme) => {
                return State::reject(
                    AuthError::new(
                        AuthErrorKind::MissingToken,
                        "no Bearer token in the Authorization header",
                    ),
                    None,
                );
            }
        };
        if let Some(ctx) = shared.token_cache.as_ref().and_then(|c| c.get(raw)) {
            // Hot path: this exact token was verified and authorized before
            // (only such tokens are cached, and the guard's policy never
            // changes) and is still within its validity window; no boxing,
            // no parsing. Its key and revocation are re-checked.
            return match shared.still_valid(raw, &ctx) {
                Ok(()) => {
                    audit::record(&Decision {
                        layer: "guard",
                        allow: true,
                        reason: "verified",
                        cached: true,
                        ctx: Some(&ctx),
                        scopes_required: &shared.required,
                        ..Decision::default()
                    });
                    req.extensions_mut().insert(ctx);
                    State::Inner {
                        fut: self.inner.call(req),
                    }
                }
                Err(error) => State::refuse(shared, error, ctx, req.headers()),
            };
        }
        let token = match token::validate(raw) {
            Ok(token) => token,
            Err(error) => return State::reject(error, None),
        };
        let shared = shared.clone();
        // Use the service that was made ready; leave a fresh clone behind.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        State::Verify {
            fut: Box::pin(async move {
                let ctx = shared
                    .verifier
                    .verify(&token)
                    .await
                    .map_err(|e| (e, None))?;
                if let Err(e) = shared
                    .not_revoked(token.secret().as_bytes(), &ctx)
                    .and_then(|()| shared.authorize(&ctx))
                {
                    return Err((e, Some(ctx)));
                }
                // Only authorized tokens are cached: a hit needs no re-check
                // of the (immutable) issuer, audience and required scopes.
                if let Some(cache) = &shared.token_cache {
                    cache.insert(token.secret(), &ctx);
                }
                Ok(ctx)
            }),
            pending: Some(Box::new((inner, req))),
        }
    }
}
