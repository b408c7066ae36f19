//! Configuration values: algorithms, token and challenge policies, scope names.

use std::fmt;

use crate::error::ConfigError;

/// `*` matches any run of characters (including none); everything else is literal.
pub(crate) fn glob(pattern: &str, s: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = s.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
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
        if s == "offline_access" {
            // MCP: servers SHOULD NOT list it; a resource never needs it.
            return Err(ConfigError::OfflineAccess);
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
#[non_exhaustive]
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
#[non_exhaustive]
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
        assert_eq!(
            check_scopes(["a", "offline_access"]),
            Err(ConfigError::OfflineAccess)
        );
    }

    #[test]
    fn globs() {
        assert!(glob("admin_*", "admin_delete"));
        assert!(glob("admin_*", "admin_"));
        assert!(!glob("admin_*", "xadmin_"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "a-b-c"));
        assert!(!glob("a*b*c", "a-c-b"));
        assert!(glob(
            "mcp:exec:functions.*",
            "mcp:exec:functions.delete_todo"
        ));
        assert!(!glob("exact", "exactly"));
        assert!(glob("*.txt", "file.txt"));
        assert!(!glob("ab*ba", "aba"));
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
