//! [`TrustedIssuers`]: the authorization servers a client's credentials
//! were registered at, and so the only ones they are ever sent to.

use std::fmt;
use std::sync::Arc;

use super::token::ClientError;
use crate::error::ConfigError;
use crate::guard::resource::{check_web_url, is_loopback};

/// The issuers (RFC 8414 issuer identifiers) a client secret, a signing
/// key or a workload assertion may be presented to.
///
/// A server's metadata names the authorization server to use; a malicious
/// or compromised server can name itself. Before any credential leaves,
/// the discovered issuer must be one of these, compared exactly (scheme,
/// host, port and path, as RFC 8414 §3.3 compares issuers), else
/// [`ClientError::UntrustedAuthorizationServer`].
///
/// ```
/// use mcp_resource_guard::client::TrustedIssuers;
///
/// let trusted = TrustedIssuers::parse("https://auth.example.com, https://login.example.org/tenant")?;
/// assert!(trusted.contains("https://auth.example.com"));
/// assert!(!trusted.contains("https://mcp.example.com"));
/// # Ok::<(), mcp_resource_guard::ConfigError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TrustedIssuers {
    issuers: Arc<[String]>,
    /// `dangerous::trust_any_loopback_issuer`: conformance harnesses only.
    any_loopback: bool,
}

impl fmt::Debug for TrustedIssuers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        list.entries(self.issuers.iter());
        if self.any_loopback {
            list.entry(&"[any loopback issuer]");
        }
        list.finish()
    }
}

impl TrustedIssuers {
    /// These issuers, each an `https` URL (`http` only on a loopback host).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidIssuer`] for an issuer that is not such a URL
    /// or carries a query or fragment; [`ConfigError::OutOfRange`] for an
    /// empty list.
    pub fn new<I, S>(issuers: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let issuers: Vec<String> = issuers.into_iter().map(Into::into).collect();
        if issuers.is_empty() {
            return Err(ConfigError::OutOfRange {
                setting: "trusted issuers",
                reason: "at least one issuer",
            });
        }
        for issuer in &issuers {
            let url = url::Url::parse(issuer).map_err(|_| ConfigError::InvalidIssuer {
                issuer: issuer.clone(),
                reason: "not a URL",
            })?;
            check_web_url(&url, false).map_err(|reason| ConfigError::InvalidIssuer {
                issuer: issuer.clone(),
                reason,
            })?;
            if url.query().is_some() || url.fragment().is_some() {
                return Err(ConfigError::InvalidIssuer {
                    issuer: issuer.clone(),
                    reason: "an issuer has no query or fragment (RFC 8414 §2)",
                });
            }
        }
        Ok(Self {
            issuers: issuers.into(),
            any_loopback: false,
        })
    }

    /// A comma-separated list (an environment variable such as
    /// `AGENT_ISSUER`), blanks around the commas ignored.
    ///
    /// # Errors
    ///
    /// As for [`new`](Self::new).
    pub fn parse(list: &str) -> Result<Self, ConfigError> {
        Self::new(
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        )
    }

    /// Whether `issuer` is one of them (exact comparison).
    pub fn contains(&self, issuer: &str) -> bool {
        self.issuers.iter().any(|i| i == issuer)
            || (self.any_loopback
                && url::Url::parse(issuer)
                    .ok()
                    .is_some_and(|u| is_loopback(&u) && check_web_url(&u, false).is_ok()))
    }

    /// The first of `candidates` (a server's `authorization_servers`, in
    /// its order of preference) that is trusted.
    pub(crate) fn pick<'a>(&self, candidates: &'a [String]) -> Result<&'a str, ClientError> {
        candidates
            .iter()
            .find(|c| self.contains(c))
            .map(String::as_str)
            .ok_or_else(|| ClientError::UntrustedAuthorizationServer {
                issuer: candidates.join(" "),
            })
    }

    /// See [`dangerous::trust_any_loopback_issuer`](crate::dangerous::trust_any_loopback_issuer).
    pub(crate) fn any_loopback() -> Self {
        Self {
            issuers: Arc::from(Vec::new()),
            any_loopback: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_compare_exactly() {
        let t =
            TrustedIssuers::parse("https://as.example.com/tenant, http://127.0.0.1:9000").unwrap();
        assert!(t.contains("https://as.example.com/tenant"));
        assert!(!t.contains("https://as.example.com/tenant/"));
        assert!(!t.contains("https://as.example.com"));
        assert!(!t.contains("https://AS.example.com/tenant"));
        assert!(t.contains("http://127.0.0.1:9000"));
        assert!(!t.contains("http://127.0.0.1:9001"));
        assert_eq!(
            t.pick(&["https://evil.example".to_owned()]),
            Err(ClientError::UntrustedAuthorizationServer {
                issuer: "https://evil.example".into()
            })
        );
        let candidates = [
            "https://evil.example".to_owned(),
            "http://127.0.0.1:9000".to_owned(),
        ];
        assert_eq!(t.pick(&candidates), Ok("http://127.0.0.1:9000"));
        assert!(t.pick(&candidates[..1]).is_err());
    }

    #[test]
    fn only_web_urls_are_accepted() {
        assert!(TrustedIssuers::parse("").is_err());
        assert!(TrustedIssuers::parse("http://as.example.com").is_err());
        assert!(TrustedIssuers::parse("https://as.example.com?x=1").is_err());
        assert!(TrustedIssuers::parse("as.example.com").is_err());
    }

    #[test]
    fn the_loopback_escape_trusts_loopback_only() {
        let t = TrustedIssuers::any_loopback();
        assert!(t.contains("http://localhost:4000"));
        assert!(t.contains("http://127.0.0.1:4000/tenant1"));
        assert!(!t.contains("https://as.example.com"));
        assert!(!t.contains("http://10.0.0.1"));
    }
}
