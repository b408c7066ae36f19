//! Configuration values: the canonical resource URL, algorithms, policies.

use std::fmt;

use crate::error::ConfigError;

/// The well-known path suffix of RFC 9728 protected-resource metadata.
pub const WELL_KNOWN_PATH: &str = "/.well-known/oauth-protected-resource";

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

/// `true` when `s` is a valid RFC 6750 scope token: `1*( %x21 / %x23-5B / %x5D-7E )`.
pub(crate) fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

pub(crate) fn check_scopes<I, S>(scopes: I) -> Result<Vec<String>, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut out: Vec<String> = Vec::new();
    for s in scopes {
        let s = s.into();
        if !is_scope_token(&s) {
            return Err(ConfigError::InvalidScope { scope: s });
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

/// A JWS signature algorithm the guard accepts.
///
/// Only asymmetric algorithms exist here: `none` and the HMAC family cannot be
/// configured, so a token signed with a public key used as an HMAC secret
/// (algorithm confusion) can never verify.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(clippy::upper_case_acronyms)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// EdDSA on Ed25519.
    EdDSA,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 9] = [
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::EdDSA,
    ];

    /// The JOSE name, e.g. `"RS256"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
        }
    }

    /// Parses a JOSE name, case-sensitively (RFC 7515 §4.1.1). `none` and
    /// `HS*` give `None`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// `true` for the RSA family (RS* and PS*).
    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512
        )
    }

    pub(crate) fn bit(self) -> u16 {
        1 << (self as u16)
    }

    #[cfg(not(feature = "aws-lc-rs"))]
    pub(crate) fn to_jwt(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as J;
        match self {
            Self::RS256 => J::RS256,
            Self::RS384 => J::RS384,
            Self::RS512 => J::RS512,
            Self::PS256 => J::PS256,
            Self::PS384 => J::PS384,
            Self::PS512 => J::PS512,
            Self::ES256 => J::ES256,
            Self::ES384 => J::ES384,
            Self::EdDSA => J::EdDSA,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A small set of [`Algorithm`]s.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct AlgSet(u16);

impl AlgSet {
    pub(crate) const ALL: AlgSet = AlgSet((1 << Algorithm::ALL.len()) - 1);

    pub(crate) fn contains(self, a: Algorithm) -> bool {
        self.0 & a.bit() != 0
    }
    pub(crate) fn insert(&mut self, a: Algorithm) {
        self.0 |= a.bit();
    }
    #[cfg(test)]
    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub(crate) fn iter(self) -> impl Iterator<Item = Algorithm> {
        Algorithm::ALL
            .into_iter()
            .filter(move |a| self.contains(*a))
    }
}

impl FromIterator<Algorithm> for AlgSet {
    fn from_iter<T: IntoIterator<Item = Algorithm>>(iter: T) -> Self {
        let mut s = AlgSet::default();
        for a in iter {
            s.insert(a);
        }
        s
    }
}

impl fmt::Debug for AlgSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Which JOSE `typ` header values are accepted.
///
/// RFC 9068 §4 requires access tokens to carry `typ: at+jwt` so that other JWTs
/// (ID tokens above all) cannot be replayed as access tokens. Several real
/// issuers (Auth0, Keycloak, Microsoft Entra ID) still send `JWT`.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TypPolicy {
    /// `at+jwt` or `application/at+jwt`, case-insensitive (RFC 9068 §4). The default.
    #[default]
    AccessTokenOnly,
    /// Also accept `JWT` and a missing `typ`, for issuers that do not send
    /// `at+jwt`. To keep OIDC ID tokens out, a token carrying a `nonce` claim
    /// (which access tokens never have) is rejected in this mode; the audience
    /// check does the rest.
    AllowJwt,
}

/// Where the granted scopes are read from in the token's claims.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ScopeClaim {
    /// The first present of `scope` (RFC 9068: space-separated string), `scp`
    /// (Okta, Entra: string or array), `scopes` and `permissions` (arrays).
    /// The default.
    #[default]
    Auto,
    /// One named claim, holding a space-separated string or an array of strings.
    Named(String),
}

impl ScopeClaim {
    /// A named claim.
    pub fn named(name: impl Into<String>) -> Self {
        Self::Named(name.into())
    }
}

/// Whether a request without credentials may pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Every request needs a valid token. The default.
    #[default]
    Required,
    /// A request without an `Authorization` header (or with a non-Bearer one)
    /// passes with no [`AuthContext`](crate::AuthContext); a Bearer token that
    /// is sent must still be valid.
    Optional,
}

/// How challenges are worded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChallengeMode {
    /// Exactly RFC 6750 §3.1: no `error` parameter when no credentials were
    /// sent. The default.
    #[default]
    Rfc6750,
    /// Always send `error="invalid_token"` on 401, as the TypeScript and
    /// Python MCP SDKs do, for clients that expect it.
    AlwaysInvalidToken,
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

    #[test]
    fn scope_tokens() {
        assert!(is_scope_token("todo:read"));
        assert!(is_scope_token("mcp:exec:functions.*"));
        for bad in ["", "a b", "a\"b", "a\\b", "é", "a\nb"] {
            assert!(!is_scope_token(bad), "{bad:?}");
        }
        assert_eq!(
            check_scopes(["a", "b", "a"]).unwrap(),
            vec!["a".to_string(), "b".to_string()]
        );
    }

    #[test]
    fn algorithms() {
        assert_eq!(Algorithm::from_name("RS256"), Some(Algorithm::RS256));
        for bad in ["none", "None", "NONE", "HS256", "rs256", ""] {
            assert_eq!(Algorithm::from_name(bad), None, "{bad}");
        }
        let s: AlgSet = [Algorithm::ES256, Algorithm::EdDSA].into_iter().collect();
        assert!(s.contains(Algorithm::ES256) && !s.contains(Algorithm::RS256));
        assert_eq!(AlgSet::ALL.iter().count(), 9);
    }
}
