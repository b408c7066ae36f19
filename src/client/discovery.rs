//! Discovery from a 401, as the MCP authorization chapter tells clients:
//! the challenge's `resource_metadata` → the RFC 9728 document → its
//! `resource` (must be the server's URL) and authorization server → the
//! scopes to ask for.

use serde::Deserialize;

use super::token::ClientError;
use crate::jwks::HttpFetch;
use crate::resource::check_web_url;

/// The largest metadata document read.
const MAX_DOC: usize = 64 * 1024;

/// What a 401 (and the documents it points to) says about a server.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// The protected resource's identifier: what tokens must be for
    /// (RFC 8707 `resource`).
    pub resource: String,
    /// The authorization server to ask (the document's first).
    pub authorization_server: String,
    /// The scopes to ask for: the challenge's `scope`, else the document's
    /// `scopes_supported`.
    pub scopes: Vec<String>,
}

/// The auth-params of the first challenge of `scheme` in a
/// `WWW-Authenticate` value (quoted values; no escapes in the ones read
/// here).
pub fn challenge_params(www_authenticate: &str, scheme: &str) -> Vec<(String, String)> {
    let lower = www_authenticate.to_ascii_lowercase();
    let Some(start) = lower.find(&format!("{} ", scheme.to_ascii_lowercase())) else {
        return Vec::new();
    };
    let mut rest = &www_authenticate[start + scheme.len() + 1..];
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        let Some(eq) = rest.find('=') else { break };
        let name = rest[..eq].trim();
        if name.contains(' ') {
            // The next challenge's scheme.
            break;
        }
        let after = &rest[eq + 1..];
        let (value, tail) = match after.strip_prefix('"') {
            Some(q) => match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => break,
            },
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim(), &after[end..])
            }
        };
        out.push((name.to_ascii_lowercase(), value.to_owned()));
        rest = tail;
    }
    out
}

#[derive(Deserialize)]
struct ResourceMetadata {
    resource: Option<String>,
    #[serde(default)]
    authorization_servers: Vec<String>,
    #[serde(default)]
    scopes_supported: Vec<String>,
}

/// `url` is within `resource`: same origin, and a path under its path.
pub(crate) fn within(resource: &str, url: &str) -> bool {
    let (Ok(r), Ok(u)) = (url::Url::parse(resource), url::Url::parse(url)) else {
        return false;
    };
    let base = r.path().trim_end_matches('/');
    r.origin() == u.origin()
        && (u.path() == base || u.path().starts_with(&format!("{base}/")) || base.is_empty())
}

fn web_url(url: &str) -> bool {
    url::Url::parse(url)
        .ok()
        .is_some_and(|u| check_web_url(&u, false).is_ok())
}

/// Follows a 401's challenge for a request to `server_url` (the MCP
/// server's URL, or a URL under it).
///
/// # Errors
///
/// [`ClientError::Discovery`] saying what is wrong: no `resource_metadata`
/// in the challenge, a document that cannot be fetched or read, a
/// `resource` that is not `server_url`, no authorization server, or URLs
/// that are not `https` (`http` only on loopback hosts).
pub async fn discover(
    fetcher: &dyn HttpFetch,
    server_url: &str,
    www_authenticate: &str,
) -> Result<Discovered, ClientError> {
    let err = |s: String| ClientError::Discovery(s);
    let params = challenge_params(www_authenticate, "Bearer");
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let metadata_url = get("resource_metadata").ok_or_else(|| {
        err("the 401 has no resource_metadata: the server does not follow RFC 9728".into())
    })?;
    if !web_url(&metadata_url) {
        return Err(err(format!(
            "resource_metadata {metadata_url:?} is not an https URL"
        )));
    }
    let resp = fetcher
        .get(&metadata_url, MAX_DOC)
        .await
        .map_err(|e| err(format!("fetching {metadata_url} failed: {e}")))?;
    if resp.status != 200 {
        return Err(err(format!("{metadata_url} answered {}", resp.status)));
    }
    let doc: ResourceMetadata = serde_json::from_slice(&resp.body).map_err(|_| {
        err(format!(
            "{metadata_url} is not a protected resource metadata document"
        ))
    })?;
    let resource = doc
        .resource
        .ok_or_else(|| err(format!("{metadata_url} names no resource")))?;
    if !within(&resource, server_url) {
        return Err(err(format!(
            "the metadata names resource {resource:?}, which does not cover {server_url:?}: refusing to get a token for another resource"
        )));
    }
    let authorization_server = doc
        .authorization_servers
        .first()
        .cloned()
        .ok_or_else(|| err(format!("{metadata_url} names no authorization server")))?;
    if !web_url(&authorization_server) {
        return Err(err(format!(
            "the authorization server {authorization_server:?} is not an https URL"
        )));
    }
    let scopes = match get("scope") {
        Some(s) => s
            .split(' ')
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect(),
        None => doc.scopes_supported,
    };
    Ok(Discovered {
        resource,
        authorization_server,
        scopes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_guards_challenges() {
        let www = r#"Bearer error="insufficient_scope", error_description="The access token lacks a scope", resource_metadata="https://h/.well-known/oauth-protected-resource/mcp", scope="a b", DPoP algs="ES256", resource_metadata="https://x""#;
        let p = challenge_params(www, "Bearer");
        assert_eq!(
            p,
            [
                ("error".to_owned(), "insufficient_scope".to_owned()),
                (
                    "error_description".to_owned(),
                    "The access token lacks a scope".to_owned()
                ),
                (
                    "resource_metadata".to_owned(),
                    "https://h/.well-known/oauth-protected-resource/mcp".to_owned()
                ),
                ("scope".to_owned(), "a b".to_owned()),
            ]
        );
        let d = challenge_params(www, "DPoP");
        assert_eq!(d[0], ("algs".to_owned(), "ES256".to_owned()));
        assert!(challenge_params("Basic realm=\"x\"", "Bearer").is_empty());
        assert!(challenge_params("Bearer error=\"unterminated", "Bearer").is_empty());
    }
}
