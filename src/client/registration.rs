//! How a client is known to an authorization server it found by
//! discovery: pre-registered credentials, a client ID metadata document
//! (a URL as `client_id`), or RFC 7591 dynamic registration, in that order
//! of preference. Credentials from a registration belong to the server
//! that issued them and are never shown to another.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Deserialize;

use super::as_metadata::AuthorizationServerMetadata;
use super::token::ClientError;
use super::token_request::refusal;
use crate::guard::resource::is_loopback;
use crate::introspection::ClientAuth;
use crate::jwks::HttpFetch;

/// At most this many authorization servers' registrations are kept.
const MAX_REGISTRATIONS: usize = 64;
/// The largest registration response read.
const MAX_RESPONSE: usize = 64 * 1024;

/// What the client says about itself when it registers.
#[derive(Debug, Clone)]
pub(crate) struct ClientMetadata {
    pub(crate) client_name: String,
    pub(crate) redirect_uri: String,
    /// Ask for `refresh_token` among the grant types.
    pub(crate) refresh: bool,
}

/// The registrations made so far, one per issuer.
#[derive(Debug, Default)]
pub(crate) struct Registrations {
    by_issuer: Mutex<HashMap<String, ClientAuth>>,
}

#[derive(Deserialize)]
struct RegistrationResponse {
    client_id: Option<String>,
    client_secret: Option<String>,
    token_endpoint_auth_method: Option<String>,
}

/// The token endpoint authentication to register with: `none` when the
/// server takes it (a native client keeps no secret well), else what it
/// supports among `client_secret_basic` and `client_secret_post`.
fn preferred_method(meta: &AuthorizationServerMetadata) -> &'static str {
    let supported = &meta.token_endpoint_auth_methods_supported;
    let has = |m: &str| supported.iter().any(|s| s == m);
    if supported.is_empty() || has("client_secret_basic") && !has("none") {
        // RFC 8414 §2: the default is client_secret_basic.
        "client_secret_basic"
    } else if has("none") {
        "none"
    } else if has("client_secret_post") {
        "client_secret_post"
    } else {
        "client_secret_basic"
    }
}

impl Registrations {
    /// The client authentication to use at `meta`'s server: a registration
    /// made earlier, else a new dynamic registration.
    pub(crate) async fn dynamic(
        &self,
        fetcher: &dyn HttpFetch,
        meta: &AuthorizationServerMetadata,
        client: &ClientMetadata,
    ) -> Result<ClientAuth, ClientError> {
        if let Some(auth) = self.get(&meta.issuer) {
            return Ok(auth);
        }
        let endpoint = meta.registration_endpoint.as_deref().ok_or_else(|| {
            ClientError::Discovery(format!(
                "{} offers neither client ID metadata documents nor dynamic registration: configure a pre-registered client",
                meta.issuer
            ))
        })?;
        let method = preferred_method(meta);
        let native = url::Url::parse(&client.redirect_uri)
            .ok()
            .is_some_and(|u| is_loopback(&u) || !matches!(u.scheme(), "http" | "https"));
        let mut grant_types = vec!["authorization_code"];
        if client.refresh {
            grant_types.push("refresh_token");
        }
        let body = serde_json::json!({
            "client_name": client.client_name,
            "redirect_uris": [client.redirect_uri],
            "grant_types": grant_types,
            "response_types": ["code"],
            "token_endpoint_auth_method": method,
            "application_type": if native { "native" } else { "web" },
        });
        let resp = fetcher
            .post_json(endpoint, &body, MAX_RESPONSE)
            .await
            .map_err(|e| ClientError::Unavailable(format!("registering at {endpoint}: {e}")))?;
        if !(200..300).contains(&resp.status) {
            return Err(refusal(
                &resp.body,
                resp.status,
                "the registration endpoint",
            ));
        }
        let reg: RegistrationResponse = serde_json::from_slice(&resp.body).map_err(|_| {
            ClientError::Unavailable("the registration response is not a JSON object".into())
        })?;
        let id = reg
            .client_id
            .filter(|c| !c.is_empty())
            .ok_or(ClientError::BadTokenResponse(
                "the registration response has no client_id",
            ))?;
        let method = reg.token_endpoint_auth_method.as_deref().unwrap_or(method);
        let auth = match (method, reg.client_secret) {
            ("client_secret_post", Some(secret)) => ClientAuth::client_secret_post(id, secret),
            ("client_secret_basic", Some(secret)) => ClientAuth::client_secret_basic(id, secret),
            _ => ClientAuth::none(id),
        };
        self.put(&meta.issuer, auth.clone());
        Ok(auth)
    }

    fn get(&self, issuer: &str) -> Option<ClientAuth> {
        let map = self.by_issuer.lock().unwrap_or_else(|p| p.into_inner());
        map.get(issuer).cloned()
    }

    fn put(&self, issuer: &str, auth: ClientAuth) {
        let mut map = self.by_issuer.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_REGISTRATIONS && !map.contains_key(issuer) {
            // A registration can be made again; nothing security-relevant
            // is lost.
            map.clear();
        }
        map.insert(issuer.to_owned(), auth);
    }

    /// Forgets the registration at `issuer` (the server no longer knows it).
    pub(crate) fn forget(&self, issuer: &str) {
        let mut map = self.by_issuer.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(issuer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(methods: &[&str]) -> AuthorizationServerMetadata {
        serde_json::from_value(serde_json::json!({
            "issuer": "https://as.example",
            "token_endpoint": "https://as.example/token",
            "token_endpoint_auth_methods_supported": methods,
        }))
        .unwrap()
    }

    #[test]
    fn the_method_follows_what_the_server_supports() {
        assert_eq!(preferred_method(&meta(&[])), "client_secret_basic");
        assert_eq!(preferred_method(&meta(&["none"])), "none");
        assert_eq!(
            preferred_method(&meta(&["client_secret_post"])),
            "client_secret_post"
        );
        assert_eq!(
            preferred_method(&meta(&["client_secret_basic"])),
            "client_secret_basic"
        );
        assert_eq!(
            preferred_method(&meta(&["client_secret_basic", "none"])),
            "none"
        );
    }
}
