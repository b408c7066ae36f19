//! Downstream calls the right way: RFC 8693 token exchange, and cascading
//! the caller's token only to the audience it was issued for.

use super::credentials::{ClientCredentials, scope_key};
use super::discovery::within;
use super::token::{AccessToken, ClientError};
use crate::claims::AuthContext;

/// RFC 8693 §3: the type of the tokens exchanged here.
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

impl ClientCredentials {
    /// Exchanges the access token this server received (`subject_token`,
    /// verified by the guard as `subject`) for one for the downstream
    /// `resource` with (narrowed) `scopes` (RFC 8693), authenticated as this
    /// server's client; `actor_token`, when given, is this server's own
    /// token, so the result records the delegation (`act`).
    ///
    /// Cached per (hash of the subject token, resource, scopes), never
    /// beyond the subject token's `exp` (a subject token without `exp` is
    /// exchanged every time).
    ///
    /// ```no_run
    /// # async fn demo(cc: mcp_resource_guard::client::ClientCredentials,
    /// #   ctx: mcp_resource_guard::AuthContext, incoming: &str) -> Result<(), mcp_resource_guard::client::ClientError> {
    /// let downstream = cc
    ///     .exchange(incoming, &ctx, "https://api.example.com", &["read".to_owned()], None)
    ///     .await?;
    /// # let _ = downstream; Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`TokenSource::token`](super::TokenSource::token).
    pub async fn exchange(
        &self,
        subject_token: &str,
        subject: &AuthContext,
        resource: &str,
        scopes: &[String],
        actor_token: Option<&str>,
    ) -> Result<AccessToken, ClientError> {
        let scope = scope_key(scopes);
        let digest = crate::crypto::sha256(subject_token.as_bytes());
        let subject_key = base64_simd::URL_SAFE_NO_PAD.encode_to_string(digest);
        let actor_key = actor_token.map_or(String::new(), |a| {
            base64_simd::URL_SAFE_NO_PAD.encode_to_string(crate::crypto::sha256(a.as_bytes()))
        });
        // Never outlives the subject token.
        let cap = subject.expires_at_unix().unwrap_or(0);
        let key = (
            resource.to_owned(),
            format!("{scope}\u{0}exchange:{subject_key}:{actor_key}"),
        );
        // The form (with the subject token) is built only when a request
        // is needed.
        let fetch = || {
            let mut form = vec![
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange".to_owned(),
                ),
                ("subject_token", subject_token.to_owned()),
                ("subject_token_type", ACCESS_TOKEN_TYPE.to_owned()),
                ("requested_token_type", ACCESS_TOKEN_TYPE.to_owned()),
                ("resource", resource.to_owned()),
            ];
            if !scope.is_empty() {
                form.push(("scope", scope.clone()));
            }
            if let Some(a) = actor_token {
                form.push(("actor_token", a.to_owned()));
                form.push(("actor_token_type", ACCESS_TOKEN_TYPE.to_owned()));
            }
            self.post(form)
        };
        self.cached(key, cap, fetch).await
    }
}

/// Cascading the caller's own token downstream is allowed only to a URL
/// within one of its audiences (the same resource): the MCP specification
/// forbids passing a token on to any other API. `Ok` means sending
/// `subject`'s token to `downstream_url` is the same audience; otherwise
/// use [`ClientCredentials::exchange`].
///
/// ```
/// # use mcp_resource_guard::AuthContext;
/// # use mcp_resource_guard::client::forward_same_audience;
/// # let claims = serde_json::json!({"iss": "https://as", "aud": "https://mcp.example.com/mcp"});
/// # let ctx = AuthContext::from_claims(claims.as_object().unwrap().clone(), &Default::default()).unwrap();
/// assert!(forward_same_audience(&ctx, "https://mcp.example.com/mcp/tools").is_ok());
/// assert!(forward_same_audience(&ctx, "https://api.example.com/").is_err());
/// ```
///
/// # Errors
///
/// [`ClientError::WrongAudience`] when `downstream_url` is not within any
/// of the token's audiences.
pub fn forward_same_audience(
    subject: &AuthContext,
    downstream_url: &str,
) -> Result<(), ClientError> {
    if subject
        .audiences()
        .iter()
        .any(|aud| within(aud, downstream_url))
    {
        return Ok(());
    }
    Err(ClientError::WrongAudience {
        resource: subject.audiences().join(" "),
        url: downstream_url.to_owned(),
    })
}
