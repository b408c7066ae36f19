//! `mcp-guard-proxy`: an OAuth 2.1 protected resource in front of any MCP
//! server (Python, TypeScript, ...) that has no auth of its own, built on
//! `mcp-resource-guard`. The upstream sees only requests the policy
//! allows, never the caller's token, and the caller's identity in headers
//! it can trust. See the README for the configuration reference.
//!
//! The binary is the product; this library is its parts, public so the
//! tests (and anyone embedding the proxy) can drive them:
//! [`config::load`] reads the configuration, [`app::build`] makes the
//! request path, [`server::serve`] runs it, [`ops::router`] is the
//! operations port.

#![forbid(unsafe_code)]

pub mod app;
mod body;
pub mod config;
pub mod front;
pub mod ops;
pub mod policy;
mod pool;
mod reply;
pub mod server;
#[cfg(feature = "tls")]
pub mod tls;
pub mod upstream;
