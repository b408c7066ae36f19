//! Discovery from a 401, as the MCP authorization chapter tells clients:
//! the challenge's `resource_metadata` (else the well-known URIs) → the
//! RFC 9728 document → its `resource` (must cover the server's URL) and
//! authorization servers → the scopes to ask for.

use serde::Deserialize;

use super::as_metadata::MAX_DOC;
use super::boundary::within;
use super::token::ClientError;
use crate::guard::resource::is_web_url;
use crate::jwks::HttpFetch;

/// What a server's 401 (and the RFC 9728 document it leads to) says.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Discovered {
    /// The protected resource's identifier: what tokens must be for
    /// (RFC 8707 `resource`). It covers the server's URL.
    pub(crate) resource: String,
    /// The authorization servers the document names, in its order.
    pub(crate) authorization_servers: Vec<String>,
    /// The scopes to ask for: the challenge's `scope`, else the document's
    /// `scopes_supported`, else none (`None`: omit `scope`).
    pub(crate) scopes: Option<Vec<String>>,
}

/// The auth-params of the first challenge of `scheme` in a
/// `WWW-Authenticate` value (quoted values; no escapes in the ones read
/// here).
pub(crate) fn challenge_params(www_authenticate: &str, scheme: &str) -> Vec<(String, String)> {
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

/// The value of the auth-param `name` of the `Bearer` challenge, else of
/// the `DPoP` one (a server taking only DPoP challenges with it).
pub(crate) fn auth_param(www_authenticate: &str, name: &str) -> Option<String> {
    ["Bearer", "DPoP"].iter().find_map(|scheme| {
        challenge_params(www_authenticate, scheme)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    })
}

/// `held` with the scopes a challenge's `scope` asks for added (SEP-2350:
/// re-authorize for the union, never drop what was granted).
#[cfg(feature = "reqwest")]
pub(crate) fn with_challenged_scopes(mut held: Vec<String>, www_authenticate: &str) -> Vec<String> {
    let asked = auth_param(www_authenticate, "scope").map(|s| split_scopes(&s));
    for s in asked.unwrap_or_default() {
        if !held.contains(&s) {
            held.push(s);
        }
    }
    held
}

/// The scopes of a `scope` auth-param.
pub(crate) fn split_scopes(scope: &str) -> Vec<String> {
    scope
        .split(' ')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

#[derive(Deserialize)]
struct ResourceMetadata {
    resource: Option<String>,
    #[serde(default)]
    authorization_servers: Vec<String>,
    #[serde(default)]
    scopes_supported: Vec<String>,
}

/// Where to look for the server's RFC 9728 document: the challenge's
/// `resource_metadata` (same origin as the server, else refused), else the
/// well-known URI with the server's path inserted, then at the root.
pub(crate) fn metadata_urls(
    server: &url::Url,
    resource_metadata: Option<&str>,
) -> Result<Vec<String>, ClientError> {
    let origin = server.origin().ascii_serialization();
    if let Some(named) = resource_metadata {
        let same_origin = url::Url::parse(named).ok().is_some_and(|u| {
            u.origin() == server.origin() && u.username().is_empty() && u.password().is_none()
        });
        if !same_origin {
            return Err(ClientError::Discovery(format!(
                "the 401 names resource_metadata {named:?}, which is not on the server's origin {origin}: refusing to fetch it"
            )));
        }
        return Ok(vec![named.to_owned()]);
    }
    let path = server.path().trim_end_matches('/');
    let root = format!("{origin}/.well-known/oauth-protected-resource");
    Ok(if path.is_empty() {
        vec![root]
    } else {
        vec![format!("{root}{path}"), root]
    })
}

/// Discovery for the server at `server_url` after its 401: the RFC 9728
/// document (from the challenge's `resource_metadata`, else the
/// well-known URIs), whose `resource` must cover `server_url`, its
/// authorization servers and the scopes to ask for. `www_authenticate` is
/// the 401's challenge, if it had one. Redirects are not followed (the
/// fetcher must not follow them; the client's own does not).
///
/// # Errors
///
/// [`ClientError::Discovery`] saying what is wrong: a `resource_metadata`
/// on another origin, no document found, a `resource` that does not cover
/// `server_url`, no authorization server, URLs that are not `https`
/// (`http` only on loopback hosts).
pub(crate) async fn discover(
    fetcher: &dyn HttpFetch,
    server_url: &str,
    www_authenticate: Option<&str>,
) -> Result<Discovered, ClientError> {
    let err = |s: String| ClientError::Discovery(s);
    let server = url::Url::parse(server_url)
        .ok()
        .filter(|_| is_web_url(server_url))
        .ok_or_else(|| err(format!("{server_url:?} is not an https URL")))?;
    let named = www_authenticate.and_then(|w| auth_param(w, "resource_metadata"));
    let mut tried = Vec::new();
    let mut found = None;
    for url in metadata_urls(&server, named.as_deref())? {
        match fetcher.get(&url, MAX_DOC).await {
            Ok(r) if r.status == 200 => {
                found = Some((url, r));
                break;
            }
            Ok(r) => tried.push(format!("{url} answered {}", r.status)),
            Err(e) => tried.push(format!("fetching {url} failed: {e}")),
        }
    }
    let (url, resp) = found.ok_or_else(|| {
        err(format!(
            "no protected resource metadata for {server_url}: {}",
            tried.join("; ")
        ))
    })?;
    let doc: ResourceMetadata = serde_json::from_slice(&resp.body).map_err(|_| {
        err(format!(
            "{url} is not a protected resource metadata document"
        ))
    })?;
    let resource = doc
        .resource
        .ok_or_else(|| err(format!("{url} names no resource")))?;
    if !within(&resource, server_url) {
        return Err(err(format!(
            "the metadata names resource {resource:?}, which does not cover {server_url:?}: refusing to get a token for another resource"
        )));
    }
    if doc.authorization_servers.is_empty() {
        return Err(err(format!("{url} names no authorization server")));
    }
    let scopes = match www_authenticate.and_then(|w| auth_param(w, "scope")) {
        Some(s) => Some(split_scopes(&s)),
        None if !doc.scopes_supported.is_empty() => Some(doc.scopes_supported),
        None => None,
    };
    Ok(Discovered {
        resource,
        authorization_servers: doc.authorization_servers,
        scopes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_params_come_from_bearer_then_dpop() {
        let www = r#"DPoP algs="ES256", error="use_dpop_nonce", Bearer scope="a b""#;
        assert_eq!(auth_param(www, "scope").as_deref(), Some("a b"));
        assert_eq!(auth_param(www, "error").as_deref(), Some("use_dpop_nonce"));
        let held = vec!["a".to_owned(), "c".to_owned()];
        assert_eq!(with_challenged_scopes(held, www), ["a", "c", "b"]);
    }

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

    #[test]
    fn metadata_urls_stay_on_the_servers_origin() {
        let server = url::Url::parse("https://mcp.example.com/v1/mcp").unwrap();
        assert_eq!(
            metadata_urls(&server, None).unwrap(),
            [
                "https://mcp.example.com/.well-known/oauth-protected-resource/v1/mcp",
                "https://mcp.example.com/.well-known/oauth-protected-resource",
            ]
        );
        assert_eq!(
            metadata_urls(&server, Some("https://mcp.example.com/custom.json")).unwrap(),
            ["https://mcp.example.com/custom.json"]
        );
        for foreign in [
            "https://evil.example/.well-known/oauth-protected-resource",
            "http://mcp.example.com/x",
            "https://mcp.example.com:8443/x",
            "https://user@mcp.example.com/x",
            "not a url",
        ] {
            assert!(
                matches!(
                    metadata_urls(&server, Some(foreign)),
                    Err(ClientError::Discovery(_))
                ),
                "{foreign}"
            );
        }
    }
}
