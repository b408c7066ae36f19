//! Helpers shared by the benches: the token, the hello-world inner service.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use criterion::Criterion;
use http::{Request, Response};
use mcp_resource_guard::jwks::StaticJwks;
use mcp_resource_guard::testing::TestKey;
use mcp_resource_guard::{Algorithm, GuardLayer, Issuer, TokenCacheConfig};
use serde_json::{Value, json};
use tower::service_fn;

pub const RESOURCE: &str = "https://mcp.example.com/mcp";
pub const ISSUER: &str = "https://as.example.com";

/// Runs a future that never waits (static keys, ready inner service).
pub fn now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the benchmarked future waited"),
    }
}

pub fn unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A realistic access token's claims; `i` makes them distinct.
pub fn claims(i: usize) -> Value {
    json!({
        "iss": ISSUER, "sub": format!("user-{i}"), "client_id": "agent-7f3a9c",
        "aud": RESOURCE, "exp": unix() + 3600, "iat": unix(), "nbf": unix(),
        "jti": format!("7c1f0e9a-4b2d-4f0e-9a1b-{i:012}"),
        "scope": "todo:read todo:write todo:delete",
        "auth_time": unix(), "acr": "urn:mace:incommon:iap:silver",
        "tenant": {"id": "t-42", "plan": "enterprise"},
    })
}

pub type Inner =
    tower::util::ServiceFn<fn(Request<()>) -> Ready<Result<Response<String>, Infallible>>>;

fn hello(_: Request<()>) -> Ready<Result<Response<String>, Infallible>> {
    ready(Ok(Response::new(String::new())))
}

/// A hello-world service: the baseline every guard wraps.
pub fn inner() -> Inner {
    service_fn(hello as fn(Request<()>) -> Ready<Result<Response<String>, Infallible>>)
}

pub fn request(token: &str) -> Request<()> {
    Request::post("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(())
        .unwrap()
}

/// The guard every bench uses: one issuer with a static JWKS.
pub fn guard(jwks_text: &str, cache: TokenCacheConfig) -> GuardLayer {
    GuardLayer::builder(RESOURCE)
        .add_issuer(Issuer::new(ISSUER).key_source(StaticJwks::from_json(jwks_text).unwrap()))
        .scopes_supported(["todo:read", "todo:write", "todo:delete"])
        .required_scopes(["todo:read"])
        .token_cache(cache)
        .build()
        .unwrap()
}

/// Several crates in this graph enable different jsonwebtoken backends; pick
/// one for the process (ours does not use jsonwebtoken's provider).
pub fn pick_jsonwebtoken_backend() {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
}

/// The criterion settings of every bench (override on the command line).
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

/// The key as raw aws-lc-rs parses it once: the floor a verifier is measured
/// against.
pub fn raw_key(key: &TestKey) -> ParsedPublicKey {
    let jwk = key.public_jwk();
    let b = |k: &str| URL_SAFE_NO_PAD.decode(jwk[k].as_str().unwrap()).unwrap();
    match key.algorithm() {
        Algorithm::RS256 => RsaPublicKeyComponents {
            n: b("n"),
            e: b("e"),
        }
        .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
        .unwrap(),
        Algorithm::PS256 => RsaPublicKeyComponents {
            n: b("n"),
            e: b("e"),
        }
        .to_parsed_public_key(&signature::RSA_PSS_2048_8192_SHA256)
        .unwrap(),
        Algorithm::ES256 => {
            let mut p = vec![4];
            p.extend(b("x"));
            p.extend(b("y"));
            ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, p).unwrap()
        }
        _ => ParsedPublicKey::new(&signature::ED25519, b("x")).unwrap(),
    }
}

/// A `tools/call` body of about `size` bytes (the padding is in
/// `arguments`); `stateless`: with the `2026-07-28` `_meta`.
pub fn mcp_body(size: usize, stateless: bool) -> Bytes {
    let call = |pad: usize| {
        let mut v = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "add_todo",
            "arguments": {"title": "milk", "notes": "n".repeat(pad), "tags": ["a", "b", {"k": [1, 2, 3]}]}}});
        if stateless {
            v["params"]["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28"});
        }
        v.to_string()
    };
    let base = call(0).len();
    Bytes::from(call(size.saturating_sub(base)))
}

pub fn mcp_request(
    token: &str,
    body: &Bytes,
    stateless: bool,
) -> Request<http_body_util::Full<Bytes>> {
    let mut b = Request::post("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json");
    if stateless {
        b = b
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "add_todo");
    }
    b.body(http_body_util::Full::new(body.clone())).unwrap()
}
