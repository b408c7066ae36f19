//! The guard's [`GuardFuture`]: one flat state machine (pin-project-lite,
//! no boxing on the hot path; only a token verification is boxed).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::header::HeaderValue;
use http::{HeaderMap, Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::policy::Shared;
use crate::challenge::{DPOP_NONCE, Scheme};
use crate::claims::AuthContext;
use crate::error::{AuthError, AuthErrorKind};
use crate::guard::revision::Wire;
use crate::observe::audit::{self, Decision};

/// Verification and the guard's checks: the context, or why not (with the
/// context when verification passed and a later check failed).
pub(super) type VerifyFuture =
    Pin<Box<dyn Future<Output = Result<AuthContext, (AuthError, Option<AuthContext>)>> + Send>>;

pin_project! {
    /// The response future of [`Guard`](crate::Guard).
    pub struct GuardFuture<S, ReqB>
    where
        S: Service<Request<ReqB>>,
    {
        #[pin]
        pub(super) state: State<S, ReqB>,
        pub(super) shared: Arc<Shared>,
        // The request's `Origin`, for the CORS headers of the answer (boxed:
        // requests without one, the hot path, carry one pointer).
        pub(super) origin: Option<Box<HeaderValue>>,
        // Set for a request with the DPoP scheme (boxed: Bearer requests,
        // the hot path, carry one pointer).
        pub(super) dpop: Option<Box<DpopRequest>>,
    }
}

/// What the answer to a DPoP request needs: the proof key's thumbprint
/// (known once the proof checked out), for a fresh `DPoP-Nonce`.
#[derive(Debug, Default)]
pub(super) struct DpopRequest {
    pub(super) jkt: Option<Box<str>>,
}

impl DpopRequest {
    fn scheme(this: Option<&Self>) -> Scheme {
        if this.is_some() {
            Scheme::Dpop
        } else {
            Scheme::Bearer
        }
    }

    /// A fresh nonce for this request's key, when nonces are on and `wanted`.
    fn nonce(this: Option<&Self>, shared: &Shared, wanted: bool) -> Option<HeaderValue> {
        let jkt = this?.jkt.as_deref()?;
        wanted.then(|| shared.dpop.as_ref()?.fresh_nonce(jkt))?
    }
}

pin_project! {
    #[project = StateProj]
    pub(super) enum State<S, ReqB>
    where
        S: Service<Request<ReqB>>,
    {
        // The token is being verified; then the request goes to `svc`.
        Verify {
            fut: VerifyFuture,
            // Boxed: only the cold path carries the request here, and the
            // future stays small for the hot one.
            pending: Option<Box<(S, Request<ReqB>)>>,
        },
        // The inner service is answering.
        Inner {
            #[pin]
            fut: S::Future,
        },
        // Denied (boxed, as the answer below: the future stays the size of
        // the hot path's state).
        Reject {
            refusal: Option<Box<Refusal>>,
        },
        // Answered by the guard itself (metadata, CORS preflight).
        Answer {
            res: Option<Box<Response<String>>>,
        },
    }
}

impl<S, ReqB> State<S, ReqB>
where
    S: Service<Request<ReqB>>,
{
    pub(super) fn reject(error: AuthError, ctx: Option<AuthContext>) -> Self {
        State::Reject {
            refusal: Some(Box::new(Refusal {
                error,
                ctx,
                scope: None,
            })),
        }
    }

    /// A denial after verification: a missing required scope is challenged
    /// per the request's wire.
    pub(super) fn refuse(
        shared: &Shared,
        error: AuthError,
        ctx: AuthContext,
        headers: &HeaderMap,
    ) -> Self {
        let scope = step_up(shared, &error, &ctx, headers);
        State::Reject {
            refusal: Some(Box::new(Refusal {
                error,
                ctx: Some(ctx),
                scope,
            })),
        }
    }

    pub(super) fn answer(res: Response<String>) -> Self {
        State::Answer {
            res: Some(Box::new(res)),
        }
    }
}

/// A denial decided in `call`.
pub(super) struct Refusal {
    error: AuthError,
    // The verified identity, when a check after verification failed.
    ctx: Option<AuthContext>,
    // The `scope=` of a 403, when not the default one.
    scope: Option<String>,
}

impl<S, ReqB> fmt::Debug for GuardFuture<S, ReqB>
where
    S: Service<Request<ReqB>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardFuture").finish_non_exhaustive()
    }
}

/// The `scope=` of the guard's own 403 (a scope every request needs is
/// missing) on the stateless wire: what is still needed. `None`: the
/// default (every required scope), as on the session wire.
fn step_up(
    shared: &Shared,
    error: &AuthError,
    ctx: &AuthContext,
    headers: &HeaderMap,
) -> Option<String> {
    (error.kind() == AuthErrorKind::InsufficientScope
        && Wire::of_headers(headers) == Wire::Stateless)
        .then(|| shared.challenge_scope(Wire::Stateless, ctx, &[], false))
}

/// Audits a request let through: with the context of a token verified now
/// or before (`cached`), or without credentials (optional mode). With
/// [`deny`], the guard's every audit event comes from here.
pub(super) fn allow(shared: &Shared, ctx: Option<&AuthContext>, cached: bool) {
    audit::record(&Decision {
        layer: "guard",
        allow: true,
        reason: if ctx.is_some() {
            "verified"
        } else {
            "anonymous"
        },
        cached,
        ctx,
        scopes_required: if ctx.is_some() { &shared.required } else { &[] },
        ..Decision::default()
    });
}

/// Audits a denial and builds its response.
fn deny<ResB: From<String>>(
    shared: &Shared,
    dpop: Option<&DpopRequest>,
    error: AuthError,
    ctx: Option<&AuthContext>,
    scope: Option<&str>,
) -> Response<ResB> {
    audit::record(&Decision {
        layer: "guard",
        allow: false,
        reason: error.kind().as_str(),
        status: Some(error.kind().status().as_u16()),
        detail: error.detail(),
        ctx,
        scopes_required: &shared.required,
        ..Decision::default()
    });
    let nonce = DpopRequest::nonce(dpop, shared, error.kind() == AuthErrorKind::UseDpopNonce);
    shared.deny(error, scope, DpopRequest::scheme(dpop), nonce)
}

/// The error for a state entered twice (cannot happen: each state is left
/// the first time it completes).
fn polled_twice() -> AuthError {
    AuthError::new(
        AuthErrorKind::InvalidToken,
        "future polled after completion",
    )
}

impl<S, ReqB, ResB> Future for GuardFuture<S, ReqB>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: From<String>,
    ResB: From<String>,
{
    type Output = Result<Response<ResB>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let mut res = loop {
            match this.state.as_mut().project() {
                StateProj::Verify { fut, pending } => {
                    let ctx = match ready!(fut.as_mut().poll(cx)) {
                        Ok(ctx) => ctx,
                        Err((error, None)) => {
                            break deny(this.shared, this.dpop.as_deref(), error, None, None);
                        }
                        Err((error, Some(ctx))) => {
                            let scope = pending
                                .as_ref()
                                .and_then(|p| step_up(this.shared, &error, &ctx, p.1.headers()));
                            break deny(
                                this.shared,
                                this.dpop.as_deref(),
                                error,
                                Some(&ctx),
                                scope.as_deref(),
                            );
                        }
                    };
                    allow(this.shared, Some(&ctx), false);
                    let Some((mut svc, mut req)) = pending.take().map(|b| *b) else {
                        break deny(
                            this.shared,
                            this.dpop.as_deref(),
                            polled_twice(),
                            None,
                            None,
                        );
                    };
                    req.extensions_mut().insert(ctx);
                    let fut = svc.call(req);
                    this.state.set(State::Inner { fut });
                }
                StateProj::Inner { fut } => break ready!(fut.poll(cx))?,
                StateProj::Reject { refusal } => {
                    let r = refusal.take().map_or_else(
                        || Refusal {
                            error: polled_twice(),
                            ctx: None,
                            scope: None,
                        },
                        |r| *r,
                    );
                    break deny(
                        this.shared,
                        this.dpop.as_deref(),
                        r.error,
                        r.ctx.as_ref(),
                        r.scope.as_deref(),
                    );
                }
                StateProj::Answer { res } => {
                    let res = res.take().map(|r| *r).unwrap_or_default();
                    return Poll::Ready(Ok(res.map(ResB::from)));
                }
            }
        };
        if let Some(origin) = this.origin.as_ref() {
            this.shared.cors.decorate(origin, res.headers_mut());
        }
        // A DPoP request's answer carries a fresh nonce when so configured
        // (a `use_dpop_nonce` refusal already has one).
        if let Some(dpop) = this.dpop.as_deref() {
            let on_success = this
                .shared
                .dpop
                .as_ref()
                .is_some_and(|d| d.nonce_on_success());
            if !res.headers().contains_key(DPOP_NONCE)
                && let Some(n) = DpopRequest::nonce(Some(dpop), this.shared, on_success)
            {
                res.headers_mut().insert(DPOP_NONCE, n);
            }
        }
        Poll::Ready(Ok(res))
    }
}
