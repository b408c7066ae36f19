//! A token's boundary: the URLs within the resource it was issued for.

/// `url` is within `resource`: same origin, and a path under its path.
pub(crate) fn within(resource: &str, url: &str) -> bool {
    let (Ok(r), Ok(u)) = (url::Url::parse(resource), url::Url::parse(url)) else {
        return false;
    };
    within_url(&r, &u)
}

/// [`within`] for parsed URLs (no allocation).
pub(crate) fn within_url(resource: &url::Url, url: &url::Url) -> bool {
    let base = resource.path().trim_end_matches('/');
    resource.scheme() == url.scheme()
        && resource.host() == url.host()
        && resource.port_or_known_default() == url.port_or_known_default()
        && url
            .path()
            .strip_prefix(base)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_stay_within_their_resource() {
        let r = "https://mcp.example.com/mcp";
        assert!(within(r, "https://mcp.example.com/mcp"));
        assert!(within(r, "https://mcp.example.com/mcp/x"));
        assert!(!within(r, "https://mcp.example.com/mcpx"));
        assert!(!within(r, "https://mcp.example.com/other"));
        assert!(!within(r, "http://mcp.example.com/mcp"));
        assert!(!within(r, "https://evil.example.com/mcp"));
        assert!(!within(r, "https://mcp.example.com:8443/mcp"));
        assert!(within(
            "https://mcp.example.com/",
            "https://mcp.example.com/anything"
        ));
    }
}
