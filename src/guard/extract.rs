//! axum extractors (feature `axum`).
//!
//! - `AuthContext`: the caller's identity. Without one: a 401 challenge when
//!   the guard ran in optional mode and the caller is anonymous, a 500 that
//!   names the mistake when no guard ran at all.
//! - `Option<AuthContext>`: `None` for anonymous callers; the same 500 as
//!   above when no guard ran (a route without its guard is a wiring
//!   mistake, never an anonymous caller).

use std::fmt;

use axum_core::body::Body;
use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use std::sync::Arc;

use crate::challenge::Rejection;
use crate::claims::AuthContext;
use crate::error::{AuthError, AuthErrorKind};
use crate::guard::policy::{Anonymous, Caller, Shared};

/// The rejection of the `AuthContext` extractor.
#[derive(Debug)]
pub struct MissingAuthContext {
    /// The challenge, and the guard whose rejection body shapes it.
    challenge: Option<(Rejection, Arc<Shared>)>,
}

impl MissingAuthContext {
    /// 401 when the guard ran but let an anonymous caller through; 500 when no guard ran.
    pub fn status(&self) -> StatusCode {
        match &self.challenge {
            Some((r, _)) => r.status(),
            None => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

const NO_GUARD: &str = "server misconfiguration: no AuthContext in the request; is GuardLayer applied to this route? (extract Option<AuthContext> for routes that allow anonymous callers)";

impl fmt::Display for MissingAuthContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.challenge {
            Some(_) => f.write_str("authentication required"),
            None => f.write_str(NO_GUARD),
        }
    }
}

impl std::error::Error for MissingAuthContext {}

impl IntoResponse for MissingAuthContext {
    fn into_response(self) -> Response {
        match self.challenge {
            Some((r, guard)) => guard.respond::<Body>(r),
            None => (StatusCode::INTERNAL_SERVER_ERROR, NO_GUARD).into_response(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthContext {
    type Rejection = MissingAuthContext;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ctx) = parts.extensions.get::<AuthContext>() {
            return Ok(ctx.clone());
        }
        let challenge = parts.extensions.get::<Anonymous>().map(|guard| {
            let rejection = guard.0.challenger.rejection(
                AuthError::new(
                    AuthErrorKind::MissingToken,
                    "anonymous request to a handler that needs an AuthContext",
                ),
                None,
                crate::challenge::Scheme::Bearer,
            );
            (rejection, guard.0.clone())
        });
        Err(MissingAuthContext { challenge })
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for AuthContext {
    type Rejection = MissingAuthContext;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match Caller::of(&parts.extensions) {
            Caller::Token(ctx) => Ok(Some(ctx.clone())),
            Caller::Anonymous => Ok(None),
            Caller::NoGuard => Err(MissingAuthContext { challenge: None }),
        }
    }
}
