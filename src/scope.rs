//! [`RequireScopeLayer`]: per-route scope guards.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::audit::{self, Decision};
use crate::challenge::{ChallengeInfo, JsonRejection, RejectionBody, respond};
use crate::claims::AuthContext;
use crate::config::check_scopes;
use crate::error::{AuthError, AuthErrorKind, ConfigError};

/// The message of the 500 answered when no guard ran before a scope guard.
pub(crate) const NO_GUARD: &str = "server misconfiguration: RequireScope needs GuardLayer in front of it (apply the guard with .layer() or .route_layer() outside the scope guard)";

#[derive(Debug, PartialEq, Eq)]
enum Need {
    All(Vec<String>),
    Any(Vec<String>),
}

/// A per-route scope requirement, for routes behind a [`GuardLayer`](crate::GuardLayer).
///
/// A token without the scopes gets `403` with
/// `WWW-Authenticate: Bearer error="insufficient_scope", …, scope="…"`, where
/// `scope` names what a client must request to pass: the scopes every request
/// needs (the guard's `required_scopes`), then this route's scopes (for
/// [`any`](RequireScopeLayer::any), the first one listed, your preferred
/// choice). An anonymous caller (optional auth) gets the guard's 401.
///
/// Use it with axum's `route_layer`:
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use axum::{Router, routing::post};
/// use mcp_resource_guard::RequireScopeLayer;
///
/// let app: Router = Router::new()
///     .route("/todos", post(|| async { "created" }))
///     .route_layer(RequireScopeLayer::all(["todo:write"])?);
/// # let _ = app; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RequireScopeLayer<R = JsonRejection> {
    need: Arc<Need>,
    rejection: R,
}

impl RequireScopeLayer {
    /// Requires every scope in `scopes`.
    pub fn all<I, S>(scopes: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Ok(Self {
            need: Arc::new(Need::All(check_scopes(scopes)?)),
            rejection: JsonRejection,
        })
    }

    /// Requires at least one scope in `scopes` (at least one must be listed).
    pub fn any<I, S>(scopes: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let scopes = check_scopes(scopes)?;
        if scopes.is_empty() {
            return Err(ConfigError::InvalidScope {
                scope: String::new(),
            });
        }
        Ok(Self {
            need: Arc::new(Need::Any(scopes)),
            rejection: JsonRejection,
        })
    }
}

impl<R> RequireScopeLayer<R> {
    /// The same guard with its rejection bodies shaped by `rejection`.
    pub fn rejection_body<R2>(self, rejection: R2) -> RequireScopeLayer<R2> {
        RequireScopeLayer {
            need: self.need,
            rejection,
        }
    }
}

impl<R: fmt::Debug> fmt::Debug for RequireScopeLayer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScopeLayer")
            .field("need", &self.need)
            .field("rejection", &self.rejection)
            .finish()
    }
}

impl<S, R: Clone> Layer<S> for RequireScopeLayer<R> {
    type Service = RequireScope<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScope {
            inner,
            need: self.need.clone(),
            rejection: self.rejection.clone(),
        }
    }
}

/// The service made by [`RequireScopeLayer`].
#[derive(Clone)]
pub struct RequireScope<S, R> {
    inner: S,
    need: Arc<Need>,
    rejection: R,
}

impl<S: fmt::Debug, R: fmt::Debug> fmt::Debug for RequireScope<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScope")
            .field("inner", &self.inner)
            .field("need", &self.need)
            .field("rejection", &self.rejection)
            .finish()
    }
}

impl Need {
    fn satisfied_by(&self, ctx: &AuthContext) -> bool {
        match self {
            Need::All(s) => ctx.scopes().contains_all(s),
            Need::Any(s) => ctx.scopes().contains_any(s),
        }
    }

    /// What a client should request for this route (besides the guard's own).
    fn challenge(&self) -> &[String] {
        match self {
            Need::All(s) => s,
            Need::Any(s) => &s[..1.min(s.len())],
        }
    }
}

impl<S, R, ReqB, ResB> Service<Request<ReqB>> for RequireScope<S, R>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    R: RejectionBody<ResB>,
    ResB: From<String>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let Some(info) = req.extensions().get::<ChallengeInfo>() else {
            let mut res = Response::new(ResB::from(NO_GUARD.to_owned()));
            *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            return ResponseFuture::Ready { res: Some(res) };
        };
        let required = match &*self.need {
            Need::All(s) | Need::Any(s) => s.as_slice(),
        };
        let rejection = match req.extensions().get::<AuthContext>() {
            Some(ctx) if self.need.satisfied_by(ctx) => {
                audit::record(&Decision {
                    layer: "require_scope",
                    allow: true,
                    reason: "scope_satisfied",
                    ctx: Some(ctx),
                    scopes_required: required,
                    ..Decision::default()
                });
                return ResponseFuture::Inner {
                    fut: self.inner.call(req),
                };
            }
            Some(ctx) => {
                audit::record(&Decision {
                    layer: "require_scope",
                    allow: false,
                    reason: "insufficient_scope",
                    status: Some(403),
                    detail: "the token lacks a scope this route needs",
                    ctx: Some(ctx),
                    scopes_required: required,
                    ..Decision::default()
                });
                let needed = info
                    .0
                    .step_up_scope(self.need.challenge().iter().map(String::as_str));
                info.0.rejection(
                    AuthError::new(
                        AuthErrorKind::InsufficientScope,
                        "the token lacks a scope this route needs",
                    ),
                    Some(&needed),
                )
            }
            None => {
                audit::record(&Decision {
                    layer: "require_scope",
                    allow: false,
                    reason: "missing_token",
                    status: Some(401),
                    detail: "anonymous request to a route that needs a scope",
                    scopes_required: required,
                    ..Decision::default()
                });
                info.0.rejection(
                    AuthError::new(
                        AuthErrorKind::MissingToken,
                        "anonymous request to a route that needs a scope",
                    ),
                    None,
                )
            }
        };
        ResponseFuture::Ready {
            res: Some(respond(&self.rejection, rejection)),
        }
    }
}

pin_project! {
    /// The response future of [`RequireScope`].
    #[project = Proj]
    #[allow(missing_debug_implementations)]
    pub enum ResponseFuture<F, B> {
        /// Passed: the inner service's future.
        Inner { #[pin] fut: F },
        /// Rejected.
        Ready { res: Option<Response<B>> },
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: From<String>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Proj::Inner { fut } => fut.poll(cx),
            Proj::Ready { res } => Poll::Ready(Ok(res.take().unwrap_or_else(|| {
                let mut r = Response::new(B::from(String::new()));
                *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                r
            }))),
        }
    }
}
