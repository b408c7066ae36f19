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
//! ```no_run
//! use axum::{Router, routing::post};
//! use mcp_resource_guard::{AuthContext, GuardLayer, Issuer, RequireScopeLayer};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let guard = GuardLayer::builder("https://mcp.example.com/mcp")
//!     .add_issuer(Issuer::new("https://auth.example.com").jwks_uri("https://auth.example.com/jwks"))
//!     .scopes_supported(["todo:read", "todo:write"])
//!     .required_scopes(["todo:read"])
//!     .build()?;
//!
//! let app = Router::new()
//!     .route("/mcp", post(|ctx: AuthContext| async move {
//!         format!("hello {}", ctx.subject().unwrap_or("anonymous"))
//!     }))
//!     .route(
//!         "/mcp/admin",
//!         post(|| async { "admin" }).route_layer(RequireScopeLayer::all(&guard, ["todo:admin"])?),
//!     )
//!     .layer(guard);
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! ## Features
//!
//! | Name | Description | Default |
//! |---|---|---|
//! | `aws-lc-rs` | signature verification with aws-lc-rs | yes |
//! | `rust-crypto` | signature verification with RustCrypto (used when `aws-lc-rs` is off) | no |
//! | `axum` | `AuthContext` / `Option<AuthContext>` extractors | no |
//! | `tracing` | an audit event per decision on `mcp_resource_guard::audit`, key-cache events on `mcp_resource_guard::keys`, failed introspection calls on `mcp_resource_guard::introspection`, shared-store outages on `mcp_resource_guard::store` (never a token) | no |
//! | `reqwest` | fetch keys and discovery documents, and introspect, with reqwest (rustls) | yes |
//! | `client` | the client side: `ClientCredentials`, discovery from a 401, `AuthorizedClient` (with `reqwest`), `AuthorizeLayer`, token exchange | no |
//! | `redis` | `store::RedisStore`: shared state for many replicas on Redis or Valkey | no |
//! | `metrics` | metrics through the `metrics` facade (see "Metrics" below) | no |
//! | `testing` | [`testing`]: key generation, token minting, a test issuer, a manual clock, the conformance kit | no |
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
//! [`dpop`], [`introspection`], [`client`], [`testing`] (test keys, a test issuer, a manual
//! clock), [`dangerous`] (escape hatches). Every public item has exactly one
//! path.
//!
//! ## Audit trail
//!
//! With the `tracing` feature, every access decision (the guard's, each
//! [`RequireScopeLayer`]'s and each [`mcp::McpLayer`]'s) is one event on the
//! target `mcp_resource_guard::audit`. Fields (absent ones are left out):
//!
//! | field | value |
//! |---|---|
//! | `layer` | `guard`, `require_scope` or `mcp` |
//! | `outcome` | `allow` or `deny` |
//! | `reason` | a stable code: [`AuthErrorKind::as_str`] for every denial (e.g. `expired`, `insufficient_scope`, `access_denied`, `invalid_message`, `session_mismatch`, `misconfigured`); `verified`, `anonymous`, `scope_satisfied`, `policy_satisfied` for an allow |
//! | `status` | the HTTP status answered (denials) |
//! | `detail` | a fixed sentence saying which check failed (never token content) |
//! | `cached` | the token was found in the verified-token cache |
//! | `issuer`, `sub`, `client_id`, `jti` | from the verified token (control characters escaped) |
//! | `act` | the RFC 8693 `act` chain of a delegated token, the current actor first (`gateway < agent`), empty without one |
//! | `scopes_granted` | the token's scopes, space-separated |
//! | `scopes_required` | the scopes the check asked for, space-separated |
//! | `mcp_method`, `mcp_tool` | the JSON-RPC methods and tool/prompt names (resource URIs) of the body, comma-separated, control characters escaped |
//!
//! Allowed requests are logged at `INFO`, denials at `INFO` too except
//! `5xx` answers (no usable keys; a layer wired without its guard), which
//! are `WARN`. No event ever carries a token,
//! a signature, or a claim of a token that failed verification: identity
//! fields come only from a verified [`AuthContext`].
//!
//! Route them to their own sink with a per-target filter, for example
//! `RUST_LOG=mcp_resource_guard::audit=info` with `tracing-subscriber`'s
//! `EnvFilter`.
//!
//! ## Metrics
//!
//! With the `metrics` feature, the crate records through the
//! [`metrics`](https://docs.rs/metrics) facade: install any recorder (a
//! Prometheus exporter, say) and these appear. Labels never carry a token,
//! a subject or anything else from a request beyond the fixed `reason`
//! codes of the audit trail.
//!
//! | Name | Kind | Labels | What |
//! |---|---|---|---|
//! | `mcp_resource_guard_decisions_total` | counter | `layer`, `outcome` (`allow`/`deny`), `reason` | every access decision (the audit trail's) |
//! | `mcp_resource_guard_token_cache_hits_total` | counter | | verifications served from the token cache |
//! | `mcp_resource_guard_token_cache_misses_total` | counter | | tokens verified in full |
//! | `mcp_resource_guard_token_cache_entries` | gauge | | tokens in the cache (set on each insert) |
//! | `mcp_resource_guard_key_fetches_total` | counter | `source`, `outcome` (`ok`/`error`) | JWKS fetches |
//! | `mcp_resource_guard_key_age_seconds` | gauge | `issuer` | age of the held keys (set by `GuardLayer::readiness`) |
//! | `mcp_resource_guard_key_health` | gauge | `issuer` | 2 fresh, 1 stale, 0 absent (set by `GuardLayer::readiness`) |
//! | `mcp_resource_guard_introspection_calls_total` | counter | `issuer`, `outcome` (`active`/`refused`/`error`) | calls to the introspection endpoint |
//! | `mcp_resource_guard_introspection_seconds` | histogram | `issuer` | their latency |
//! | `mcp_resource_guard_introspection_in_flight` | gauge | `issuer` | calls in flight |
//! | `mcp_resource_guard_introspection_shared_hits_total` | counter | `issuer` | answers taken from the shared store |
//! | `mcp_resource_guard_dpop_replays_total` | counter | | DPoP proofs refused as replays |
//! | `mcp_resource_guard_dpop_nonce_refreshes_total` | counter | | fresh `DPoP-Nonce`s sent |
//! | `mcp_resource_guard_store_errors_total` | counter | `store`, `used_for` | shared store calls that failed |
//!
//! ## Security defaults
//!
//! Audience checked against the canonical resource URL (no switch to turn it
//! off); `typ` must be `at+jwt`; `none` and HMAC algorithms cannot be
//! configured; algorithms come from the JWK or an allow-list, never from the
//! token header alone; `jku`/`x5u`/`jwk`/`x5c` are never followed; unknown
//! `crit` rejected; `cnf`-bound tokens rejected as Bearer; leeway 60 s;
//! tokens over 8 KiB rejected unparsed; tokens never accepted from the
//! query string; token types redact themselves in `Debug`; the MCP layer
//! refuses what it cannot judge; CORS preflights are answered by the guard,
//! never passed on unauthenticated.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod log;
mod metrics;

mod audit;
mod cache;
pub mod challenge;
mod claims;
#[cfg(feature = "client")]
pub mod client;
mod clock;
mod config;
mod cors;
mod crypto;
pub mod dangerous;
pub mod dpop;
mod error;
#[cfg(feature = "axum")]
mod extract;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod guard;
pub mod introspection;
pub mod jwks;
pub mod mcp;
pub mod metadata;
mod resource;
mod revision;
mod revocation;
mod scope;
mod scope_hierarchy;
#[cfg(feature = "aws-lc-rs")]
mod sealed_state;
#[cfg(any(feature = "aws-lc-rs", feature = "testing"))]
mod signing;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod token;
mod verify;

pub use cache::TokenCacheConfig;
pub use claims::{Actor, AuthContext, Scopes};
pub use config::{Algorithm, AuthMode, ChallengeMode, ScopeClaim, TypPolicy};
pub use cors::CorsPolicy;
pub use error::{AuthError, AuthErrorKind, BoxError, ConfigError};
#[cfg(feature = "axum")]
pub use extract::MissingAuthContext;
pub use guard::{Guard, GuardBuilder, GuardFuture, GuardLayer, Issuer, Readiness};
pub use resource::{ResourceUrl, WELL_KNOWN_PATH};
pub use scope::{RequireScope, RequireScopeFuture, RequireScopeLayer};
pub use scope_hierarchy::ScopeHierarchy;
#[cfg(feature = "aws-lc-rs")]
pub use sealed_state::{SealError, SealedState, SealedStateBuilder};
pub use token::BearerToken;
pub use verify::{JwtVerifier, TokenVerifier};
