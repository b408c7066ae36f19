//! Test keys and token minting (feature `testing`).
//!
//! **For development and tests only.** Nothing here is an authorization
//! server: keys live in memory, tokens say whatever you ask them to, clients
//! are whatever you register, there is no user, no consent, no revocation.
//! Never expose a [`TestIssuer`] beyond `127.0.0.1` or trust it in production.
//!
//! ```
//! use mcp_resource_guard::testing::{TestKey, jwks};
//! use mcp_resource_guard::Algorithm;
//!
//! let key = TestKey::generate(Algorithm::ES256).unwrap();
//! let token = key.sign(&serde_json::json!({"iss": "https://as.test", "sub": "alice"}));
//! assert_eq!(token.split('.').count(), 3);
//! let set = jwks(&[&key]);
//! assert_eq!(set["keys"][0]["kty"], "EC");
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

use crate::config::Algorithm;

/// Key generation or signing failed (in practice: the system RNG failed).
#[derive(Debug, Clone, thiserror::Error)]
#[error("test key operation failed")]
pub struct TestKeyError;

enum Pair {
    Rsa(aws_lc_rs::rsa::KeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A signing key pair for tests, with a `kid`.
pub struct TestKey {
    alg: Algorithm,
    kid: Option<String>,
    pair: Pair,
}

impl fmt::Debug for TestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

static NEXT_KID: AtomicU64 = AtomicU64::new(1);

fn b64(bytes: &[u8]) -> String {
    base64_simd::URL_SAFE_NO_PAD.encode_to_string(bytes)
}

impl TestKey {
    /// A fresh key for `alg` (RSA keys are 2048 bits), with a unique `kid`.
    pub fn generate(alg: Algorithm) -> Result<Self, TestKeyError> {
        let pair = match alg {
            a if a.is_rsa() => Pair::Rsa(
                aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| TestKeyError)?,
            ),
            Algorithm::ES256 => Pair::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| TestKeyError)?,
            ),
            Algorithm::ES384 => Pair::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING)
                    .map_err(|_| TestKeyError)?,
            ),
            _ => Pair::Ed(Ed25519KeyPair::generate().map_err(|_| TestKeyError)?),
        };
        let n = NEXT_KID.fetch_add(1, Ordering::Relaxed);
        Ok(Self {
            alg,
            kid: Some(format!("test-{}-{n}", alg.as_str().to_ascii_lowercase())),
            pair,
        })
    }

    /// The same key under another `kid`.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The same key without a `kid` (tokens and JWK then carry none).
    pub fn without_kid(mut self) -> Self {
        self.kid = None;
        self
    }

    /// The key's `kid`.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The public key as a JWK with `kid`, `alg` and `use: "sig"`.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.public_jwk_without_alg();
        jwk["alg"] = json!(self.alg.as_str());
        jwk
    }

    /// The public key as a JWK without `alg` (so verifiers must infer it).
    pub fn public_jwk_without_alg(&self) -> Value {
        let mut jwk = match &self.pair {
            Pair::Rsa(k) => {
                let p = k.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64(p.modulus().big_endian_without_leading_zero()),
                    "e": b64(p.exponent().big_endian_without_leading_zero()),
                })
            }
            Pair::Ec(k) => {
                let point = k.public_key().as_ref();
                let len = (point.len() - 1) / 2;
                json!({
                    "kty": "EC",
                    "crv": if len == 32 { "P-256" } else { "P-384" },
                    "x": b64(&point[1..1 + len]),
                    "y": b64(&point[1 + len..]),
                })
            }
            Pair::Ed(k) => json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": b64(k.public_key().as_ref()),
            }),
        };
        jwk["use"] = json!("sig");
        if let Some(kid) = &self.kid {
            jwk["kid"] = json!(kid);
        }
        jwk
    }

    /// The raw public key bytes: DER `RSAPublicKey` for RSA, the uncompressed
    /// point for EC, 32 bytes for Ed25519. Handy for algorithm-confusion tests.
    pub fn public_key_bytes(&self) -> Vec<u8> {
        match &self.pair {
            Pair::Rsa(k) => k.public_key().as_ref().to_vec(),
            Pair::Ec(k) => k.public_key().as_ref().to_vec(),
            Pair::Ed(k) => k.public_key().as_ref().to_vec(),
        }
    }

    /// Signs `claims` as an access token: header `{"alg", "typ": "at+jwt", "kid"}`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = json!({ "alg": self.alg.as_str(), "typ": "at+jwt" });
        if let Some(kid) = &self.kid {
            header["kid"] = json!(kid);
        }
        self.sign_with_header(&header, claims)
    }

    /// Signs with exactly this header (which may lie about `alg` or `kid`:
    /// the signature always uses this key's own algorithm).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self.sign_bytes(input.as_bytes()).unwrap_or_default();
        format!("{input}.{}", b64(&sig))
    }

    /// A raw signature over `message` with this key's algorithm.
    pub fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, TestKeyError> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Rsa(k) => {
                let padding: &'static dyn signature::RsaEncoding = match self.alg {
                    Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
                    Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
                    Algorithm::PS256 => &signature::RSA_PSS_SHA256,
                    Algorithm::PS384 => &signature::RSA_PSS_SHA384,
                    Algorithm::PS512 => &signature::RSA_PSS_SHA512,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(padding, &rng, message, &mut sig)
                    .map_err(|_| TestKeyError)?;
                Ok(sig)
            }
            Pair::Ec(k) => Ok(k
                .sign(&rng, message)
                .map_err(|_| TestKeyError)?
                .as_ref()
                .to_vec()),
            Pair::Ed(k) => Ok(k.sign(message).as_ref().to_vec()),
        }
    }
}

/// A JWK Set (`{"keys": [...]}`) of the keys' public JWKs.
pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>() })
}

/// A token signed with HMAC-SHA256 under `secret`, with exactly this header.
/// For algorithm-confusion tests (e.g. the secret is a public key's bytes).
pub fn sign_hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

/// `header.payload.` with an empty signature, e.g. for `alg: none`.
pub fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

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

struct Client {
    secret: String,
    scopes: Vec<String>,
}

struct IssuerState {
    issuer: String,
    /// The signing key first; older keys after it (still published).
    keys: std::sync::RwLock<Vec<Arc<TestKey>>>,
    clients: std::sync::RwLock<std::collections::HashMap<String, Client>>,
    ttl: u64,
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

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl IssuerState {
    fn signing_key(&self) -> Arc<TestKey> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        keys[0].clone()
    }

    fn jwks(&self) -> Value {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        json!({ "keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>() })
    }

    fn mint(&self, claims: &Value) -> String {
        let mut c = claims.clone();
        let now = unix_now();
        for (k, v) in [
            ("iss", json!(self.issuer)),
            ("iat", json!(now)),
            ("exp", json!(now + self.ttl)),
        ] {
            if c.get(k).is_none() {
                c[k] = v;
            }
        }
        if c.get("jti").is_none() {
            c["jti"] = json!(format!("jti-{}", NEXT_KID.fetch_add(1, Ordering::Relaxed)));
        }
        self.signing_key().sign(&c)
    }

    fn metadata(&self) -> Value {
        let i = &self.issuer;
        json!({
            "issuer": i,
            // Required by RFC 8414 and by MCP clients; it only says no.
            "authorization_endpoint": format!("{i}/authorize"),
            "token_endpoint": format!("{i}/token"),
            "jwks_uri": format!("{i}/jwks"),
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": self.all_scopes(),
        })
    }

    fn all_scopes(&self) -> Vec<String> {
        let clients = self.clients.read().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<String> = clients.values().flat_map(|c| c.scopes.clone()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// The `client_credentials` grant.
    fn token(
        &self,
        auth: Option<&str>,
        form: &[u8],
    ) -> Result<Value, (u16, &'static str, &'static str)> {
        let params: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(form).into_owned().collect();
        let bad_client = (401, "invalid_client", "unknown client or wrong secret");
        let (id, secret) = match auth.and_then(|h| {
            h.strip_prefix("Basic ")
                .or_else(|| h.strip_prefix("basic "))
        }) {
            Some(b) => {
                let raw = base64_simd::STANDARD
                    .decode_to_vec(b.trim())
                    .ok()
                    .and_then(|v| String::from_utf8(v).ok())
                    .ok_or(bad_client)?;
                let (id, secret) = raw.split_once(':').ok_or(bad_client)?;
                let dec = |s: &str| {
                    url::form_urlencoded::parse(format!("x={s}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default()
                };
                (dec(id), dec(secret))
            }
            None => (
                params.get("client_id").cloned().ok_or(bad_client)?,
                params.get("client_secret").cloned().ok_or(bad_client)?,
            ),
        };
        if params.get("grant_type").map(String::as_str) != Some("client_credentials") {
            return Err((
                400,
                "unsupported_grant_type",
                "only client_credentials is supported",
            ));
        }
        let clients = self.clients.read().unwrap_or_else(|p| p.into_inner());
        let client = clients
            .get(&id)
            .filter(|c| c.secret == secret)
            .ok_or(bad_client)?;
        let scope: Vec<String> = match params.get("scope") {
            Some(s) => {
                let asked: Vec<String> = s
                    .split(' ')
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned)
                    .collect();
                if asked.iter().any(|a| !client.scopes.contains(a)) {
                    return Err((
                        400,
                        "invalid_scope",
                        "a requested scope is not allowed for this client",
                    ));
                }
                asked
            }
            None => client.scopes.clone(),
        };
        let resource = params.get("resource").ok_or((
            400,
            "invalid_target",
            "the resource parameter (RFC 8707) is required",
        ))?;
        let token = self.mint(&json!({
            "sub": id, "client_id": id, "aud": resource, "scope": scope.join(" "),
        }));
        Ok(json!({
            "access_token": token, "token_type": "Bearer", "expires_in": self.ttl, "scope": scope.join(" "),
        }))
    }
}

fn issuer_routes(state: Arc<IssuerState>) -> axum::Router {
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{get, post};
    let meta = {
        let s = state.clone();
        move || {
            let s = s.clone();
            async move { axum::Json(s.metadata()) }
        }
    };
    let jwks = {
        let s = state.clone();
        move || {
            let s = s.clone();
            async move { axum::Json(s.jwks()) }
        }
    };
    let token = {
        let s = state;
        move |headers: HeaderMap, body: axum::body::Bytes| {
            let s = s.clone();
            async move {
                let auth = headers
                    .get(http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                match s.token(auth, &body) {
                    Ok(v) => (StatusCode::OK, axum::Json(v)),
                    Err((status, error, description)) => (
                        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                        axum::Json(json!({ "error": error, "error_description": description })),
                    ),
                }
            }
        }
    };
    axum::Router::new()
        .route("/.well-known/oauth-authorization-server", get(meta.clone()))
        .route("/.well-known/openid-configuration", get(meta))
        .route("/jwks", get(jwks))
        .route("/token", post(token))
        .route(
            "/authorize",
            get(|| async {
                (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({
                        "error": "unsupported_response_type",
                        "error_description": "the development issuer only supports client_credentials",
                    })),
                )
            }),
        )
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
        let mut c = claims.clone();
        let now = unix_now();
        for (k, v) in [
            ("iss", json!(self.state.issuer)),
            ("iat", json!(now)),
            ("exp", json!(now + self.state.ttl)),
        ] {
            if c.get(k).is_none() {
                c[k] = v;
            }
        }
        Some(key.sign(&c))
    }

    /// A valid access token for `sub`, for the resource `aud`, with `scope`.
    pub fn token(&self, sub: &str, aud: &str, scope: &str) -> String {
        self.mint(&json!({ "sub": sub, "client_id": sub, "aud": aud, "scope": scope }))
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
    pub fn rotate(&self, alg: Algorithm) -> Result<String, TestKeyError> {
        let key = TestKey::generate(alg)?;
        let kid = key.kid().unwrap_or_default().to_owned();
        let mut keys = self.state.keys.write().unwrap_or_else(|p| p.into_inner());
        keys.insert(0, Arc::new(key));
        Ok(kid)
    }

    /// Rotates without overlap: the new key replaces every old one.
    pub fn rotate_without_overlap(&self, alg: Algorithm) -> Result<String, TestKeyError> {
        let kid = self.rotate(alg)?;
        let mut keys = self.state.keys.write().unwrap_or_else(|p| p.into_inner());
        keys.truncate(1);
        Ok(kid)
    }
}
