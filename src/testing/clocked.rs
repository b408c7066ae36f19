//! [`Clocked`]: the one way a test drives the time of the crate's builders.

use crate::clock::ManualClock;

/// A builder whose time a test can drive with a [`ManualClock`]: the
/// guard's ([`GuardBuilder`](crate::GuardBuilder): token `exp`, `nbf` and
/// `iat`, the token cache, the revocation list and the key caches it
/// creates from [`Issuer::jwks_uri`](crate::Issuer::jwks_uri) or
/// discovery), a [`RemoteJwksBuilder`](crate::jwks::RemoteJwksBuilder) you
/// build yourself, a `SealedStateBuilder` and a `ClientCredentialsBuilder`.
///
/// ```
/// use std::time::Duration;
/// use mcp_resource_guard::testing::{Clocked, ManualClock};
/// use mcp_resource_guard::{GuardLayer, Issuer};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let clock = ManualClock::new();
/// let guard = GuardLayer::builder("https://mcp.example.com/mcp")
///     .add_issuer(Issuer::new("https://auth.example.com"))
///     .clock(&clock)
///     .build()
///     .unwrap();
/// clock.advance(Duration::from_secs(3600)); // tokens age an hour
/// # let _ = guard; });
/// ```
pub trait Clocked: Sized + sealed::Sealed {
    /// Read time from `clock` instead of the system clock.
    fn clock(self, clock: &ManualClock) -> Self;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! clocked {
    ($($(#[$cfg:meta])* $ty:ty),* $(,)?) => {$(
        $(#[$cfg])*
        impl sealed::Sealed for $ty {}
        $(#[$cfg])*
        impl Clocked for $ty {
            fn clock(self, clock: &ManualClock) -> Self {
                self.with_clock(clock.clock())
            }
        }
    )*};
}

clocked!(
    crate::GuardBuilder,
    crate::jwks::RemoteJwksBuilder,
    #[cfg(feature = "sealed-state")]
    crate::SealedStateBuilder,
    #[cfg(feature = "client")]
    crate::client::ClientCredentialsBuilder,
);
