//! The manual: how to use the crate for each task, one chapter per task.
//!
//! The README is the front page; these chapters are the long form, and
//! every code block in them is compiled (and, where it needs no network, run)
//! by `cargo test --all-features`.
//!
//! | Chapter | For |
//! |---|---|
//! | [`mounting`] | where the guard, per-route scopes and the MCP layer go in an axum or hyper server; CORS |
//! | [`mcp_policies`] | per-tool, per-resource and per-prompt rules, both MCP wires, scope hierarchies, filtered lists, sealed state |
//! | [`conformance_kit`] | checking your own server against the MCP authorization specification in your CI |
//! | [`sender_constrained_tokens`] | DPoP (RFC 9449) |
//! | [`opaque_tokens`] | introspection (RFC 7662) and real-time revocation |
//! | [`replicas`] | many replicas sharing state on Redis; probes |
//! | [`observability`] | the audit trail and the metrics |
//! | [`calling_servers`] | the client side: agents, trusted issuers, every grant, token exchange |
//! | [`recipes`] | real authorization servers: Scalekit, Auth0, Keycloak, Entra ID, Okta |
//! | [`challenges`] | every answer the guard gives, and the secure defaults |
//!
//! The guard proxy for servers in other languages, `mcp-guard-proxy`, has
//! its own README in the repository's `proxy/` folder.

#[cfg_attr(feature = "axum", doc = include_str!("mounting.md"))]
#[cfg_attr(
    not(feature = "axum"),
    doc = "This chapter needs the feature `axum` (docs.rs builds with every feature)."
)]
pub mod mounting {}

#[doc = include_str!("mcp_policies.md")]
pub mod mcp_policies {}

#[cfg_attr(all(feature = "testing", feature = "axum"), doc = include_str!("conformance_kit.md"))]
#[cfg_attr(
    not(all(feature = "testing", feature = "axum")),
    doc = "This chapter needs the features `testing` and `axum` (docs.rs builds with every feature)."
)]
pub mod conformance_kit {}

#[doc = include_str!("sender_constrained_tokens.md")]
pub mod sender_constrained_tokens {}

#[doc = include_str!("opaque_tokens.md")]
pub mod opaque_tokens {}

#[cfg_attr(feature = "redis", doc = include_str!("replicas.md"))]
#[cfg_attr(
    not(feature = "redis"),
    doc = "This chapter needs the feature `redis` (docs.rs builds with every feature)."
)]
pub mod replicas {}

#[doc = include_str!("observability.md")]
pub mod observability {}

#[cfg_attr(all(feature = "client", feature = "reqwest"), doc = include_str!("calling_servers.md"))]
#[cfg_attr(
    not(all(feature = "client", feature = "reqwest")),
    doc = "This chapter needs the features `client` and `reqwest` (docs.rs builds with every feature)."
)]
pub mod calling_servers {}

#[doc = include_str!("recipes.md")]
pub mod recipes {}

#[doc = include_str!("challenges.md")]
pub mod challenges {}
