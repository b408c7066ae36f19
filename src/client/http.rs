//! [`AuthorizedClient`]: a reqwest client that authorizes itself from the
//! server's challenges (feature `reqwest`).

use std::sync::{Arc, Mutex};

use super::as_metadata::AuthorizationServerMetadata;
use super::boundary::within_url;
use super::builder::AuthorizedClientBuilder;
use super::credentials::ClientCredentials;
use super::discovery::{auth_param, discover, with_challenged_scopes};
use super::grant::{Grant, Kind};
use super::token::{AccessToken, ClientError};
use super::trust::TrustedIssuers;
use crate::introspection::ClientAuth;
use crate::jwks::HttpFetch;

/// What the client learned about one server.
pub(crate) struct Session {
    pub(crate) resource: String,
    /// `resource`, parsed once: every request's URL is checked against it.
    pub(crate) resource_url: url::Url,
    pub(crate) meta: AuthorizationServerMetadata,
    pub(crate) scopes: Option<Vec<String>>,
    /// The token endpoint, its cache and client authentication.
    pub(crate) source: ClientCredentials,
}

impl Session {
    fn scopes(&self) -> &[String] {
        self.scopes.as_deref().unwrap_or_default()
    }
}

/// A reqwest client for one agent identity: its MCP requests produce the
/// server's 401, which it follows (RFC 9728 metadata, then the
/// authorization server's metadata) to a token from its [`Grant`], and
/// retries; it steps up on a 403 `insufficient_scope` (once by default),
/// and finds the server's new authorization server when a token stops
/// being accepted. Credentials the grant carries go only to the
/// [`TrustedIssuers`]; tokens only within the resource they were issued
/// for; redirects are never followed. See the [module docs](super).
///
/// ```no_run
/// use mcp_resource_guard::client::{AuthorizedClient, Grant, TrustedIssuers};
/// use mcp_resource_guard::introspection::ClientAuth;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let client = AuthorizedClient::builder(Grant::client_credentials(
///     ClientAuth::client_secret_basic("agent", std::env::var("AGENT_SECRET")?),
/// ))
/// .trusted_issuers(TrustedIssuers::parse("https://auth.example.com")?)
/// .build()?;
/// let res = client
///     .send(|http| {
///         http.post("https://mcp.example.com/mcp")
///             .header("content-type", "application/json")
///             .header("accept", "application/json, text/event-stream")
///             .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#)
///     })
///     .await?;
/// println!("{}", res.status());
/// # Ok(()) }
/// ```
pub struct AuthorizedClient {
    pub(crate) http: reqwest::Client,
    pub(crate) fetcher: Arc<dyn HttpFetch>,
    pub(crate) grant: Grant,
    pub(crate) trusted: Option<TrustedIssuers>,
    #[cfg(feature = "signing")]
    pub(crate) dpop: Option<Arc<super::DpopKey>>,
    pub(crate) max_step_ups: u32,
    pub(crate) sessions: Mutex<Vec<Arc<Session>>>,
}

impl std::fmt::Debug for AuthorizedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizedClient")
            .field("grant", &self.grant)
            .field("trusted", &self.trusted)
            .finish_non_exhaustive()
    }
}

/// At most this many servers are remembered.
const MAX_SESSIONS: usize = 64;

impl AuthorizedClient {
    /// A client getting its tokens with `grant`.
    pub fn builder(grant: Grant) -> AuthorizedClientBuilder {
        AuthorizedClientBuilder::new(grant)
    }

    fn session_for(&self, url: &str) -> Option<Arc<Session>> {
        let url = url::Url::parse(url).ok()?;
        self.session_for_url(&url)
    }

    fn session_for_url(&self, url: &url::Url) -> Option<Arc<Session>> {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions
            .iter()
            .find(|s| within_url(&s.resource_url, url))
            .cloned()
    }

    fn remember(&self, session: Arc<Session>) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|s| s.resource != session.resource);
        if sessions.len() >= MAX_SESSIONS {
            sessions.remove(0);
        }
        sessions.push(session);
    }

    /// Discovery for `url` (after a 401 saying `www`, if it said anything)
    /// and a session with the scopes found plus `extra`.
    async fn authorize(
        &self,
        url: &str,
        www: Option<&str>,
        extra: &[String],
    ) -> Result<Arc<Session>, ClientError> {
        let discovered = discover(&*self.fetcher, url, www).await?;
        // No credential leaves before the issuer is known to be trusted.
        let issuer = match &self.trusted {
            Some(t) => t.pick(&discovered.authorization_servers)?,
            None if self.grant.needs_trust() => {
                return Err(ClientError::UntrustedAuthorizationServer {
                    issuer: discovered.authorization_servers.join(" "),
                });
            }
            None => discovered
                .authorization_servers
                .first()
                .ok_or_else(|| ClientError::Discovery("no authorization server".into()))?,
        };
        let meta = AuthorizationServerMetadata::discover(&*self.fetcher, issuer).await?;
        let mut scopes = discovered.scopes;
        if !extra.is_empty() {
            let s = scopes.get_or_insert_with(Vec::new);
            for x in extra {
                if !s.contains(x) {
                    s.push(x.clone());
                }
            }
        }
        let previous = self
            .session_for(url)
            .filter(|s| s.meta.issuer == meta.issuer && s.resource == discovered.resource);
        let source = match previous {
            Some(s) => s.source.clone(),
            None => self.token_source(&meta)?,
        };
        let resource_url = url::Url::parse(&discovered.resource).map_err(|_| {
            ClientError::Discovery(format!("{:?} is not a URL", discovered.resource))
        })?;
        let session = Arc::new(Session {
            resource_url,
            resource: discovered.resource,
            meta,
            scopes,
            source,
        });
        self.remember(session.clone());
        Ok(session)
    }

    /// The token endpoint of `meta` with the grant's client authentication
    /// and a cache.
    fn token_source(
        &self,
        meta: &AuthorizationServerMetadata,
    ) -> Result<ClientCredentials, ClientError> {
        // A person's flow with a registered-on-the-fly client authenticates
        // each request itself (`AuthorizationCode::token`); its cache's own
        // authentication is never used, so it carries no credential.
        let auth = self
            .grant
            .configured_client()
            .cloned()
            .unwrap_or_else(|| ClientAuth::none("unregistered"));
        let builder = ClientCredentials::builder(&meta.issuer, auth)
            .token_endpoint(&meta.token_endpoint)
            .http_fetch(self.fetcher.clone());
        #[cfg(feature = "signing")]
        let builder = match &self.dpop {
            Some(key)
                if meta
                    .dpop_signing_alg_values_supported
                    .iter()
                    .any(|a| a == "ES256") =>
            {
                builder.dpop(key.clone())
            }
            _ => builder,
        };
        builder
            .build()
            .map_err(|e| ClientError::Discovery(e.to_string()))
    }

    /// The session's token, cached or new from the grant.
    async fn token(&self, s: &Session) -> Result<AccessToken, ClientError> {
        let key = (
            s.resource.clone(),
            super::credentials::scope_key(s.scopes()),
        );
        // Built only when a token is needed.
        let fetch = || async {
            let scope = s.scopes().join(" ");
            let endpoint = s.source.token_endpoint().await?;
            match &self.grant.0 {
                Kind::ClientCredentials(_) => {
                    let mut form = vec![
                        ("grant_type", "client_credentials".to_owned()),
                        ("resource", s.resource.clone()),
                    ];
                    if !scope.is_empty() {
                        form.push(("scope", scope.clone()));
                    }
                    s.source.post(form).await
                }
                Kind::JwtBearer(client, assertion) => {
                    super::grant::jwt_bearer(
                        &endpoint,
                        client,
                        assertion.read()?,
                        &s.resource,
                        &scope,
                    )
                    .await
                }
                Kind::Enterprise(client, idp) => {
                    let mut at_idp = endpoint.clone();
                    at_idp.url = idp.token_endpoint().to_owned();
                    at_idp.issuer = idp.token_endpoint().to_owned();
                    #[cfg(feature = "signing")]
                    {
                        at_idp.dpop = None;
                    }
                    let jag =
                        super::grant::id_jag(idp, &at_idp, &s.meta.issuer, &s.resource, &scope)
                            .await?;
                    super::grant::jwt_bearer(&endpoint, client, jag, &s.resource, &scope).await
                }
                Kind::AuthorizationCode(flow) => {
                    flow.token(&super::authorization_code::FlowTarget {
                        fetcher: &*self.fetcher,
                        meta: &s.meta,
                        endpoint: &endpoint,
                        resource: &s.resource,
                        scopes: s.scopes.as_deref(),
                    })
                    .await
                }
            }
        };
        s.source.cached(key, u64::MAX, fetch).await
    }

    /// A token for the MCP server at `url`, for MCP client libraries that
    /// take a token and report the server's 401 (see `examples/agent.rs`):
    /// discovery from that 401's `WWW-Authenticate` value (`challenge`),
    /// or with `None` from the well-known URIs (RFC 9728 §3). A server
    /// already known is not asked again.
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub async fn token_for(
        &self,
        url: &str,
        challenge: Option<&str>,
    ) -> Result<AccessToken, ClientError> {
        let session = match self.session_for(url) {
            Some(s) => s,
            None => self.authorize(url, challenge, &[]).await?,
        };
        self.token(&session).await
    }

    /// After a 403 `insufficient_scope` from `url` (its `WWW-Authenticate`
    /// value `www`), a token for the union of the held and the challenged
    /// scopes: what an MCP client library reports, fed back here.
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub async fn step_up(&self, url: &str, www: &str) -> Result<AccessToken, ClientError> {
        let held = self
            .session_for(url)
            .and_then(|s| s.scopes.clone())
            .unwrap_or_default();
        let union = with_challenged_scopes(held, www);
        let session = self.authorize(url, Some(www), &union).await?;
        self.token(&session).await
    }

    /// Sends the request `build` makes (called again for each retry),
    /// authorizing it as the server's challenges say. The token goes only
    /// to a URL within the resource it is for: the URL of the request
    /// `build` returns is the one checked.
    ///
    /// # Errors
    ///
    /// [`ClientError::Discovery`] when the 401 leads nowhere usable;
    /// [`ClientError::UntrustedAuthorizationServer`] when it leads to an
    /// authorization server the credentials are not for;
    /// [`ClientError::InsufficientScope`] when the server still refuses
    /// after the step-ups; the grant's errors;
    /// [`ClientError::Unavailable`] when the server cannot be reached.
    pub async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let mut step_ups = 0;
        let mut authorized_now = false;
        let mut nonce_retried = false;
        let mut session: Option<Arc<Session>> = None;
        loop {
            let mut req = build(&self.http)
                .build()
                .map_err(|e| ClientError::Unavailable(e.without_url().to_string()))?;
            // The session is the one for the URL actually requested.
            session = session
                .filter(|s| within_url(&s.resource_url, req.url()))
                .or_else(|| self.session_for_url(req.url()));
            let url = req.url().to_string();
            let mut sent_token = None;
            if let Some(s) = &session {
                let token = self.token(s).await?;
                self.attach(&mut req, &token)?;
                sent_token = Some(token);
            }
            let res = self
                .http
                .execute(req)
                .await
                .map_err(|e| ClientError::Unavailable(e.without_url().to_string()))?;
            let www = www_authenticate(&res);
            match res.status().as_u16() {
                401 => {
                    if !nonce_retried && self.dpop_nonce(&res, &url, sent_token.as_ref()) {
                        nonce_retried = true;
                        continue;
                    }
                    if authorized_now {
                        return Ok(res);
                    }
                    if let Some(s) = &session {
                        // The server no longer takes this token.
                        s.source.forget(&s.resource, s.scopes());
                    }
                    session = Some(self.authorize(&url, www.as_deref(), &[]).await?);
                    authorized_now = true;
                }
                403 if www
                    .as_deref()
                    .and_then(|w| auth_param(w, "error"))
                    .is_some_and(|e| e == "insufficient_scope") =>
                {
                    let www = www.unwrap_or_default();
                    if step_ups >= self.max_step_ups {
                        let needed = auth_param(&www, "scope").unwrap_or_default();
                        return Err(ClientError::InsufficientScope(needed));
                    }
                    let held = session.as_ref().map(|s| s.scopes().to_vec());
                    let union = with_challenged_scopes(held.unwrap_or_default(), &www);
                    session = Some(self.authorize(&url, Some(&www), &union).await?);
                    step_ups += 1;
                }
                _ => return Ok(res),
            }
        }
    }

    /// Adds `token` (and a DPoP proof for a DPoP-bound one) to `req`.
    fn attach(&self, req: &mut reqwest::Request, token: &AccessToken) -> Result<(), ClientError> {
        let header = |v: String| {
            let mut v = http::HeaderValue::from_str(&v)
                .map_err(|_| ClientError::BadTokenResponse("the token is not a header value"))?;
            v.set_sensitive(true);
            Ok::<_, ClientError>(v)
        };
        if token.is_dpop() {
            #[cfg(feature = "signing")]
            if let Some(key) = &self.dpop {
                let proof = key.proof(
                    req.method().as_str(),
                    req.url().as_str(),
                    Some(token.secret()),
                )?;
                req.headers_mut()
                    .insert(http::HeaderName::from_static("dpop"), header(proof)?);
                req.headers_mut()
                    .insert(http::header::AUTHORIZATION, header(token.authorization())?);
                return Ok(());
            }
            return Err(ClientError::BadTokenResponse(
                "a DPoP-bound token came back but this client has no DPoP key",
            ));
        }
        req.headers_mut()
            .insert(http::header::AUTHORIZATION, header(token.authorization())?);
        Ok(())
    }

    /// RFC 9449 §9: a 401 `use_dpop_nonce` with a new `DPoP-Nonce`, for a
    /// request that carried a DPoP proof. Remembers the nonce.
    fn dpop_nonce(&self, res: &reqwest::Response, url: &str, token: Option<&AccessToken>) -> bool {
        #[cfg(feature = "signing")]
        if let (Some(key), Some(true)) = (&self.dpop, token.map(AccessToken::is_dpop)) {
            let asked = www_authenticate(res).is_some_and(|w| {
                super::discovery::challenge_params(&w, "DPoP")
                    .iter()
                    .any(|(k, v)| k == "error" && v == "use_dpop_nonce")
            });
            let nonce = res
                .headers()
                .get("dpop-nonce")
                .and_then(|v| v.to_str().ok());
            return asked && nonce.is_some_and(|n| key.remember_nonce(url, n));
        }
        let _ = (res, url, token);
        false
    }
}

fn www_authenticate(res: &reqwest::Response) -> Option<String> {
    let all: Vec<&str> = res
        .headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!all.is_empty()).then(|| all.join(", "))
}
