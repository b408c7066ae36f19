//! The client side (feature `client`): agents calling MCP servers with
//! their own credentials or a person's (patterns 2 and 1), and servers
//! calling downstream APIs with theirs (pattern 3).
//!
//! - [`AuthorizedClient`] (with `reqwest`): sends MCP requests; the
//!   server's 401 leads it, as the MCP authorization chapter says, to the
//!   RFC 9728 document (the challenge's `resource_metadata`, on the
//!   server's own origin, else the well-known URIs), whose `resource` must
//!   cover the server's URL, then to the authorization server's metadata
//!   (RFC 8414 / OIDC, in the specification's order, `issuer` checked),
//!   then to a token from its [`Grant`] for the challenge's scopes (else
//!   `scopes_supported`, else none). It steps up on a 403
//!   `insufficient_scope` to the union of held and needed scopes (once by
//!   default), and re-discovers when a token stops being accepted (the
//!   server moved to another authorization server).
//! - **Credentials are bound to their issuer.** A grant that carries a
//!   credential (a client secret or key, a workload assertion) is
//!   configured with the [`TrustedIssuers`] it was registered at;
//!   discovery that leads anywhere else ends with
//!   [`ClientError::UntrustedAuthorizationServer`] before anything is
//!   sent. A token goes only to URLs within the resource it was issued
//!   for (the URL of the request actually sent is checked), and no
//!   redirect is followed.
//! - [`Grant`]s: `client_credentials` (`client_secret_basic`,
//!   `client_secret_post`, `private_key_jwt` with the issuer as `aud`);
//!   workload identity federation (RFC 7523 `jwt-bearer` with an
//!   [`Assertion`] re-read from a file or the environment); enterprise-
//!   managed authorization (ID-JAG from an [`EnterpriseIdp`], then
//!   `jwt-bearer`); a person's [`AuthorizationCode`] flow (PKCE S256, a
//!   [`UserAgent`] the application provides, e.g. [`LoopbackRedirect`];
//!   pre-registered clients, client ID metadata documents, dynamic
//!   registration; refresh tokens and `offline_access` when offered; RFC
//!   9207 `iss` checked; a [`TokenStore`]).
//! - [`DpopKey`] (feature `signing`): DPoP-bound tokens (RFC 9449),
//!   proofs with `ath`, and the `use_dpop_nonce` retry at both the token
//!   endpoint and the MCP server.
//! - [`ClientCredentials`]: tokens from a configured issuer, cached per
//!   (resource, scopes), refreshed at 80 % of the lifetime (jittered), one
//!   request at a time per key, backing off exponentially (at most 60 s),
//!   still serving a token within its lifetime.
//!   [`ClientCredentials::exchange`]: RFC 8693 token exchange of a verified
//!   incoming token for one scoped to a downstream resource, cached per
//!   subject token and never outliving it. [`forward_same_audience`] says
//!   when cascading the caller's own token is allowed: only within one of
//!   its audiences.
//! - [`AuthorizeLayer`]: a tower layer for HTTP clients that adds a token
//!   from any [`TokenSource`] to requests within one resource, and refuses
//!   requests to anywhere else. [`StaticCredential`]: an API key the
//!   application already holds, redacted everywhere.
//!
//! Tokens and secrets are redacted in `Debug` and never logged. A server
//! must never pass the token it received on to another API (the MCP
//! specification forbids token passthrough): get its own.

#[cfg(feature = "reqwest")]
mod as_metadata;
#[cfg(feature = "reqwest")]
mod authorization_code;
mod boundary;
#[cfg(feature = "reqwest")]
mod builder;
mod credentials;
#[cfg(feature = "reqwest")]
mod discovery;
#[cfg(feature = "signing")]
mod dpop_key;
mod exchange;
#[cfg(feature = "reqwest")]
mod grant;
#[cfg(feature = "reqwest")]
mod http;
mod layer;
#[cfg(feature = "reqwest")]
mod loopback;
#[cfg(feature = "reqwest")]
mod registration;
#[cfg(feature = "reqwest")]
mod store;
mod token;
mod token_request;
#[cfg(feature = "reqwest")]
mod trust;

#[cfg(feature = "reqwest")]
pub use authorization_code::{AuthorizationCode, UserAgent};
#[cfg(feature = "reqwest")]
pub use builder::AuthorizedClientBuilder;
pub use credentials::{ClientCredentials, ClientCredentialsBuilder};
#[cfg(feature = "signing")]
pub use dpop_key::DpopKey;
pub use exchange::{TokenExchange, forward_same_audience};
#[cfg(feature = "reqwest")]
pub use grant::{Assertion, EnterpriseIdp, Grant};
#[cfg(feature = "reqwest")]
pub use http::AuthorizedClient;
pub use layer::{Authorize, AuthorizeFuture, AuthorizeLayer};
#[cfg(feature = "reqwest")]
pub use loopback::LoopbackRedirect;
#[cfg(feature = "reqwest")]
pub use store::{MemoryTokenStore, TokenStore};
pub use token::{AccessToken, ClientError, StaticCredential, TokenSource};
#[cfg(feature = "reqwest")]
pub use trust::TrustedIssuers;
