//! Session binding for the `2025-11-25` wire (`Mcp-Session-Id`): which
//! principal owns each session the server issued.

use http::{HeaderMap, HeaderName};

use super::ownership::{IdKind, Owners, binding, valid_id};
use crate::error::{AuthError, AuthErrorKind};

pub(crate) const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");

/// Remembers which principal owns each `Mcp-Session-Id` (the `2025-11-25`
/// wire; the stateless `2026-07-28` wire has no sessions, and the MCP layer
/// removes an `Mcp-Session-Id` from a stateless request before the server
/// sees it).
///
/// - A session is bound when the server's response issues its id (a
///   response carrying `Mcp-Session-Id` to a request that carried none): an
///   id first seen in a request is never bound.
/// - A request naming a session the layer did not see issued (or that was
///   forgotten) gets `404`, so MCP clients start a new session; another
///   principal's session gets `403`; a malformed id (empty, over 128 bytes,
///   outside visible ASCII) or two `Mcp-Session-Id` headers get `400`.
/// - A `DELETE` the server accepts ends the binding.
/// - Bounded in bytes (ids and principals, 16 MiB by default) and by idle
///   time (24 hours by default).
/// - With the guard's [shared store](crate::GuardBuilder::shared_store),
///   bindings are also written there (keyed by a digest of the id; the
///   idle time as TTL, counted from the binding), so a session issued
///   through one replica is owned there on every replica. A session not
///   known locally while the store is down gets 503; a binding that
///   cannot be written turns the issuing response into a 503 (the client
///   never learns an id the other replicas would not know), and so does
///   an id the store already holds for another principal (403).
///
/// A session id never stands in for a token: every request is verified.
#[derive(Clone)]
pub struct SessionBinding {
    pub(super) owners: Owners,
}

binding!(SessionBinding, IdKind::Session, "sessions");

/// The request's session id: `Ok(None)` without one.
pub(crate) fn session_id(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let mut values = headers.get_all(&MCP_SESSION_ID).iter();
    let Some(v) = values.next() else {
        return Ok(None);
    };
    let bad = |detail| AuthError::new(AuthErrorKind::InvalidSession, detail);
    if values.next().is_some() {
        return Err(bad("more than one Mcp-Session-Id header"));
    }
    match v.to_str() {
        Ok(id) if valid_id(id) => Ok(Some(id)),
        _ => Err(bad(
            "the Mcp-Session-Id is empty, over 128 bytes or not visible ASCII",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids() {
        let h = |vals: &[&str]| {
            let mut m = HeaderMap::new();
            for v in vals {
                m.append(MCP_SESSION_ID, v.parse().unwrap());
            }
            m
        };
        assert_eq!(session_id(&h(&[])).unwrap(), None);
        assert_eq!(session_id(&h(&["abc"])).unwrap(), Some("abc"));
        for bad in [&["a", "b"][..], &[""], &["a b"], &[&"x".repeat(129)]] {
            assert_eq!(
                session_id(&h(bad)).unwrap_err().kind(),
                AuthErrorKind::InvalidSession,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn limits() {
        use std::time::Duration;
        assert!(SessionBinding::with_limits(1, Duration::from_secs(1)).is_err());
        assert!(SessionBinding::with_limits(1 << 20, Duration::MAX).is_err());
        assert!(SessionBinding::new().is_empty());
    }
}
