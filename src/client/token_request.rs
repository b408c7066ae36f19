//! One request to a token endpoint, for every grant: client
//! authentication, an optional DPoP proof (retried once with the server's
//! nonce on `use_dpop_nonce`), and the response read into an
//! [`AccessToken`] or a typed [`ClientError`].

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderName, HeaderValue};
use serde::Deserialize;

use super::token::{AccessToken, ClientError};
use crate::clock::Clock;
use crate::introspection::ClientAuth;
use crate::jwks::HttpFetch;

/// The largest token response read.
pub(crate) const MAX_RESPONSE: usize = 64 * 1024;

/// Where and how to ask for tokens.
#[derive(Clone)]
pub(crate) struct TokenEndpoint {
    /// The authorization server's issuer identifier (the `aud` of client
    /// assertions).
    pub(crate) issuer: String,
    pub(crate) url: String,
    pub(crate) fetcher: Arc<dyn HttpFetch>,
    pub(crate) timeout: Duration,
    pub(crate) clock: Clock,
    #[cfg(feature = "signing")]
    pub(crate) dpop: Option<Arc<super::DpopKey>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
    scope: Option<String>,
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: Option<String>,
    error_description: Option<String>,
}

/// What a token endpoint returned: the token and its lifetime in seconds.
pub(crate) type Issued = (AccessToken, u64);

impl TokenEndpoint {
    /// POSTs `form` (the grant's parameters) authenticated with `auth`.
    pub(crate) async fn request(
        &self,
        auth: &ClientAuth,
        form: Vec<(&'static str, String)>,
    ) -> Result<Issued, ClientError> {
        let resp = self.post(Some(auth), form).await?;
        parse_token(&resp.body, resp.status, &self.clock, true)
    }

    /// POSTs `form` as-is (`auth` `None`: the grant carries its own
    /// credentials, as a token exchange at an IdP does) and returns the
    /// raw response.
    pub(crate) async fn post(
        &self,
        auth: Option<&ClientAuth>,
        mut form: Vec<(&'static str, String)>,
    ) -> Result<crate::jwks::HttpResponse, ClientError> {
        let mut headers: Vec<(HeaderName, HeaderValue)> = vec![(
            http::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        )];
        if let Some(auth) = auth {
            auth.apply(&self.issuer, &self.clock, &mut headers, &mut form)
                .map_err(|e| ClientError::Unavailable(e.detail().to_owned()))?;
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let resp = self.send_once(&headers, &form).await?;
        // RFC 9449 §8: one retry with the nonce the server asked for.
        #[cfg(feature = "signing")]
        if self.asks_for_nonce(&resp) {
            return self.send_once(&headers, &form).await;
        }
        Ok(resp)
    }

    /// One POST, with a fresh DPoP proof when the client has a key.
    async fn send_once(
        &self,
        headers: &[(HeaderName, HeaderValue)],
        form: &[(&str, &str)],
    ) -> Result<crate::jwks::HttpResponse, ClientError> {
        #[cfg_attr(not(feature = "signing"), allow(unused_mut))]
        let mut headers = headers.to_vec();
        #[cfg(feature = "signing")]
        if let Some(key) = &self.dpop {
            let proof = key.proof("POST", &self.url, None)?;
            let value = HeaderValue::from_str(&proof)
                .map_err(|_| ClientError::Unavailable("DPoP proof: not a header value".into()))?;
            headers.push((HeaderName::from_static("dpop"), value));
        }
        tokio::time::timeout(
            self.timeout,
            self.fetcher
                .post_form(&self.url, &headers, form, MAX_RESPONSE),
        )
        .await
        .map_err(|_| ClientError::Unavailable("the token request timed out".into()))?
        .map_err(|e| ClientError::Unavailable(e.to_string()))
    }

    /// A 400 `use_dpop_nonce` with a new `DPoP-Nonce` (remembered).
    #[cfg(feature = "signing")]
    fn asks_for_nonce(&self, resp: &crate::jwks::HttpResponse) -> bool {
        let (Some(key), Some(nonce)) = (&self.dpop, &resp.dpop_nonce) else {
            return false;
        };
        let asked = resp.status == 400
            && serde_json::from_slice::<ErrorResponse>(&resp.body)
                .ok()
                .and_then(|e| e.error)
                .is_some_and(|e| e == "use_dpop_nonce");
        asked && key.remember_nonce(&self.url, nonce)
    }
}

/// The error an authorization server's non-success answer means: its
/// OAuth `error` on a 4xx, else unavailable.
pub(crate) fn refusal(body: &[u8], status: u16, what: &str) -> ClientError {
    match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(ErrorResponse {
            error: Some(error),
            error_description,
        }) if (400..500).contains(&status) => ClientError::Refused {
            error,
            description: error_description.unwrap_or_default(),
        },
        _ => ClientError::Unavailable(format!("{what} answered {status}")),
    }
}

/// Reads a token endpoint's answer. `need_lifetime`: refuse a token
/// without `expires_in` (a client that caches must know when to refresh);
/// otherwise one without is kept 60 s.
pub(crate) fn parse_token(
    body: &[u8],
    status: u16,
    clock: &Clock,
    need_lifetime: bool,
) -> Result<Issued, ClientError> {
    if status != 200 {
        return Err(refusal(body, status, "the token endpoint"));
    }
    let body: TokenResponse = serde_json::from_slice(body)
        .map_err(|_| ClientError::Unavailable("the token response is not a JSON object".into()))?;
    let secret = body
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or(ClientError::BadTokenResponse("no access_token"))?;
    let token_type = body
        .token_type
        .filter(|t| t.eq_ignore_ascii_case("bearer") || t.eq_ignore_ascii_case("dpop"))
        .ok_or(ClientError::BadTokenResponse(
            "token_type is neither Bearer nor DPoP",
        ))?;
    let lifetime = body
        .expires_in
        .as_ref()
        .and_then(serde_json::Value::as_u64)
        .filter(|l| *l > 0);
    let lifetime = match (lifetime, need_lifetime) {
        (Some(l), _) => l,
        (None, false) => 60,
        (None, true) => {
            return Err(ClientError::BadTokenResponse(
                "no expires_in: the client cannot know when to refresh",
            ));
        }
    };
    let now = clock.unix_now();
    Ok((
        AccessToken {
            secret: secret.into(),
            token_type: token_type.into(),
            expires_at: UNIX_EPOCH.checked_add(Duration::from_secs(now.saturating_add(lifetime))),
            scope: body.scope.map(Into::into),
            refresh_token: body.refresh_token.filter(|t| !t.is_empty()).map(Into::into),
        },
        lifetime,
    ))
}
