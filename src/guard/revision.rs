//! Which MCP wire a request speaks: the `2025-11-25` one with sessions (and
//! every earlier revision), or the stateless `2026-07-28` one (and later).
//! Chosen per request from the protocol version it carries.

use http::{HeaderMap, HeaderName};

/// The first stateless revision.
pub(crate) const STATELESS: &str = "2026-07-28";

/// The `MCP-Protocol-Version` request header.
pub(crate) const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");

/// The two wires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    /// `2025-11-25` and earlier: `initialize`, `Mcp-Session-Id`; a 403
    /// names the scopes the client should hold afterwards (it replaces its
    /// token).
    Session,
    /// `2026-07-28` and later: stateless, `Mcp-Method` / `Mcp-Name` headers;
    /// a 403 names exactly the scopes the operation still needs (clients
    /// union them with what they hold).
    Stateless,
}

impl Wire {
    /// The wire of a protocol version string. Versions are dates, compared
    /// as strings (as the SDKs do); a version this crate does not know that
    /// sorts after `2026-07-28` is stateless.
    pub(crate) fn of_version(version: &str) -> Self {
        if version >= STATELESS {
            Self::Stateless
        } else {
            Self::Session
        }
    }

    /// The wire the `MCP-Protocol-Version` header names (absent: the
    /// session wire). For layers that do not read the body; the MCP layer
    /// also cross-checks the body's `_meta`.
    pub(crate) fn of_headers(headers: &HeaderMap) -> Self {
        match headers.get(&PROTOCOL_VERSION).and_then(|v| v.to_str().ok()) {
            Some(v) => Self::of_version(v),
            None => Self::Session,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for v in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
            assert_eq!(Wire::of_version(v), Wire::Session, "{v}");
        }
        for v in ["2026-07-28", "2027-01-01"] {
            assert_eq!(Wire::of_version(v), Wire::Stateless, "{v}");
        }
        let mut h = HeaderMap::new();
        assert_eq!(Wire::of_headers(&h), Wire::Session);
        h.insert(PROTOCOL_VERSION, "2026-07-28".parse().unwrap());
        assert_eq!(Wire::of_headers(&h), Wire::Stateless);
    }
}
