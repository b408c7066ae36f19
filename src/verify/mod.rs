//! Token verification: the [`TokenVerifier`] trait and the JWT implementation.

pub(crate) mod claims;
pub(crate) mod jwt;

use std::fmt;

use async_trait::async_trait;

use crate::claims::AuthContext;
use crate::error::AuthError;
use crate::guard::token::BearerToken;

pub(crate) use jwt::JwtVerifier;

/// Turns a Bearer token into a verified [`AuthContext`], or says why not.
///
/// The built-in JWT verifier is one implementation. Implement this trait to
/// plug in another kind of verification (opaque-token introspection, say);
/// the guard re-checks the returned context's issuer and audience itself, so
/// a custom verifier cannot switch those checks off.
///
/// ```
/// use async_trait::async_trait;
/// use mcp_resource_guard::{AuthContext, AuthError, AuthErrorKind, BearerToken, TokenVerifier};
///
/// #[derive(Debug)]
/// struct DenyAll;
///
/// #[async_trait]
/// impl TokenVerifier for DenyAll {
///     async fn verify(&self, _token: &BearerToken) -> Result<AuthContext, AuthError> {
///         Err(AuthError::new(AuthErrorKind::InvalidToken, "denied"))
///     }
/// }
/// ```
#[async_trait]
pub trait TokenVerifier: fmt::Debug + Send + Sync + 'static {
    /// Verifies `token`.
    ///
    /// # Errors
    ///
    /// When the token is not accepted. The error's
    /// [`AuthErrorKind`](crate::AuthErrorKind) decides the HTTP answer
    /// (`InvalidToken`, `Expired`, … give 401; `KeysUnavailable` gives 503);
    /// its detail string must not contain the token.
    async fn verify(&self, token: &BearerToken) -> Result<AuthContext, AuthError>;

    /// Forgets anything cached about `token` (called by
    /// [`GuardLayer::revoke_token`](crate::GuardLayer::revoke_token)). The
    /// default does nothing: a verifier without a cache has nothing to forget.
    fn forget(&self, token: &BearerToken) {
        let _ = token;
    }
}
