//! Every denial's response: `WWW-Authenticate` challenges (RFC 6750 §3,
//! RFC 9728 §5.1), JSON-RPC errors for bodies the MCP layer refuses, and the
//! body a [`RejectionBody`] shapes.
//!
//! This is the only place such responses are built: the guard, every
//! [`RequireScopeLayer`](crate::RequireScopeLayer) and every
//! [`McpLayer`](crate::mcp::McpLayer) built from it answer through here, with
//! the guard's [`RejectionBody`]. The crate decides the status, the
//! `WWW-Authenticate` header and the response extensions; a
//! [`RejectionBody`] only shapes the body (and may add headers), so a custom
//! body can never break the challenge semantics.
//!
//! Challenge shapes (parameters always in this order):
//!
//! | case | status | `WWW-Authenticate` |
//! |---|---|---|
//! | no credentials | 401 | `Bearer resource_metadata="…", scope="…"` |
//! | bad token | 401 | `Bearer error="invalid_token", error_description="…", resource_metadata="…", scope="…"` |
//! | malformed request | 400 | `Bearer error="invalid_request", error_description="…", resource_metadata="…", scope="…"` |
//! | missing scope | 403 | `Bearer error="insufficient_scope", error_description="…", resource_metadata="…", scope="<needed>"` |
//! | keys or introspection unavailable | 503 | none; `Retry-After` instead |
//! | policy denies outright | 403 | none (no scope would help) |
//! | MCP body not judgeable | 400 | none; a JSON-RPC error body (`-32700` / `-32600` / `-32602`) |
//! | MCP body not `application/json` in UTF-8 | 415 | none; a JSON-RPC error body (`-32700`) |
//!
//! Every refusal of the [`McpLayer`](crate::mcp::McpLayer) has a JSON-RPC
//! error body carrying the request's `id` (`null` when it could not be
//! read), with the status and challenge of the table: `-31403`
//! ([`JsonRpcError::ACCESS_DENIED`]) for 401 and 403, `-32600` for a
//! session that is malformed or unknown and a body over the limit, `-32603`
//! for 5xx.
//!
//! `scope` on a 401 or 400 names the scopes every request needs, or when none
//! are required, `scopes_supported`; it is left out when both are empty.

use std::fmt;

use http::header::{
    ACCESS_CONTROL_EXPOSE_HEADERS, ALLOW, CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE,
};
use http::{Response, StatusCode};

use serde_json::Value;

use crate::config::ChallengeMode;
use crate::error::{AuthError, AuthErrorKind};

use crate::guard::cors::EXPOSE_HEADERS;

mod jsonrpc_error;

pub use jsonrpc_error::JsonRpcError;

/// The `DPoP-Nonce` response header (RFC 9449 §8).
pub(crate) const DPOP_NONCE: http::HeaderName = http::HeaderName::from_static("dpop-nonce");

/// Seconds a client is asked to wait when keys are unavailable.
const RETRY_AFTER_SECS: HeaderValue = HeaderValue::from_static("10");

/// The OAuth error code of a challenge (RFC 6750 §3.1).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// `invalid_request`: 400.
    InvalidRequest,
    /// `invalid_token`: 401.
    InvalidToken,
    /// `insufficient_scope`: 403.
    InsufficientScope,
    /// `invalid_dpop_proof`: 401 (RFC 9449 §7.1).
    InvalidDpopProof,
    /// `use_dpop_nonce`: 401, with a `DPoP-Nonce` header (RFC 9449 §9).
    UseDpopNonce,
}

impl ErrorCode {
    /// The code as sent, e.g. `"invalid_token"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decided rejection, handed to a [`RejectionBody`] to shape the body.
#[derive(Debug, Clone)]
pub struct Rejection {
    error: AuthError,
    code: Option<ErrorCode>,
    /// One challenge per accepted scheme (`Bearer`, `DPoP`).
    www_authenticate: Vec<HeaderValue>,
    jsonrpc: Option<JsonRpcError>,
    dpop_nonce: Option<HeaderValue>,
}

impl Rejection {
    /// Why the request was rejected.
    pub fn error(&self) -> &AuthError {
        &self.error
    }

    /// The HTTP status the response will have.
    pub fn status(&self) -> StatusCode {
        self.error.status()
    }

    /// The OAuth error code in the challenge, if any (none when no
    /// credentials were sent, in the default [`ChallengeMode`]).
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.code
    }

    /// The generic, client-safe description (never request data).
    pub fn description(&self) -> &'static str {
        self.error.kind().description()
    }

    /// The first `WWW-Authenticate` value the response will carry, if any.
    pub fn www_authenticate(&self) -> Option<&HeaderValue> {
        self.www_authenticate.first()
    }

    /// Every `WWW-Authenticate` value the response will carry: one per
    /// accepted scheme (`Bearer`, and `DPoP` when it is enabled).
    pub fn www_authenticate_all(&self) -> &[HeaderValue] {
        &self.www_authenticate
    }

    /// The `DPoP-Nonce` the response will carry, if any.
    pub fn dpop_nonce(&self) -> Option<&HeaderValue> {
        self.dpop_nonce.as_ref()
    }

    pub(crate) fn set_dpop_nonce(&mut self, nonce: HeaderValue) {
        self.dpop_nonce = Some(nonce);
    }

    /// Answers with `jsonrpc` as the body (the MCP layer's refusals); the
    /// status and challenges stay.
    pub(crate) fn set_jsonrpc(&mut self, jsonrpc: JsonRpcError) {
        self.jsonrpc = Some(jsonrpc);
    }

    /// The JSON-RPC error to answer with: every refusal of the MCP layer
    /// has one (carrying the request's `id`); `None` for the guard's and the
    /// scope layer's.
    pub fn jsonrpc_error(&self) -> Option<&JsonRpcError> {
        self.jsonrpc.as_ref()
    }

    /// The default JSON body.
    ///
    /// With a [`jsonrpc_error`](Rejection::jsonrpc_error):
    /// `{"jsonrpc": "2.0", "id": …, "error": {"code": …, "message": "…"}}`.
    /// Otherwise `{"error": "…", "error_description": "…"}`, where `error`
    /// is the challenge's code, else one of `unauthorized` (no credentials),
    /// `temporarily_unavailable` (503), `access_denied`, `request_too_large`,
    /// `invalid_request` (a malformed session id), `session_not_found`,
    /// `session_mismatch`, `server_error`.
    pub fn json_body(&self) -> String {
        if let Some(e) = &self.jsonrpc {
            // Written by hand so the members keep JSON-RPC's usual order
            // whatever serde_json's map ordering is.
            return format!(
                r#"{{"jsonrpc":"2.0","id":{},"error":{{"code":{},"message":{}}}}}"#,
                e.id(),
                e.code(),
                Value::from(e.message())
            );
        }
        let error = match (self.code, self.error.kind()) {
            (Some(c), _) => c.as_str(),
            (
                None,
                AuthErrorKind::KeysUnavailable
                | AuthErrorKind::IntrospectionUnavailable
                | AuthErrorKind::StoreUnavailable,
            ) => "temporarily_unavailable",
            (None, AuthErrorKind::AccessDenied) => "access_denied",
            (None, AuthErrorKind::BodyTooLarge) => "request_too_large",
            (None, AuthErrorKind::UnsupportedMediaType) => "unsupported_media_type",
            (None, AuthErrorKind::MethodNotAllowed) => "method_not_allowed",
            (None, AuthErrorKind::UnownedTask) => "access_denied",
            (None, AuthErrorKind::InvalidSession | AuthErrorKind::InvalidMessage) => {
                "invalid_request"
            }
            (None, AuthErrorKind::UnknownSession) => "session_not_found",
            (None, AuthErrorKind::SessionMismatch) => "session_mismatch",
            (None, AuthErrorKind::Misconfigured) => "server_error",
            (None, AuthErrorKind::UnfilterableResponse) => "bad_gateway",
            (None, _) => "unauthorized",
        };
        serde_json::json!({ "error": error, "error_description": self.description() }).to_string()
    }
}

/// Shapes the body of rejection responses.
///
/// The response you return keeps its body and extra headers; its status,
/// `WWW-Authenticate`, `Retry-After` and `Access-Control-Expose-Headers` are
/// then set by the guard, and the [`AuthError`] is put in its extensions.
///
/// Implemented by [`JsonRejection`] (the default) and by any
/// `Fn(&Rejection) -> Response<String> + Send + Sync + 'static`; give it
/// to [`GuardBuilder::rejection_body`](crate::GuardBuilder::rejection_body),
/// and every layer built from that guard answers with it:
///
/// ```
/// use http::Response;
/// use mcp_resource_guard::challenge::Rejection;
///
/// let plain = |r: &Rejection| Response::new(format!("denied: {}", r.description()));
/// # let _ = plain;
/// ```
pub trait RejectionBody: Send + Sync + 'static {
    /// The response (body and extra headers) for `rejection`.
    fn response(&self, rejection: &Rejection) -> Response<String>;
}

/// The guard's [`RejectionBody`], held once in its shared state.
pub(crate) struct Shaper(pub(crate) Box<dyn RejectionBody>);

impl fmt::Debug for Shaper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RejectionBody")
    }
}

/// The default [`RejectionBody`]: `application/json` with
/// [`Rejection::json_body`].
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonRejection;

impl RejectionBody for JsonRejection {
    fn response(&self, rejection: &Rejection) -> Response<String> {
        let mut res = Response::new(rejection.json_body());
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        res
    }
}

impl<F> RejectionBody for F
where
    F: Fn(&Rejection) -> Response<String> + Send + Sync + 'static,
{
    fn response(&self, rejection: &Rejection) -> Response<String> {
        self(rejection)
    }
}

/// Keeps printable ASCII except `"` and `\` (RFC 6750 §3 `error_description`).
pub(crate) fn sanitize_description(s: &str) -> String {
    s.chars()
        .filter(|c| matches!(c, ' '..='~') && *c != '"' && *c != '\\')
        .collect()
}

/// The scheme a request's credentials came with (and so the challenge its
/// error goes in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Scheme {
    #[default]
    Bearer,
    Dpop,
}

/// The DPoP side of the challenges (RFC 9449 §7.1).
#[derive(Debug)]
pub(crate) struct DpopChallenge {
    /// `algs`: the proof algorithms accepted, space-separated.
    pub(crate) algs: String,
    /// Only DPoP is accepted: no `Bearer` challenge.
    pub(crate) required: bool,
}

/// Writes challenges for one guard's configuration.
#[derive(Debug)]
pub(crate) struct Challenger {
    /// The metadata URL (validated: no `"` or `\`).
    pub(crate) resource_metadata: String,
    /// What a 401 or 400 names in `scope=` (space-separated; may be empty).
    pub(crate) default_scope: String,
    pub(crate) mode: ChallengeMode,
    /// `Some` when DPoP is accepted.
    pub(crate) dpop: Option<DpopChallenge>,
}

impl Scheme {
    /// The scheme a verified caller used: a DPoP-bound token is only ever
    /// accepted with a DPoP proof, an unbound one only as Bearer.
    pub(crate) fn of(ctx: Option<&crate::claims::AuthContext>) -> Self {
        if ctx.is_some_and(|c| c.dpop_thumbprint().is_some()) {
            Self::Dpop
        } else {
            Self::Bearer
        }
    }
}

impl Challenger {
    fn header(
        &self,
        scheme: Scheme,
        code: Option<ErrorCode>,
        description: &str,
        scope: &str,
    ) -> HeaderValue {
        let mut v = String::from(match scheme {
            Scheme::Bearer => "Bearer ",
            Scheme::Dpop => "DPoP ",
        });
        if let Some(code) = code {
            v.push_str("error=\"");
            v.push_str(code.as_str());
            v.push_str("\", error_description=\"");
            v.push_str(&sanitize_description(description));
            v.push_str("\", ");
        }
        if let (Scheme::Dpop, Some(d)) = (scheme, &self.dpop) {
            v.push_str("algs=\"");
            v.push_str(&d.algs);
            v.push_str("\", ");
        }
        v.push_str("resource_metadata=\"");
        v.push_str(&self.resource_metadata);
        v.push('"');
        if !scope.is_empty() {
            v.push_str(", scope=\"");
            v.push_str(scope);
            v.push('"');
        }
        // Every part is printable ASCII: codes, algorithms and scopes are
        // validated at build time and the description is sanitized above.
        HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }

    /// The rejection for `error`. `needed` is the `scope=` of a 403;
    /// `scheme` the one the client used (its challenge carries the error).
    pub(crate) fn rejection(
        &self,
        error: AuthError,
        needed: Option<&str>,
        scheme: Scheme,
    ) -> Rejection {
        use AuthErrorKind as K;
        let kind = error.kind();
        let (challenge, code) = match kind {
            K::MissingToken => match self.mode {
                ChallengeMode::Rfc6750 => (true, None),
                ChallengeMode::AlwaysInvalidToken => (true, Some(ErrorCode::InvalidToken)),
            },
            K::MalformedRequest => (true, Some(ErrorCode::InvalidRequest)),
            K::InsufficientScope => (true, Some(ErrorCode::InsufficientScope)),
            K::InvalidDpopProof => (true, Some(ErrorCode::InvalidDpopProof)),
            K::UseDpopNonce => (true, Some(ErrorCode::UseDpopNonce)),
            K::InvalidToken
            | K::Expired
            | K::NotYetValid
            | K::WrongAudience
            | K::UntrustedIssuer
            | K::UnknownKey
            | K::Revoked => (true, Some(ErrorCode::InvalidToken)),
            // Not a credentials problem: no challenge would help.
            _ => (false, None),
        };
        let mut www_authenticate = Vec::new();
        if challenge {
            let scope = needed.unwrap_or(&self.default_scope);
            let description = kind.description();
            // The challenge of the scheme the client used carries the error;
            // when only one scheme is accepted, that one's.
            let scheme = match &self.dpop {
                None => Scheme::Bearer,
                Some(d) if d.required => Scheme::Dpop,
                Some(_) => scheme,
            };
            let code_for = |s: Scheme| if s == scheme { code } else { None };
            if !self.dpop.as_ref().is_some_and(|d| d.required) {
                www_authenticate.push(self.header(
                    Scheme::Bearer,
                    code_for(Scheme::Bearer),
                    description,
                    scope,
                ));
            }
            if self.dpop.is_some() {
                www_authenticate.push(self.header(
                    Scheme::Dpop,
                    code_for(Scheme::Dpop),
                    description,
                    scope,
                ));
            }
        }
        Rejection {
            error,
            code,
            www_authenticate,
            jsonrpc: None,
            dpop_nonce: None,
        }
    }

    /// A refusal answered with a JSON-RPC error body and no challenge.
    pub(crate) fn jsonrpc(&self, error: AuthError, jsonrpc: JsonRpcError) -> Rejection {
        Rejection {
            error,
            code: None,
            www_authenticate: Vec::new(),
            jsonrpc: Some(jsonrpc),
            dpop_nonce: None,
        }
    }
}

/// Builds the final response: the body shaped by `shaper`, the semantics set here.
pub(crate) fn respond<B: From<String>>(
    shaper: &dyn RejectionBody,
    rejection: Rejection,
) -> Response<B> {
    let mut res = shaper.response(&rejection).map(B::from);
    *res.status_mut() = rejection.status();
    let headers = res.headers_mut();
    headers.remove(WWW_AUTHENTICATE);
    for v in &rejection.www_authenticate {
        headers.append(WWW_AUTHENTICATE, v.clone());
    }
    if let Some(n) = &rejection.dpop_nonce {
        headers.insert(DPOP_NONCE, n.clone());
    }
    if rejection.error.kind().status() == http::StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(RETRY_AFTER, RETRY_AFTER_SECS);
    }
    if rejection.error.kind() == AuthErrorKind::MethodNotAllowed {
        headers.insert(ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
    }
    headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE_HEADERS);
    res.extensions_mut().insert(rejection.error);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenger(mode: ChallengeMode) -> Challenger {
        Challenger {
            resource_metadata: "https://h/.well-known/oauth-protected-resource/mcp".into(),
            default_scope: "a".into(),
            mode,
            dpop: None,
        }
    }

    #[test]
    fn sanitizes() {
        assert_eq!(sanitize_description("a\"b\\c\r\nd\u{e9}\x7f~"), "abcd~");
    }

    #[test]
    fn header_shapes() {
        let c = challenger(ChallengeMode::Rfc6750);
        let r = c.rejection(
            AuthError::new(AuthErrorKind::MissingToken, ""),
            None,
            Scheme::Bearer,
        );
        assert_eq!(
            r.www_authenticate().unwrap(),
            "Bearer resource_metadata=\"https://h/.well-known/oauth-protected-resource/mcp\", scope=\"a\""
        );
        assert_eq!(r.error_code(), None);
        let c = challenger(ChallengeMode::AlwaysInvalidToken);
        let r = c.rejection(
            AuthError::new(AuthErrorKind::MissingToken, ""),
            None,
            Scheme::Bearer,
        );
        assert_eq!(r.error_code(), Some(ErrorCode::InvalidToken));
        let r = c.rejection(
            AuthError::new(AuthErrorKind::KeysUnavailable, ""),
            None,
            Scheme::Bearer,
        );
        assert!(r.www_authenticate().is_none());
        assert_eq!(
            r.json_body(),
            r#"{"error":"temporarily_unavailable","error_description":"The authorization server's keys are temporarily unavailable"}"#
        );
        for kind in [
            AuthErrorKind::AccessDenied,
            AuthErrorKind::BodyTooLarge,
            AuthErrorKind::UnknownSession,
            AuthErrorKind::Misconfigured,
        ] {
            let r = c.rejection(AuthError::new(kind, ""), None, Scheme::Bearer);
            assert!(r.www_authenticate().is_none(), "{kind:?}");
        }
    }

    #[test]
    fn jsonrpc_bodies() {
        let c = challenger(ChallengeMode::Rfc6750);
        let r = c.jsonrpc(
            AuthError::new(AuthErrorKind::InvalidMessage, ""),
            JsonRpcError::new(JsonRpcError::PARSE_ERROR, "Parse error", Value::Null),
        );
        assert!(r.www_authenticate().is_none());
        assert_eq!(r.status(), 400);
        assert_eq!(
            r.json_body(),
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#
        );
    }

    #[test]
    fn custom_body_cannot_break_semantics() {
        let c = challenger(ChallengeMode::Rfc6750);
        let shaper = |_: &Rejection| {
            Response::builder()
                .status(200)
                .header(WWW_AUTHENTICATE, "Basic")
                .header("x-custom", "1")
                .body(String::from("nope"))
                .unwrap()
        };
        let r = c.rejection(
            AuthError::new(AuthErrorKind::Expired, ""),
            None,
            Scheme::Bearer,
        );
        let res: Response<String> = respond(&shaper, r);
        assert_eq!(res.status(), 401);
        assert_eq!(res.headers().get_all(WWW_AUTHENTICATE).iter().count(), 1);
        assert!(
            res.headers()[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Bearer error=\"invalid_token\"")
        );
        assert_eq!(res.headers()["x-custom"], "1");
        assert_eq!(res.body(), "nope");
        assert_eq!(
            res.extensions().get::<AuthError>().unwrap().kind(),
            AuthErrorKind::Expired
        );
    }
}
