//! `WWW-Authenticate` challenges (RFC 6750 §3, RFC 9728 §5.1) and rejection
//! responses.
//!
//! The guard decides the status, the `WWW-Authenticate` header and the
//! response extensions; a [`RejectionBody`] only shapes the body (and may add
//! headers), so a custom body can never break the challenge semantics.
//!
//! Challenge shapes (parameters always in this order):
//!
//! | case | status | `WWW-Authenticate` |
//! |---|---|---|
//! | no credentials | 401 | `Bearer resource_metadata="…", scope="…"` |
//! | bad token | 401 | `Bearer error="invalid_token", error_description="…", resource_metadata="…", scope="…"` |
//! | malformed request | 400 | `Bearer error="invalid_request", error_description="…", resource_metadata="…", scope="…"` |
//! | missing scope | 403 | `Bearer error="insufficient_scope", error_description="…", resource_metadata="…", scope="<needed>"` |
//! | keys unavailable | 503 | none; `Retry-After` instead |
//!
//! `scope` on a 401 or 400 names the scopes every request needs, or when none
//! are required, `scopes_supported`; it is left out when both are empty.

use std::fmt;
use std::sync::Arc;

use http::header::{
    ACCESS_CONTROL_EXPOSE_HEADERS, CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE,
};
use http::{Response, StatusCode};

use crate::config::ChallengeMode;
use crate::error::{AuthError, AuthErrorKind};

/// The headers a browser client must be able to read on guarded responses.
pub(crate) const EXPOSE_HEADERS: HeaderValue =
    HeaderValue::from_static("WWW-Authenticate, Mcp-Session-Id");

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
}

impl ErrorCode {
    /// The code as sent, e.g. `"invalid_token"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
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
    www_authenticate: Option<HeaderValue>,
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

    /// The `WWW-Authenticate` value the response will carry, if any.
    pub fn www_authenticate(&self) -> Option<&HeaderValue> {
        self.www_authenticate.as_ref()
    }

    /// The default JSON body: `{"error": "...", "error_description": "..."}`.
    /// `error` is the challenge's code, `"unauthorized"` when there is none
    /// and `"temporarily_unavailable"` on a 503.
    pub fn json_body(&self) -> String {
        let error = match (self.code, self.error.kind()) {
            (Some(c), _) => c.as_str(),
            (None, AuthErrorKind::KeysUnavailable) => "temporarily_unavailable",
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
/// `Fn(&Rejection) -> Response<B> + Clone + Send + Sync + 'static`:
///
/// ```
/// use http::Response;
/// use mcp_resource_guard::Rejection;
///
/// let plain = |r: &Rejection| Response::new(format!("denied: {}", r.description()));
/// # let _ = plain;
/// ```
pub trait RejectionBody<B>: Clone + Send + Sync + 'static {
    /// The response (body and extra headers) for `rejection`.
    fn response(&self, rejection: &Rejection) -> Response<B>;
}

/// The default [`RejectionBody`]: `application/json` with
/// [`Rejection::json_body`].
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonRejection;

impl<B: From<String>> RejectionBody<B> for JsonRejection {
    fn response(&self, rejection: &Rejection) -> Response<B> {
        let mut res = Response::new(B::from(rejection.json_body()));
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        res
    }
}

impl<B, F> RejectionBody<B> for F
where
    F: Fn(&Rejection) -> Response<B> + Clone + Send + Sync + 'static,
{
    fn response(&self, rejection: &Rejection) -> Response<B> {
        self(rejection)
    }
}

/// Keeps printable ASCII except `"` and `\` (RFC 6750 §3 `error_description`).
pub(crate) fn sanitize_description(s: &str) -> String {
    s.chars()
        .filter(|c| matches!(c, ' '..='~') && *c != '"' && *c != '\\')
        .collect()
}

/// Everything needed to write a challenge, shared by the guard and the scope
/// guards (which find it in the request extensions).
#[derive(Debug)]
pub(crate) struct Challenger {
    /// The metadata URL (validated: no `"` or `\`).
    pub(crate) resource_metadata: String,
    /// The scopes every request needs.
    pub(crate) required: Vec<String>,
    /// What a 401 names in `scope=` (space-separated; may be empty).
    pub(crate) challenge_scope: String,
    /// `scopes_supported`.
    pub(crate) supported: Vec<String>,
    pub(crate) mode: ChallengeMode,
}

/// The challenger, as put in the request extensions by the guard.
#[derive(Debug, Clone)]
pub(crate) struct ChallengeInfo(pub(crate) Arc<Challenger>);

impl Challenger {
    fn header(&self, code: Option<ErrorCode>, description: &str, scope: &str) -> HeaderValue {
        let mut v = String::from("Bearer ");
        if let Some(code) = code {
            v.push_str("error=\"");
            v.push_str(code.as_str());
            v.push_str("\", error_description=\"");
            v.push_str(&sanitize_description(description));
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
        // Every part is printable ASCII: codes and scopes are validated at
        // build time and the description is sanitized just above.
        HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }

    /// The rejection for `error`. `needed` is the `scope=` of a 403.
    pub(crate) fn rejection(&self, error: AuthError, needed: Option<&str>) -> Rejection {
        let kind = error.kind();
        let code = match kind {
            AuthErrorKind::MissingToken => match self.mode {
                ChallengeMode::Rfc6750 => None,
                ChallengeMode::AlwaysInvalidToken => Some(ErrorCode::InvalidToken),
            },
            AuthErrorKind::MalformedRequest => Some(ErrorCode::InvalidRequest),
            AuthErrorKind::InsufficientScope => Some(ErrorCode::InsufficientScope),
            AuthErrorKind::KeysUnavailable => None,
            _ => Some(ErrorCode::InvalidToken),
        };
        let www_authenticate = (kind != AuthErrorKind::KeysUnavailable).then(|| {
            let scope = needed.unwrap_or(&self.challenge_scope);
            self.header(code, kind.description(), scope)
        });
        Rejection {
            error,
            code,
            www_authenticate,
        }
    }

    /// The scopes a 403 names: those every request needs, then `extra`, without repeats.
    pub(crate) fn step_up_scope<'a>(&self, extra: impl IntoIterator<Item = &'a str>) -> String {
        let mut out: Vec<&str> = self.required.iter().map(String::as_str).collect();
        for s in extra {
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out.join(" ")
    }
}

/// Builds the final response: the body shaped by `shaper`, the semantics set here.
pub(crate) fn respond<B, R: RejectionBody<B>>(shaper: &R, rejection: Rejection) -> Response<B> {
    let mut res = shaper.response(&rejection);
    *res.status_mut() = rejection.status();
    let headers = res.headers_mut();
    headers.remove(WWW_AUTHENTICATE);
    if let Some(v) = &rejection.www_authenticate {
        headers.insert(WWW_AUTHENTICATE, v.clone());
    }
    if rejection.error.kind() == AuthErrorKind::KeysUnavailable {
        headers.insert(RETRY_AFTER, RETRY_AFTER_SECS);
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
            required: vec!["a".into()],
            challenge_scope: "a".into(),
            supported: vec!["a".into(), "b".into()],
            mode,
        }
    }

    #[test]
    fn sanitizes() {
        assert_eq!(sanitize_description("a\"b\\c\r\nd\u{e9}\x7f~"), "abcd~");
    }

    #[test]
    fn header_shapes() {
        let c = challenger(ChallengeMode::Rfc6750);
        let r = c.rejection(AuthError::new(AuthErrorKind::MissingToken, ""), None);
        assert_eq!(
            r.www_authenticate().unwrap(),
            "Bearer resource_metadata=\"https://h/.well-known/oauth-protected-resource/mcp\", scope=\"a\""
        );
        assert_eq!(r.error_code(), None);
        let c = challenger(ChallengeMode::AlwaysInvalidToken);
        let r = c.rejection(AuthError::new(AuthErrorKind::MissingToken, ""), None);
        assert_eq!(r.error_code(), Some(ErrorCode::InvalidToken));
        let r = c.rejection(AuthError::new(AuthErrorKind::KeysUnavailable, ""), None);
        assert!(r.www_authenticate().is_none());
        assert_eq!(
            r.json_body(),
            r#"{"error":"temporarily_unavailable","error_description":"The authorization server's keys are temporarily unavailable"}"#
        );
        assert_eq!(c.step_up_scope(["b", "a", "c"]), "a b c");
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
        let r = c.rejection(AuthError::new(AuthErrorKind::Expired, ""), None);
        let res = respond(&shaper, r);
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
