//! The canonical resource URL and the URL checks shared by everything the
//! crate serves or fetches.

use std::fmt;

use crate::error::ConfigError;

/// The well-known path suffix of RFC 9728 protected-resource metadata.
pub(crate) const WELL_KNOWN_PATH: &str = "/.well-known/oauth-protected-resource";

/// The canonical URL of this protected resource (the MCP server), normalized
/// per the MCP specification.
///
/// One value drives everything that must agree: the metadata document's
/// `resource`, both metadata routes, `resource_metadata` in every challenge,
/// and the audience check. They cannot drift apart.
///
/// Normalization: scheme and host are lowercased, a default port is dropped, a
/// lone `/` path is removed (`https://h/` becomes `https://h`). A longer path
/// is kept exactly, trailing slash included, because it names a different
/// resource: configure the URL your clients use.
///
/// Rejected: relative URLs, schemes other than `https` (and `http` on a
/// loopback host: `localhost`, `127.0.0.0/8`, `[::1]`), user info, a query,
/// a fragment.
///
/// ```
/// use mcp_resource_guard::ResourceUrl;
///
/// let r = ResourceUrl::parse("HTTPS://MCP.Example.com:443/mcp").unwrap();
/// assert_eq!(r.as_str(), "https://mcp.example.com/mcp");
/// assert_eq!(
///     r.metadata_url(),
///     "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
/// );
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResourceUrl {
    canonical: String,
    /// Length of `scheme://authority` in `canonical`.
    origin_len: usize,
}

impl ResourceUrl {
    /// Parses and normalizes a resource URL.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MissingResource`] for an empty string;
    /// [`ConfigError::InvalidResource`] (with the reason) for anything the
    /// type's docs list as rejected.
    pub fn parse(input: &str) -> Result<Self, ConfigError> {
        Self::parse_inner(input, false)
    }

    pub(crate) fn parse_inner(input: &str, allow_http: bool) -> Result<Self, ConfigError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(ConfigError::MissingResource);
        }
        let bad = |reason| ConfigError::InvalidResource {
            url: input.to_owned(),
            reason,
        };
        if input.contains('#') {
            return Err(bad("a resource URL must not have a fragment"));
        }
        let url = url::Url::parse(input).map_err(|_| bad("not an absolute URL"))?;
        check_web_url(&url, allow_http).map_err(bad)?;
        if url.query().is_some() {
            return Err(bad("a resource URL must not have a query"));
        }
        // `check_web_url` proved there is a host.
        let host = url.host_str().unwrap_or_default();
        let mut canonical = format!("{}://{}", url.scheme(), host);
        if let Some(port) = url.port() {
            canonical.push(':');
            canonical.push_str(&port.to_string());
        }
        let origin_len = canonical.len();
        if url.path() != "/" {
            canonical.push_str(url.path());
        }
        Ok(Self {
            canonical,
            origin_len,
        })
    }

    /// The canonical URL, e.g. `https://mcp.example.com/mcp`.
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// The path part (empty for a resource at the root), e.g. `/mcp`.
    pub fn path(&self) -> &str {
        &self.canonical[self.origin_len..]
    }

    /// `scheme://host[:port]`.
    pub fn origin(&self) -> &str {
        &self.canonical[..self.origin_len]
    }

    /// The path of the metadata document with the well-known suffix inserted
    /// between host and path (RFC 9728 §3.1), e.g.
    /// `/.well-known/oauth-protected-resource/mcp`.
    pub fn metadata_path(&self) -> String {
        format!("{WELL_KNOWN_PATH}{}", self.path())
    }

    /// The absolute URL of the metadata document, sent as `resource_metadata`
    /// in challenges.
    pub fn metadata_url(&self) -> String {
        format!("{}{}", self.origin(), self.metadata_path())
    }
}

impl fmt::Debug for ResourceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ResourceUrl").field(&self.canonical).finish()
    }
}

impl fmt::Display for ResourceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

/// `true` for `localhost`, `127.0.0.0/8` and `::1`.
pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `url` parses and passes [`check_web_url`] (no plain-http exception).
pub(crate) fn is_web_url(url: &str) -> bool {
    url::Url::parse(url)
        .ok()
        .is_some_and(|u| check_web_url(&u, false).is_ok())
}

/// Common checks for every URL we serve or fetch: http(s), a host, no user
/// info, https unless loopback (or explicitly allowed).
pub(crate) fn check_web_url(url: &url::Url, allow_http: bool) -> Result<(), &'static str> {
    match url.scheme() {
        "https" => {}
        "http" if allow_http || is_loopback(url) => {}
        "http" => return Err("https is required (http is allowed only for loopback hosts)"),
        _ => return Err("the scheme must be https"),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("a host is required");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("user info is not allowed");
    }
    Ok(())
}

/// Validates an issuer identifier (RFC 8414 §2: https, no query, no
/// fragment). The string is kept exactly as given: `iss` is compared byte for byte.
pub(crate) fn check_issuer(issuer: &str) -> Result<(), ConfigError> {
    let bad = |reason| ConfigError::InvalidIssuer {
        issuer: issuer.to_owned(),
        reason,
    };
    if issuer.is_empty() {
        return Err(bad("the issuer is empty"));
    }
    if issuer.contains('#') {
        return Err(bad("an issuer must not have a fragment"));
    }
    if issuer.trim() != issuer {
        return Err(bad("an issuer must not have surrounding whitespace"));
    }
    let url = url::Url::parse(issuer).map_err(|_| bad("not an absolute URL"))?;
    check_web_url(&url, false).map_err(bad)?;
    if url.query().is_some() {
        return Err(bad("an issuer must not have a query"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_normalization() {
        let cases = [
            ("https://mcp.example.com/mcp", "https://mcp.example.com/mcp"),
            ("HTTPS://MCP.EXAMPLE.COM/mcp", "https://mcp.example.com/mcp"),
            ("https://mcp.example.com/", "https://mcp.example.com"),
            ("https://mcp.example.com", "https://mcp.example.com"),
            ("https://mcp.example.com:443/x", "https://mcp.example.com/x"),
            (
                "https://mcp.example.com:8443",
                "https://mcp.example.com:8443",
            ),
            ("https://h/v1/mcp/", "https://h/v1/mcp/"),
            ("https://h/CaSe", "https://h/CaSe"),
            ("http://127.0.0.1:3000/mcp", "http://127.0.0.1:3000/mcp"),
            ("http://LOCALHOST:3000/mcp", "http://localhost:3000/mcp"),
            ("http://[::1]:3000/mcp", "http://[::1]:3000/mcp"),
        ];
        for (input, want) in cases {
            assert_eq!(ResourceUrl::parse(input).unwrap().as_str(), want, "{input}");
        }
    }

    #[test]
    fn resource_rejections() {
        assert_eq!(ResourceUrl::parse(""), Err(ConfigError::MissingResource));
        for bad in [
            "mcp.example.com",
            "/mcp",
            "https://h/mcp#frag",
            "https://h/mcp?x=1",
            "http://mcp.example.com/mcp",
            "ftp://h/mcp",
            "https://user:pw@h/mcp",
        ] {
            assert!(
                matches!(
                    ResourceUrl::parse(bad),
                    Err(ConfigError::InvalidResource { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn metadata_urls() {
        let r = ResourceUrl::parse("https://h/v1/mcp").unwrap();
        assert_eq!(
            r.metadata_path(),
            "/.well-known/oauth-protected-resource/v1/mcp"
        );
        assert_eq!(
            r.metadata_url(),
            "https://h/.well-known/oauth-protected-resource/v1/mcp"
        );
        let r = ResourceUrl::parse("https://h").unwrap();
        assert_eq!(
            r.metadata_url(),
            "https://h/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn issuers() {
        assert!(check_issuer("https://as.example.com").is_ok());
        assert!(check_issuer("https://as.example.com/tenant/").is_ok());
        assert!(check_issuer("http://127.0.0.1:9000").is_ok());
        for bad in [
            "",
            "as.example.com",
            "http://as.example.com",
            "https://as.example.com?x",
            "https://as.example.com#x",
            " https://as.example.com",
        ] {
            assert!(check_issuer(bad).is_err(), "{bad:?}");
        }
    }
}
