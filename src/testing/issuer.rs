//! [`TestIssuer`]: an in-process issuer for development and tests.

use std::fmt;
use std::sync::Arc;

use serde_json::{Value, json};

use super::endpoints::{Client, IssuerState, issuer_routes, unix_now};
use super::key::{TestKey, TestKeyError};
use crate::config::Algorithm;

/// A token flaw, for [`TestIssuer::mint_flawed`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flaw {
    /// `exp` an hour in the past.
    Expired,
    /// `aud` names another resource.
    WrongAudience,
    /// `iss` names another issuer.
    WrongIssuer,
    /// No `kid` in the header.
    NoKid,
    /// A `kid` the issuer never published.
    UnknownKid,
}

/// An in-process issuer for development and tests: **not an authorization
/// server**. It binds `127.0.0.1`, serves a JWKS (`/jwks`) and RFC 8414
/// metadata (`/.well-known/oauth-authorization-server`, also as
/// `/.well-known/openid-configuration`), mints any token you ask for, rotates
/// keys, and has a `client_credentials` token endpoint (`/token`, client
/// authentication `client_secret_basic` or `client_secret_post`, the
/// `resource` parameter becomes `aud`) so real MCP clients can get tokens.
///
/// ```
/// # async fn demo() -> std::io::Result<()> {
/// use mcp_resource_guard::testing::TestIssuer;
///
/// let issuer = TestIssuer::builder()
///     .add_client("agent", "secret", ["todo:read"])
///     .start()
///     .await?;
/// let token = issuer.token("alice", "https://mcp.example.com/mcp", "todo:read");
/// # let _ = token; Ok(()) }
/// ```
pub struct TestIssuer {
    state: Arc<IssuerState>,
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestIssuer")
            .field("issuer", &self.state.issuer)
            .finish_non_exhaustive()
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Builds a [`TestIssuer`].
#[must_use]
#[derive(Debug)]
pub struct TestIssuerBuilder {
    addr: std::net::SocketAddr,
    alg: Algorithm,
    clients: Vec<(String, String, Vec<String>)>,
    ttl: u64,
}

impl TestIssuerBuilder {
    /// Where to listen. Defaults to `127.0.0.1:0` (any free port).
    pub fn bind(mut self, addr: std::net::SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// The algorithm of the signing key. Defaults to ES256. An RS256, an
    /// ES256 and an EdDSA key are always generated and published too (see
    /// [`TestIssuer::mint_with`]).
    pub fn algorithm(mut self, alg: Algorithm) -> Self {
        self.alg = alg;
        self
    }

    /// A client for the token endpoint, allowed these scopes.
    pub fn add_client<I, S>(
        mut self,
        id: impl Into<String>,
        secret: impl Into<String>,
        scopes: I,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.clients.push((
            id.into(),
            secret.into(),
            scopes.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// The lifetime of issued tokens. Defaults to one hour.
    pub fn token_lifetime(mut self, ttl: std::time::Duration) -> Self {
        self.ttl = ttl.as_secs();
        self
    }

    /// Binds and starts serving (inside a tokio runtime).
    ///
    /// # Errors
    ///
    /// When the address cannot be bound, or key generation fails.
    pub async fn start(self) -> std::io::Result<TestIssuer> {
        let listener = tokio::net::TcpListener::bind(self.addr).await?;
        let addr = listener.local_addr()?;
        // The signing key first, then one of each other family, all published.
        let mut keys = Vec::new();
        for alg in [
            self.alg,
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ] {
            if !keys.iter().any(|k: &Arc<TestKey>| k.algorithm() == alg) {
                keys.push(Arc::new(
                    TestKey::generate(alg).map_err(std::io::Error::other)?,
                ));
            }
        }
        let state = Arc::new(IssuerState {
            issuer: format!("http://{addr}"),
            keys: std::sync::RwLock::new(keys),
            clients: std::sync::RwLock::new(
                self.clients
                    .into_iter()
                    .map(|(id, secret, scopes)| (id, Client { secret, scopes }))
                    .collect(),
            ),
            ttl: self.ttl,
        });
        let app = issuer_routes(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(TestIssuer { state, addr, task })
    }
}

impl TestIssuer {
    /// A builder: ES256, no clients, `127.0.0.1:0`.
    pub fn builder() -> TestIssuerBuilder {
        TestIssuerBuilder {
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            alg: Algorithm::ES256,
            clients: Vec::new(),
            ttl: 3600,
        }
    }

    /// Starts an issuer with the defaults.
    ///
    /// # Errors
    ///
    /// When `127.0.0.1:0` cannot be bound, or key generation fails.
    pub async fn start() -> std::io::Result<Self> {
        Self::builder().start().await
    }

    /// The issuer identifier, `http://127.0.0.1:<port>`.
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// The address it listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// The JWKS URL.
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.state.issuer)
    }

    /// The token endpoint URL.
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.state.issuer)
    }

    /// The JWK Set it publishes.
    pub fn jwks(&self) -> Value {
        self.state.jwks()
    }

    /// Adds a client for the token endpoint.
    pub fn add_client<I, S>(&self, id: impl Into<String>, secret: impl Into<String>, scopes: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut clients = self
            .state
            .clients
            .write()
            .unwrap_or_else(|p| p.into_inner());
        clients.insert(
            id.into(),
            Client {
                secret: secret.into(),
                scopes: scopes.into_iter().map(Into::into).collect(),
            },
        );
    }

    /// Signs `claims` with the current key, adding `iss`, `iat`, `exp` and
    /// `jti` where absent.
    pub fn mint(&self, claims: &Value) -> String {
        self.state.mint(claims)
    }

    /// Like [`mint`](TestIssuer::mint), signed with the published key of
    /// `alg` (`None` when there is none: rotate one in first).
    pub fn mint_with(&self, alg: Algorithm, claims: &Value) -> Option<String> {
        let key = {
            let keys = self.state.keys.read().unwrap_or_else(|p| p.into_inner());
            keys.iter().find(|k| k.algorithm() == alg)?.clone()
        };
        Some(key.sign(&self.state.complete(claims)))
    }

    /// Like [`mint`](TestIssuer::mint), with this `typ` header (`None`: no
    /// `typ` at all), as issuers that do not follow RFC 9068 send (`JWT`):
    /// for testing [`TypPolicy`](crate::TypPolicy).
    pub fn mint_with_typ(&self, typ: Option<&str>, claims: &Value) -> String {
        let key = self.state.signing_key();
        let mut header = json!({ "alg": key.algorithm().as_str() });
        if let Some(kid) = key.kid() {
            header["kid"] = json!(kid);
        }
        if let Some(typ) = typ {
            header["typ"] = json!(typ);
        }
        key.sign_with_header(&header, &self.state.complete(claims))
    }

    /// A valid access token for `sub`, for the resource `aud`, with `scope`.
    pub fn token(&self, sub: &str, aud: &str, scope: &str) -> String {
        self.mint(&json!({ "sub": sub, "client_id": sub, "aud": aud, "scope": scope }))
    }

    /// A DPoP-bound access token (RFC 9449 §6.1: `cnf.jkt` is the
    /// thumbprint of `key`) for `sub`, for the resource `aud`, with `scope`.
    /// Send it as `Authorization: DPoP <token>` with a proof from
    /// [`TestKey::dpop_proof`](crate::testing::TestKey::dpop_proof).
    ///
    /// ```
    /// # async fn demo() -> std::io::Result<()> {
    /// use mcp_resource_guard::Algorithm;
    /// use mcp_resource_guard::testing::{TestIssuer, TestKey};
    ///
    /// let issuer = TestIssuer::start().await?;
    /// let client_key = TestKey::generate(Algorithm::ES256).expect("a key");
    /// let url = "https://mcp.example.com/mcp";
    /// let token = issuer.dpop_token("alice", url, "todo:read", &client_key);
    /// let proof = client_key.dpop_proof("POST", url, &token);
    /// # let _ = proof; Ok(()) }
    /// ```
    pub fn dpop_token(&self, sub: &str, aud: &str, scope: &str, key: &TestKey) -> String {
        self.mint(
            &json!({ "sub": sub, "client_id": sub, "aud": aud, "scope": scope,
            "cnf": { "jkt": key.thumbprint() } }),
        )
    }

    /// A token for `sub`/`aud`/`scope` with one flaw.
    pub fn mint_flawed(&self, sub: &str, aud: &str, scope: &str, flaw: Flaw) -> String {
        let now = unix_now();
        let mut claims = json!({ "sub": sub, "client_id": sub, "aud": aud, "scope": scope });
        let key = self.state.signing_key();
        match flaw {
            Flaw::Expired => {
                claims["iat"] = json!(now - 7200);
                claims["exp"] = json!(now - 3600);
            }
            Flaw::WrongAudience => claims["aud"] = json!("https://another-resource.example.com"),
            Flaw::WrongIssuer => claims["iss"] = json!("https://another-issuer.example.com"),
            Flaw::NoKid | Flaw::UnknownKid => {
                let mut c = claims.clone();
                for (k, v) in [
                    ("iss", json!(self.state.issuer)),
                    ("iat", json!(now)),
                    ("exp", json!(now + 3600)),
                ] {
                    c[k] = v;
                }
                let mut header = json!({ "alg": key.algorithm().as_str(), "typ": "at+jwt" });
                if flaw == Flaw::UnknownKid {
                    header["kid"] = json!("never-published");
                }
                return key.sign_with_header(&header, &c);
            }
        }
        self.mint(&claims)
    }

    /// Rotates: a new signing key of `alg`, published next to the old ones
    /// (overlap). Returns the new `kid`.
    ///
    /// # Errors
    ///
    /// When key generation fails.
    pub fn rotate(&self, alg: Algorithm) -> Result<String, TestKeyError> {
        let key = TestKey::generate(alg)?;
        let kid = key.kid().unwrap_or_default().to_owned();
        let mut keys = self.state.keys.write().unwrap_or_else(|p| p.into_inner());
        keys.insert(0, Arc::new(key));
        Ok(kid)
    }

    /// Rotates without overlap: the new key replaces every old one.
    ///
    /// # Errors
    ///
    /// When key generation fails.
    pub fn rotate_without_overlap(&self, alg: Algorithm) -> Result<String, TestKeyError> {
        let kid = self.rotate(alg)?;
        let mut keys = self.state.keys.write().unwrap_or_else(|p| p.into_inner());
        keys.truncate(1);
        Ok(kid)
    }
}
