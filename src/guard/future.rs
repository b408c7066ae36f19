//! The guard's [`GuardFuture`]: one flat state machine (pin-project-lite,
//! no boxing on the hot path; only a token verification is boxed).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::header::HeaderValue;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::policy::Shared;
use crate::audit::{self, Decision};
use crate::challenge::RejectionBody;
use crate::claims::AuthContext;
use crate::error::{AuthError, AuthErrorKind};

type VerifyFuture = Pin<Box<dyn Future<Output = Result<AuthContext, AuthError>> + Send>>;

pin_project! {
    /// The response future of [`Guard`](crate::Guard).
    pub struct GuardFuture<S, ReqB, R>
    where
        S: Service<Request<ReqB>>,
    {
        #[pin]
        pub(super) state: State<S, ReqB>,
        pub(super) shared: Arc<Shared>,
        pub(super) rejection: R,
        // The request's `Origin`, for the CORS headers of the answer.
        pub(super) origin: Option<HeaderValue>,
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
            pending: Option<(S, Request<ReqB>)>,
        },
        // The inner service is answering.
        Inner {
            #[pin]
            fut: S::Future,
        },
        // Denied.
        Reject {
            error: Option<AuthError>,
            // The verified identity, when a check after verification failed.
            ctx: Option<AuthContext>,
        },
        // Answered by the guard itself (metadata, CORS preflight).
        Answer {
            res: Option<Response<String>>,
        },
    }
}

impl<S, ReqB> State<S, ReqB>
where
    S: Service<Request<ReqB>>,
{
    pub(super) fn reject(error: AuthError, ctx: Option<AuthContext>) -> Self {
        State::Reject {
            error: Some(error),
            ctx,
        }
    }

    pub(super) fn answer(res: Response<String>) -> Self {
        State::Answer { res: Some(res) }
    }
}

impl<S, ReqB, R> fmt::Debug for GuardFuture<S, ReqB, R>
where
    S: Service<Request<ReqB>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardFuture").finish_non_exhaustive()
    }
}

/// Audits a denial and builds its response.
fn deny<ResB, R: RejectionBody<ResB>>(
    shared: &Shared,
    rejection: &R,
    error: AuthError,
    ctx: Option<&AuthContext>,
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
    shared.deny(rejection, error, None)
}

/// The error for a state entered twice (cannot happen: each state is left
/// the first time it completes).
fn polled_twice() -> AuthError {
    AuthError::new(
        AuthErrorKind::InvalidToken,
        "future polled after completion",
    )
}

impl<S, ReqB, R, ResB> Future for GuardFuture<S, ReqB, R>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    R: RejectionBody<ResB>,
    ResB: From<String>,
{
    type Output = Result<Response<ResB>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let mut res = loop {
            match this.state.as_mut().project() {
                StateProj::Verify { fut, pending } => {
                    let checked = ready!(fut.as_mut().poll(cx))
                        .map_err(|e| (e, None))
                        .and_then(|ctx| match this.shared.authorize(&ctx) {
                            Ok(()) => Ok(ctx),
                            Err(e) => Err((e, Some(ctx))),
                        });
                    let ctx = match checked {
                        Ok(ctx) => ctx,
                        Err((error, ctx)) => {
                            break deny(this.shared, this.rejection, error, ctx.as_ref());
                        }
                    };
                    audit::record(&Decision {
                        layer: "guard",
                        allow: true,
                        reason: "verified",
                        ctx: Some(&ctx),
                        scopes_required: &this.shared.required,
                        ..Decision::default()
                    });
                    let Some((mut svc, mut req)) = pending.take() else {
                        break deny(this.shared, this.rejection, polled_twice(), None);
                    };
                    req.extensions_mut().insert(ctx);
                    let fut = svc.call(req);
                    this.state.set(State::Inner { fut });
                }
                StateProj::Inner { fut } => break ready!(fut.poll(cx))?,
                StateProj::Reject { error, ctx } => {
                    let error = error.take().unwrap_or_else(polled_twice);
                    break deny(this.shared, this.rejection, error, ctx.as_ref());
                }
                StateProj::Answer { res } => {
                    return Poll::Ready(Ok(res.take().unwrap_or_default().map(ResB::from)));
                }
            }
        };
        if let Some(origin) = this.origin.as_ref() {
            this.shared.cors.decorate(origin, res.headers_mut());
        }
        Poll::Ready(Ok(res))
    }
}
