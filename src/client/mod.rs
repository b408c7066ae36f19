//! The client side (feature `client`): agents calling MCP servers with
//! their own credentials (pattern 2), and servers calling downstream APIs
//! with theirs (pattern 3a).
//!
//! - [`ClientCredentials`]: tokens from the `client_credentials` grant
//!   (`client_secret_basic`, `client_secret_post`, `private_key_jwt` through
//!   the same [`ClientAuth`](crate::introspection::ClientAuth) introspection
//!   uses), with RFC 8707 `resource` and scopes; the token endpoint from the
//!   issuer's RFC 8414 / OIDC metadata; cached per (resource, scopes),
//!   refreshed at 80 % of the lifetime (jittered), one request at a time per
//!   key (single flight), backing off exponentially (at most 60 s) when the
//!   authorization server fails, still serving a token within its lifetime.
//! - [`discover`]: what a 401 says, as the MCP authorization chapter tells
//!   clients to read it: `resource_metadata` → the RFC 9728 document, whose
//!   `resource` must be the server's URL → its authorization server → the
//!   challenge's `scope` (else `scopes_supported`).
//! - [`AuthorizedClient`] (with `reqwest`): sends a request, follows a 401
//!   through discovery to a token and retries once; on a 403
//!   `insufficient_scope` asks for the union of held and challenged scopes
//!   and retries once, then gives up with
//!   [`ClientError::InsufficientScope`]. A token is only ever sent to the
//!   origin and path prefix of the resource it was issued for, and
//!   redirects are not followed (they would carry it elsewhere).
//! - [`AuthorizeLayer`]: a tower layer for HTTP clients that adds a token
//!   from any [`TokenSource`] to requests within one resource, and refuses
//!   requests to anywhere else.
//! - [`StaticCredential`]: an API key the application already holds,
//!   redacted everywhere.
//! - [`ClientCredentials::exchange`]: downstream calls on behalf of the
//!   caller, the right way: RFC 8693 token exchange of the verified incoming
//!   token for one scoped to the downstream resource (optionally with this
//!   server's own `actor_token`), cached per subject token and never
//!   outliving it. [`forward_same_audience`] says when cascading the
//!   caller's own token is allowed: only within one of its audiences.
//!
//! Tokens and secrets are redacted in `Debug` and never logged. A server
//! must never pass the token it received on to another API (the MCP
//! specification forbids token passthrough): get its own with
//! [`ClientCredentials`].

mod credentials;
mod discovery;
mod exchange;
#[cfg(feature = "reqwest")]
mod http;
mod layer;
mod token;

pub use credentials::{ClientCredentials, ClientCredentialsBuilder};
pub use discovery::{Discovered, challenge_params, discover};
pub use exchange::forward_same_audience;
#[cfg(feature = "reqwest")]
pub use http::AuthorizedClient;
pub use layer::{Authorize, AuthorizeFuture, AuthorizeLayer};
pub use token::{AccessToken, ClientError, StaticCredential, TokenSource};
