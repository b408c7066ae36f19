//! The guard: [`GuardLayer`], its [`GuardBuilder`], its [`Guard`] service
//! and [`GuardFuture`], and the parts every request touches: the token
//! (`token.rs`), the verified-token cache, revocation, CORS, the resource
//! URL, the MCP revision, the per-route scope layer, the axum extractor.
//! Private: every item is re-exported once, at the crate root.

mod builder;
pub(crate) mod cache;
pub(crate) mod cors;
#[cfg(feature = "axum")]
pub(crate) mod extract;
mod future;
mod issuer;
mod layer;
pub(crate) mod policy;
pub(crate) mod resource;
pub(crate) mod revision;
pub(crate) mod revocation;
pub(crate) mod scope;
mod service;
pub(crate) mod token;

pub use builder::GuardBuilder;
pub use future::GuardFuture;
pub use issuer::Issuer;
pub use layer::{GuardLayer, Readiness};
pub use service::Guard;
