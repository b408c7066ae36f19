//! Shared helpers for the integration tests: keys, tokens, a test app.
#![allow(dead_code)]

pub mod fault_server;

pub use test_support::{free_port, redis_server};

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use mcp_resource_guard::jwks::StaticJwks;
use mcp_resource_guard::testing::{TestKey, jwks};
use mcp_resource_guard::{Algorithm, AuthContext, GuardBuilder, GuardLayer, Issuer};
use serde_json::{Value, json};
use tower::ServiceExt;

pub const RESOURCE: &str = "https://mcp.example.com/mcp";
pub const ISSUER: &str = "https://as.example.com";
pub const OTHER_ISSUER: &str = "https://other-as.example.com";
pub const METADATA_URL: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";

/// The 401 challenge with no credentials, for the default test guard.
pub const PLAIN_CHALLENGE: &str = "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\", scope=\"todo:read todo:write\"";

/// The exact 401 challenge for a rejected token with this description.
pub fn invalid_token(description: &str) -> String {
    format!(
        "Bearer error=\"invalid_token\", error_description=\"{description}\", resource_metadata=\"{METADATA_URL}\", scope=\"todo:read todo:write\""
    )
}

pub const INVALID: &str = "The access token is invalid";
pub const EXPIRED: &str = "The access token has expired";
pub const NOT_YET: &str = "The access token is not yet valid";
pub const WRONG_AUD: &str = "The access token was not issued for this resource";
pub const UNTRUSTED: &str = "The access token was issued by an untrusted issuer";
pub const UNKNOWN_KEY: &str = "The access token is signed with an unknown key";

pub struct Keys {
    pub by_alg: Vec<TestKey>,
    /// A key of the other trusted issuer.
    pub other: TestKey,
    /// A key nobody trusts.
    pub stranger: TestKey,
}

impl Keys {
    pub fn get(&self, alg: Algorithm) -> &TestKey {
        self.by_alg.iter().find(|k| k.algorithm() == alg).unwrap()
    }
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        by_alg: Algorithm::ALL
            .iter()
            .map(|a| TestKey::generate(*a).unwrap())
            .collect(),
        other: TestKey::generate(Algorithm::ES256).unwrap(),
        stranger: TestKey::generate(Algorithm::ES256).unwrap(),
    })
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Valid claims for the default test guard.
pub fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "sub": "alice",
        "client_id": "agent-1",
        "aud": RESOURCE,
        "exp": now() + 300,
        "iat": now(),
        "jti": "jti-1",
        "scope": "todo:read todo:write",
    })
}

/// `claims()` with `changes` merged in (`null` removes a claim).
pub fn claims_with(changes: Value) -> Value {
    let mut c = claims();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// Unpadded base64url, as in a JWS.
pub fn b64(bytes: &[u8]) -> String {
    base64_simd::URL_SAFE_NO_PAD.encode_to_string(bytes)
}

/// A valid ES256 token with these claims.
pub fn token(claims: &Value) -> String {
    keys().get(Algorithm::ES256).sign(claims)
}

pub fn static_jwks(keys: &[&TestKey]) -> StaticJwks {
    StaticJwks::from_json(jwks(keys).to_string()).unwrap()
}

/// The default guard config: two issuers with static keys, scopes supported.
pub fn builder() -> GuardBuilder {
    builder_with_issuer(|issuer| issuer)
}

/// The default guard config, with `ISSUER`'s settings changed by `f`.
pub fn builder_with_issuer(f: impl FnOnce(Issuer) -> Issuer) -> GuardBuilder {
    let k = keys();
    let all: Vec<&TestKey> = k.by_alg.iter().collect();
    GuardLayer::builder(RESOURCE)
        .add_issuer(f(Issuer::new(ISSUER).key_source(static_jwks(&all))))
        .add_issuer(Issuer::new(OTHER_ISSUER).key_source(static_jwks(&[&k.other])))
        .scopes_supported(["todo:read", "todo:write"])
}

pub fn guard() -> GuardLayer {
    builder().build().unwrap()
}

/// An app whose `/mcp` route answers with the caller's identity as JSON.
pub fn app(guard: GuardLayer) -> Router {
    Router::new()
        .route(
            "/mcp",
            get(identity)
                .post(identity)
                .options(|| async { StatusCode::NO_CONTENT }),
        )
        .layer(guard)
}

pub async fn identity(ctx: Option<AuthContext>) -> axum::Json<Value> {
    axum::Json(match ctx {
        None => json!({"anonymous": true}),
        Some(c) => json!({
            "sub": c.subject(),
            "client_id": c.client_id(),
            "iss": c.issuer(),
            "aud": c.audiences(),
            "scopes": c.scopes().iter().collect::<Vec<_>>(),
            "jti": c.jti(),
            "exp": c.expires_at().map(|t| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()),
        }),
    })
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn www(&self) -> &str {
        self.headers
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

pub async fn send(app: &Router, req: Request<Body>) -> Reply {
    let res = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

pub fn request(uri: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::get(uri);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::empty()).unwrap()
}

/// Sends a GET /mcp with this token to the default app.
pub async fn call(token: &str) -> Reply {
    send(&app(guard()), request("/mcp", Some(token))).await
}

/// The JSON-RPC error body every MCP-layer refusal has: the request's `id`,
/// the code, the fixed message.
pub fn rpc_error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// The code of an MCP-layer authorization refusal (401 and 403).
pub const ACCESS_DENIED: i64 = -31403;

/// Asserts a 401 `invalid_token` with the exact challenge and JSON body.
pub fn assert_invalid(r: &Reply, description: &str) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "body: {}", r.body);
    assert_eq!(r.www(), invalid_token(description));
    assert_eq!(
        r.json(),
        json!({"error": "invalid_token", "error_description": description})
    );
}

/// Checks the RFC 9110 / RFC 6750 grammar of a Bearer challenge: the scheme,
/// then `name="value"` pairs separated by ", ", each name once, values free
/// of `"` and `\` and made of printable ASCII.
pub fn assert_challenge_grammar(h: &str) {
    let rest = h.strip_prefix("Bearer ").expect("scheme Bearer");
    let mut names = Vec::new();
    for part in rest.split(", ") {
        let (name, value) = part.split_once('=').expect("name=value");
        assert!(
            name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{name}"
        );
        let inner = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .expect("quoted");
        assert!(
            inner
                .bytes()
                .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
            "{inner:?}"
        );
        assert!(!names.contains(&name), "{name} repeated");
        names.push(name);
    }
}
