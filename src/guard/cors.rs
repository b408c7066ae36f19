//! CORS for browser clients (the MCP Inspector runs in a browser).
//!
//! The guard answers CORS preflight requests itself, with `204` and the
//! headers of its [`CorsPolicy`]: a preflight carries no credentials by
//! design, so passing it to the inner service would hand it an
//! unauthenticated request. Actual requests from an allowed origin get
//! `Access-Control-Allow-Origin` and `Access-Control-Expose-Headers` on the
//! guard's answers and on the inner service's.
//!
//! A CORS layer of your own (tower-http's `CorsLayer`) placed *outside* the
//! guard answers preflights before the guard sees them; the guard then
//! leaves the headers it set alone.

use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, HeaderMap, HeaderValue, ORIGIN, VARY,
};
use http::{Method, Request, Response, StatusCode};

use crate::error::ConfigError;

/// The headers a browser client must be able to read on guarded responses.
pub(crate) const EXPOSE_HEADERS: HeaderValue =
    HeaderValue::from_static("WWW-Authenticate, Mcp-Session-Id, DPoP-Nonce");

const ALLOW_METHODS: HeaderValue = HeaderValue::from_static("GET, POST, DELETE, OPTIONS");
const ANY: HeaderValue = HeaderValue::from_static("*");
const DEFAULT_ALLOW_HEADERS: HeaderValue = HeaderValue::from_static(
    "Authorization, DPoP, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Mcp-Method, Mcp-Name, Last-Event-ID",
);

/// Which browser origins may call the guarded server.
///
/// Bearer tokens travel in a header the page's script sets, never in
/// cookies, so allowing any origin does not expose a user's credentials to
/// other sites: that is the default. Restrict it to name the web clients
/// you support.
///
/// ```
/// use mcp_resource_guard::CorsPolicy;
///
/// let only_ours = CorsPolicy::origins(["https://app.example.com"]);
/// # let _ = only_ours;
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CorsPolicy {
    /// `Access-Control-Allow-Origin: *`. The default.
    #[default]
    AnyOrigin,
    /// Only these origins (`scheme://host[:port]`, compared exactly); the
    /// response echoes the request's origin, with `Vary: Origin`.
    Origins(Vec<String>),
    /// No CORS headers at all: browsers on other origins cannot read the
    /// answers. Preflights are still answered by the guard (`204`, no
    /// headers), never passed on.
    Disabled,
}

impl CorsPolicy {
    /// Only these origins.
    pub fn origins<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::Origins(origins.into_iter().map(Into::into).collect())
    }

    /// Checks the origins: `scheme://host[:port]`, no path, no trailing slash.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let Self::Origins(list) = self else {
            return Ok(());
        };
        if list.is_empty() {
            return Err(ConfigError::InvalidOrigin {
                origin: String::new(),
                reason: "list at least one origin, or use CorsPolicy::Disabled",
            });
        }
        for o in list {
            let bad = |reason| ConfigError::InvalidOrigin {
                origin: o.clone(),
                reason,
            };
            let url = url::Url::parse(o).map_err(|_| bad("not an absolute URL"))?;
            if url.origin().ascii_serialization() != *o {
                return Err(bad(
                    "an origin is scheme://host[:port], lowercase, without a path or a trailing slash",
                ));
            }
        }
        Ok(())
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`,
    /// if that origin is allowed.
    fn allow_origin(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        match self {
            Self::AnyOrigin => Some(ANY),
            Self::Origins(list) => list
                .iter()
                .any(|o| o.as_bytes() == origin.as_bytes())
                .then(|| origin.clone()),
            Self::Disabled => None,
        }
    }

    /// Adds the CORS headers of an actual (non-preflight) response to a
    /// request from `origin`, leaving headers an inner layer set alone.
    pub(crate) fn decorate(&self, origin: &HeaderValue, headers: &mut HeaderMap) {
        let Some(allow) = self.allow_origin(origin) else {
            return;
        };
        if headers.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN) {
            return;
        }
        if allow != ANY {
            headers.append(VARY, HeaderValue::from_static("Origin"));
        }
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        headers
            .entry(ACCESS_CONTROL_EXPOSE_HEADERS)
            .or_insert(EXPOSE_HEADERS);
    }

    /// The guard's answer to a preflight.
    pub(crate) fn preflight<B: Default>(&self, headers: &HeaderMap) -> Response<B> {
        let mut res = Response::new(B::default());
        *res.status_mut() = StatusCode::NO_CONTENT;
        let Some(origin) = headers.get(ORIGIN) else {
            return res;
        };
        let Some(allow) = self.allow_origin(origin) else {
            return res;
        };
        let h = res.headers_mut();
        if allow != ANY {
            h.insert(VARY, HeaderValue::from_static("Origin"));
        }
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        h.insert(ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS);
        // Mirror what the page asks for (custom MCP headers included);
        // credentials are never cookies, so no header is dangerous to allow.
        let requested = headers
            .get(ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned()
            .unwrap_or(DEFAULT_ALLOW_HEADERS);
        h.insert(ACCESS_CONTROL_ALLOW_HEADERS, requested);
        h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
        res
    }
}

/// `true` for a CORS preflight: `OPTIONS` with `Access-Control-Request-Method`.
pub(crate) fn is_preflight<B>(req: &Request<B>) -> bool {
    req.method() == Method::OPTIONS && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn origins_are_checked() {
        assert!(CorsPolicy::AnyOrigin.check().is_ok());
        assert!(
            CorsPolicy::origins(["https://app.example.com"])
                .check()
                .is_ok()
        );
        assert!(
            CorsPolicy::origins(["http://localhost:6274"])
                .check()
                .is_ok()
        );
        for bad in [
            "https://app.example.com/",
            "https://app.example.com/x",
            "HTTPS://APP.example.com",
            "app.example.com",
            "",
        ] {
            assert!(CorsPolicy::origins([bad]).check().is_err(), "{bad}");
        }
        assert!(CorsPolicy::origins(Vec::<String>::new()).check().is_err());
    }

    #[test]
    fn preflight_answers() {
        let req = headers(&[
            ("origin", "https://app.example.com"),
            ("access-control-request-headers", "authorization, mcp-name"),
        ]);
        let r: Response<String> = CorsPolicy::AnyOrigin.preflight(&req);
        assert_eq!(r.status(), 204);
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        assert_eq!(
            r.headers()["access-control-allow-headers"],
            "authorization, mcp-name"
        );
        let only = CorsPolicy::origins(["https://app.example.com"]);
        let r: Response<String> = only.preflight(&req);
        assert_eq!(
            r.headers()["access-control-allow-origin"],
            "https://app.example.com"
        );
        assert_eq!(r.headers()["vary"], "Origin");
        let other = headers(&[("origin", "https://evil.example")]);
        let r: Response<String> = only.preflight(&other);
        assert_eq!(r.status(), 204);
        assert!(r.headers().is_empty());
        let r: Response<String> = CorsPolicy::Disabled.preflight(&req);
        assert!(r.headers().is_empty());
    }
}
