//! Escape hatches that weaken the guard. Each names what it gives up.
//!
//! There is deliberately no way to switch off the audience, issuer,
//! signature or expiry checks.

use crate::guard::GuardBuilder;

/// Accepts an `http://` resource URL on a non-loopback host (behind a
/// TLS-terminating proxy that clients reach over plain HTTP, say).
///
/// Bearer tokens then travel in clear text between the client and that URL:
/// anyone on the path can steal and replay them.
pub fn allow_insecure_http(builder: GuardBuilder) -> GuardBuilder {
    builder.allow_insecure_http()
}

/// Accepts active introspection responses without `aud`, as if they named
/// this resource.
///
/// Only for an authorization server that omits `aud` and issues tokens for
/// this resource alone: otherwise a token meant for another resource (and
/// presented here by whoever holds it) is accepted here.
pub fn accept_missing_audience(
    introspection: crate::introspection::Introspection,
) -> crate::introspection::Introspection {
    introspection.accept_missing_audience()
}

/// Trusts every authorization server on a loopback host (`localhost`,
/// `127.0.0.0/8`, `::1`) with the client's credentials, whatever its port
/// or path.
///
/// Only for conformance harnesses that start their authorization server on
/// an ephemeral loopback port and cannot say which: any process on the
/// machine that gets an MCP server to name it receives the credentials.
#[cfg(all(feature = "client", feature = "reqwest"))]
pub fn trust_any_loopback_issuer() -> crate::client::TrustedIssuers {
    crate::client::TrustedIssuers::any_loopback()
}
