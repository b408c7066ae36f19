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
//! The layer judges a request exactly as the servers behind it will read
//! it (the TypeScript SDK's `express.json()` and its WHATWG URL lookups,
//! the Python SDK, rmcp), or refuses it: the interop suite's differential
//! harness checks, request by request, that what the layer let through is
//! what each of those servers executed.
//!
//! - `POST`: the body is read only as `application/json` in UTF-8 (exactly
//!   one `Content-Type`, no parameter but `charset=utf-8`, any case: else
//!   `415`; every `Content-Encoding` value `identity`: else `400`: a charset
//!   or encoding a server decodes differently could hide another call), up
//!   to [`max_body_bytes`](McpLayer::max_body_bytes) (default 4 MiB; more gets
//!   `413`). Only `jsonrpc`, `method`, `id`, `params.name`, `params.uri`,
//!   `params.ref`, `params.taskId` and the `_meta` protocol version are
//!   parsed; the exact original bytes go to the MCP server. **What the layer
//!   cannot judge it refuses** with `400` and a JSON-RPC error, never passes
//!   on: a body that is not UTF-8 JSON or starts with a byte-order mark, an
//!   element that is not a JSON-RPC 2.0 message, an empty batch or one over
//!   [`max_batch_messages`](McpLayer::max_batch_messages) (default 64) (`-32700` /
//!   `-32600`); a key the policy reads given twice or with the wrong type,
//!   a call that names no tool, prompt or resource, a resource URI that
//!   cannot be judged (`-32600` / `-32602`). A batch passes only if every
//!   message in it does. Responses to server requests (an `id` and a
//!   `result` or `error`) need no rule.
//! - `GET` (the SSE stream) and `DELETE` (session end) carry no JSON-RPC
//!   method: the [`stream_rule`](McpPolicyBuilder::stream_rule) decides; one
//!   with a body is refused (`400`: a server might read it). Any other
//!   method is `405` (`Allow: GET, POST, DELETE`).
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
//!
//! # Resource URIs
//!
//! A URI is judged in its WHATWG URL form (the form the TypeScript SDK looks
//! resources up by; the `url` crate implements it), then normalized as
//! RFC 3986 §6.2.2 says (scheme and host lowercased, unreserved
//! percent-encodings decoded, the others in uppercase hex). Spellings a
//! server comparing strings would keep apart are refused: `.` and `..`
//! segments (also percent-encoded), empty segments (`//`), an encoded `/`,
//! `\` or NUL, a raw space, backslash or control character. A URI with a
//! query or a fragment must pass the rule of each reading: as it is,
//! without its fragment, and without both (a server may serve `file:///a`
//! for `file:///a?x`). Patterns go through the same steps.
//!
//! | sent | judged as |
//! |---|---|
//! | `file:///secret/a`, `FILE:///secret/%61`, `file:///%73ecret/a` | `file:///secret/a` |
//! | `file://localhost/secret/a`, `file:/secret/a`, `file:secret/a` | `file:///secret/a` |
//! | `https:host/x`, `https://HOST:443/x`, `https://ｈｏｓｔ/x` | `https://host/x` |
//! | `https://2130706433/`, `https://0x7f.1/` | `https://127.0.0.1/` |
//! | `file:///café`, `file:///caf%c3%a9` | `file:///caf%C3%A9` |
//! | `file:///{path}` (a template) | `file:///%7Bpath%7D` |
//! | `todo://Items/1` | `todo://items/1` |
//! | `file:///secret/a?x#y` | `file:///secret/a?x#y`, `file:///secret/a?x` and `file:///secret/a` |
//! | `file:///public/../secret/a`, `file:///a/%2e%2e/b`, `file:////x`, `file:///a//b`, `file:///a%2Fb`, `file:///a\b`, `file:///c|/x` (a drive letter spelled with `\|`: Node reads `c:`) | refused (`-32602`) |
//!
//! # Both wires
//!
//! The wire is chosen per request from its protocol version: the
//! `MCP-Protocol-Version` header (exactly one), which a POST body's `_meta`
//! version must match; only a version that is itself stateless
//! (`2026-07-28` or later) selects the stateless wire. On it, the
//! `Mcp-Method` and `Mcp-Name` headers must match the body (`Mcp-Name` may
//! use the `=?base64?…?=` form): a missing or disagreeing header is
//! refused with `400` and JSON-RPC `-32020` carrying the request's `id`,
//! before the policy and whatever the inner server is; a POST carries one
//! request (a batch or a response is `-32600`); sessions do not exist, so
//! an `Mcp-Session-Id` (and a `Last-Event-ID`) is removed before the
//! server sees the request. The policy always judges the body, never a
//! header. On `2025-11-25` and earlier, none of this applies.
//!
//! # Refusals
//!
//! Every refusal is a JSON-RPC error response carrying the request's `id`
//! (`null` when it could not be read), so MCP clients read it as the call's
//! error: `-31403` ([`JsonRpcError::ACCESS_DENIED`](crate::challenge::JsonRpcError::ACCESS_DENIED))
//! with `401` and `403`, `-32600` for a session that is malformed or
//! unknown and a body over the limit, `-32603` with `5xx`.
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
//! `scope` names exactly the narrowest scopes the call still needs. A
//! [`Rule::Deny`] is a `403` without a step-up challenge: no scope would
//! help. The status says what happened to anything that reads HTTP (a
//! gateway, a log); the JSON-RPC body says it to the client: the Python
//! SDK client surfaces a JSON-RPC error at any status, the TypeScript SDK
//! v1 client rejects the call with the body's text.
//!
//! # Sessions and tasks
//!
//! See [`SessionBinding`]: a session is bound to the principal whose
//! request the server issued it for; other principals get `403`, unknown
//! sessions `404`. See [`TaskBinding`]: a task (the tasks extension) is
//! bound to the principal whose call created it; anyone else gets `403`.

mod answers;
mod body;
mod headers;
mod json;
mod jsonrpc;
mod layer;
mod list_filter;
mod ownership;
mod params;
mod policy;
#[cfg(feature = "config")]
mod policy_file;
mod reply;
mod resource_uri;
mod service;
mod session;
mod tasks;

pub use layer::McpLayer;
pub use list_filter::ListFilter;
pub use policy::{McpPolicy, McpPolicyBuilder, Rule};
#[cfg(feature = "config")]
pub use policy_file::PolicyFile;
pub use service::{Mcp, McpFuture};
pub use session::SessionBinding;
pub use tasks::TaskBinding;

/// The body peek and the resource URI form for the fuzz targets and
/// property tests.
#[cfg(feature = "fuzzing")]
pub(crate) use jsonrpc::{Reference, peek};
#[cfg(feature = "fuzzing")]
pub(crate) use resource_uri::normalize as normalize_resource_uri;
