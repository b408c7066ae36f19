//! [`AuthorizationCode`]: a person's flow for agents and CLIs (OAuth 2.1
//! authorization code with PKCE S256), with the client registered as the
//! server allows (pre-registered, client ID metadata document, dynamic
//! registration), refresh tokens, RFC 9207 `iss` checked, and tokens kept
//! in a [`TokenStore`].

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::as_metadata::AuthorizationServerMetadata;
use super::registration::{ClientMetadata, Registrations};
use super::store::{MemoryTokenStore, TokenStore};
use super::token::ClientError;
use super::token_request::{Issued, TokenEndpoint, parse_token};
use crate::introspection::ClientAuth;
use crate::jwks::HttpFetch;

/// Shows a person the authorization URL and brings back where the
/// authorization server redirected their browser: opening a browser (or
/// printing the URL) is the application's business.
/// [`LoopbackRedirect`](super::LoopbackRedirect) does it for CLIs.
#[async_trait]
pub trait UserAgent: fmt::Debug + Send + Sync + 'static {
    /// Has the person visit `authorization_url`; returns the full URL the
    /// browser was sent back to (the redirect URI with `code`, `state`,
    /// and `iss` when the server sends it).
    ///
    /// # Errors
    ///
    /// [`ClientError::AuthorizationResponse`] when no answer came.
    async fn authorize(&self, authorization_url: &str) -> Result<String, ClientError>;
}

/// The authorization code flow (OAuth 2.1 §4.1) with PKCE S256. See the
/// [module docs](super).
///
/// ```
/// use std::sync::Arc;
/// use mcp_resource_guard::client::{AuthorizationCode, Grant, UserAgent, ClientError};
///
/// #[derive(Debug)]
/// struct PrintUrl;
/// #[async_trait::async_trait]
/// impl UserAgent for PrintUrl {
///     async fn authorize(&self, url: &str) -> Result<String, ClientError> {
///         println!("open {url}");
///         Err(ClientError::AuthorizationResponse("not in a doctest".into()))
///     }
/// }
/// let grant = Grant::authorization_code(
///     AuthorizationCode::new("http://127.0.0.1:8976/callback", PrintUrl)
///         .client_metadata_document("https://agent.example.com/client.json"),
/// );
/// # let _ = grant;
/// ```
pub struct AuthorizationCode {
    user_agent: Arc<dyn UserAgent>,
    client: ClientMetadata,
    pre_registered: Option<ClientAuth>,
    metadata_document: Option<String>,
    store: Arc<dyn TokenStore>,
    registrations: Registrations,
}

impl fmt::Debug for AuthorizationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationCode")
            .field("redirect_uri", &self.client.redirect_uri)
            .field("pre_registered", &self.pre_registered)
            .field("metadata_document", &self.metadata_document)
            .finish_non_exhaustive()
    }
}

/// A random URL-safe string of `bytes` random bytes.
pub(crate) fn random_string(bytes: usize) -> Result<String, ClientError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)
        .map_err(|_| ClientError::Unavailable("the system RNG failed".into()))?;
    Ok(base64_simd::URL_SAFE_NO_PAD.encode_to_string(&buf))
}

/// What one run of the flow needs to know about the server.
pub(crate) struct FlowTarget<'a> {
    pub(crate) fetcher: &'a dyn HttpFetch,
    pub(crate) meta: &'a AuthorizationServerMetadata,
    pub(crate) endpoint: &'a TokenEndpoint,
    pub(crate) resource: &'a str,
    pub(crate) scopes: Option<&'a [String]>,
}

impl AuthorizationCode {
    /// The flow with this redirect URI (a loopback URL for CLIs, RFC 8252
    /// §7.3) and user agent. The client registers dynamically unless
    /// configured otherwise; tokens stay in memory.
    pub fn new(redirect_uri: impl Into<String>, user_agent: impl UserAgent) -> Self {
        Self {
            user_agent: Arc::new(user_agent),
            client: ClientMetadata {
                client_name: "mcp-resource-guard client".into(),
                redirect_uri: redirect_uri.into(),
                refresh: true,
            },
            pre_registered: None,
            metadata_document: None,
            store: Arc::new(MemoryTokenStore::default()),
            registrations: Registrations::default(),
        }
    }

    /// A client registered beforehand (its id and token endpoint
    /// authentication: [`ClientAuth::none`] for a public client). Its
    /// credentials go only to the trusted issuers.
    #[must_use]
    pub fn pre_registered(mut self, client: ClientAuth) -> Self {
        self.pre_registered = Some(client);
        self
    }

    /// The URL of this client's metadata document, used as its
    /// `client_id` where the server supports client ID metadata documents
    /// (it must be `https` with a path and serve the document).
    #[must_use]
    pub fn client_metadata_document(mut self, url: impl Into<String>) -> Self {
        self.metadata_document = Some(url.into());
        self
    }

    /// The `client_name` sent when registering dynamically.
    #[must_use]
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client.client_name = name.into();
        self
    }

    /// Whether to ask for refresh tokens (`offline_access`, when the server
    /// lists it, and the `refresh_token` grant when registering). On by
    /// default.
    #[must_use]
    pub fn refresh_tokens(mut self, on: bool) -> Self {
        self.client.refresh = on;
        self
    }

    /// Keep tokens here (defaults to a [`MemoryTokenStore`]).
    #[must_use]
    pub fn token_store(mut self, store: impl TokenStore) -> Self {
        self.store = Arc::new(store);
        self
    }

    pub(crate) fn pre_registered_client(&self) -> Option<&ClientAuth> {
        self.pre_registered.as_ref()
    }

    /// How this client is known at `meta`'s server.
    async fn client_at(
        &self,
        fetcher: &dyn HttpFetch,
        meta: &AuthorizationServerMetadata,
    ) -> Result<ClientAuth, ClientError> {
        if let Some(c) = &self.pre_registered {
            return Ok(c.clone());
        }
        if let (Some(url), true) = (
            &self.metadata_document,
            meta.client_id_metadata_document_supported,
        ) {
            return Ok(ClientAuth::none(url.clone()));
        }
        self.registrations
            .dynamic(fetcher, meta, &self.client)
            .await
    }

    /// A token for the target: refreshed from the store, else from a new
    /// authorization.
    pub(crate) async fn token(&self, t: &FlowTarget<'_>) -> Result<Issued, ClientError> {
        let client = self.client_at(t.fetcher, t.meta).await?;
        let mut scopes: Vec<String> = t.scopes.map(<[String]>::to_vec).unwrap_or_default();
        let offline = "offline_access";
        if self.client.refresh
            && t.meta.scopes_supported.iter().any(|s| s == offline)
            && !scopes.iter().any(|s| s == offline)
        {
            scopes.push(offline.to_owned());
        }
        let scope = scopes.join(" ");
        let key = format!(
            "{} {} {} {scope}",
            t.meta.issuer,
            t.resource,
            client.client_id()
        );
        if let Some(refresh) = self.store.load(&key).await.and_then(|s| s.refresh_token) {
            let mut form = vec![
                ("grant_type", "refresh_token".to_owned()),
                ("refresh_token", refresh.to_string()),
                ("resource", t.resource.to_owned()),
            ];
            if !scope.is_empty() {
                form.push(("scope", scope.clone()));
            }
            match t.endpoint.request(&client, form).await {
                Ok((mut token, lifetime)) => {
                    // A server that does not rotate refresh tokens keeps
                    // the old one valid.
                    token.refresh_token = token.refresh_token.or(Some(refresh));
                    self.store.save(&key, &token).await;
                    return Ok((token, lifetime));
                }
                Err(_) => self.store.remove(&key).await,
            }
        }
        let issued = self.authorize(t, &client, &scope).await;
        match &issued {
            Ok((token, _)) => self.store.save(&key, token).await,
            Err(ClientError::Refused { error, .. }) if error == "invalid_client" => {
                self.registrations.forget(&t.meta.issuer);
            }
            Err(_) => {}
        }
        issued
    }

    async fn authorize(
        &self,
        t: &FlowTarget<'_>,
        client: &ClientAuth,
        scope: &str,
    ) -> Result<Issued, ClientError> {
        let meta = t.meta;
        let endpoint = meta.authorization_endpoint.as_deref().ok_or_else(|| {
            ClientError::Discovery(format!("{} has no authorization_endpoint", meta.issuer))
        })?;
        if !meta
            .code_challenge_methods_supported
            .iter()
            .any(|m| m == "S256")
        {
            return Err(ClientError::Discovery(format!(
                "{} does not advertise PKCE S256 (code_challenge_methods_supported): the MCP specification forbids proceeding",
                meta.issuer
            )));
        }
        let verifier = random_string(32)?;
        let challenge = base64_simd::URL_SAFE_NO_PAD
            .encode_to_string(crate::jose::crypto::sha256(verifier.as_bytes()));
        let state = random_string(16)?;
        let mut url = url::Url::parse(endpoint)
            .map_err(|_| ClientError::Discovery(format!("{endpoint:?} is not a URL")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", client.client_id())
                .append_pair("redirect_uri", &self.client.redirect_uri)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256")
                .append_pair("state", &state)
                .append_pair("resource", t.resource);
            if !scope.is_empty() {
                q.append_pair("scope", scope);
            }
        }
        let callback = self.user_agent.authorize(url.as_str()).await?;
        let code = read_response(&callback, &self.client.redirect_uri, &state, meta)?;
        let form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code),
            ("redirect_uri", self.client.redirect_uri.clone()),
            ("code_verifier", verifier),
            ("resource", t.resource.to_owned()),
        ];
        let resp = t.endpoint.post(Some(client), form).await?;
        parse_token(&resp.body, resp.status, &t.endpoint.clock, false)
    }
}

/// The `code` of an authorization response, after checking that it came
/// back to our redirect URI, for our `state`, from the server asked
/// (RFC 9207: a present `iss` must equal the issuer exactly; an absent one
/// is refused when the server advertises it).
pub(crate) fn read_response(
    callback: &str,
    redirect_uri: &str,
    state: &str,
    meta: &AuthorizationServerMetadata,
) -> Result<String, ClientError> {
    let bad = |s: String| ClientError::AuthorizationResponse(s);
    let url = url::Url::parse(callback).map_err(|_| bad("the callback is not a URL".into()))?;
    let expected =
        url::Url::parse(redirect_uri).map_err(|_| bad("the redirect URI is not a URL".into()))?;
    if url.origin() != expected.origin() || url.path() != expected.path() {
        return Err(bad("the callback is not the redirect URI".into()));
    }
    let get = |name: &str| {
        let mut values = url
            .query_pairs()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned());
        match (values.next(), values.next()) {
            (Some(v), None) => Ok(Some(v)),
            (None, _) => Ok(None),
            (Some(_), Some(_)) => Err(bad(format!("the callback repeats {name}"))),
        }
    };
    match get("iss")? {
        Some(iss) if iss != meta.issuer => {
            return Err(bad(format!(
                "iss {iss:?} is not the authorization server asked ({:?}): a mix-up attack or a misconfigured server (RFC 9207)",
                meta.issuer
            )));
        }
        None if meta.authorization_response_iss_parameter_supported => {
            return Err(bad(
                "the server advertises the iss parameter but the response has none (RFC 9207)"
                    .into(),
            ));
        }
        _ => {}
    }
    if get("state")?.as_deref() != Some(state) {
        return Err(bad("state does not match the request".into()));
    }
    if let Some(error) = get("error")? {
        let description = get("error_description")?.unwrap_or_default();
        return Err(ClientError::Refused { error, description });
    }
    get("code")?
        .filter(|c| !c.is_empty())
        .ok_or_else(|| bad("no code in the callback".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(iss_supported: bool) -> AuthorizationServerMetadata {
        serde_json::from_value(serde_json::json!({
            "issuer": "https://as.example",
            "token_endpoint": "https://as.example/token",
            "authorization_response_iss_parameter_supported": iss_supported,
        }))
        .unwrap()
    }

    const REDIRECT: &str = "http://127.0.0.1:7000/callback";

    #[test]
    fn the_authorization_response_is_checked() {
        let ok = |cb: &str, supported| read_response(cb, REDIRECT, "s1", &meta(supported));
        let cb = |q: &str| format!("{REDIRECT}?{q}");
        assert_eq!(
            ok(&cb("code=c&state=s1&iss=https%3A%2F%2Fas.example"), true),
            Ok("c".into())
        );
        assert_eq!(ok(&cb("code=c&state=s1"), false), Ok("c".into()));
        for (q, supported) in [
            ("code=c&state=s1", true),
            ("code=c&state=s1&iss=https%3A%2F%2Fas.example%2F", true),
            ("code=c&state=s1&iss=https%3A%2F%2Fevil.example", false),
            ("code=c&state=s2&iss=https%3A%2F%2Fas.example", true),
            (
                "code=c&state=s1&state=s1&iss=https%3A%2F%2Fas.example",
                true,
            ),
            ("state=s1&iss=https%3A%2F%2Fas.example", true),
        ] {
            assert!(
                matches!(
                    ok(&cb(q), supported),
                    Err(ClientError::AuthorizationResponse(_))
                ),
                "{q}"
            );
        }
        assert!(matches!(
            ok("http://127.0.0.1:7001/callback?code=c&state=s1", false),
            Err(ClientError::AuthorizationResponse(_))
        ));
        assert_eq!(
            ok(&cb("error=access_denied&state=s1"), false),
            Err(ClientError::Refused {
                error: "access_denied".into(),
                description: String::new()
            })
        );
    }
}
