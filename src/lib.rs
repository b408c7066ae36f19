//! # mcp-resource-guard
//!
//! Turns a tower / axum / hyper MCP server into a correct OAuth 2.1
//! protected resource, as the MCP authorization specification requires:
//!
//! - [`GuardLayer`] validates Bearer JWT access tokens (signature with the
//!   issuer's keys, `iss`, `aud` bound to the server's canonical URL,
//!   `exp`/`nbf`/`iat`, `typ`, scopes) and hands the caller's
//!   [`AuthContext`] to handlers;
//! - it serves RFC 9728 protected-resource metadata from the same
//!   configuration, on both well-known URLs;
//! - it answers with exact RFC 6750 / RFC 9728 challenges: 401 that leads an
//!   MCP client through discovery, 403 `insufficient_scope` it can step up
//!   from, 400 `invalid_request` for malformed requests;
//! - [`RequireScopeLayer`] guards single routes by scope, and
//!   [`mcp::McpLayer`] judges each MCP call (tool, resource, prompt, method)
//!   from a bounded peek at the JSON-RPC body, refusing what it cannot judge;
//!   both are built from the guard, so they share its configuration;
//! - [`introspection`] judges opaque tokens (RFC 7662) and checks JWTs for
//!   real-time revocation, cached and bounded; [`dpop`] accepts
//!   sender-constrained tokens (RFC 9449), checking a proof on every request;
//! - `client` (feature `client`) is the other side: agents with client
//!   credentials that discover everything from a 401, token exchange
//!   (RFC 8693) for downstream calls, a tower layer for HTTP clients.
//!
//! ## Quick start
//!
#![cfg_attr(
    feature = "axum",
    doc = r#"
```no_run
use axum::{Router, routing::post};
use mcp_resource_guard::{AuthContext, GuardLayer, Issuer, RequireScopeLayer};

# async fn demo() -> Result<(), Box<dyn std::error::Error>> {
let guard = GuardLayer::builder("https://mcp.example.com/mcp")
    .add_issuer(Issuer::new("https://auth.example.com").jwks_uri("https://auth.example.com/jwks"))
    .scopes_supported(["todo:read", "todo:write"])
    .required_scopes(["todo:read"])
    .build()?;

let app = Router::new()
    .route("/mcp", post(|ctx: AuthContext| async move {
        format!("hello {}", ctx.subject().unwrap_or("anonymous"))
    }))
    .route(
        "/mcp/admin",
        post(|| async { "admin" }).route_layer(RequireScopeLayer::all(&guard, ["todo:admin"])?),
    )
    .layer(guard);

let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
axum::serve(listener, app).await?;
# Ok(()) }
```
"#
)]
#![cfg_attr(
    not(feature = "axum"),
    doc = "(With the `axum` feature, an axum server goes here.)"
)]
//!
//! ## Features
//!
//! | Name | Description | Default |
//! |---|---|---|
//! | `aws-lc-rs` | the backend that verifies signatures: aws-lc-rs | yes |
//! | `rust-crypto` | the backend that verifies signatures: RustCrypto (used when `aws-lc-rs` is off) | no |
//! | `signing` | signatures made here (aws-lc-rs): `private_key_jwt` client assertions, the client's DPoP proofs (`DpopKey`) | yes |
//! | `sealed-state` | `SealedState` (AES-256-GCM-SIV, aws-lc-rs) and the DPoP server nonces sealed with it | yes |
//! | `axum` | `AuthContext` / `Option<AuthContext>` extractors | no |
//! | `tracing` | an audit event per decision on target `mcp_resource_guard::audit` (never a token), key-cache events on `mcp_resource_guard::keys`, failed introspection calls on `mcp_resource_guard::introspection`, shared-store outages on `mcp_resource_guard::store` | no |
//! | `reqwest` | fetch keys and discovery documents, and introspect, with reqwest (rustls); without it, plug in your own `HttpFetch` | yes |
//! | `client` | the client side: `ClientCredentials`, token exchange, `AuthorizeLayer`, `StaticCredential`; with `reqwest`, `AuthorizedClient` (spec discovery, trusted issuers, every `Grant`, DPoP with `signing`) | no |
//! | `redis` | `store::RedisStore`: shared state for many replicas on Redis or Valkey (redis-rs) | no |
//! | `metrics` | metrics through the `metrics` facade (`mcp_resource_guard_*`) | no |
//! | `config` | policy files: `mcp::PolicyFile` and serde `Deserialize` for `McpPolicy`, `Rule` and `ScopeHierarchy` (the format `mcp-guard-proxy` reads); no extra dependency | no |
//! | `testing` | key generation, token minting, a test issuer, a manual clock and the conformance kit for your tests | no |
//!
//! The core depends on `tower-service`, `tower-layer` and `http`, not on axum.
//!
//! ## Where things are
//!
//! The guard and what every request touches are at the root: [`GuardLayer`]
//! (with [`GuardBuilder`], [`Issuer`], the [`Guard`] service and its
//! [`GuardFuture`]), [`RequireScopeLayer`], [`AuthContext`], the errors and the
//! configuration values. Each larger concern is a module: [`mcp`] (the MCP
//! policy layer), [`jwks`] (key sources), [`challenge`] (rejection bodies),
//! [`metadata`] (RFC 9728), [`store`] (state shared by replicas),
//! [`dpop`], [`introspection`], `client` (feature `client`), `testing`
//! (feature `testing`: test keys, a test issuer, a manual clock),
//! [`dangerous`] (escape hatches), [`manual`] (documentation only).
//! Every public item has exactly one path.
//!
//! ## The manual
//!
//! [`manual`] has a chapter per task: mounting the layers, MCP policies
//! and both wires, the conformance kit, DPoP, opaque tokens and revocation,
//! many replicas, the audit trail and metrics, the client side, recipes for
//! real authorization servers, and every answer the guard gives with its
//! secure defaults.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// First: the logging macros the other modules use.
mod observe;

pub mod challenge;
mod claims;
#[cfg(feature = "client")]
pub mod client;
mod clock;
mod config;
pub mod dangerous;
pub mod dpop;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod guard;
pub mod introspection;
mod jose;
pub mod jwks;
pub mod manual;
pub mod mcp;
pub mod metadata;
mod scope_hierarchy;
#[cfg(feature = "sealed-state")]
mod sealed_state;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod verify;

pub use claims::{Actor, AuthContext, Scopes};
pub use config::{Algorithm, AuthMode, ChallengeMode, ScopeClaim, TypPolicy};
pub use error::{AuthError, AuthErrorKind, BoxError, ConfigError};
pub use guard::cache::TokenCacheConfig;
pub use guard::cors::CorsPolicy;
#[cfg(feature = "axum")]
pub use guard::extract::MissingAuthContext;
pub use guard::resource::ResourceUrl;
pub use guard::scope::{RequireScope, RequireScopeFuture, RequireScopeLayer};
pub use guard::token::BearerToken;
pub use guard::{Guard, GuardBuilder, GuardFuture, GuardLayer, Issuer, Readiness};
pub use scope_hierarchy::ScopeHierarchy;
#[cfg(feature = "sealed-state")]
pub use sealed_state::{SealError, SealedState, SealedStateBuilder};
pub use verify::TokenVerifier;

// The README's Rust blocks are compiled as doctests.
#[cfg(all(doctest, feature = "axum"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
