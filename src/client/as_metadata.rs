//! [`AuthorizationServerMetadata`]: what an authorization server publishes
//! (RFC 8414 / OpenID Connect Discovery), found in the order the MCP
//! authorization chapter gives and checked against the issuer asked for.

use serde::Deserialize;

use super::token::ClientError;
use crate::jwks::HttpFetch;
use crate::resource::check_web_url;

/// The largest metadata document read.
pub(crate) const MAX_DOC: usize = 64 * 1024;

/// The parts of an authorization server's metadata a client uses.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuthorizationServerMetadata {
    /// The issuer identifier: equal to the one discovery started from.
    pub issuer: String,
    /// Where a person authorizes the client (authorization code flow).
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    /// Where tokens come from.
    pub token_endpoint: String,
    /// RFC 7591 dynamic client registration, if offered.
    #[serde(default)]
    pub registration_endpoint: Option<String>,
    /// The scopes the server knows.
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// PKCE methods (`S256` is required by the MCP specification).
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    /// Client authentication methods at the token endpoint.
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Grant types the server accepts.
    #[serde(default)]
    pub grant_types_supported: Vec<String>,
    /// Client ID metadata documents (a URL as `client_id`) are accepted.
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
    /// RFC 9207: the authorization response carries `iss`.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// RFC 9449 §5.1: DPoP proof algorithms the server accepts.
    #[serde(default)]
    pub dpop_signing_alg_values_supported: Vec<String>,
}

fn web_url(url: &str) -> bool {
    url::Url::parse(url)
        .ok()
        .is_some_and(|u| check_web_url(&u, false).is_ok())
}

impl AuthorizationServerMetadata {
    /// Fetches the metadata of `issuer`: the first document found in the
    /// specification's order whose `issuer` is exactly `issuer` (RFC 8414
    /// §3.3). Redirects are not followed.
    ///
    /// # Errors
    ///
    /// [`ClientError::Discovery`] when no document is found, a document
    /// names another issuer (discovery stops there: the server is
    /// misconfigured or impersonated), or an endpoint is not `https`
    /// (`http` only on loopback hosts).
    pub async fn discover(fetcher: &dyn HttpFetch, issuer: &str) -> Result<Self, ClientError> {
        let err = |s: String| ClientError::Discovery(s);
        let parsed = url::Url::parse(issuer)
            .ok()
            .filter(|u| check_web_url(u, false).is_ok())
            .ok_or_else(|| {
                err(format!(
                    "the authorization server {issuer:?} is not an https URL"
                ))
            })?;
        let mut tried = Vec::new();
        for url in crate::jwks::discovery_urls(parsed.as_str()) {
            let resp = match fetcher.get(&url, MAX_DOC).await {
                Ok(r) if r.status == 200 => r,
                Ok(r) => {
                    tried.push(format!("{url} answered {}", r.status));
                    continue;
                }
                Err(e) => {
                    tried.push(format!("{url}: {e}"));
                    continue;
                }
            };
            let meta: Self = serde_json::from_slice(&resp.body).map_err(|_| {
                err(format!(
                    "{url} is not authorization server metadata (issuer and token_endpoint are required)"
                ))
            })?;
            if meta.issuer != issuer {
                return Err(err(format!(
                    "the metadata at {url} names issuer {:?}, not {issuer:?} (RFC 8414 §3.3): refusing to use it",
                    meta.issuer
                )));
            }
            let endpoints = std::iter::once(&meta.token_endpoint)
                .chain(&meta.authorization_endpoint)
                .chain(&meta.registration_endpoint);
            for e in endpoints {
                if !web_url(e) {
                    return Err(err(format!(
                        "the metadata of {issuer} names the endpoint {e:?}, which is not an https URL"
                    )));
                }
            }
            return Ok(meta);
        }
        Err(err(format!(
            "no authorization server metadata for {issuer}: {}",
            tried.join("; ")
        )))
    }
}
