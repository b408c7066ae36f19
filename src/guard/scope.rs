//! [`RequireScopeLayer`]: per-route scope guards, built from a guard.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::challenge::Scheme;
use crate::claims::AuthContext;
use crate::config::check_scopes;
use crate::error::{AuthError, AuthErrorKind, ConfigError};
use crate::guard::GuardLayer;
use crate::guard::policy::{Caller, Shared, no_guard};
use crate::guard::revision::Wire;
use crate::observe::audit::{self, Decision};

#[derive(Debug, PartialEq, Eq)]
enum Need {
    All(Vec<String>),
    Any(Vec<String>),
}

/// A per-route scope requirement, built from the [`GuardLayer`] that guards
/// the route (it shares that guard's required scopes, challenges and
/// rejection body).
///
/// A token without the scopes gets `403` with
/// `WWW-Authenticate: Bearer error="insufficient_scope", …, scope="…"`, where
/// `scope` names what a client must request to pass: the scopes every request
/// needs (the guard's `required_scopes`), then this route's scopes (for
/// [`any`](RequireScopeLayer::any), the first one listed, your preferred
/// choice). An anonymous caller (optional auth) gets the guard's 401.
///
/// The guard must run before it: apply the guard with `.layer()` or
/// `.route_layer()` *after* (outside) this layer. A request that reaches it
/// without passing a guard is refused with `500` (and an audit event that
/// says so), never let through.
///
/// With axum's `route_layer`:
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use axum::{Router, routing::post};
/// use mcp_resource_guard::{GuardLayer, Issuer, RequireScopeLayer};
///
/// let guard = GuardLayer::builder("https://mcp.example.com/mcp")
///     .add_issuer(Issuer::new("https://auth.example.com"))
///     .build()?;
/// let app: Router = Router::new()
///     .route(
///         "/todos",
///         post(|| async { "created" }).route_layer(RequireScopeLayer::all(&guard, ["todo:write"])?),
///     )
///     .layer(guard);
/// # let _ = app; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RequireScopeLayer {
    need: Arc<Need>,
    shared: Arc<Shared>,
}

impl RequireScopeLayer {
    /// Requires every scope in `scopes`, for routes behind `guard`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::EmptyScopes`] when `scopes` is empty;
    /// [`ConfigError::InvalidScope`] for a scope that is not a valid scope token.
    pub fn all<I, S>(guard: &GuardLayer, scopes: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(guard, scopes, "RequireScopeLayer::all", Need::All)
    }

    /// Requires at least one scope in `scopes`, for routes behind `guard`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::EmptyScopes`] when `scopes` is empty;
    /// [`ConfigError::InvalidScope`] for a scope that is not a valid scope token.
    pub fn any<I, S>(guard: &GuardLayer, scopes: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(guard, scopes, "RequireScopeLayer::any", Need::Any)
    }

    fn new<I, S>(
        guard: &GuardLayer,
        scopes: I,
        setting: &'static str,
        need: fn(Vec<String>) -> Need,
    ) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let scopes = check_scopes(scopes)?;
        if scopes.is_empty() {
            return Err(ConfigError::EmptyScopes { setting });
        }
        Ok(Self {
            need: Arc::new(need(scopes)),
            shared: guard.shared.clone(),
        })
    }
}

impl fmt::Debug for RequireScopeLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScopeLayer")
            .field("need", &self.need)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for RequireScopeLayer {
    type Service = RequireScope<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScope {
            inner,
            need: self.need.clone(),
            shared: self.shared.clone(),
        }
    }
}

/// The service made by [`RequireScopeLayer`].
#[derive(Clone)]
pub struct RequireScope<S> {
    inner: S,
    need: Arc<Need>,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for RequireScope<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScope")
            .field("inner", &self.inner)
            .field("need", &self.need)
            .finish_non_exhaustive()
    }
}

impl Need {
    fn satisfied_by(&self, shared: &Shared, ctx: &AuthContext) -> bool {
        match self {
            Need::All(s) => shared.grants_all(ctx, s),
            Need::Any(s) => s.iter().any(|s| shared.grants(ctx, s)),
        }
    }

    fn scopes(&self) -> &[String] {
        match self {
            Need::All(s) | Need::Any(s) => s,
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

impl<S> RequireScope<S> {
    /// The denial for a request that does not satisfy the route, audited.
    fn deny<B: From<String>>(&self, caller: &Caller<'_>, wire: Wire) -> Response<B> {
        let (error, scope) = match caller {
            Caller::Token(ctx) => {
                let route: Vec<&str> = self.need.challenge().iter().map(String::as_str).collect();
                (
                    AuthError::new(
                        AuthErrorKind::InsufficientScope,
                        "the token lacks a scope this route needs",
                    ),
                    Some(self.shared.challenge_scope(wire, ctx, &route, false)),
                )
            }
            Caller::Anonymous => (
                AuthError::new(
                    AuthErrorKind::MissingToken,
                    "anonymous request to a route that needs a scope",
                ),
                None,
            ),
            Caller::NoGuard => (no_guard("require_scope"), None),
        };
        audit::record(&Decision {
            layer: "require_scope",
            allow: false,
            reason: error.kind().as_str(),
            status: Some(error.status().as_u16()),
            detail: error.detail(),
            ctx: caller.context(),
            scopes_required: self.need.scopes(),
            ..Decision::default()
        });
        let scheme = Scheme::of(caller.context());
        self.shared.deny(error, scope.as_deref(), scheme, None)
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for RequireScope<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: From<String>,
    ResB: From<String>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = RequireScopeFuture<S::Future, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let caller = Caller::of(req.extensions());
        if let Caller::Token(ctx) = caller
            && self.need.satisfied_by(&self.shared, ctx)
        {
            audit::record(&Decision {
                layer: "require_scope",
                allow: true,
                reason: "scope_satisfied",
                ctx: Some(ctx),
                scopes_required: self.need.scopes(),
                ..Decision::default()
            });
            return RequireScopeFuture::inner(self.inner.call(req));
        }
        RequireScopeFuture::ready(self.deny(&caller, Wire::of_headers(req.headers())))
    }
}

pin_project! {
    /// The response future of [`RequireScope`].
    pub struct RequireScopeFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        // Passed: the inner service's future.
        Inner { #[pin] fut: F },
        // Rejected.
        Ready { res: Option<Response<B>> },
    }
}

impl<F, B> RequireScopeFuture<F, B> {
    fn inner(fut: F) -> Self {
        Self {
            kind: Kind::Inner { fut },
        }
    }

    fn ready(res: Response<B>) -> Self {
        Self {
            kind: Kind::Ready { res: Some(res) },
        }
    }
}

impl<F, B> fmt::Debug for RequireScopeFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScopeFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for RequireScopeFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: From<String>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { fut } => fut.poll(cx),
            KindProj::Ready { res } => Poll::Ready(Ok(res.take().unwrap_or_else(|| {
                // Polled again after completing: answer an empty 500.
                let mut r = Response::new(B::from(String::new()));
                *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                r
            }))),
        }
    }
}
