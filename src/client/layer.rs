//! [`AuthorizeLayer`]: a tower layer for HTTP clients that adds a token
//! from a [`TokenSource`] to requests within one resource, and refuses the
//! others.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request};
use tower_layer::Layer;
use tower_service::Service;

use super::boundary::within;
use super::token::{ClientError, TokenSource};
use crate::error::BoxError;

/// Adds `Authorization: Bearer <token>` (from a [`TokenSource`], for one
/// resource and scopes) to every request whose URL is within that
/// resource; a request to anywhere else fails with
/// [`ClientError::WrongAudience`] and is never sent.
///
/// ```
/// use mcp_resource_guard::client::{AuthorizeLayer, StaticCredential};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # async fn demo() -> Result<(), mcp_resource_guard::BoxError> {
/// let send = service_fn(|req: http::Request<()>| async move {
///     Ok::<_, std::convert::Infallible>(req.headers()["authorization"].clone())
/// });
/// let layer = AuthorizeLayer::new(StaticCredential::new("api-key"), "https://api.example.com/v1", ["read"]);
/// let req = http::Request::get("https://api.example.com/v1/items").body(())?;
/// assert_eq!(layer.layer(send).oneshot(req).await?, "Bearer api-key");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AuthorizeLayer {
    source: Arc<dyn TokenSource>,
    resource: Arc<str>,
    scopes: Arc<[String]>,
}

impl fmt::Debug for AuthorizeLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizeLayer")
            .field("source", &self.source)
            .field("resource", &self.resource)
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl AuthorizeLayer {
    /// Tokens from `source` for `resource` with `scopes`.
    pub fn new<I, S>(source: impl TokenSource, resource: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            source: Arc::new(source),
            resource: resource.into().into(),
            scopes: scopes.into_iter().map(Into::into).collect(),
        }
    }
}

impl<S> Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authorize {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`AuthorizeLayer`].
#[derive(Clone, Debug)]
pub struct Authorize<S> {
    inner: S,
    layer: AuthorizeLayer,
}

/// The response future of [`Authorize`].
pub type AuthorizeFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

impl<S, B> Service<Request<B>> for Authorize<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = AuthorizeFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let layer = self.layer.clone();
        // Use the service that was made ready; leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let url = req.uri().to_string();
            if !within(&layer.resource, &url) {
                return Err(Box::new(ClientError::WrongAudience {
                    resource: layer.resource.to_string(),
                    url,
                }) as BoxError);
            }
            let token = layer.source.token(&layer.resource, &layer.scopes).await?;
            let mut value = HeaderValue::from_str(&token.authorization()).map_err(|_| {
                Box::new(ClientError::BadTokenResponse(
                    "the token is not a header value",
                )) as BoxError
            })?;
            value.set_sensitive(true);
            req.headers_mut().insert(http::header::AUTHORIZATION, value);
            inner.call(req).await.map_err(Into::into)
        })
    }
}
