//! [`AuthorizationServerMetadata`]: what an authorization server publishes
//! (RFC 8414 / OpenID Connect Discovery), found in the order the MCP
//! authorization chapter gives and checked against the issuer asked for.

use serde::Deserialize;

use super::token::ClientError;
use crate::guard::resource::is_web_url;
use crate::jwks::HttpFetch;
use crate::jwks::fetch_metadata;

/// The largest metadata document read.
pub(crate) const MAX_DOC: usize = 64 * 1024;

/// The parts of an authorization server's metadata a client uses.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct AuthorizationServerMetadata {
    /// The issuer identifier: equal to the one discovery started from.
    pub(crate) issuer: String,
    /// Where a person authorizes the client (authorization code flow).
    #[serde(default)]
    pub(crate) authorization_endpoint: Option<String>,
    /// Where tokens come from.
    pub(crate) token_endpoint: String,
    /// RFC 7591 dynamic client registration, if offered.
    #[serde(default)]
    pub(crate) registration_endpoint: Option<String>,
    /// The scopes the server knows.
    #[serde(default)]
    pub(crate) scopes_supported: Vec<String>,
    /// PKCE methods (`S256` is required by the MCP specification).
    #[serde(default)]
    pub(crate) code_challenge_methods_supported: Vec<String>,
    /// Client authentication methods at the token endpoint.
    #[serde(default)]
    pub(crate) token_endpoint_auth_methods_supported: Vec<String>,
    /// Grant types the server accepts.
    #[serde(default)]
    pub(crate) grant_types_supported: Vec<String>,
    /// Client ID metadata documents (a URL as `client_id`) are accepted.
    #[serde(default)]
    pub(crate) client_id_metadata_document_supported: bool,
    /// RFC 9207: the authorization response carries `iss`.
    #[serde(default)]
    pub(crate) authorization_response_iss_parameter_supported: bool,
    /// RFC 9449 §5.1: DPoP proof algorithms the server accepts.
    #[serde(default)]
    pub(crate) dpop_signing_alg_values_supported: Vec<String>,
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
    pub(crate) async fn discover(
        fetcher: &dyn HttpFetch,
        issuer: &str,
    ) -> Result<Self, ClientError> {
        let err = |s: String| ClientError::Discovery(s);
        if !is_web_url(issuer) {
            return Err(err(format!(
                "the authorization server {issuer:?} is not an https URL"
            )));
        }
        let (_, meta): (_, Self) = fetch_metadata(fetcher, issuer, MAX_DOC)
            .await
            .map_err(|e| err(e.to_string()))?;
        let endpoints = std::iter::once(&meta.token_endpoint)
            .chain(&meta.authorization_endpoint)
            .chain(&meta.registration_endpoint);
        for e in endpoints {
            if !is_web_url(e) {
                return Err(err(format!(
                    "the metadata of {issuer} names the endpoint {e:?}, which is not an https URL"
                )));
            }
        }
        Ok(meta)
    }
}

#[cfg(all(test, feature = "reqwest"))]
mod https_tests {
    use super::*;

    #[tokio::test]
    async fn an_authorization_server_over_plain_http_is_refused_before_any_fetch() {
        let fetch = crate::jwks::ReqwestFetch::new().unwrap();
        let e = AuthorizationServerMetadata::discover(&fetch, "http://as.example.com")
            .await
            .unwrap_err();
        assert_eq!(
            e,
            ClientError::Discovery(
                "the authorization server \"http://as.example.com\" is not an https URL".into()
            )
        );
    }
}
