//! RFC 7662 introspection: routing, the response checks, caching, single
//! flight, bounds and failure modes. The authorization server here is an
//! in-process `HttpFetch` double (the wire is covered by the reqwest tests
//! at the end and by the oidc-provider interop suite).

use mcp_resource_guard::testing::Clocked;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use http::{HeaderName, HeaderValue, StatusCode};
use mcp_resource_guard::introspection::{ClientAuth, Introspection, IntrospectionMode};
use mcp_resource_guard::jwks::{HttpFetch, HttpResponse, KeySourceError};
use mcp_resource_guard::testing::ManualClock;
use mcp_resource_guard::{
    Algorithm, BearerToken, ConfigError, GuardBuilder, GuardLayer, Issuer, TokenCacheConfig,
};
use serde_json::{Value, json};

use crate::common::*;

const OPAQUE: &str = "2YotnFZFEjr1zCsicMWpAA";
const ENDPOINT: &str = "https://as.example.com/introspect";

/// What the double answers.
#[derive(Debug, Clone)]
enum Answer {
    /// 200 JSON: per token, else `{"active": false}`.
    ByToken,
    Status(u16),
    /// This status, with a body that would otherwise be an active answer.
    StatusActive(u16),
    Body(&'static str, Vec<u8>),
    Fail,
}

/// A call's headers, form and size limit.
type LastCall = (Vec<(String, String)>, Vec<(String, String)>, usize);

#[derive(Debug, Clone)]
struct FakeAs {
    answer: Arc<Mutex<Answer>>,
    active: Arc<Mutex<HashMap<String, Value>>>,
    calls: Arc<AtomicUsize>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    delay: Duration,
    /// The last call's headers and form.
    last: Arc<Mutex<Option<LastCall>>>,
}

impl FakeAs {
    fn new() -> Self {
        Self {
            answer: Arc::new(Mutex::new(Answer::ByToken)),
            active: Arc::default(),
            calls: Arc::default(),
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
            delay: Duration::ZERO,
            last: Arc::default(),
        }
    }

    fn delayed(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    /// The token is active with these members on top of good defaults.
    fn activate(&self, token: &str, changes: Value) {
        let mut v = json!({"active": true, "iss": ISSUER, "aud": RESOURCE, "sub": "alice",
            "client_id": "agent-1", "scope": "todo:read todo:write", "exp": now() + 300,
            "iat": now(), "token_type": "Bearer"});
        for (k, x) in changes.as_object().unwrap() {
            if x.is_null() {
                v.as_object_mut().unwrap().remove(k);
            } else {
                v[k] = x.clone();
            }
        }
        self.active.lock().unwrap().insert(token.to_owned(), v);
    }

    fn answer(&self, a: Answer) {
        *self.answer.lock().unwrap() = a;
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn last_form(&self) -> HashMap<String, String> {
        let last = self.last.lock().unwrap();
        last.as_ref().unwrap().1.iter().cloned().collect()
    }

    fn last_header(&self, name: &str) -> Option<String> {
        let last = self.last.lock().unwrap();
        let h = &last.as_ref().unwrap().0;
        h.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    }
}

#[async_trait]
impl HttpFetch for FakeAs {
    async fn get(&self, url: &str, _max: usize) -> Result<HttpResponse, KeySourceError> {
        // Discovery: RFC 8414 metadata naming the endpoint.
        if url == "https://as.example.com/.well-known/oauth-authorization-server" {
            let doc = json!({"issuer": ISSUER, "introspection_endpoint": ENDPOINT});
            return Ok(HttpResponse::new(200, doc.to_string().into_bytes()));
        }
        Ok(HttpResponse::new(404, Vec::new()))
    }

    async fn post_form(
        &self,
        url: &str,
        headers: &[(HeaderName, HeaderValue)],
        form: &[(&str, &str)],
        max_bytes: usize,
    ) -> Result<HttpResponse, KeySourceError> {
        assert_eq!(url, ENDPOINT);
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now_in = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now_in, Ordering::SeqCst);
        *self.last.lock().unwrap() = Some((
            headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
                .collect(),
            form.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            max_bytes,
        ));
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let token = form.iter().find(|(k, _)| *k == "token").map(|(_, v)| *v);
        let answer = self.answer.lock().unwrap().clone();
        match answer {
            Answer::ByToken => {
                let body = token
                    .and_then(|t| self.active.lock().unwrap().get(t).cloned())
                    .unwrap_or(json!({"active": false}));
                Ok(HttpResponse::new(200, body.to_string().into_bytes())
                    .content_type("application/json"))
            }
            Answer::Status(s) => Ok(HttpResponse::new(s, b"{}".to_vec())),
            Answer::StatusActive(s) => {
                let body =
                    json!({"active": true, "iss": ISSUER, "aud": RESOURCE, "exp": now() + 60});
                Ok(HttpResponse::new(s, body.to_string().into_bytes()))
            }
            Answer::Body(ct, b) => Ok(HttpResponse::new(200, b).content_type(ct)),
            Answer::Fail => Err(KeySourceError::new("connection refused")),
        }
    }
}

fn introspection(fake: &FakeAs) -> Introspection {
    Introspection::new(ClientAuth::client_secret_basic("rs-1", "rs-secret"))
        .endpoint(ENDPOINT)
        .http_fetch(fake.clone())
}

/// The default test guard's issuers, the first with this introspection.
fn builder_with(i: Introspection) -> GuardBuilder {
    let k = keys();
    let all: Vec<&mcp_resource_guard::testing::TestKey> = k.by_alg.iter().collect();
    GuardLayer::builder(RESOURCE)
        .add_issuer(
            Issuer::new(ISSUER)
                .key_source(static_jwks(&all))
                .introspection(i),
        )
        .add_issuer(Issuer::new(OTHER_ISSUER).key_source(static_jwks(&[&k.other])))
        .scopes_supported(["todo:read", "todo:write"])
}

async fn get(guard: &GuardLayer, token: &str) -> Reply {
    send(&app(guard.clone()), request("/mcp", Some(token))).await
}

fn assert_401(r: &Reply, description: &str) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(r.www(), invalid_token(description));
}

fn assert_503(r: &Reply) {
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(r.headers["retry-after"], "10");
    assert!(r.headers.get("www-authenticate").is_none());
    assert_eq!(r.json()["error"], "temporarily_unavailable");
}

#[tokio::test]
async fn an_active_opaque_token_gives_the_same_context_as_a_jwt() {
    let fake = FakeAs::new();
    fake.activate(OPAQUE, json!({"jti": "j-9"}));
    let guard = builder_with(introspection(&fake)).build().unwrap();
    let r = get(&guard, OPAQUE).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let who = r.json();
    assert_eq!(who["sub"], "alice");
    assert_eq!(who["client_id"], "agent-1");
    assert_eq!(who["iss"], ISSUER);
    assert_eq!(who["aud"], json!([RESOURCE]));
    assert_eq!(who["scopes"], json!(["todo:read", "todo:write"]));
    assert_eq!(who["jti"], "j-9");
    // RFC 7662 §2.1: the token, the hint, client authentication.
    let form = fake.last_form();
    assert_eq!(form["token"], OPAQUE);
    assert_eq!(form["token_type_hint"], "access_token");
    assert_eq!(
        fake.last_header("authorization").unwrap(),
        format!(
            "Basic {}",
            base64_simd::STANDARD.encode_to_string("rs-1:rs-secret")
        )
    );
    assert_eq!(fake.last_header("accept").unwrap(), "application/json");
    assert_eq!(fake.last.lock().unwrap().as_ref().unwrap().2, 64 * 1024);
}

#[tokio::test]
async fn inactive_wrong_audience_issuer_and_times_are_401s() {
    let fake = FakeAs::new();
    let guard = builder_with(introspection(&fake)).build().unwrap();
    assert_401(&get(&guard, "inactive-token").await, INVALID);
    let cases: [(&str, Value, &str); 6] = [
        (
            "t-aud",
            json!({"aud": "https://other.example.com"}),
            WRONG_AUD,
        ),
        ("t-noaud", json!({"aud": null}), WRONG_AUD),
        ("t-iss", json!({"iss": OTHER_ISSUER}), UNTRUSTED),
        ("t-exp", json!({"exp": now() - 120}), EXPIRED),
        ("t-nbf", json!({"nbf": now() + 120}), NOT_YET),
        (
            "t-cnf",
            json!({"cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}),
            INVALID,
        ),
    ];
    for (token, changes, description) in cases {
        fake.activate(token, changes);
        assert_401(&get(&guard, token).await, description);
    }
}

#[tokio::test]
async fn a_missing_audience_is_accepted_only_with_the_opt_in() {
    let fake = FakeAs::new();
    fake.activate(OPAQUE, json!({"aud": null}));
    let guard = builder_with(mcp_resource_guard::dangerous::accept_missing_audience(
        introspection(&fake),
    ))
    .build()
    .unwrap();
    let r = get(&guard, OPAQUE).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["aud"], json!([RESOURCE]));
}

#[tokio::test]
async fn scopes_and_challenges_are_exactly_those_of_jwts() {
    let fake = FakeAs::new();
    fake.activate(OPAQUE, json!({"scope": "todo:read"}));
    let guard = builder_with(introspection(&fake))
        .required_scopes(["todo:write"])
        .build()
        .unwrap();
    let r = get(&guard, OPAQUE).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.www(),
        format!(
            "Bearer error=\"insufficient_scope\", error_description=\"The access token lacks a scope this request needs\", resource_metadata=\"{METADATA_URL}\", scope=\"todo:write\""
        )
    );
    // The same 403 as a JWT with the same scope.
    let jwt = token(&claims_with(json!({"scope": "todo:read"})));
    assert_eq!(get(&guard, &jwt).await.www(), r.www());
}

#[tokio::test]
async fn a_server_that_is_down_or_answers_garbage_gives_503_not_401() {
    let answers = [
        Answer::Status(500),
        Answer::Status(401),
        Answer::StatusActive(500),
        Answer::StatusActive(302),
        Answer::Fail,
        Answer::Body("text/html", b"<html>oops</html>".to_vec()),
        Answer::Body("application/json", br#"{"active":"yes"}"#.to_vec()),
        Answer::Body("application/json", br#"{"scope":"x"}"#.to_vec()),
    ];
    for (n, answer) in answers.into_iter().enumerate() {
        let fake = FakeAs::new();
        fake.answer(answer);
        let guard = builder_with(introspection(&fake)).build().unwrap();
        assert_503(&get(&guard, &format!("tok-{n}")).await);
    }
}

#[tokio::test]
async fn a_slow_server_times_out_into_503() {
    let fake = FakeAs::new().delayed(Duration::from_secs(5));
    fake.activate(OPAQUE, json!({}));
    let guard = builder_with(introspection(&fake).timeout(Duration::from_millis(100)))
        .build()
        .unwrap();
    assert_503(&get(&guard, OPAQUE).await);
}

#[tokio::test]
async fn tokens_in_their_positive_window_survive_an_outage() {
    let fake = FakeAs::new();
    fake.activate(OPAQUE, json!({}));
    let clock = ManualClock::new();
    let guard = builder_with(introspection(&fake))
        .token_cache(TokenCacheConfig::disabled())
        .clock(&clock)
        .build()
        .unwrap();
    assert_eq!(get(&guard, OPAQUE).await.status, StatusCode::OK);
    fake.answer(Answer::Fail);
    clock.advance(Duration::from_secs(59));
    assert_eq!(get(&guard, OPAQUE).await.status, StatusCode::OK);
    assert_eq!(fake.calls(), 1);
    clock.advance(Duration::from_secs(2));
    assert_503(&get(&guard, OPAQUE).await);
}

#[tokio::test]
async fn results_are_cached_positive_negative_and_bounded_by_exp() {
    let fake = FakeAs::new();
    fake.activate(OPAQUE, json!({}));
    let clock = ManualClock::new();
    let guard = builder_with(introspection(&fake))
        .token_cache(TokenCacheConfig::disabled())
        .leeway(Duration::ZERO)
        .clock(&clock)
        .build()
        .unwrap();
    for _ in 0..3 {
        assert_eq!(get(&guard, OPAQUE).await.status, StatusCode::OK);
        assert_401(&get(&guard, "nope").await, INVALID);
    }
    assert_eq!(fake.calls(), 2, "one call per token");
    // Negative results for 10 s, positive ones for 60 s.
    clock.advance(Duration::from_secs(11));
    assert_401(&get(&guard, "nope").await, INVALID);
    assert_eq!(get(&guard, OPAQUE).await.status, StatusCode::OK);
    assert_eq!(fake.calls(), 3);
    clock.advance(Duration::from_secs(50));
    assert_eq!(get(&guard, OPAQUE).await.status, StatusCode::OK);
    assert_eq!(fake.calls(), 4);
    // A token expiring in 5 s (61 s have passed) is reused until then only.
    fake.activate("short", json!({"exp": now() + 61 + 5}));
    assert_eq!(get(&guard, "short").await.status, StatusCode::OK);
    assert_eq!(get(&guard, "short").await.status, StatusCode::OK);
    assert_eq!(fake.calls(), 5);
    clock.advance(Duration::from_secs(6));
    assert_401(&get(&guard, "short").await, EXPIRED);
    assert_eq!(fake.calls(), 6);
}

#[tokio::test]
async fn a_zero_positive_ttl_asks_on_every_request_so_revocation_is_immediate() {
    let fake = FakeAs::new();
    fake.activate(OPAQUE, json!({}));
    let guard = builder_with(introspection(&fake).positive_ttl(Duration::ZERO))
        .build()
        .unwrap();
    assert_eq!(get(&guard, OPAQUE).await.status, StatusCode::OK);
    assert_eq!(get(&guard, OPAQUE).await.status, StatusCode::OK);
    assert_eq!(fake.calls(), 2, "neither cache kept it");
    fake.active.lock().unwrap().clear();
    assert_401(&get(&guard, OPAQUE).await, INVALID);
}

#[tokio::test]
async fn the_guard_token_cache_keeps_an_introspected_token_no_longer_than_the_positive_window() {
    let fake = FakeAs::new();
    fake.activate(OPAQUE, json!({"exp": now() + 3600}));
    let clock = ManualClock::new();
    let guard = builder_with(introspection(&fake).positive_ttl(Duration::from_secs(20)))
        .clock(&clock)
        .build()
        .unwrap();
    assert_eq!(get(&guard, OPAQUE).await.status, StatusCode::OK);
    fake.active.lock().unwrap().clear();
    clock.advance(Duration::from_secs(19));
    assert_eq!(get(&guard, OPAQUE).await.status, StatusCode::OK);
    clock.advance(Duration::from_secs(2));
    assert_401(&get(&guard, OPAQUE).await, INVALID);
    assert_eq!(fake.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_requests_with_one_new_token_make_one_call() {
    let fake = FakeAs::new().delayed(Duration::from_millis(200));
    fake.activate(OPAQUE, json!({}));
    let guard = builder_with(introspection(&fake)).build().unwrap();
    let app = app(guard);
    let tasks: Vec<_> = (0..10_000)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { send(&app, request("/mcp", Some(OPAQUE))).await.status })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(fake.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinct_garbage_tokens_are_bounded_by_max_in_flight() {
    // Tokens never seen active hold a quarter of the 8 calls: the two
    // admitted calls take far longer than the others may wait.
    let fake = FakeAs::new().delayed(Duration::from_secs(2));
    let guard = builder_with(introspection(&fake).max_in_flight(8, Duration::from_millis(50)))
        .build()
        .unwrap();
    let app = app(guard);
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let app = app.clone();
            tokio::spawn(
                async move { send(&app, request("/mcp", Some(&format!("junk-{n}")))).await },
            )
        })
        .collect();
    let mut unavailable = 0;
    for t in tasks {
        let r = t.await.unwrap();
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            assert_503(&r);
            unavailable += 1;
        } else {
            assert_401(&r, INVALID);
        }
    }
    assert_eq!(fake.max_in_flight.load(Ordering::SeqCst), 2);
    assert_eq!(fake.calls(), 2);
    assert_eq!(unavailable, 198);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_new_garbage_tokens_cannot_starve_tokens_seen_active() {
    let fake = FakeAs::new().delayed(Duration::from_millis(300));
    fake.activate(OPAQUE, json!({}));
    let guard = builder_with(
        introspection(&fake)
            .max_in_flight(8, Duration::from_millis(100))
            .positive_ttl(Duration::ZERO),
    )
    .build()
    .unwrap();
    let app = app(guard);
    // OPAQUE is seen active once.
    assert_eq!(
        send(&app, request("/mcp", Some(OPAQUE))).await.status,
        StatusCode::OK
    );
    // Garbage keeps the unknown tokens' share (2 of 8) busy...
    let flood: Vec<_> = (0..400)
        .map(|n| {
            let app = app.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(n % 200)).await;
                send(&app, request("/mcp", Some(&format!("junk-{n}"))))
                    .await
                    .status
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // ...while OPAQUE, asked anew every time (no cache window), still gets
    // its calls.
    for _ in 0..5 {
        let r = send(&app, request("/mcp", Some(OPAQUE))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let mut unavailable = 0;
    for t in flood {
        if t.await.unwrap() == StatusCode::SERVICE_UNAVAILABLE {
            unavailable += 1;
        }
    }
    assert!(
        unavailable > 300,
        "{unavailable} of 400 garbage requests got 503"
    );
    assert!(fake.max_in_flight.load(Ordering::SeqCst) <= 3);
}

#[tokio::test]
async fn revoke_token_refuses_a_cached_introspected_token_at_once() {
    let fake = FakeAs::new();
    fake.activate(OPAQUE, json!({}));
    let guard = builder_with(introspection(&fake)).build().unwrap();
    assert_eq!(get(&guard, OPAQUE).await.status, StatusCode::OK);
    guard.revoke_token(&BearerToken::new(OPAQUE)).await.unwrap();
    let r = get(&guard, OPAQUE).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.www(), invalid_token("The access token has been revoked"));
}

#[tokio::test]
async fn revoke_token_evicts_the_cached_result() {
    let fake = FakeAs::new();
    fake.activate(OPAQUE, json!({}));
    let clock = ManualClock::new();
    let guard = builder_with(introspection(&fake))
        .token_cache(TokenCacheConfig::disabled())
        .revocation_retention(Duration::from_secs(1))
        .clock(&clock)
        .build()
        .unwrap();
    assert_eq!(get(&guard, OPAQUE).await.status, StatusCode::OK);
    guard.revoke_token(&BearerToken::new(OPAQUE)).await.unwrap();
    clock.advance(Duration::from_secs(2));
    // The local revocation has lapsed; the server is asked again, not the
    // result cached before the revocation.
    assert_eq!(get(&guard, OPAQUE).await.status, StatusCode::OK);
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn routing_per_mode() {
    let jwt = token(&claims());
    // OpaqueTokens (the default): this issuer's JWTs are verified locally.
    let fake = FakeAs::new();
    let guard = builder_with(introspection(&fake)).build().unwrap();
    assert_eq!(get(&guard, &jwt).await.status, StatusCode::OK);
    assert_eq!(fake.calls(), 0);

    // EveryToken: a JWS naming the issuer is introspected, not verified
    // locally (this one is signed by a key nobody trusts).
    let fake = FakeAs::new();
    let unknown = keys().stranger.sign(&claims());
    fake.activate(&unknown, json!({}));
    let guard = builder_with(introspection(&fake).mode(IntrospectionMode::EveryToken))
        .build()
        .unwrap();
    assert_eq!(get(&guard, &unknown).await.status, StatusCode::OK);
    assert_eq!(fake.calls(), 1);
    // ... but a JWS naming the other issuer is not sent to this one.
    let other = keys()
        .other
        .sign(&claims_with(json!({"iss": OTHER_ISSUER})));
    assert_eq!(get(&guard, &other).await.status, StatusCode::OK);
    assert_eq!(fake.calls(), 1);

    // JwtThenIntrospect: local checks first (a bad token never reaches the
    // server), then the server must call it active.
    let fake = FakeAs::new();
    let guard = builder_with(introspection(&fake).mode(IntrospectionMode::JwtThenIntrospect))
        .build()
        .unwrap();
    assert_401(&get(&guard, &unknown).await, UNKNOWN_KEY);
    assert_eq!(fake.calls(), 0);
    assert_401(&get(&guard, &jwt).await, INVALID);
    assert_eq!(fake.calls(), 1);
    fake.activate(&jwt, json!({}));
    let fresh = token(&claims_with(json!({"jti": "fresh"})));
    fake.activate(&fresh, json!({}));
    assert_eq!(get(&guard, &fresh).await.status, StatusCode::OK);
    // Opaque tokens are not sent to a JwtThenIntrospect issuer.
    assert_401(&get(&guard, OPAQUE).await, INVALID);
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn the_endpoint_is_discovered_from_the_issuer_metadata() {
    let fake = FakeAs::new();
    fake.activate(OPAQUE, json!({}));
    let i = Introspection::new(ClientAuth::client_secret_post("rs-1", "rs-secret"))
        .http_fetch(fake.clone());
    let guard = builder_with(i).build().unwrap();
    assert_eq!(get(&guard, OPAQUE).await.status, StatusCode::OK);
    let form = fake.last_form();
    assert_eq!(form["client_id"], "rs-1");
    assert_eq!(form["client_secret"], "rs-secret");
    assert!(fake.last_header("authorization").is_none());
}

#[tokio::test]
async fn private_key_jwt_signs_a_fresh_assertion() {
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
        UnparsedPublicKey,
    };
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let public = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let key = mcp_resource_guard::introspection::ClientAssertionKey::from_pkcs8_der(
        Algorithm::ES256,
        pkcs8.as_ref(),
    )
    .unwrap()
    .kid("rs-key-1");
    let fake = FakeAs::new();
    fake.activate(OPAQUE, json!({}));
    let i = Introspection::new(ClientAuth::private_key_jwt("rs-1", key))
        .endpoint(ENDPOINT)
        .http_fetch(fake.clone());
    let guard = builder_with(i).build().unwrap();
    assert_eq!(get(&guard, OPAQUE).await.status, StatusCode::OK);
    let form = fake.last_form();
    assert_eq!(
        form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    let assertion = &form["client_assertion"];
    let (input, sig) = assertion.rsplit_once('.').unwrap();
    let sig = base64_simd::URL_SAFE_NO_PAD.decode_to_vec(sig).unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public)
        .verify(input.as_bytes(), &sig)
        .expect("the assertion verifies with the client's public key");
    let part = |n: usize| -> Value {
        let seg = input.split('.').nth(n).unwrap();
        serde_json::from_slice(&base64_simd::URL_SAFE_NO_PAD.decode_to_vec(seg).unwrap()).unwrap()
    };
    assert_eq!(
        part(0),
        json!({"alg": "ES256", "typ": "JWT", "kid": "rs-key-1"})
    );
    let c = part(1);
    assert_eq!(
        (c["iss"].as_str(), c["sub"].as_str()),
        (Some("rs-1"), Some("rs-1"))
    );
    assert_eq!(c["aud"], ISSUER);
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 60);
    assert_eq!(c["jti"].as_str().unwrap().len(), 22);
    // A second call carries a new jti.
    assert_eq!(
        get(&guard, "other-opaque").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_ne!(&fake.last_form()["client_assertion"], assertion);
}

#[tokio::test]
async fn signed_rfc9701_responses_are_verified_with_the_issuer_keys() {
    let key = keys().get(Algorithm::ES256);
    let body = |signer: &mcp_resource_guard::testing::TestKey, aud: &str| {
        let inner = json!({"active": true, "iss": ISSUER, "aud": RESOURCE, "sub": "bob",
            "scope": "todo:read", "exp": now() + 300});
        let header = json!({"alg": "ES256", "typ": "token-introspection+jwt", "kid": signer.kid()});
        let claims = json!({"iss": ISSUER, "aud": aud, "iat": now(), "token_introspection": inner});
        signer.sign_with_header(&header, &claims).into_bytes()
    };
    let ct = "application/token-introspection+jwt";
    let fake = FakeAs::new();
    fake.answer(Answer::Body(ct, body(key, "rs-1")));
    let guard = builder_with(introspection(&fake).request_jwt_response())
        .build()
        .unwrap();
    let r = get(&guard, OPAQUE).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["sub"], "bob");
    assert_eq!(fake.last_header("accept").unwrap(), ct);
    // Signed by a stranger, addressed to someone else, or not typed as an
    // introspection response: not judged.
    let untyped = {
        let inner = json!({"active": true, "iss": ISSUER, "aud": RESOURCE, "exp": now() + 300});
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": key.kid()});
        let claims = json!({"iss": ISSUER, "aud": "rs-1", "token_introspection": inner});
        key.sign_with_header(&header, &claims).into_bytes()
    };
    for bad in [
        body(&keys().stranger, "rs-1"),
        body(key, "someone-else"),
        untyped,
    ] {
        let fake = FakeAs::new();
        fake.answer(Answer::Body(ct, bad));
        let guard = builder_with(introspection(&fake)).build().unwrap();
        assert_503(&get(&guard, OPAQUE).await);
    }
}

#[test]
fn configuration_mistakes_are_refused() {
    let fake = FakeAs::new();
    let two = GuardLayer::builder(RESOURCE)
        .add_issuer(Issuer::new(ISSUER).introspection(introspection(&fake)))
        .add_issuer(
            Issuer::new(OTHER_ISSUER)
                .introspection(introspection(&fake).mode(IntrospectionMode::EveryToken)),
        )
        .build();
    assert!(matches!(
        two.unwrap_err(),
        ConfigError::InvalidIntrospection { issuer, .. } if issuer == OTHER_ISSUER
    ));
    let plain_http = builder_with(introspection(&fake).endpoint("http://as.example.com/i")).build();
    assert!(matches!(
        plain_http.unwrap_err(),
        ConfigError::InvalidIntrospection { .. }
    ));
    let out_of_range = [
        introspection(&fake).positive_ttl(Duration::from_secs(3601)),
        introspection(&fake).negative_ttl(Duration::from_secs(301)),
        introspection(&fake).cache_max_bytes(1024),
        introspection(&fake).max_in_flight(0, Duration::from_secs(1)),
        introspection(&fake).timeout(Duration::ZERO),
        introspection(&fake).max_response_bytes(10 << 20),
    ];
    for i in out_of_range {
        assert!(matches!(
            builder_with(i).build().unwrap_err(),
            ConfigError::OutOfRange { .. }
        ));
    }
    // Loopback http is fine (local development, tests).
    builder_with(introspection(&fake).endpoint("http://127.0.0.1:9/introspect"))
        .build()
        .unwrap();
}

#[test]
fn debug_output_never_shows_the_secret() {
    let fake = FakeAs::new();
    let text = format!("{:?}", builder_with(introspection(&fake)));
    assert!(!text.contains("rs-secret"), "{text}");
    assert!(text.contains("client_secret_basic"), "{text}");
}

// The wire, with the real reqwest client against a loopback server.
mod wire {
    use super::*;
    use crate::common::fault_server::{FaultServer, Reply as Fault};

    async fn guard_for(server: &FaultServer, path: &str) -> GuardLayer {
        builder_with(
            Introspection::new(ClientAuth::client_secret_basic("rs-1", "rs-secret"))
                .endpoint(format!("{}{path}", server.base))
                .timeout(Duration::from_millis(500)),
        )
        .build()
        .unwrap()
    }

    #[tokio::test]
    async fn an_active_answer_over_http() {
        let server = FaultServer::start().await;
        let doc = json!({"active": true, "iss": ISSUER, "aud": RESOURCE, "sub": "carol",
            "scope": "todo:read", "exp": now() + 60});
        server.route("/introspect", Fault::Json(doc.to_string(), vec![]));
        let r = get(&guard_for(&server, "/introspect").await, OPAQUE).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.json()["sub"], "carol");
    }

    #[tokio::test]
    async fn oversized_slow_redirected_and_failing_answers_are_503() {
        let server = FaultServer::start().await;
        let big = format!(r#"{{"active":false,"pad":"{}"}}"#, "x".repeat(70_000));
        server.route("/big", Fault::Json(big, vec![]));
        server.route("/slow", Fault::Slow(Duration::from_secs(3), "{}".into()));
        server.route("/moved", Fault::Redirect(format!("{}/big", server.base)));
        server.route("/boom", Fault::Status(500));
        server.route("/closed", Fault::Close);
        for path in ["/big", "/slow", "/moved", "/boom", "/closed"] {
            let r = get(&guard_for(&server, path).await, OPAQUE).await;
            assert_503(&r);
        }
        // The redirect was not followed: the credentials stayed put.
        assert_eq!(server.hits("/big"), 1);
    }
}

#[tokio::test]
async fn replicas_sharing_a_store_introspect_a_token_once_and_fall_back_to_the_as_when_it_is_down()
{
    use mcp_resource_guard::store::{RevocationsWhenDown, SharedStore};
    let fake = FakeAs::new();
    fake.activate(OPAQUE, json!({}));
    let switch = crate::shared_store::Switchable::new();
    // Availability over cross-replica revocation while the store is down
    // (the default would answer 503: see shared_store.rs).
    let store =
        SharedStore::new(switch.clone()).revocations_when_down(RevocationsWhenDown::LocalListOnly);
    let replicas: Vec<GuardLayer> = (0..3)
        .map(|_| {
            builder_with(introspection(&fake))
                .shared_store(store.clone())
                .build()
                .unwrap()
        })
        .collect();
    for round in 0..3 {
        for g in &replicas {
            let r = get(g, OPAQUE).await;
            assert_eq!(r.status, StatusCode::OK, "round {round}: {}", r.body);
        }
    }
    // One call for the whole fleet (later requests: each replica's own
    // caches, or the shared answer).
    assert_eq!(fake.calls(), 1);
    // An inactive answer is shared too.
    for g in &replicas {
        assert_401(
            &get(g, "unknown-token").await,
            "The access token is invalid",
        );
    }
    assert_eq!(fake.calls(), 2);

    // The store down: each replica asks the AS itself (within its bounds),
    // the outage counted once.
    switch.set_down(true);
    fake.activate("second-token", json!({}));
    for g in &replicas {
        assert_eq!(get(g, "second-token").await.status, StatusCode::OK);
    }
    assert_eq!(fake.calls(), 5);
    let o = store.outages();
    assert_eq!(
        (o.replay, o.introspection, o.revocation, o.sessions, o.tasks),
        (0, 1, 1, 0, 0)
    );
    switch.set_down(false);
}
