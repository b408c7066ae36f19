//! Errors: [`ConfigError`] at build time, [`AuthError`] at request time.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use http::StatusCode;

/// A boxed error that is `Send + Sync`, kept as the `source()` of an [`AuthError`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A configuration mistake found while building a guard, a key source or a policy.
///
/// Every variant names what is wrong and what to do about it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The canonical resource URL was empty.
    #[error(
        "the canonical resource URL is missing: pass the URL clients use to reach this MCP server, e.g. \"https://mcp.example.com/mcp\""
    )]
    MissingResource,
    /// The canonical resource URL could not be used.
    #[error("invalid resource URL {url:?}: {reason}")]
    InvalidResource {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No trusted issuer was configured.
    #[error(
        "no trusted issuer: add at least one authorization server with `add_issuer(Issuer::new(\"https://issuer.example.com\"))`"
    )]
    MissingIssuer,
    /// An issuer identifier could not be used.
    #[error("invalid issuer {issuer:?}: {reason}")]
    InvalidIssuer {
        /// The issuer as given.
        issuer: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The same issuer was added twice.
    #[error("issuer {issuer:?} was added more than once")]
    DuplicateIssuer {
        /// The issuer as given.
        issuer: String,
    },
    /// A `jwks_uri` could not be used.
    #[error("invalid jwks_uri {uri:?}: {reason}")]
    InvalidJwksUri {
        /// The URI as given.
        uri: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A static JWKS could not be parsed or holds no usable key.
    #[error("invalid JWKS: {reason}")]
    InvalidJwks {
        /// What is wrong with it.
        reason: String,
    },
    /// A scope name contains characters RFC 6750 §3 does not allow, or is empty.
    #[error(
        "invalid scope {scope:?}: a scope is one or more of the characters %x21 / %x23-5B / %x5D-7E (no spaces, quotes or backslashes)"
    )]
    InvalidScope {
        /// The scope as given.
        scope: String,
    },
    /// A list that needs at least one scope was empty.
    #[error("{setting} needs at least one scope: list the scopes, or leave the requirement out")]
    EmptyScopes {
        /// Where the empty list was given.
        setting: &'static str,
    },
    /// A policy pattern (a tool, prompt, method or resource name) was empty.
    #[error(
        "an empty {kind} pattern matches nothing: give the exact name, or a `*` glob such as \"admin_*\""
    )]
    EmptyPattern {
        /// Which kind of pattern.
        kind: &'static str,
    },
    /// A resource URI or URI pattern in a policy could not be normalized.
    #[error("invalid resource URI pattern {pattern:?}: {reason}")]
    InvalidResourcePattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A scope named in a scope hierarchy is not in `scopes_supported`.
    #[error(
        "{setting} names the scope {scope:?}, which is not in scopes_supported: add it there (or fix the spelling)"
    )]
    UnknownScope {
        /// The scope as given.
        scope: String,
        /// Where it was named.
        setting: &'static str,
    },
    /// A scope hierarchy implies a scope from itself.
    #[error(
        "the scope hierarchy has a cycle: {cycle}; a broader scope must not be implied by a narrower one"
    )]
    ScopeCycle {
        /// The cycle, e.g. `a => b => a`.
        cycle: String,
    },
    /// `offline_access` was listed in `scopes_supported`, a required scope or
    /// a rule (the MCP authorization spec: servers SHOULD NOT; a resource
    /// never needs refresh tokens).
    #[error(
        "offline_access is not a resource scope: remove it from scopes_supported, required scopes and rules (clients ask the authorization server for it directly)"
    )]
    OfflineAccess,
    /// An algorithm allow-list was empty.
    #[error("the algorithm allow-list of issuer {issuer:?} is empty")]
    EmptyAlgorithms {
        /// The issuer as given.
        issuer: String,
    },
    /// A duration or size setting is out of its allowed range.
    #[error("{setting} is out of range: {reason}")]
    OutOfRange {
        /// The setting's name.
        setting: &'static str,
        /// The allowed range.
        reason: &'static str,
    },
    /// An optional URL in the metadata document could not be used.
    #[error("invalid {field} URL {url:?}: it must be an absolute http(s) URL")]
    InvalidMetadataUrl {
        /// The metadata field.
        field: &'static str,
        /// The URL as given.
        url: String,
    },
    /// An issuer's introspection settings could not be used.
    #[error("introspection for issuer {issuer:?}: {reason}")]
    InvalidIntrospection {
        /// The issuer.
        issuer: String,
        /// What is wrong and how to fix it.
        reason: &'static str,
    },
    /// A `private_key_jwt` client key could not be used.
    #[error("invalid client assertion key: {reason}")]
    InvalidClientKey {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A URL (of a shared store, say) could not be used.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given (without its password).
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A CORS origin could not be used.
    #[error("invalid CORS origin {origin:?}: {reason}")]
    InvalidOrigin {
        /// The origin as given.
        origin: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A shared store could not be set up (see [`store`](crate::store)).
    #[error("the shared store: {0}")]
    Store(String),
    /// The HTTP client for fetching keys could not be built.
    #[error("the HTTP client for fetching keys could not be built: {reason}")]
    HttpClient {
        /// Why.
        reason: String,
    },
}

/// Why a request was not let through.
///
/// Each kind maps to one HTTP answer (see [`AuthErrorKind::status`]).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthErrorKind {
    /// No credentials were sent. 401 with a challenge that has no `error` (RFC 6750 §3.1).
    MissingToken,
    /// The request is malformed: two `Authorization` headers, an empty or
    /// non-token68 Bearer value, or a token in the query string. 400 `invalid_request`.
    MalformedRequest,
    /// The token is malformed, badly signed, of the wrong type or uses a
    /// forbidden algorithm or header. 401 `invalid_token`.
    InvalidToken,
    /// The token has expired (`exp` beyond the leeway). 401 `invalid_token`.
    Expired,
    /// The token is not valid yet (`nbf` or `iat` in the future beyond the leeway). 401 `invalid_token`.
    NotYetValid,
    /// The token's `aud` does not name this resource. 401 `invalid_token`.
    WrongAudience,
    /// The token's `iss` is not a trusted issuer. 401 `invalid_token`.
    UntrustedIssuer,
    /// No key of the issuer matches the token's `kid`. 401 `invalid_token`.
    UnknownKey,
    /// The issuer's keys could not be obtained at all. 503 with `Retry-After`,
    /// so clients do not start a new authorization for a server-side outage.
    KeysUnavailable,
    /// The authorization server's introspection endpoint could not judge the
    /// token (down, too slow, an error status or an answer that is not an
    /// introspection response), or too many introspections are already in
    /// flight. 503 with `Retry-After`: the token may well be valid, so
    /// clients must not start a new authorization.
    IntrospectionUnavailable,
    /// The shared store (see [`store`](crate::store)) could not answer a
    /// check that cannot be skipped: a DPoP proof's replay check, whether a
    /// token was revoked on another replica, who owns a session. 503 with
    /// `Retry-After`: nothing is let through unchecked.
    StoreUnavailable,
    /// The DPoP proof (RFC 9449) is missing, malformed, badly signed, for
    /// another request or key, stale or replayed. 401 `invalid_dpop_proof`.
    InvalidDpopProof,
    /// The DPoP proof lacks a valid server nonce; the response carries a
    /// fresh one in `DPoP-Nonce`. 401 `use_dpop_nonce` (RFC 9449 §9).
    UseDpopNonce,
    /// The token lacks a scope this request needs. 403 `insufficient_scope`.
    InsufficientScope,
    /// The token was revoked at this resource (see
    /// [`GuardLayer::revoke_token`](crate::GuardLayer::revoke_token)). 401 `invalid_token`.
    Revoked,
    /// A policy denies the request outright: no scope would help. 403, no challenge.
    AccessDenied,
    /// The MCP layer cannot judge the request body: not JSON, not a JSON-RPC
    /// message, compressed, ambiguous, or a batch over the limit. 400 with a
    /// JSON-RPC error body.
    InvalidMessage,
    /// The request body is larger than the MCP layer reads. 413.
    BodyTooLarge,
    /// An HTTP method the MCP endpoint does not have: only `POST` (messages),
    /// `GET` (the SSE stream) and `DELETE` (session end) are judged. 405
    /// with `Allow: GET, POST, DELETE`.
    MethodNotAllowed,
    /// The MCP layer reads only `application/json` bodies in UTF-8 (no other
    /// charset or media type parameter), which every MCP server decodes the
    /// same way. 415 with a JSON-RPC error body.
    UnsupportedMediaType,
    /// The `Mcp-Session-Id` header is malformed or repeated. 400.
    InvalidSession,
    /// The `Mcp-Session-Id` names no session this server issued (or it has
    /// ended). 404, so MCP clients start a new session.
    UnknownSession,
    /// The MCP session belongs to another principal. 403.
    SessionMismatch,
    /// The task (the MCP tasks extension) was not created by this caller's
    /// request through this layer: another principal's, unknown, or
    /// forgotten. 403 either way, so a task id's existence is not disclosed.
    UnownedTask,
    /// The inner server's list answer could not be filtered (over the size
    /// limit, or not a JSON-RPC list response). 502: never passed unfiltered.
    UnfilterableResponse,
    /// The layers are wired wrongly (a scope or MCP layer without the guard
    /// in front of it). 500; the detail says what to fix.
    Misconfigured,
}

impl AuthErrorKind {
    /// The HTTP status this kind is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::MalformedRequest | Self::InvalidMessage | Self::InvalidSession => {
                StatusCode::BAD_REQUEST
            }
            Self::InsufficientScope
            | Self::AccessDenied
            | Self::SessionMismatch
            | Self::UnownedTask => StatusCode::FORBIDDEN,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::KeysUnavailable | Self::IntrospectionUnavailable | Self::StoreUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnknownSession => StatusCode::NOT_FOUND,
            Self::UnfilterableResponse => StatusCode::BAD_GATEWAY,
            Self::Misconfigured => StatusCode::INTERNAL_SERVER_ERROR,
            Self::MissingToken
            | Self::InvalidToken
            | Self::Expired
            | Self::NotYetValid
            | Self::WrongAudience
            | Self::UntrustedIssuer
            | Self::UnknownKey
            | Self::Revoked
            | Self::InvalidDpopProof
            | Self::UseDpopNonce => StatusCode::UNAUTHORIZED,
        }
    }

    /// A short, stable reason code for logs and metrics, e.g. `"expired"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::MalformedRequest => "malformed_request",
            Self::InvalidToken => "invalid_token",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongAudience => "wrong_audience",
            Self::UntrustedIssuer => "untrusted_issuer",
            Self::UnknownKey => "unknown_key",
            Self::KeysUnavailable => "keys_unavailable",
            Self::IntrospectionUnavailable => "introspection_unavailable",
            Self::StoreUnavailable => "store_unavailable",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::InsufficientScope => "insufficient_scope",
            Self::Revoked => "revoked",
            Self::AccessDenied => "access_denied",
            Self::InvalidMessage => "invalid_message",
            Self::BodyTooLarge => "body_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::InvalidSession => "invalid_session",
            Self::UnknownSession => "unknown_session",
            Self::SessionMismatch => "session_mismatch",
            Self::UnownedTask => "unowned_task",
            Self::UnfilterableResponse => "unfilterable_response",
            Self::Misconfigured => "misconfigured",
        }
    }

    /// The generic description sent to clients in `error_description` and the
    /// JSON body. It never contains request data.
    pub fn description(self) -> &'static str {
        match self {
            Self::MissingToken => "A bearer access token is required",
            Self::MalformedRequest => "The request is malformed",
            Self::InvalidToken => "The access token is invalid",
            Self::Expired => "The access token has expired",
            Self::NotYetValid => "The access token is not yet valid",
            Self::WrongAudience => "The access token was not issued for this resource",
            Self::UntrustedIssuer => "The access token was issued by an untrusted issuer",
            Self::UnknownKey => "The access token is signed with an unknown key",
            Self::KeysUnavailable => "The authorization server's keys are temporarily unavailable",
            Self::IntrospectionUnavailable => {
                "The authorization server cannot check the access token right now"
            }
            Self::StoreUnavailable => "The server cannot check the request right now",
            Self::InvalidDpopProof => "The DPoP proof is invalid",
            Self::UseDpopNonce => "A DPoP proof with a fresh server nonce is required",
            Self::InsufficientScope => "The access token lacks a scope this request needs",
            Self::Revoked => "The access token has been revoked",
            Self::AccessDenied => "The server's policy does not allow this request",
            Self::InvalidMessage => {
                "The request body is not a JSON-RPC message this server can judge"
            }
            Self::BodyTooLarge => "The request body exceeds the size limit",
            Self::UnsupportedMediaType => {
                "The request body must be application/json in UTF-8 (no other charset or parameter)"
            }
            Self::MethodNotAllowed => "The MCP endpoint takes GET, POST and DELETE only",
            Self::InvalidSession => "The Mcp-Session-Id header is malformed",
            Self::UnknownSession => "The MCP session is unknown or has ended",
            Self::SessionMismatch => "This MCP session belongs to another principal",
            Self::UnownedTask => "This task was not created by this caller",
            Self::UnfilterableResponse => "The server's list could not be filtered for this caller",
            Self::Misconfigured => "The server is misconfigured",
        }
    }
}

impl fmt::Display for AuthErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request-time authentication or authorization failure.
///
/// Opaque: read it through [`kind`](AuthError::kind) and
/// [`detail`](AuthError::detail). Cheap to clone (one `Arc`), so the guard can
/// put it in the rejection response's extensions for outer layers.
///
/// Its `Display` names the kind and a fixed detail string; it never contains
/// the token or any other request data.
#[derive(Clone)]
pub struct AuthError(Arc<Inner>);

struct Inner {
    kind: AuthErrorKind,
    detail: &'static str,
    source: Option<BoxError>,
}

impl AuthError {
    /// A new error of `kind` with a fixed detail string for logs.
    pub fn new(kind: AuthErrorKind, detail: &'static str) -> Self {
        Self(Arc::new(Inner {
            kind,
            detail,
            source: None,
        }))
    }

    /// A new error of `kind` with a fixed detail string and an underlying cause.
    ///
    /// The cause shows up in `source()`; make sure its `Display` holds no secret.
    pub fn with_source(
        kind: AuthErrorKind,
        detail: &'static str,
        source: impl Into<BoxError>,
    ) -> Self {
        Self(Arc::new(Inner {
            kind,
            detail,
            source: Some(source.into()),
        }))
    }

    /// What went wrong.
    pub fn kind(&self) -> AuthErrorKind {
        self.0.kind
    }

    /// A fixed, more precise explanation for logs (e.g. `"alg none is not allowed"`).
    /// Not sent to clients.
    pub fn detail(&self) -> &'static str {
        self.0.detail
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        self.0.kind.status()
    }

    /// `true` when no credentials were sent.
    pub fn is_missing_token(&self) -> bool {
        self.0.kind == AuthErrorKind::MissingToken
    }

    /// `true` when the token's scopes do not cover the request.
    pub fn is_insufficient_scope(&self) -> bool {
        self.0.kind == AuthErrorKind::InsufficientScope
    }
}

impl fmt::Debug for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthError")
            .field("kind", &self.0.kind)
            .field("detail", &self.0.detail)
            .field("source", &self.0.source)
            .finish()
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.kind, self.0.detail)
    }
}

impl StdError for AuthError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_error_is_one_pointer_and_thread_safe() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<AuthError>();
        assert_send_sync::<ConfigError>();
        assert_eq!(
            std::mem::size_of::<AuthError>(),
            std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(AuthErrorKind::MissingToken.status(), 401);
        assert_eq!(AuthErrorKind::MalformedRequest.status(), 400);
        assert_eq!(AuthErrorKind::InsufficientScope.status(), 403);
        assert_eq!(AuthErrorKind::KeysUnavailable.status(), 503);
        assert_eq!(AuthErrorKind::WrongAudience.status(), 401);
        assert_eq!(AuthErrorKind::Revoked.status(), 401);
        assert_eq!(AuthErrorKind::AccessDenied.status(), 403);
        assert_eq!(AuthErrorKind::InvalidMessage.status(), 400);
        assert_eq!(AuthErrorKind::BodyTooLarge.status(), 413);
        assert_eq!(AuthErrorKind::UnknownSession.status(), 404);
        assert_eq!(AuthErrorKind::Misconfigured.status(), 500);
    }
}
