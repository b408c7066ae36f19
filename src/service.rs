//! The guard [`Guard`] service and its response future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::header::{ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN};
use http::{Method, Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::audit::{self, Decision};
use crate::challenge::{ChallengeInfo, EXPOSE_HEADERS, RejectionBody, respond};
use crate::claims::AuthContext;
use crate::config::AuthMode;
use crate::error::{AuthError, AuthErrorKind};
use crate::layer::Shared;
use crate::token::{self, Credentials};

type VerifyFuture = Pin<Box<dyn Future<Output = Result<AuthContext, AuthError>> + Send>>;

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
    type Future = ResponseFuture<S, ReqB, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let shared = &self.shared;
        let cors = req.headers().contains_key(ORIGIN);
        let state = if shared.is_metadata_path(req.uri().path()) {
            State::Metadata {
                res: Some(shared.metadata.respond(req.method())),
            }
        } else if req.method() == Method::OPTIONS
            && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD)
        {
            // CORS preflight carries no credentials by design: never gate it.
            State::Inner {
                fut: self.inner.call(req),
            }
        } else {
            req.extensions_mut()
                .insert(ChallengeInfo(shared.challenger.clone()));
            match token::extract(req.headers(), req.uri()) {
                Err(e) => State::Reject {
                    error: Some(e),
                    ctx: None,
                },
                Ok(Credentials::None | Credentials::OtherScheme)
                    if self.mode == AuthMode::Optional =>
                {
                    audit::record(&Decision {
                        layer: "guard",
                        allow: true,
                        reason: "anonymous",
                        ..Decision::default()
                    });
                    State::Inner {
                        fut: self.inner.call(req),
                    }
                }
                Ok(Credentials::None | Credentials::OtherScheme) => State::Reject {
                    error: Some(AuthError::new(
                        AuthErrorKind::MissingToken,
                        "no Bearer token in the Authorization header",
                    )),
                    ctx: None,
                },
                Ok(Credentials::Bearer(raw)) => {
                    let cached = shared.token_cache.as_ref().and_then(|c| c.get(raw));
                    if let Some(ctx) = cached {
                        // Hot path: this exact token was verified before and is
                        // still valid; no boxing, no parsing. Issuer, audience
                        // and scopes are re-checked.
                        match shared.authorize(&ctx) {
                            Ok(()) => {
                                audit::record(&Decision {
                                    layer: "guard",
                                    allow: true,
                                    reason: "verified",
                                    cached: true,
                                    ctx: Some(&ctx),
                                    scopes_required: &shared.challenger.required,
                                    ..Decision::default()
                                });
                                req.extensions_mut().insert(ctx);
                                State::Inner {
                                    fut: self.inner.call(req),
                                }
                            }
                            Err(error) => State::Reject {
                                error: Some(error),
                                ctx: Some(ctx),
                            },
                        }
                    } else {
                        match token::validate(raw) {
                            Err(error) => State::Reject {
                                error: Some(error),
                                ctx: None,
                            },
                            Ok(token) => {
                                let shared = shared.clone();
                                // Use the service that was made ready; leave a fresh clone behind.
                                let clone = self.inner.clone();
                                let inner = std::mem::replace(&mut self.inner, clone);
                                State::Verify {
                                    fut: Box::pin(async move {
                                        let verified = shared.verifier.verify(&token).await;
                                        if let (Ok(ctx), Some(cache)) =
                                            (&verified, &shared.token_cache)
                                        {
                                            cache.insert(token.secret(), ctx);
                                        }
                                        verified
                                    }),
                                    pending: Some((inner, req)),
                                }
                            }
                        }
                    }
                }
            }
        };
        ResponseFuture {
            state,
            shared: self.shared.clone(),
            rejection: self.rejection.clone(),
            cors,
        }
    }
}

pin_project! {
    /// The response future of [`Guard`].
    pub struct ResponseFuture<S, ReqB, R>
    where
        S: Service<Request<ReqB>>,
    {
        #[pin]
        state: State<S, ReqB>,
        shared: Arc<Shared>,
        rejection: R,
        cors: bool,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqB>
    where
        S: Service<Request<ReqB>>,
    {
        Verify {
            fut: VerifyFuture,
            pending: Option<(S, Request<ReqB>)>,
        },
        Inner {
            #[pin]
            fut: S::Future,
        },
        Reject {
            error: Option<AuthError>,
            // The verified identity, when a check after verification failed.
            ctx: Option<AuthContext>,
        },
        Metadata {
            res: Option<Response<String>>,
        },
    }
}

impl<S, ReqB, R> fmt::Debug for ResponseFuture<S, ReqB, R>
where
    S: Service<Request<ReqB>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

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
        scopes_required: &shared.challenger.required,
        ..Decision::default()
    });
    respond(rejection, shared.challenger.rejection(error, None))
}

impl<S, ReqB, R, ResB> Future for ResponseFuture<S, ReqB, R>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    R: RejectionBody<ResB>,
    ResB: From<String>,
{
    type Output = Result<Response<ResB>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Verify { fut, pending } => {
                    let verified = ready!(fut.as_mut().poll(cx));
                    let ctx = match verified {
                        Ok(ctx) => match this.shared.authorize(&ctx) {
                            Ok(()) => ctx,
                            Err(error) => {
                                return Poll::Ready(Ok(deny(
                                    this.shared,
                                    this.rejection,
                                    error,
                                    Some(&ctx),
                                )));
                            }
                        },
                        Err(error) => {
                            return Poll::Ready(Ok(deny(this.shared, this.rejection, error, None)));
                        }
                    };
                    audit::record(&Decision {
                        layer: "guard",
                        allow: true,
                        reason: "verified",
                        ctx: Some(&ctx),
                        scopes_required: &this.shared.challenger.required,
                        ..Decision::default()
                    });
                    // `pending` is taken exactly once: the state changes to
                    // `Inner` right after, so `Verify` is never polled again.
                    let Some((mut svc, mut req)) = pending.take() else {
                        let error = AuthError::new(
                            AuthErrorKind::InvalidToken,
                            "future polled after completion",
                        );
                        return Poll::Ready(Ok(deny(this.shared, this.rejection, error, None)));
                    };
                    req.extensions_mut().insert(ctx);
                    let fut = svc.call(req);
                    this.state.set(State::Inner { fut });
                }
                StateProj::Inner { fut } => {
                    let mut res = ready!(fut.poll(cx))?;
                    if *this.cors && !res.headers().contains_key(ACCESS_CONTROL_EXPOSE_HEADERS) {
                        res.headers_mut()
                            .insert(ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE_HEADERS);
                    }
                    return Poll::Ready(Ok(res));
                }
                StateProj::Reject { error, ctx } => {
                    let error = error.take().unwrap_or_else(|| {
                        AuthError::new(
                            AuthErrorKind::InvalidToken,
                            "future polled after completion",
                        )
                    });
                    return Poll::Ready(Ok(deny(this.shared, this.rejection, error, ctx.as_ref())));
                }
                StateProj::Metadata { res } => {
                    let res = res.take().unwrap_or_default();
                    return Poll::Ready(Ok(res.map(ResB::from)));
                }
            }
        }
    }
}
