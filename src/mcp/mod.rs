//! MCP-aware authorization: per-method, per-tool, per-resource and
//! per-prompt scopes for JSON-RPC traffic on one endpoint, and session
//! binding.
//!
//! [`McpLayer`] is built from the [`GuardLayer`](crate::GuardLayer) (which
//! verifies the token) and goes *inside* it, in front of the MCP server:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use mcp_resource_guard::mcp::{McpLayer, McpPolicy, Rule, SessionBinding};
//! use mcp_resource_guard::{GuardLayer, Issuer};
//!
//! let guard = GuardLayer::builder("https://mcp.example.com/mcp")
//!     .add_issuer(Issuer::new("https://auth.example.com"))
//!     .build()?;
//! let policy = McpPolicy::builder()
//!     .default_rule(Rule::Deny)
//!     .method("initialize", Rule::Allow)
//!     .method("tools/list", Rule::require(["todo:read"]))
//!     .tool("add_todo", Rule::require(["todo:read", "todo:write"]))
//!     .tool("delete_*", Rule::require(["todo:read", "todo:delete"]))
//!     .build()?;
//! let mcp = McpLayer::new(&guard, policy).session_binding(SessionBinding::new());
//! let app: axum::Router = axum::Router::new()
//!     .route("/mcp", axum::routing::post(|| async { "the MCP server" }))
//!     .layer(mcp)
//!     .layer(guard); // outermost: the guard runs first
//! # let _ = app; Ok(()) }
//! ```
//!
//! # How a request is decided
//!
//! - `POST`: the body is read up to [`max_body_size`](McpLayer::max_body_size)
//!   (default 4 MiB; more gets `413`), and only `jsonrpc`, `method`, `id`,
//!   `params.name`, `params.uri` and `params.ref` are parsed; the exact
//!   original bytes go to the MCP server. **What the layer cannot judge it
//!   refuses** with `400` and a JSON-RPC error (`id` null), never passes on:
//!   a body that is not UTF-8 JSON or starts with a byte-order mark, a
//!   compressed body (`Content-Encoding`), an element that is not a
//!   JSON-RPC 2.0 message, an empty batch or one over
//!   [`max_batch_size`](McpLayer::max_batch_size) (default 64) (`-32700` /
//!   `-32600`); a key the policy reads given twice or with the wrong type,
//!   a call that names no tool, prompt or resource, a resource URI that
//!   cannot be normalized (`-32600` / `-32602`). A batch passes only if
//!   every message in it does. Responses to server requests (an `id` and a
//!   `result` or `error`) need no rule.
//! - `GET` (the SSE stream), `DELETE` (session end) and other methods carry no
//!   JSON-RPC method: the [`stream_rule`](McpPolicyBuilder::stream_rule) decides.
//! - Rules: `tools/call` is decided by the first matching
//!   [`tool`](McpPolicyBuilder::tool) rule (exact names first, then glob
//!   patterns in the order added), else a `tools/call`
//!   [`method`](McpPolicyBuilder::method) rule, else the default;
//!   `resources/read`, `resources/subscribe` and `resources/unsubscribe` by
//!   [`resource`](McpPolicyBuilder::resource) rules on `params.uri`,
//!   `prompts/get` by [`prompt`](McpPolicyBuilder::prompt) rules on
//!   `params.name`, `completion/complete` by the prompt or resource rule of
//!   its `params.ref`, alike; any other method by its method rule, else the
//!   default. The guard's `required_scopes` apply on top, to every request.
//! - Resource URIs are compared in one form: scheme and host lowercased,
//!   unreserved percent-encodings decoded, dot segments removed; a URI with
//!   an encoded `/`, `\` or NUL in its path is refused.
//!
//! # Both wires
//!
//! The wire is chosen per request from its protocol version. On the
//! stateless `2026-07-28` wire (the `MCP-Protocol-Version` header, or a
//! protocol version in the body's `_meta`), the `Mcp-Method` and `Mcp-Name`
//! headers must match the body (`Mcp-Name` may use the `=?base64?…?=` form):
//! a missing or disagreeing header is refused with `400` and JSON-RPC
//! `-32020` carrying the request's `id`, before the policy and whatever the
//! inner server is. The policy always judges the body, never a header. On
//! that wire a POST carries one request (a batch or a response is
//! `-32600`) and sessions do not exist. On `2025-11-25` and earlier, none of
//! this applies.
//!
//! # Denial is a step-up
//!
//! A call the token's scopes do not cover (scopes are matched through the
//! guard's [`ScopeHierarchy`](crate::ScopeHierarchy)) gets `403` with
//! `WWW-Authenticate: Bearer error="insufficient_scope", …, scope="…"`. MCP
//! clients (the Python SDK, the TypeScript SDK v2) re-authorize asking for
//! `scope` and retry. On `2025-11-25` the new token replaces the old one, so
//! `scope` lists everything the client should hold afterwards: the guard's
//! required scopes, then what this call needs, then the token's current
//! scopes that this resource supports (so stepping up never loses a
//! privilege and clients do not flip-flop between two tokens). On
//! `2026-07-28` clients union what they hold with what is challenged, so
//! `scope` names exactly the narrowest scopes the call still needs. A [`Rule::Deny`] is a plain `403`
//! (`access_denied`) without a step-up challenge: no scope would help.
//!
//! # Session binding
//!
//! See [`SessionBinding`]: a session is bound to the principal whose
//! request the server issued it for; other principals get `403`, unknown
//! sessions `404`.

mod answers;
mod body;
mod headers;
mod json;
mod jsonrpc;
mod layer;
mod list_filter;
mod ownership;
mod policy;
mod reply;
mod resource_uri;
mod service;
mod session;
mod tasks;

pub use layer::McpLayer;
pub use list_filter::ListFilter;
pub use policy::{McpPolicy, McpPolicyBuilder, Rule};
pub use service::{McpService, ResponseFuture};
pub use session::SessionBinding;
pub use tasks::TaskBinding;

/// The body peek for the fuzz targets and property tests.
#[cfg(feature = "fuzzing")]
pub(crate) use jsonrpc::{Reference, peek};
