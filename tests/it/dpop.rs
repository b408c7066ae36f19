//! DPoP (RFC 9449) at the resource server: every §4.3 step through the whole
//! stack with its exact status and challenges, the modes, replay, nonces,
//! the token cache, the metadata.

use mcp_resource_guard::testing::Clocked;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode};
use mcp_resource_guard::dpop::{Dpop, DpopMode};
use mcp_resource_guard::testing::{ManualClock, TestKey};
use mcp_resource_guard::{Algorithm, AuthContext, GuardBuilder, GuardLayer, RequireScopeLayer};
use serde_json::{Value, json};

use crate::common::*;

const URL: &str = "https://mcp.example.com/mcp";
const ALGS: &str = "ES256 ES384 PS256 RS256 EdDSA";
const SCOPE: &str = "todo:read todo:write";

/// The client's DPoP key.
fn client_key() -> &'static TestKey {
    static KEY: std::sync::OnceLock<TestKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| TestKey::generate(Algorithm::ES256).unwrap())
}

/// A token bound to `key`.
fn bound_to(key: &TestKey, changes: Value) -> String {
    let mut c = claims_with(
        json!({"cnf": {"jkt": key.thumbprint()}, "jti": format!("t-{}", key.thumbprint())}),
    );
    for (k, v) in changes.as_object().unwrap() {
        c[k] = v.clone();
    }
    token(&c)
}

fn dpop_builder(mode: DpopMode) -> GuardBuilder {
    builder().dpop(Dpop::new(mode))
}

/// An app whose `/mcp` answers with the caller's DPoP thumbprint.
fn dpop_app(guard: GuardLayer) -> Router {
    Router::new().route("/mcp", get(jkt).post(jkt)).layer(guard)
}

async fn jkt(ctx: AuthContext) -> axum::Json<Value> {
    axum::Json(json!({"jkt": ctx.dpop_thumbprint(), "sub": ctx.subject()}))
}

/// A request with `Authorization: <scheme> <token>` and these `DPoP` headers.
fn req(method: &str, scheme: &str, token: &str, proofs: &[&str]) -> Request<Body> {
    let mut b = Request::builder()
        .method(method)
        .uri("/mcp")
        .header("authorization", format!("{scheme} {token}"));
    for p in proofs {
        b = b.header("dpop", *p);
    }
    b.body(Body::empty()).unwrap()
}

fn metadata() -> &'static str {
    METADATA_URL
}

fn bearer_plain() -> String {
    format!(
        "Bearer resource_metadata=\"{}\", scope=\"{SCOPE}\"",
        metadata()
    )
}

fn dpop_plain() -> String {
    format!(
        "DPoP algs=\"{ALGS}\", resource_metadata=\"{}\", scope=\"{SCOPE}\"",
        metadata()
    )
}

fn dpop_error(code: &str, description: &str) -> String {
    format!(
        "DPoP error=\"{code}\", error_description=\"{description}\", algs=\"{ALGS}\", resource_metadata=\"{}\", scope=\"{SCOPE}\"",
        metadata()
    )
}

fn challenges(r: &Reply) -> Vec<String> {
    r.headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

const BAD_PROOF: &str = "The DPoP proof is invalid";

fn assert_bad_proof(r: &Reply, case: &str) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{case}: {}", r.body);
    assert_eq!(
        challenges(r),
        [bearer_plain(), dpop_error("invalid_dpop_proof", BAD_PROOF)],
        "{case}"
    );
}

#[tokio::test]
async fn a_valid_proof_with_a_bound_token_is_accepted() {
    let app = dpop_app(dpop_builder(DpopMode::Allowed).build().unwrap());
    let key = client_key();
    let token = bound_to(key, json!({}));
    let proof = key.dpop_proof("GET", URL, &token);
    let r = send(&app, req("GET", "DPoP", &token, &[&proof])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["jkt"], key.thumbprint());
    // The same proof again: a replay. A fresh one: fine (the token now
    // comes from the cache; the proof is still checked).
    assert_bad_proof(
        &send(&app, req("GET", "DPoP", &token, &[&proof])).await,
        "replay",
    );
    let fresh = key.dpop_proof("GET", URL, &token);
    assert_eq!(
        send(&app, req("GET", "DPoP", &token, &[&fresh]))
            .await
            .status,
        StatusCode::OK
    );
    // With the token cached, a bad proof is still refused.
    let wrong = key.dpop_proof("POST", URL, &token);
    assert_bad_proof(
        &send(&app, req("GET", "DPoP", &token, &[&wrong])).await,
        "cached token, bad proof",
    );
}

#[tokio::test]
async fn every_proof_check_refuses_with_invalid_dpop_proof() {
    let key = client_key();
    let other = TestKey::generate(Algorithm::ES256).unwrap();
    let token = bound_to(key, json!({}));
    let now = now();
    let b64 = |v: &Value| b64(v.to_string().as_bytes());
    let mut jwk = key.public_jwk_without_alg();
    jwk.as_object_mut().unwrap().remove("kid");
    // A proof with this header, signed by `signer`, over valid claims.
    let with_header = |signer: &TestKey, header: Value| {
        let claims = json!({"htm": "GET", "htu": URL, "iat": now, "jti": format!("h-{}", rand_id()),
            "ath": b64url_sha256(&token)});
        signer.sign_with_header(&header, &claims)
    };
    let private_jwk = {
        let mut j = jwk.clone();
        j["d"] = json!("AAAA");
        j
    };
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"typ": "dpop+jwt", "alg": "none", "jwk": jwk})),
        b64(
            &json!({"htm": "GET", "htu": URL, "iat": now, "jti": "none-1", "ath": b64url_sha256(&token)})
        )
    );
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("no DPoP header", vec![]),
        (
            "two DPoP headers",
            vec![
                key.dpop_proof("GET", URL, &token),
                key.dpop_proof("GET", URL, &token),
            ],
        ),
        ("not a JWS", vec!["not-a-proof".into()]),
        ("a JWE", vec!["a.b.c.d.e".into()]),
        ("htm is POST", vec![key.dpop_proof("POST", URL, &token)]),
        ("htm lowercase", vec![key.dpop_proof("get", URL, &token)]),
        (
            "htu of another host",
            vec![key.dpop_proof("GET", "https://evil.example.com/mcp", &token)],
        ),
        (
            "htu of another path",
            vec![key.dpop_proof("GET", "https://mcp.example.com/other", &token)],
        ),
        (
            "htu over http",
            vec![key.dpop_proof("GET", "http://mcp.example.com/mcp", &token)],
        ),
        ("htu relative", vec![key.dpop_proof("GET", "/mcp", &token)]),
        (
            "iat 10 minutes old",
            vec![key.dpop_proof_with("GET", URL, &token, &json!({"iat": now - 600}))],
        ),
        (
            "iat 10 minutes ahead",
            vec![key.dpop_proof_with("GET", URL, &token, &json!({"iat": now + 600}))],
        ),
        (
            "iat a string",
            vec![key.dpop_proof_with("GET", URL, &token, &json!({"iat": "now"}))],
        ),
        (
            "no jti",
            vec![key.dpop_proof_with("GET", URL, &token, &json!({"jti": null}))],
        ),
        (
            "empty jti",
            vec![key.dpop_proof_with("GET", URL, &token, &json!({"jti": ""}))],
        ),
        (
            "no ath",
            vec![key.dpop_proof_with("GET", URL, &token, &json!({"ath": null}))],
        ),
        (
            "ath of another token",
            vec![key.dpop_proof("GET", URL, "another-token")],
        ),
        (
            "no htm",
            vec![key.dpop_proof_with("GET", URL, &token, &json!({"htm": null}))],
        ),
        (
            "no htu",
            vec![key.dpop_proof_with("GET", URL, &token, &json!({"htu": null}))],
        ),
        (
            "typ JWT",
            vec![with_header(
                key,
                json!({"typ": "JWT", "alg": "ES256", "jwk": jwk}),
            )],
        ),
        (
            "no typ",
            vec![with_header(key, json!({"alg": "ES256", "jwk": jwk}))],
        ),
        ("alg none", vec![unsigned]),
        (
            "alg HS256",
            vec![with_header(
                key,
                json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk}),
            )],
        ),
        (
            "no jwk",
            vec![with_header(key, json!({"typ": "dpop+jwt", "alg": "ES256"}))],
        ),
        (
            "private jwk",
            vec![with_header(
                key,
                json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private_jwk}),
            )],
        ),
        (
            "symmetric jwk",
            vec![with_header(
                key,
                json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}}),
            )],
        ),
        (
            "jwk of another key",
            vec![with_header(
                &other,
                json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}),
            )],
        ),
        (
            "alg not fitting the jwk",
            vec![with_header(
                key,
                json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk}),
            )],
        ),
        (
            "crit header",
            vec![with_header(
                key,
                json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk, "crit": ["exp"]}),
            )],
        ),
        (
            "a proof over 8 KiB",
            vec![key.dpop_proof_with("GET", URL, &token, &json!({"pad": "x".repeat(9000)}))],
        ),
        (
            "claims as an array",
            vec![key.sign_with_header(
                &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}),
                &json!(["GET", URL, now, "array-1", b64url_sha256(&token), null]),
            )],
        ),
        (
            "PS256 over a jwk published for RS256",
            vec![{
                let ps = TestKey::generate(Algorithm::PS256).unwrap();
                let mut rsa = ps.public_jwk_without_alg();
                rsa["alg"] = json!("RS256");
                with_header(&ps, json!({"typ": "dpop+jwt", "alg": "PS256", "jwk": rsa}))
            }],
        ),
    ];
    let app = dpop_app(dpop_builder(DpopMode::Allowed).build().unwrap());
    for (case, proofs) in cases {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        assert_bad_proof(&send(&app, req("GET", "DPoP", &token, &proofs)).await, case);
    }
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

fn b64url_sha256(s: &str) -> String {
    use aws_lc_rs::digest::{SHA256, digest};
    b64(digest(&SHA256, s.as_bytes()).as_ref())
}

#[tokio::test]
async fn htu_is_compared_after_normalization_and_without_query() {
    let app = dpop_app(dpop_builder(DpopMode::Allowed).build().unwrap());
    let key = client_key();
    let token = bound_to(key, json!({}));
    for htu in [
        "HTTPS://MCP.EXAMPLE.COM/mcp",
        "https://mcp.example.com:443/mcp",
        "https://mcp.example.com/mcp?page=2",
        "https://mcp.example.com/mcp#frag",
    ] {
        let proof = key.dpop_proof("GET", htu, &token);
        let r = send(&app, req("GET", "DPoP", &token, &[&proof])).await;
        assert_eq!(r.status, StatusCode::OK, "{htu}: {}", r.body);
    }
}

#[tokio::test]
async fn the_token_must_be_bound_to_the_proof_key_and_sent_with_the_right_scheme() {
    let app = dpop_app(dpop_builder(DpopMode::Allowed).build().unwrap());
    let key = client_key();
    let other = TestKey::generate(Algorithm::EdDSA).unwrap();
    let invalid = |d: &str| dpop_error("invalid_token", d);
    // Bound to another key than the proof's.
    let token = bound_to(key, json!({}));
    let r = send(
        &app,
        req(
            "GET",
            "DPoP",
            &token,
            &[&other.dpop_proof("GET", URL, &token)],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenges(&r), [bearer_plain(), invalid(INVALID)]);
    // An unbound token with the DPoP scheme.
    let unbound = token_with_jti("unbound-1");
    let r = send(
        &app,
        req(
            "GET",
            "DPoP",
            &unbound,
            &[&key.dpop_proof("GET", URL, &unbound)],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenges(&r), [bearer_plain(), invalid(INVALID)]);
    // A bound token sent as Bearer (verified, then from the cache).
    let fresh = bound_to(key, json!({"jti": "bearer-misuse"}));
    for _ in 0..2 {
        let r = send(&app, req("GET", "Bearer", &fresh, &[])).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenges(&r),
            [
                format!(
                    "Bearer error=\"invalid_token\", error_description=\"{INVALID}\", resource_metadata=\"{}\", scope=\"{SCOPE}\"",
                    metadata()
                ),
                dpop_plain()
            ]
        );
    }
    // An unbound token as Bearer: fine.
    assert_eq!(
        send(&app, req("GET", "Bearer", &unbound, &[])).await.status,
        StatusCode::OK
    );
}

fn token_with_jti(jti: &str) -> String {
    token(&claims_with(json!({"jti": jti})))
}

#[tokio::test]
async fn cnf_members_other_than_jkt_are_ignored_but_a_certificate_binding_is_refused() {
    let app = dpop_app(dpop_builder(DpopMode::Allowed).build().unwrap());
    let key = client_key();
    let extra = bound_to(
        key,
        json!({"cnf": {"jkt": key.thumbprint(), "x5t#S256": "abc", "kid": "k"}, "jti": "extra"}),
    );
    let r = send(
        &app,
        req(
            "GET",
            "DPoP",
            &extra,
            &[&key.dpop_proof("GET", URL, &extra)],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mtls = bound_to(key, json!({"cnf": {"x5t#S256": "abc"}, "jti": "mtls"}));
    let r = send(
        &app,
        req("GET", "DPoP", &mtls, &[&key.dpop_proof("GET", URL, &mtls)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenges(&r),
        [bearer_plain(), dpop_error("invalid_token", INVALID)]
    );
}

#[tokio::test]
async fn with_dpop_disabled_bound_tokens_and_the_dpop_scheme_are_refused() {
    let app = app(guard());
    let key = client_key();
    let token = bound_to(key, json!({}));
    let r = send(&app, req("GET", "Bearer", &token, &[])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.www(), invalid_token(INVALID));
    let r = send(
        &app,
        req(
            "GET",
            "DPoP",
            &token,
            &[&key.dpop_proof("GET", URL, &token)],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.www(), PLAIN_CHALLENGE);
    assert_eq!(challenges(&r).len(), 1);
}

#[tokio::test]
async fn the_verifier_alone_refuses_bound_tokens_unless_dpop_is_on() {
    let token = bound_to(client_key(), json!({"jti": "verifier-alone"}));
    let bearer = mcp_resource_guard::BearerToken::new(token);
    let err = mcp_resource_guard::fuzzing::verifier(&guard())
        .verify(&bearer)
        .await
        .unwrap_err();
    assert_eq!(
        err.detail(),
        "the token is sender-constrained (cnf) and cannot be used as a Bearer token"
    );
    let ctx =
        mcp_resource_guard::fuzzing::verifier(&dpop_builder(DpopMode::Allowed).build().unwrap())
            .verify(&bearer)
            .await
            .unwrap();
    assert_eq!(
        ctx.dpop_thumbprint(),
        Some(client_key().thumbprint().as_str())
    );
    let mtls = bound_to(
        client_key(),
        json!({"cnf": {"x5t#S256": "abc"}, "jti": "mtls-alone"}),
    );
    let err =
        mcp_resource_guard::fuzzing::verifier(&dpop_builder(DpopMode::Allowed).build().unwrap())
            .verify(&mcp_resource_guard::BearerToken::new(mtls))
            .await
            .unwrap_err();
    assert_eq!(
        err.detail(),
        "the token is bound to a TLS client certificate (cnf x5t#S256): certificate-bound tokens are not supported"
    );
}

#[tokio::test]
async fn required_mode_refuses_bearer_and_challenges_with_dpop_only() {
    let app = dpop_app(dpop_builder(DpopMode::Required).build().unwrap());
    let unbound = token_with_jti("req-1");
    let r = send(&app, req("GET", "Bearer", &unbound, &[])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenges(&r), [dpop_error("invalid_token", INVALID)]);
    let r = send(&app, Request::get("/mcp").body(Body::empty()).unwrap()).await;
    assert_eq!(challenges(&r), [dpop_plain()]);
    let key = client_key();
    let token = bound_to(key, json!({}));
    let r = send(
        &app,
        req(
            "GET",
            "DPoP",
            &token,
            &[&key.dpop_proof("GET", URL, &token)],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn the_metadata_advertises_dpop() {
    let allowed = dpop_builder(DpopMode::Allowed).build().unwrap();
    let doc = serde_json::to_value(allowed.metadata()).unwrap();
    assert_eq!(
        doc["dpop_signing_alg_values_supported"],
        json!(["ES256", "ES384", "PS256", "RS256", "EdDSA"])
    );
    assert!(doc.get("dpop_bound_access_tokens_required").is_none());
    let required = builder()
        .dpop(Dpop::new(DpopMode::Required).algorithms([Algorithm::EdDSA]))
        .build()
        .unwrap();
    let doc = serde_json::to_value(required.metadata()).unwrap();
    assert_eq!(doc["dpop_signing_alg_values_supported"], json!(["EdDSA"]));
    assert_eq!(doc["dpop_bound_access_tokens_required"], true);
    let off = serde_json::to_value(guard().metadata()).unwrap();
    assert!(off.get("dpop_signing_alg_values_supported").is_none());
}

#[tokio::test]
async fn only_the_configured_algorithms_sign_proofs() {
    let app = dpop_app(
        builder()
            .dpop(Dpop::new(DpopMode::Allowed).algorithms([Algorithm::EdDSA]))
            .build()
            .unwrap(),
    );
    let key = client_key(); // ES256
    let token = bound_to(key, json!({}));
    let r = send(
        &app,
        req(
            "GET",
            "DPoP",
            &token,
            &[&key.dpop_proof("GET", URL, &token)],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenges(&r)[1],
        format!(
            "DPoP error=\"invalid_dpop_proof\", error_description=\"{BAD_PROOF}\", algs=\"EdDSA\", resource_metadata=\"{}\", scope=\"{SCOPE}\"",
            metadata()
        )
    );
}

#[tokio::test]
async fn the_iat_window_follows_the_guard_clock_and_setting() {
    let clock = ManualClock::new();
    let app = dpop_app(
        builder()
            .dpop(Dpop::new(DpopMode::Allowed).iat_window(Duration::from_secs(30)))
            .clock(&clock)
            .build()
            .unwrap(),
    );
    let key = client_key();
    let token = bound_to(key, json!({"exp": now() + 3600}));
    let proof = key.dpop_proof("GET", URL, &token);
    clock.advance(Duration::from_secs(31));
    assert_bad_proof(
        &send(&app, req("GET", "DPoP", &token, &[&proof])).await,
        "31 s old",
    );
    let proof = key.dpop_proof_with("GET", URL, &token, &json!({"iat": now() + 31 - 29}));
    assert_eq!(
        send(&app, req("GET", "DPoP", &token, &[&proof]))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_step_up_challenges_with_the_scheme_the_client_used() {
    let guard = dpop_builder(DpopMode::Allowed).build().unwrap();
    let app = Router::new()
        .route("/mcp", get(jkt))
        .layer(RequireScopeLayer::all(&guard, ["todo:write"]).unwrap())
        .layer(guard);
    let key = client_key();
    let token = bound_to(key, json!({"scope": "todo:read", "jti": "stepup"}));
    let r = send(
        &app,
        req(
            "GET",
            "DPoP",
            &token,
            &[&key.dpop_proof("GET", URL, &token)],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        challenges(&r),
        [
            format!(
                "Bearer resource_metadata=\"{}\", scope=\"todo:write\"",
                metadata()
            ),
            format!(
                "DPoP error=\"insufficient_scope\", error_description=\"The access token lacks a scope this request needs\", algs=\"{ALGS}\", resource_metadata=\"{}\", scope=\"todo:write\"",
                metadata()
            ),
        ]
    );
}

#[cfg(feature = "aws-lc-rs")]
mod nonces {
    use super::*;
    use mcp_resource_guard::SealedState;

    fn nonce_app(clock: &ManualClock, on_success: bool) -> Router {
        let sealer = SealedState::builder()
            .ttl(Duration::from_secs(60))
            .clock(clock)
            .build()
            .unwrap();
        dpop_app(
            builder()
                .dpop(Dpop::new(DpopMode::Allowed).nonces(sealer, on_success))
                .clock(clock)
                .build()
                .unwrap(),
        )
    }

    fn use_nonce(r: &Reply) -> String {
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        assert_eq!(
            challenges(r),
            [
                bearer_plain(),
                dpop_error(
                    "use_dpop_nonce",
                    "A DPoP proof with a fresh server nonce is required"
                )
            ]
        );
        r.headers["dpop-nonce"].to_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn the_nonce_flow() {
        let clock = ManualClock::new();
        let app = nonce_app(&clock, true);
        let key = client_key();
        let token = bound_to(key, json!({"exp": now() + 3600, "jti": "nonce-flow"}));
        // No nonce: told to use one.
        let r = send(
            &app,
            req(
                "GET",
                "DPoP",
                &token,
                &[&key.dpop_proof("GET", URL, &token)],
            ),
        )
        .await;
        let nonce = use_nonce(&r);
        assert_eq!(
            r.headers["access-control-expose-headers"],
            "WWW-Authenticate, Mcp-Session-Id, DPoP-Nonce"
        );
        // With it: accepted, and a fresh nonce comes back.
        let proof = key.dpop_proof_with("GET", URL, &token, &json!({"nonce": nonce}));
        let r = send(&app, req("GET", "DPoP", &token, &[&proof])).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let next = r.headers["dpop-nonce"].to_str().unwrap().to_owned();
        assert_ne!(next, nonce);
        // A forged nonce, a nonce of another key, an expired nonce.
        let forged = key.dpop_proof_with("GET", URL, &token, &json!({"nonce": "ss1.AAAA"}));
        use_nonce(&send(&app, req("GET", "DPoP", &token, &[&forged])).await);
        let other = TestKey::generate(Algorithm::ES256).unwrap();
        let other_token = bound_to(&other, json!({"exp": now() + 3600, "jti": "nonce-other"}));
        let theirs = other.dpop_proof_with("GET", URL, &other_token, &json!({"nonce": next}));
        use_nonce(&send(&app, req("GET", "DPoP", &other_token, &[&theirs])).await);
        clock.advance(Duration::from_secs(61));
        let late = key.dpop_proof_with(
            "GET",
            URL,
            &token,
            &json!({"nonce": next, "iat": now() + 61}),
        );
        use_nonce(&send(&app, req("GET", "DPoP", &token, &[&late])).await);
    }

    #[tokio::test]
    async fn no_fresh_nonce_on_success_unless_asked() {
        let clock = ManualClock::new();
        let app = nonce_app(&clock, false);
        let key = client_key();
        let token = bound_to(key, json!({"exp": now() + 3600, "jti": "nonce-quiet"}));
        let r = send(
            &app,
            req(
                "GET",
                "DPoP",
                &token,
                &[&key.dpop_proof("GET", URL, &token)],
            ),
        )
        .await;
        let nonce = use_nonce(&r);
        let proof = key.dpop_proof_with("GET", URL, &token, &json!({"nonce": nonce}));
        let r = send(&app, req("GET", "DPoP", &token, &[&proof])).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.headers.get("dpop-nonce").is_none());
    }
}

/// An opaque token bound by the introspection response's `cnf.jkt`.
mod introspected {
    use super::*;
    use async_trait::async_trait;
    use http::{HeaderName, HeaderValue};
    use mcp_resource_guard::introspection::{ClientAuth, Introspection};
    use mcp_resource_guard::jwks::{HttpFetch, HttpResponse, KeySourceError};
    use mcp_resource_guard::{Issuer, TokenCacheConfig};

    #[derive(Debug)]
    struct BoundAs(String);

    #[async_trait]
    impl HttpFetch for BoundAs {
        async fn get(&self, _: &str, _: usize) -> Result<HttpResponse, KeySourceError> {
            Err(KeySourceError::new("unused"))
        }
        async fn post_form(
            &self,
            _: &str,
            _: &[(HeaderName, HeaderValue)],
            _: &[(&str, &str)],
            _: usize,
        ) -> Result<HttpResponse, KeySourceError> {
            let body = json!({"active": true, "iss": ISSUER, "aud": RESOURCE, "sub": "alice",
                "scope": SCOPE, "exp": now() + 300, "token_type": "DPoP",
                "cnf": {"jkt": self.0}});
            Ok(HttpResponse::new(200, body.to_string().into_bytes()))
        }
    }

    #[tokio::test]
    async fn a_bound_opaque_token_needs_its_proof_every_time() {
        let key = client_key();
        let guard = GuardLayer::builder(RESOURCE)
            .add_issuer(
                Issuer::new(ISSUER).introspection(
                    Introspection::new(ClientAuth::client_secret_basic("rs", "s"))
                        .endpoint("https://as.example.com/introspect")
                        .http_fetch(BoundAs(key.thumbprint())),
                ),
            )
            .scopes_supported(["todo:read", "todo:write"])
            .dpop(Dpop::new(DpopMode::Allowed))
            .token_cache(TokenCacheConfig::default())
            .build()
            .unwrap();
        let app = dpop_app(guard);
        let opaque = "opaque-bound-token-1";
        for _ in 0..2 {
            let proof = key.dpop_proof("GET", URL, opaque);
            let r = send(&app, req("GET", "DPoP", opaque, &[&proof])).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert_eq!(r.json()["jkt"], key.thumbprint());
        }
        // As Bearer, or with another key's proof: refused.
        let r = send(&app, req("GET", "Bearer", opaque, &[])).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let other = TestKey::generate(Algorithm::ES256).unwrap();
        let r = send(
            &app,
            req(
                "GET",
                "DPoP",
                opaque,
                &[&other.dpop_proof("GET", URL, opaque)],
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenges(&r),
            [bearer_plain(), dpop_error("invalid_token", INVALID)]
        );
        // A proof for another token (wrong ath).
        let r = send(
            &app,
            req(
                "GET",
                "DPoP",
                opaque,
                &[&key.dpop_proof("GET", URL, "other")],
            ),
        )
        .await;
        assert_bad_proof(&r, "ath of another token");
    }
}

#[tokio::test]
async fn the_mcp_layer_steps_up_with_the_dpop_scheme() {
    use axum::body::Bytes;
    use axum::routing::post;
    use mcp_resource_guard::mcp::{McpLayer, McpPolicy, Rule};
    let guard = dpop_builder(DpopMode::Allowed).build().unwrap();
    let policy = McpPolicy::builder()
        .default_rule(Rule::Allow)
        .tool("add_todo", Rule::require(["todo:write"]))
        .build()
        .unwrap();
    let app = Router::new()
        .route("/mcp", post(|body: Bytes| async move { body }))
        .layer(McpLayer::new(&guard, policy))
        .layer(guard);
    let key = client_key();
    let token = bound_to(key, json!({"scope": "todo:read", "jti": "mcp-stepup"}));
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add_todo"}});
    let request = |proof: &str| {
        Request::post("/mcp")
            .header("content-type", "application/json")
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let r = send(&app, request(&key.dpop_proof("POST", URL, &token))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // The session wire names what the token should hold afterwards.
    assert_eq!(
        challenges(&r),
        [
            format!(
                "Bearer resource_metadata=\"{}\", scope=\"todo:write todo:read\"",
                metadata()
            ),
            format!(
                "DPoP error=\"insufficient_scope\", error_description=\"The access token lacks a scope this request needs\", algs=\"{ALGS}\", resource_metadata=\"{}\", scope=\"todo:write todo:read\"",
                metadata()
            ),
        ]
    );
}
