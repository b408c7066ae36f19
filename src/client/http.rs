//! [`AuthorizedClient`]: a reqwest client that authorizes itself from the
//! server's challenges (feature `reqwest`).

use std::sync::{Arc, Mutex};

use super::credentials::ClientCredentials;
use super::discovery::{Discovered, challenge_params, discover, within};
use super::token::{ClientError, TokenSource};
use crate::error::ConfigError;
use crate::introspection::ClientAuth;
use crate::jwks::{HttpFetch, ReqwestFetch};

/// What the client learned about one server.
struct Session {
    discovered: Discovered,
    source: ClientCredentials,
    scopes: Vec<String>,
}

/// A reqwest client for one agent identity: it finds out from the server's
/// 401 where to get a token, gets one with its client credentials, and
/// retries; it steps up once on a 403 `insufficient_scope`. See the
/// [module docs](super).
///
/// ```no_run
/// use mcp_resource_guard::client::AuthorizedClient;
/// use mcp_resource_guard::introspection::ClientAuth;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let client = AuthorizedClient::new(ClientAuth::client_secret_basic("agent", "secret"))?;
/// let url = "https://mcp.example.com/mcp";
/// let res = client
///     .send(url, |http| http.post(url).header("content-type", "application/json").body("{}"))
///     .await?;
/// println!("{}", res.status());
/// # Ok(()) }
/// ```
pub struct AuthorizedClient {
    http: reqwest::Client,
    fetcher: Arc<dyn HttpFetch>,
    auth: ClientAuth,
    sessions: Mutex<Vec<Arc<Session>>>,
}

impl std::fmt::Debug for AuthorizedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizedClient")
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// At most this many servers are remembered.
const MAX_SESSIONS: usize = 64;

impl AuthorizedClient {
    /// A client authenticating to authorization servers with `auth`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::HttpClient`] when reqwest cannot build its client.
    pub fn new(auth: ClientAuth) -> Result<Self, ConfigError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::HttpClient {
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            fetcher: Arc::new(ReqwestFetch::new()?),
            auth,
            sessions: Mutex::default(),
        })
    }

    /// Use this fetcher for discovery and token requests (tests, proxies).
    #[must_use]
    pub fn with_fetcher(mut self, fetcher: impl HttpFetch) -> Self {
        self.fetcher = Arc::new(fetcher);
        self
    }

    fn session_for(&self, url: &str) -> Option<Arc<Session>> {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions
            .iter()
            .find(|s| within(&s.discovered.resource, url))
            .cloned()
    }

    fn remember(&self, session: Arc<Session>) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|s| s.discovered.resource != session.discovered.resource);
        if sessions.len() >= MAX_SESSIONS {
            sessions.remove(0);
        }
        sessions.push(session);
    }

    /// A session for the server whose 401 said `www`.
    async fn authorize(
        &self,
        url: &str,
        www: &str,
        extra: &[String],
    ) -> Result<Arc<Session>, ClientError> {
        let discovered = discover(&*self.fetcher, url, www).await?;
        let source = match self.session_for(url) {
            Some(s) if s.discovered.authorization_server == discovered.authorization_server => {
                s.source.clone()
            }
            _ => ClientCredentials::builder(&discovered.authorization_server, self.auth.clone())
                .http_fetch(self.fetcher.clone())
                .build()
                .map_err(|e| ClientError::Discovery(e.to_string()))?,
        };
        let mut scopes = discovered.scopes.clone();
        for s in extra {
            if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
        let session = Arc::new(Session {
            discovered,
            source,
            scopes,
        });
        self.remember(session.clone());
        Ok(session)
    }

    /// The token to send to `url`, getting one from the server's challenge
    /// when none is known: probes with an unauthenticated `GET`.
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub async fn token_for(&self, url: &str) -> Result<super::AccessToken, ClientError> {
        let session = match self.session_for(url) {
            Some(s) => s,
            None => {
                let res = self
                    .http
                    .get(url)
                    .send()
                    .await
                    .map_err(|e| ClientError::Unavailable(e.without_url().to_string()))?;
                let www = www_authenticate(&res).ok_or_else(|| {
                    ClientError::Discovery(format!(
                        "{url} answered {} without a Bearer challenge",
                        res.status()
                    ))
                })?;
                self.authorize(url, &www, &[]).await?
            }
        };
        session
            .source
            .token(&session.discovered.resource, &session.scopes)
            .await
    }

    /// After a 403 `insufficient_scope` from `url` (its `WWW-Authenticate`
    /// value `www`), a token for the union of the held and the challenged
    /// scopes: what an MCP client library reports, fed back here (see
    /// `examples/agent.rs`).
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub async fn step_up(&self, url: &str, www: &str) -> Result<super::AccessToken, ClientError> {
        let mut union = self
            .session_for(url)
            .map(|s| s.scopes.clone())
            .unwrap_or_default();
        for (k, v) in challenge_params(www, "Bearer") {
            if k == "scope" {
                for s in v.split(' ').filter(|s| !s.is_empty()) {
                    if !union.iter().any(|u| u == s) {
                        union.push(s.to_owned());
                    }
                }
            }
        }
        let session = self.authorize(url, www, &union).await?;
        session
            .source
            .token(&session.discovered.resource, &session.scopes)
            .await
    }

    /// Sends the request `build` makes (called again for each retry),
    /// authorizing as the server's challenges say.
    ///
    /// # Errors
    ///
    /// [`ClientError::Discovery`] when the 401 leads nowhere usable;
    /// [`ClientError::InsufficientScope`] when the server still refuses
    /// after one step-up; the token errors of [`ClientCredentials`];
    /// [`ClientError::Unavailable`] when the server cannot be reached.
    pub async fn send(
        &self,
        url: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let mut session = self.session_for(url);
        let mut stepped_up = false;
        let mut authorized_now = false;
        loop {
            let mut req = build(&self.http);
            if let Some(s) = &session {
                if !within(&s.discovered.resource, url) {
                    return Err(ClientError::WrongAudience {
                        resource: s.discovered.resource.clone(),
                        url: url.to_owned(),
                    });
                }
                let token = s.source.token(&s.discovered.resource, &s.scopes).await?;
                req = req.bearer_auth(token.secret());
            }
            let res = req
                .send()
                .await
                .map_err(|e| ClientError::Unavailable(e.without_url().to_string()))?;
            let www = www_authenticate(&res);
            match (res.status().as_u16(), www) {
                (401, Some(www)) if !authorized_now => {
                    session = Some(self.authorize(url, &www, &[]).await?);
                    authorized_now = true;
                }
                (403, Some(www))
                    if challenge_params(&www, "Bearer")
                        .iter()
                        .any(|(k, v)| k == "error" && v == "insufficient_scope") =>
                {
                    let needed: Vec<String> = challenge_params(&www, "Bearer")
                        .into_iter()
                        .find(|(k, _)| k == "scope")
                        .map(|(_, v)| v.split(' ').map(str::to_owned).collect())
                        .unwrap_or_default();
                    if stepped_up {
                        return Err(ClientError::InsufficientScope(needed.join(" ")));
                    }
                    let held = session
                        .as_ref()
                        .map(|s| s.scopes.clone())
                        .unwrap_or_default();
                    let mut union = held;
                    for s in needed {
                        if !union.contains(&s) {
                            union.push(s);
                        }
                    }
                    session = Some(self.authorize(url, &www, &union).await?);
                    stepped_up = true;
                }
                _ => return Ok(res),
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_stay_within_their_resource() {
        let r = "https://mcp.example.com/mcp";
        assert!(within(r, "https://mcp.example.com/mcp"));
        assert!(within(r, "https://mcp.example.com/mcp/x"));
        assert!(!within(r, "https://mcp.example.com/mcpx"));
        assert!(!within(r, "https://mcp.example.com/other"));
        assert!(!within(r, "http://mcp.example.com/mcp"));
        assert!(!within(r, "https://evil.example.com/mcp"));
        assert!(!within(r, "https://mcp.example.com:8443/mcp"));
        assert!(within(
            "https://mcp.example.com/",
            "https://mcp.example.com/anything"
        ));
    }
}
