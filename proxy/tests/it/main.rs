//! The proxy's tests: one test crate (one link). The request path in
//! process (`forwarding`), the configuration (`config`), the limits and
//! the shutdown on a real socket (`limits`), the operations port (`ops`),
//! and the binary itself (`binary`). The real Python and TypeScript SDK
//! servers behind the installed binary are in the interop suite.

mod binary;
mod common;
mod config;
mod forwarding;
mod limits;
mod ops;
mod sections;
#[cfg(feature = "tls")]
mod tls;
