//! The HTTP fetching behind remote key sources: a small trait and its
//! reqwest implementation.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use super::KeySourceError;
#[cfg(feature = "reqwest")]
use crate::guard::resource::is_loopback;

/// What a fetch returned: the status, the caching headers, the body.
///
/// ```
/// use mcp_resource_guard::jwks::HttpResponse;
///
/// let r = HttpResponse::new(200, br#"{"keys":[]}"#.to_vec()).cache_control("max-age=600");
/// assert_eq!(r.cache_control.as_deref(), Some("max-age=600"));
/// ```
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The `Cache-Control` header, if any.
    pub cache_control: Option<String>,
    /// The `Expires` header, if any.
    pub expires: Option<String>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The `DPoP-Nonce` header (RFC 9449 §8), if any.
    pub dpop_nonce: Option<String>,
    /// The body (at most the requested number of bytes).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with this status and body, without caching headers.
    pub fn new(status: u16, body: Vec<u8>) -> Self {
        Self {
            status,
            cache_control: None,
            expires: None,
            content_type: None,
            dpop_nonce: None,
            body,
        }
    }

    /// The same response with this `DPoP-Nonce` header.
    #[must_use]
    pub fn dpop_nonce(mut self, value: impl Into<String>) -> Self {
        self.dpop_nonce = Some(value.into());
        self
    }

    /// The same response with this `Content-Type` header.
    #[must_use]
    pub fn content_type(mut self, value: impl Into<String>) -> Self {
        self.content_type = Some(value.into());
        self
    }

    /// The same response with this `Cache-Control` header.
    #[must_use]
    pub fn cache_control(mut self, value: impl Into<String>) -> Self {
        self.cache_control = Some(value.into());
        self
    }

    /// The same response with this `Expires` header.
    #[must_use]
    pub fn expires(mut self, value: impl Into<String>) -> Self {
        self.expires = Some(value.into());
        self
    }
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("cache_control", &self.cache_control)
            .field("expires", &self.expires)
            .field("content_type", &self.content_type)
            .field("dpop_nonce", &self.dpop_nonce)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Fetches a URL with `GET`. Implement it to use another HTTP client, or in tests.
///
/// Implementations must not follow redirects to non-`https` URLs (loopback
/// excepted) nor from `https` to `http` at all, must stop reading after
/// `max_bytes` (and fail), and should time out; the key source also wraps
/// every call in its own total timeout.
#[async_trait]
pub trait HttpFetch: fmt::Debug + Send + Sync + 'static {
    /// Fetches `url`, failing when the body exceeds `max_bytes`.
    ///
    /// # Errors
    ///
    /// When the request fails, times out, or the body exceeds `max_bytes`.
    /// A non-200 status is not an error: it is returned in the response.
    async fn get(&self, url: &str, max_bytes: usize) -> Result<HttpResponse, KeySourceError>;

    /// POSTs `form` (`application/x-www-form-urlencoded`) to `url` with these
    /// extra headers (e.g. `Authorization` for client authentication),
    /// failing when the body exceeds `max_bytes`. Used for token
    /// introspection (RFC 7662). Implementations must not follow redirects:
    /// the form and headers carry credentials.
    ///
    /// The default implementation refuses: an `HttpFetch` that only fetches
    /// keys need not implement it.
    ///
    /// # Errors
    ///
    /// When the request fails, times out, or the body exceeds `max_bytes`.
    /// A non-200 status is not an error: it is returned in the response.
    async fn post_form(
        &self,
        url: &str,
        headers: &[(http::HeaderName, http::HeaderValue)],
        form: &[(&str, &str)],
        max_bytes: usize,
    ) -> Result<HttpResponse, KeySourceError> {
        let _ = (url, headers, form, max_bytes);
        Err(KeySourceError::new(
            "this HttpFetch cannot POST: implement HttpFetch::post_form",
        ))
    }

    /// POSTs `body` as `application/json` to `url` (RFC 7591 dynamic client
    /// registration), failing when the answer exceeds `max_bytes`.
    /// Implementations must not follow redirects.
    ///
    /// The default implementation refuses.
    ///
    /// # Errors
    ///
    /// When the request fails, times out, or the body exceeds `max_bytes`.
    /// A non-2xx status is not an error: it is returned in the response.
    async fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
        max_bytes: usize,
    ) -> Result<HttpResponse, KeySourceError> {
        let _ = (url, body, max_bytes);
        Err(KeySourceError::new(
            "this HttpFetch cannot POST JSON: implement HttpFetch::post_json",
        ))
    }
}

/// A shared fetcher is a fetcher (one client for keys, introspection and
/// token requests).
#[async_trait]
impl<T: HttpFetch + ?Sized> HttpFetch for std::sync::Arc<T> {
    async fn get(&self, url: &str, max_bytes: usize) -> Result<HttpResponse, KeySourceError> {
        (**self).get(url, max_bytes).await
    }

    async fn post_form(
        &self,
        url: &str,
        headers: &[(http::HeaderName, http::HeaderValue)],
        form: &[(&str, &str)],
        max_bytes: usize,
    ) -> Result<HttpResponse, KeySourceError> {
        (**self).post_form(url, headers, form, max_bytes).await
    }

    async fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
        max_bytes: usize,
    ) -> Result<HttpResponse, KeySourceError> {
        (**self).post_json(url, body, max_bytes).await
    }
}

/// [`HttpFetch`] on reqwest (feature `reqwest`, on by default).
#[cfg(feature = "reqwest")]
#[derive(Debug, Clone)]
pub struct ReqwestFetch {
    client: reqwest::Client,
    /// For POSTs, which carry credentials: never follows a redirect.
    poster: reqwest::Client,
}

/// At most this many redirects are followed.
#[cfg(feature = "reqwest")]
pub(crate) const MAX_REDIRECTS: usize = 3;

#[cfg(feature = "reqwest")]
impl ReqwestFetch {
    /// A client with a 5 s connect timeout, a 10 s total timeout, at most
    /// 3 redirects, none to a non-`https` URL (loopback
    /// excepted) and none from `https` to `http` (not even loopback).
    ///
    /// # Errors
    ///
    /// [`ConfigError::HttpClient`](crate::ConfigError::HttpClient) when
    /// reqwest cannot build its client (no TLS roots, say).
    pub fn new() -> Result<Self, crate::ConfigError> {
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            match redirect_allowed(attempt.previous(), attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(why) => attempt.error(why),
            }
        });
        let build = |policy| {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(10))
                .redirect(policy)
                .build()
                .map_err(|e| crate::ConfigError::HttpClient {
                    reason: e.to_string(),
                })
        };
        Ok(Self {
            client: build(redirects)?,
            poster: build(reqwest::redirect::Policy::none())?,
        })
    }

    /// Uses your own client (a proxy, a private CA). Configure its timeouts
    /// and redirect policy yourself; the key source still applies its own
    /// total timeout and size cap.
    /// Introspection POSTs use it too: give it a redirect policy that
    /// follows none (`reqwest::redirect::Policy::none()`) if it serves them.
    pub fn with_client(client: reqwest::Client) -> Self {
        Self {
            poster: client.clone(),
            client,
        }
    }
}

#[cfg(feature = "reqwest")]
#[async_trait]
impl HttpFetch for ReqwestFetch {
    async fn get(&self, url: &str, max_bytes: usize) -> Result<HttpResponse, KeySourceError> {
        let resp = self
            .client
            .get(url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| KeySourceError::with_source("request failed", e))?;
        read_limited(resp, max_bytes).await
    }

    async fn post_form(
        &self,
        url: &str,
        headers: &[(http::HeaderName, http::HeaderValue)],
        form: &[(&str, &str)],
        max_bytes: usize,
    ) -> Result<HttpResponse, KeySourceError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut req = self
            .poster
            .post(url)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        for (name, value) in headers {
            req = req.header(name, value);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| KeySourceError::with_source("request failed", e.without_url()))?;
        read_limited(resp, max_bytes).await
    }

    async fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
        max_bytes: usize,
    ) -> Result<HttpResponse, KeySourceError> {
        let resp = self
            .poster
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| KeySourceError::with_source("request failed", e.without_url()))?;
        read_limited(resp, max_bytes).await
    }
}

/// The status, caching headers and at most `max_bytes` of the body.
#[cfg(feature = "reqwest")]
async fn read_limited(
    mut resp: reqwest::Response,
    max_bytes: usize,
) -> Result<HttpResponse, KeySourceError> {
    let header = |name| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let cache_control = header(http::header::CACHE_CONTROL);
    let expires = header(http::header::EXPIRES);
    let content_type = header(http::header::CONTENT_TYPE);
    let dpop_nonce = header(http::HeaderName::from_static("dpop-nonce"));
    let status = resp.status().as_u16();
    if resp.content_length().is_some_and(|l| l > max_bytes as u64) {
        return Err(KeySourceError::new("response exceeds the size limit"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| KeySourceError::with_source("reading the response failed", e))?
    {
        if body.len() + chunk.len() > max_bytes {
            return Err(KeySourceError::new("response exceeds the size limit"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpResponse {
        status,
        cache_control,
        expires,
        content_type,
        dpop_nonce,
        body,
    })
}

/// Whether a fetch that went through `previous` may follow a redirect to
/// `next`: at most [`MAX_REDIRECTS`], never from `https` to `http` (not even
/// on a loopback host), never to a non-`https` URL except on a loopback host.
#[cfg(feature = "reqwest")]
fn redirect_allowed(previous: &[url::Url], next: &url::Url) -> Result<(), &'static str> {
    if previous.len() > MAX_REDIRECTS {
        return Err("too many redirects");
    }
    if next.scheme() != "https" {
        if previous.iter().any(|u| u.scheme() == "https") {
            return Err("redirect from https to http");
        }
        if !is_loopback(next) {
            return Err("redirect to a non-https URL");
        }
    }
    Ok(())
}

/// Reads a freshness lifetime from `Cache-Control: max-age` (preferred) or
/// `Expires` (against `now`, seconds since the Unix epoch). `no-store` /
/// `no-cache` give zero (the caller clamps it up).
pub(crate) fn freshness(resp: &HttpResponse, now_unix: u64) -> Option<Duration> {
    if let Some(cc) = &resp.cache_control {
        let mut max_age = None;
        for directive in cc.split(',') {
            let d = directive.trim();
            let lower = d.to_ascii_lowercase();
            if lower == "no-store" || lower == "no-cache" {
                return Some(Duration::ZERO);
            }
            if let Some(v) = lower.strip_prefix("max-age=") {
                max_age = v
                    .trim_matches('"')
                    .parse::<u64>()
                    .ok()
                    .map(Duration::from_secs);
            }
        }
        if max_age.is_some() {
            return max_age;
        }
    }
    let expires = resp.expires.as_deref()?;
    let at = httpdate::parse_http_date(expires)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        // An unparsable Expires means "already expired" (RFC 9111 §5.3).
        .map_or(0, |d| d.as_secs());
    Some(Duration::from_secs(at.saturating_sub(now_unix)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(cc: Option<&str>, expires: Option<&str>) -> HttpResponse {
        HttpResponse {
            status: 200,
            cache_control: cc.map(str::to_owned),
            expires: expires.map(str::to_owned),
            content_type: None,
            dpop_nonce: None,
            body: vec![],
        }
    }

    #[cfg(feature = "reqwest")]
    #[test]
    fn redirects_never_downgrade_from_https() {
        let u = |s: &str| url::Url::parse(s).unwrap();
        let https = u("https://as.example.com/jwks");
        let local = u("http://127.0.0.1:9/jwks");
        assert_eq!(
            redirect_allowed(
                std::slice::from_ref(&https),
                &u("https://cdn.example.com/k")
            ),
            Ok(())
        );
        assert_eq!(
            redirect_allowed(std::slice::from_ref(&local), &u("http://localhost:9/k")),
            Ok(())
        );
        assert_eq!(
            redirect_allowed(std::slice::from_ref(&https), &local),
            Err("redirect from https to http")
        );
        assert_eq!(
            redirect_allowed(&[local.clone(), https], &u("http://127.0.0.1:9/again")),
            Err("redirect from https to http")
        );
        assert_eq!(
            redirect_allowed(std::slice::from_ref(&local), &u("http://as.example.com/k")),
            Err("redirect to a non-https URL")
        );
        let many = vec![local; MAX_REDIRECTS + 1];
        assert_eq!(
            redirect_allowed(&many, &u("https://a.example/")),
            Err("too many redirects")
        );
    }

    #[test]
    fn freshness_headers() {
        let s = Duration::from_secs;
        assert_eq!(freshness(&resp(Some("max-age=600"), None), 0), Some(s(600)));
        assert_eq!(
            freshness(&resp(Some("public, Max-Age=60"), None), 0),
            Some(s(60))
        );
        assert_eq!(freshness(&resp(Some("no-store"), None), 0), Some(s(0)));
        assert_eq!(freshness(&resp(Some("public"), None), 0), None);
        assert_eq!(freshness(&resp(None, None), 0), None);
        assert_eq!(freshness(&resp(Some("max-age=x"), None), 0), None);
        // Sun, 06 Nov 1994 08:49:37 GMT = 784111777
        let exp = Some("Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(freshness(&resp(None, exp), 784111777 - 100), Some(s(100)));
        assert_eq!(freshness(&resp(None, exp), 784111777 + 100), Some(s(0)));
        assert_eq!(freshness(&resp(None, Some("0")), 5), Some(s(0)));
        assert_eq!(freshness(&resp(Some("max-age=30"), exp), 0), Some(s(30)));
    }
}
