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
