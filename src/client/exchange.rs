//! Downstream calls the right way: RFC 8693 token exchange, and cascading
//! the caller's token only to the audience it was issued for.

use super::boundary::within;
use super::credentials::{ClientCredentials, scope_key};
use super::token::{AccessToken, ClientError};
use crate::claims::AuthContext;

/// RFC 8693 §3: the type of the tokens exchanged here.
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// An RFC 8693 token exchange being set up: see
/// [`ClientCredentials::exchange`]. Nothing is sent before
/// [`send`](Self::send).
#[must_use]
pub struct TokenExchange<'a> {
    credentials: &'a ClientCredentials,
    subject_token: &'a str,
    subject: &'a AuthContext,
    resource: Option<String>,
    scopes: Vec<String>,
    actor_token: Option<&'a str>,
}

impl std::fmt::Debug for TokenExchange<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenExchange")
            .field("resource", &self.resource)
            .field("scopes", &self.scopes)
            .field("actor_token", &self.actor_token.map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

impl<'a> TokenExchange<'a> {
    /// The exchange of `subject_token` (verified as `subject`) by
    /// `credentials`, for [`ClientCredentials::exchange`].
    pub(super) fn new(
        credentials: &'a ClientCredentials,
        subject_token: &'a str,
        subject: &'a AuthContext,
    ) -> Self {
        TokenExchange {
            credentials,
            subject_token,
            subject,
            resource: None,
            scopes: Vec::new(),
            actor_token: None,
        }
    }
}

impl<'a> TokenExchange<'a> {
    /// The downstream resource the new token is for (RFC 8707).
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// The scopes to ask for (narrower than the subject token's).
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// This server's own token, so the result records who acts (`act`).
    pub fn actor_token(mut self, token: &'a str) -> Self {
        self.actor_token = Some(token);
        self
    }

    /// Sends the exchange (or serves it from the cache).
    ///
    /// # Errors
    ///
    /// [`ClientError::WrongAudience`] without a
    /// [`resource`](Self::resource); otherwise as for
    /// [`TokenSource::token`](super::TokenSource::token).
    pub async fn send(self) -> Result<AccessToken, ClientError> {
        let Some(resource) = self.resource.as_deref() else {
            return Err(ClientError::WrongAudience {
                resource: String::new(),
                url: "(no resource set: call TokenExchange::resource)".into(),
            });
        };
        let (subject_token, actor_token) = (self.subject_token, self.actor_token);
        let scope = scope_key(&self.scopes);
        let digest = crate::jose::crypto::sha256(subject_token.as_bytes());
        let subject_key = base64_simd::URL_SAFE_NO_PAD.encode_to_string(digest);
        let actor_key = actor_token.map_or(String::new(), |a| {
            base64_simd::URL_SAFE_NO_PAD.encode_to_string(crate::jose::crypto::sha256(a.as_bytes()))
        });
        // Never outlives the subject token.
        let cap = self.subject.expires_at_unix().unwrap_or(0);
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
            self.credentials.post(form)
        };
        self.credentials.cached(key, cap, fetch).await
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
