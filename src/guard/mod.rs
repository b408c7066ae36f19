//! The guard: [`GuardLayer`], its [`GuardBuilder`], its [`Guard`] service
//! and [`GuardFuture`]. Private: every item is re-exported once, at the
//! crate root.

mod builder;
mod future;
mod issuer;
mod layer;
pub(crate) mod policy;
mod service;

pub use builder::GuardBuilder;
pub use future::GuardFuture;
pub use issuer::Issuer;
pub use layer::{GuardLayer, Readiness};
pub use service::Guard;
