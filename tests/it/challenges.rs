//! SPEC B6–B12: exact challenges, bodies and statuses.

use std::sync::Arc;

use crate::common::*;
use async_trait::async_trait;
use axum::body::Body;
use http::{Request, Response, StatusCode};
use mcp_resource_guard::challenge::Rejection;
use mcp_resource_guard::jwks::RefreshReason;
use mcp_resource_guard::jwks::{KeySet, KeySource, KeySourceError};
use mcp_resource_guard::{AuthError, AuthErrorKind, ChallengeMode, GuardLayer, Issuer};
use serde_json::json;
use tower::ServiceExt;

fn with_auth(values: &[&str], uri: &str) -> Request<Body> {
    let mut b = Request::get(uri);
    for v in values {
        b = b.header("authorization", *v);
    }
    b.body(Body::empty()).unwrap()
}

const MALFORMED: &str = "Bearer error=\"invalid_request\", error_description=\"The request is malformed\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\", scope=\"todo:read todo:write\"";

#[tokio::test]
async fn no_credentials_gets_a_plain_challenge_without_error() {
    let r = send(&app(guard()), request("/mcp", None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.www(), PLAIN_CHALLENGE);
    assert!(!r.www().contains("error="));
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(
        r.json(),
        json!({"error": "unauthorized", "error_description": "A bearer access token is required"})
    );
    assert_challenge_grammar(r.www());
}

#[tokio::test]
async fn another_scheme_gets_the_plain_challenge() {
    for v in ["Basic dXNlcjpwYXNz", "DPoP abc", "Token abc", "Bearerabc"] {
        let r = send(&app(guard()), with_auth(&[v], "/mcp")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{v}");
        assert_eq!(r.www(), PLAIN_CHALLENGE, "{v}");
    }
}

#[tokio::test]
async fn the_scheme_is_case_insensitive() {
    let t = token(&claims());
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let r = send(
            &app(guard()),
            with_auth(&[&format!("{scheme} {t}")], "/mcp"),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{scheme}");
    }
}

#[tokio::test]
async fn compatibility_mode_always_sends_invalid_token() {
    let g = builder()
        .challenge_mode(ChallengeMode::AlwaysInvalidToken)
        .build()
        .unwrap();
    let r = send(&app(g), request("/mcp", None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.www(), invalid_token("A bearer access token is required"));
    assert_eq!(r.json()["error"], "invalid_token");
}

#[tokio::test]
async fn malformed_requests_get_400_invalid_request() {
    let t = token(&claims());
    let bearer = format!("Bearer {t}");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![&bearer, &bearer], "/mcp"),
        (vec!["Bearer"], "/mcp"),
        (vec!["Bearer "], "/mcp"),
        (vec!["Bearer a b"], "/mcp"),
        (vec!["Bearer a,b"], "/mcp"),
        (vec!["Bearer \"abc\""], "/mcp"),
        (vec![&bearer], "/mcp?access_token=abc"),
        (vec![], "/mcp?access_token=abc"),
    ];
    for (headers, uri) in cases {
        let r = send(&app(guard()), with_auth(&headers, uri)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{headers:?} {uri}");
        assert_eq!(r.www(), MALFORMED);
        assert_eq!(
            r.json(),
            json!({"error": "invalid_request", "error_description": "The request is malformed"})
        );
    }
    // A non-ASCII header value.
    let req = Request::get("/mcp")
        .header(
            "authorization",
            http::HeaderValue::from_bytes(b"Bearer \xe2\x82\xac").unwrap(),
        )
        .body(Body::empty())
        .unwrap();
    let r = send(&app(guard()), req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn required_scopes_give_403_with_exactly_those_scopes() {
    let g = builder().required_scopes(["todo:read"]).build().unwrap();
    let app = app(g);
    let t = token(&claims_with(json!({"scope": "todo:write"})));
    let r = send(&app, request("/mcp", Some(&t))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.www(),
        "Bearer error=\"insufficient_scope\", error_description=\"The access token lacks a scope this request needs\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\", scope=\"todo:read\""
    );
    assert_eq!(r.json()["error"], "insufficient_scope");
    assert_challenge_grammar(r.www());
    // The 401 names the required scopes, not all supported ones.
    let r = send(&app, request("/mcp", None)).await;
    assert_eq!(
        r.www(),
        "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\", scope=\"todo:read\""
    );
    let t = token(&claims_with(json!({"scope": "todo:read"})));
    assert_eq!(
        send(&app, request("/mcp", Some(&t))).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn scope_is_omitted_only_when_nothing_is_configured() {
    let k = &keys().by_alg;
    let g = GuardLayer::builder(RESOURCE)
        .add_issuer(Issuer::new(ISSUER).key_source(static_jwks(&[&k[0]])))
        .build()
        .unwrap();
    let r = send(&app(g), request("/mcp", None)).await;
    assert_eq!(
        r.www(),
        "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""
    );
}

#[tokio::test]
async fn attacker_text_never_reaches_the_header_or_body() {
    let evil = "x\r\nSet-Cookie: a=b\", error=\"\\";
    for (change, description) in [
        (json!({"sub": evil, "exp": now() - 3600}), EXPIRED),
        (json!({"iss": evil}), UNTRUSTED),
        (json!({"aud": evil}), WRONG_AUD),
        (json!({"scope": evil, "nbf": now() + 3600}), NOT_YET),
    ] {
        let r = call(&token(&claims_with(change))).await;
        assert_invalid(&r, description);
        assert_challenge_grammar(r.www());
        assert!(!r.body.contains("Set-Cookie"));
    }
}

#[tokio::test]
async fn the_body_is_generic() {
    let r = call(&token(&claims_with(json!({"cnf": {"jkt": "abc"}})))).await;
    assert_eq!(
        r.body,
        "{\"error\":\"invalid_token\",\"error_description\":\"The access token is invalid\"}"
    );
    assert!(!r.body.contains("cnf"));
}

#[tokio::test]
async fn the_reason_is_in_the_response_extensions() {
    let svc = tower::ServiceBuilder::new()
        .map_response(|mut res: Response<Body>| {
            let kind = res
                .extensions()
                .get::<AuthError>()
                .map(|e| e.kind().as_str());
            if let Some(k) = kind {
                res.headers_mut().insert("x-reason", k.parse().unwrap());
            }
            res
        })
        .service(app(guard()));
    let t = token(&claims_with(json!({"exp": now() - 3600})));
    let res = svc
        .clone()
        .oneshot(request("/mcp", Some(&t)))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["x-reason"], "expired");
    let res = svc.oneshot(request("/mcp", None)).await.unwrap();
    assert_eq!(res.headers()["x-reason"], "missing_token");
}

#[tokio::test]
async fn a_custom_body_cannot_break_the_header_semantics() {
    let g = builder()
        .rejection_body(|r: &Rejection| {
            Response::builder()
                .status(StatusCode::OK)
                .header("www-authenticate", "Basic realm=\"x\"")
                .header("content-type", "text/plain")
                .body(format!("no: {}", r.error().kind()))
                .unwrap()
        })
        .build()
        .unwrap();
    let r = send(&app(g), request("/mcp", None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.www(), PLAIN_CHALLENGE);
    assert_eq!(r.headers.get_all("www-authenticate").iter().count(), 1);
    assert_eq!(r.body, "no: missing_token");
    assert_eq!(r.headers["content-type"], "text/plain");
}

#[tokio::test]
async fn guarded_responses_expose_the_challenge_to_browsers() {
    let r = send(&app(guard()), request("/mcp", None)).await;
    assert_eq!(
        r.headers["access-control-expose-headers"],
        "WWW-Authenticate, Mcp-Session-Id, DPoP-Nonce"
    );
    let req = Request::get("/mcp")
        .header("origin", "https://inspector.example")
        .header("authorization", format!("Bearer {}", token(&claims())))
        .body(Body::empty())
        .unwrap();
    let r = send(&app(guard()), req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers["access-control-expose-headers"],
        "WWW-Authenticate, Mcp-Session-Id, DPoP-Nonce"
    );
}

#[derive(Debug)]
struct Down;

#[async_trait]
impl KeySource for Down {
    async fn keys(&self) -> Result<Arc<KeySet>, KeySourceError> {
        Err(KeySourceError::new("down"))
    }
    async fn refresh(
        &self,
        _: RefreshReason<'_>,
        _: &Arc<KeySet>,
    ) -> Result<Option<Arc<KeySet>>, KeySourceError> {
        Err(KeySourceError::new("down"))
    }
}

#[tokio::test]
async fn keys_never_obtained_gives_503_with_retry_after() {
    let g = GuardLayer::builder(RESOURCE)
        .add_issuer(Issuer::new(ISSUER).key_source(Down))
        .build()
        .unwrap();
    let r = send(&app(g), request("/mcp", Some(&token(&claims())))).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers["retry-after"], "10");
    assert!(r.headers.get("www-authenticate").is_none());
    assert_eq!(r.json()["error"], "temporarily_unavailable");
    // A token from an untrusted issuer is still a 401, before any key I/O.
    let t = token(&claims_with(json!({"iss": "https://evil.example.com"})));
    let g = GuardLayer::builder(RESOURCE)
        .add_issuer(Issuer::new(ISSUER).key_source(Down))
        .build()
        .unwrap();
    assert_eq!(
        send(&app(g), request("/mcp", Some(&t))).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn error_kinds_map_to_statuses() {
    assert_eq!(
        AuthErrorKind::MissingToken.status(),
        StatusCode::UNAUTHORIZED
    );
}
