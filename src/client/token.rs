//! [`AccessToken`], [`TokenSource`], [`ClientError`] and
//! [`StaticCredential`]: what a client holds and where it comes from.

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

/// An access token a client obtained. Its `Debug` never shows the token.
#[derive(Clone)]
pub struct AccessToken {
    pub(crate) secret: Box<str>,
    pub(crate) token_type: Box<str>,
    pub(crate) expires_at: Option<SystemTime>,
    pub(crate) scope: Option<Box<str>>,
    pub(crate) refresh_token: Option<Box<str>>,
}

impl AccessToken {
    /// A token from its parts, as a [`TokenStore`](super::TokenStore)
    /// that keeps tokens on disk reads them back.
    pub fn restore(
        secret: impl Into<Box<str>>,
        token_type: impl Into<Box<str>>,
        expires_at: Option<SystemTime>,
        scope: Option<String>,
        refresh_token: Option<String>,
    ) -> Self {
        Self {
            secret: secret.into(),
            token_type: token_type.into(),
            expires_at,
            scope: scope.map(Into::into),
            refresh_token: refresh_token.map(Into::into),
        }
    }

    /// The token itself, for an `Authorization` header. Never log it.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// `Bearer` or `DPoP`, as the authorization server said.
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// When it expires, if the server said.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// The scopes granted, if the server said.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The refresh token that came with it, if any. Never log it.
    pub fn refresh_token(&self) -> Option<&str> {
        self.refresh_token.as_deref()
    }

    /// Whether the token is DPoP-bound (RFC 9449): it must be sent with the
    /// `DPoP` scheme and a proof by the key it is bound to.
    pub fn is_dpop(&self) -> bool {
        self.token_type.eq_ignore_ascii_case("dpop")
    }

    /// The `Authorization` header value: `Bearer <token>`, or
    /// `DPoP <token>` for a DPoP-bound token.
    pub fn authorization(&self) -> String {
        if self.is_dpop() {
            format!("DPoP {}", self.secret)
        } else {
            format!("Bearer {}", self.secret)
        }
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// Why a client could not get or use a token. Every message says what to
/// fix; none contains a token or a secret.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The authorization server could not be reached, timed out, or answered
    /// with something that is not a token response.
    #[error("the authorization server is unavailable: {0}")]
    Unavailable(String),
    /// The authorization server refused the request (`error` and its
    /// description, from the server).
    #[error("the authorization server refused: {error}: {description}")]
    Refused {
        /// The OAuth `error` code.
        error: String,
        /// The server's description, if any.
        description: String,
    },
    /// The token response cannot be used (no `access_token`, a `token_type`
    /// other than Bearer or DPoP, no `expires_in`).
    #[error("unusable token response: {0}")]
    BadTokenResponse(&'static str),
    /// Discovery failed: what was wrong and how to fix it.
    #[error("discovery failed: {0}")]
    Discovery(String),
    /// The server still refused after one step-up: the client's credentials
    /// do not grant what the call needs.
    #[error("the server needs scopes the client cannot get: {0}")]
    InsufficientScope(String),
    /// The URL is not one this token may be sent to (another origin or a
    /// path outside the token's resource).
    #[error("refusing to send a token for {resource} to {url}")]
    WrongAudience {
        /// The resource the token was issued for.
        resource: String,
        /// Where it would have gone.
        url: String,
    },
    /// Discovery led to an authorization server this client's credentials
    /// were not configured for: nothing was sent to it. Add its issuer to
    /// the trusted issuers only if it really is where the client is
    /// registered.
    #[error(
        "refusing to authenticate to {issuer}: not one of the authorization servers this client is registered at"
    )]
    UntrustedAuthorizationServer {
        /// The issuer the server named.
        issuer: String,
    },
    /// The authorization response (the redirect back from the
    /// authorization endpoint) cannot be used: an error from the server, a
    /// wrong `state` or `iss`, no `code`.
    #[error("the authorization response is refused: {0}")]
    AuthorizationResponse(String),
    /// Backing off after a failure: retry after this long.
    #[error("backing off after an authorization server failure; retry in {0:?}")]
    BackingOff(Duration),
}

/// Where a client's tokens come from: asked for a token for `resource`
/// (RFC 8707) with `scopes`.
#[async_trait]
pub trait TokenSource: fmt::Debug + Send + Sync + 'static {
    /// A token for `resource` with (at least) `scopes`, cached or fresh.
    ///
    /// # Errors
    ///
    /// A [`ClientError`] saying why none could be had.
    async fn token(&self, resource: &str, scopes: &[String]) -> Result<AccessToken, ClientError>;
}

/// A credential the application holds already (an API key from the
/// environment or a secret manager): the same token for every request.
/// Redacted in `Debug`.
///
/// ```
/// use mcp_resource_guard::client::StaticCredential;
///
/// let key = StaticCredential::new("sk-live-123");
/// assert_eq!(format!("{key:?}"), "StaticCredential([redacted])");
/// ```
#[derive(Clone)]
pub struct StaticCredential(AccessToken);

impl StaticCredential {
    /// Wraps a token sent as `Bearer <token>`.
    pub fn new(token: impl Into<Box<str>>) -> Self {
        Self(AccessToken {
            secret: token.into(),
            token_type: "Bearer".into(),
            expires_at: None,
            scope: None,
            refresh_token: None,
        })
    }

    /// Reads the token from the environment variable `name`.
    ///
    /// # Errors
    ///
    /// [`ClientError::Discovery`] naming the variable when it is unset.
    pub fn from_env(name: &str) -> Result<Self, ClientError> {
        std::env::var(name)
            .map(Self::new)
            .map_err(|_| ClientError::Discovery(format!("set the environment variable {name}")))
    }
}

impl fmt::Debug for StaticCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticCredential([redacted])")
    }
}

#[async_trait]
impl TokenSource for StaticCredential {
    async fn token(&self, _: &str, _: &[String]) -> Result<AccessToken, ClientError> {
        Ok(self.0.clone())
    }
}
