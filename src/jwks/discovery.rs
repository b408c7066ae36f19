//! Finding an issuer's `jwks_uri`: RFC 8414, then OpenID Connect Discovery.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::KeySourceError;
use super::fetch::HttpFetch;
use crate::guard::resource::is_web_url;

/// The metadata URLs tried for `issuer`, in the order the MCP
/// authorization chapter gives: with a path, RFC 8414 §3.1 (the well-known
/// suffix inserted between host and path), OpenID Connect path-inserted,
/// then OpenID Connect Discovery 1.0 §4 (appended); without a path, RFC
/// 8414 then OpenID Connect at the root.
pub(crate) fn discovery_urls(issuer: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(issuer) else {
        return Vec::new();
    };
    let path = url.path().trim_end_matches('/');
    let origin = url.origin().ascii_serialization();
    if path.is_empty() {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server"),
            format!("{origin}/.well-known/openid-configuration"),
        ]
    } else {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
            format!("{origin}{path}/.well-known/openid-configuration"),
        ]
    }
}

#[derive(Deserialize)]
struct Metadata {
    jwks_uri: Option<String>,
    introspection_endpoint: Option<String>,
    token_endpoint: Option<String>,
}

/// Discovers the `jwks_uri` of `issuer`. The metadata's `issuer` must equal
/// `issuer` exactly (RFC 8414 §3.3).
pub(crate) async fn discover(
    fetcher: &dyn HttpFetch,
    issuer: &str,
    max_bytes: usize,
) -> Result<String, KeySourceError> {
    discover_field(fetcher, issuer, "jwks_uri", max_bytes).await
}

/// The first metadata document of `issuer` found in the specification's
/// order ([`discovery_urls`]), read as `T`, after checking that it names
/// `issuer` exactly (RFC 8414 §3.3; a document naming another issuer ends
/// discovery). Returns its URL with it.
pub(crate) async fn fetch_metadata<T: DeserializeOwned>(
    fetcher: &dyn HttpFetch,
    issuer: &str,
    max_bytes: usize,
) -> Result<(String, T), KeySourceError> {
    #[derive(Deserialize)]
    struct Names {
        issuer: Option<String>,
    }
    let mut last = KeySourceError::new(format!("discovery for issuer {issuer} found no metadata"));
    for url in discovery_urls(issuer) {
        let resp = match fetcher.get(&url, max_bytes).await {
            Ok(r) if r.status == 200 => r,
            Ok(r) => {
                last = KeySourceError::new(format!("discovery: {url} answered {}", r.status));
                continue;
            }
            Err(e) => {
                last = KeySourceError::with_source(format!("discovery: fetching {url} failed"), e);
                continue;
            }
        };
        let names: Names = serde_json::from_slice(&resp.body).map_err(|e| {
            KeySourceError::with_source(format!("discovery: {url} is not a JSON object"), e)
        })?;
        if names.issuer.as_deref() != Some(issuer) {
            return Err(KeySourceError::new(format!(
                "discovery: the metadata at {url} names issuer {:?}, not the configured {issuer:?}",
                names.issuer.unwrap_or_default()
            )));
        }
        let meta = serde_json::from_slice(&resp.body).map_err(|e| {
            KeySourceError::with_source(
                format!("discovery: {url} is not authorization server metadata"),
                e,
            )
        })?;
        return Ok((url, meta));
    }
    Err(last)
}

/// Discovers an endpoint of `issuer` (`jwks_uri`, `introspection_endpoint`,
/// `token_endpoint`) from its metadata ([`fetch_metadata`]). The endpoint
/// must be `https` (`http` only on a loopback host).
pub(crate) async fn discover_field(
    fetcher: &dyn HttpFetch,
    issuer: &str,
    field: &'static str,
    max_bytes: usize,
) -> Result<String, KeySourceError> {
    let (url, meta) = fetch_metadata::<Metadata>(fetcher, issuer, max_bytes).await?;
    let found = match field {
        "introspection_endpoint" => meta.introspection_endpoint,
        "token_endpoint" => meta.token_endpoint,
        _ => meta.jwks_uri,
    };
    let found = found.ok_or_else(|| {
        KeySourceError::new(format!("discovery: the metadata at {url} has no {field}"))
    })?;
    if !is_web_url(&found) {
        return Err(KeySourceError::new(format!(
            "discovery: {field} {found:?} is not an https URL"
        )));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            discovery_urls("https://as.example.com"),
            [
                "https://as.example.com/.well-known/oauth-authorization-server",
                "https://as.example.com/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            discovery_urls("https://as.example.com/tenant/t1/"),
            [
                "https://as.example.com/.well-known/oauth-authorization-server/tenant/t1",
                "https://as.example.com/.well-known/openid-configuration/tenant/t1",
                "https://as.example.com/tenant/t1/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            discovery_urls("http://127.0.0.1:9000/realms/x"),
            [
                "http://127.0.0.1:9000/.well-known/oauth-authorization-server/realms/x",
                "http://127.0.0.1:9000/.well-known/openid-configuration/realms/x",
                "http://127.0.0.1:9000/realms/x/.well-known/openid-configuration"
            ]
        );
    }
}
