//! Logging macros that compile to nothing without the `tracing` feature.
//!
//! Targets: `mcp_resource_guard::keys` for key-source events here,
//! `mcp_resource_guard::introspection` for introspection calls that fail;
//! `mcp_resource_guard::store` for shared-store outages (once each);
//! `mcp_resource_guard::audit` for every allow/deny decision (see
//! [`audit`](crate::observe::audit)). No event ever carries a token or a signature.
/// The target of key-source events.
#[cfg(feature = "tracing")]
pub(crate) const KEYS: &str = "mcp_resource_guard::keys";
/// The target of introspection events.
#[cfg(feature = "tracing")]
pub(crate) const INTROSPECTION: &str = "mcp_resource_guard::introspection";
/// The target of shared-store events (an outage begins or ends).
#[cfg(feature = "tracing")]
pub(crate) const STORE: &str = "mcp_resource_guard::store";

macro_rules! event {
    ($level:ident, $target:ident, $($rest:tt)*) => {
        #[cfg(feature = "tracing")]
        {
            ::tracing::$level!(target: $crate::observe::log::$target, $($rest)*);
        }
    };
}

pub(crate) use event;
