//! The `testing::TestIssuer`: discovery, token endpoint, flaws, rotation.

use crate::common::*;
use http::StatusCode;
use mcp_resource_guard::testing::{Flaw, TestIssuer};
use mcp_resource_guard::{Algorithm, GuardLayer, Issuer};
use serde_json::Value;

async fn issuer() -> TestIssuer {
    TestIssuer::builder()
        .add_client("agent", "s3cret", ["todo:read", "todo:write"])
        .start()
        .await
        .unwrap()
}

fn guard_for(issuer: &TestIssuer) -> GuardLayer {
    GuardLayer::builder(RESOURCE)
        .add_issuer(Issuer::new(issuer.issuer()))
        .scopes_supported(["todo:read", "todo:write"])
        .build()
        .unwrap()
}

async fn token_request(
    issuer: &TestIssuer,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(issuer.token_endpoint())
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let res = req.body(body).send().await.unwrap();
    let status = res.status().as_u16();
    (
        status,
        serde_json::from_str(&res.text().await.unwrap()).unwrap(),
    )
}

#[tokio::test]
async fn client_credentials_with_resource_gives_a_token_the_guard_accepts() {
    let i = issuer().await;
    let app = app(guard_for(&i));
    let (status, body) = token_request(
        &i,
        Some(("agent", "s3cret")),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "todo:read"),
            ("resource", RESOURCE),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "todo:read");
    let r = send(
        &app,
        request("/mcp", Some(body["access_token"].as_str().unwrap())),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["sub"], "agent");
    assert_eq!(r.json()["scopes"], serde_json::json!(["todo:read"]));
    // client_secret_post works too; no scope means every allowed scope.
    let (status, body) = token_request(
        &i,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "agent"),
            ("client_secret", "s3cret"),
            ("resource", RESOURCE),
        ],
    )
    .await;
    assert_eq!(
        (status, body["scope"].as_str()),
        (200, Some("todo:read todo:write"))
    );
}

#[tokio::test]
async fn the_token_endpoint_refuses_what_it_should() {
    let i = issuer().await;
    let ok = [("grant_type", "client_credentials"), ("resource", RESOURCE)];
    assert_eq!(
        token_request(&i, Some(("agent", "wrong")), &ok).await.1["error"],
        "invalid_client"
    );
    assert_eq!(
        token_request(&i, Some(("nobody", "s3cret")), &ok).await.0,
        401
    );
    let (status, body) = token_request(
        &i,
        Some(("agent", "s3cret")),
        &[
            ("grant_type", "client_credentials"),
            ("resource", RESOURCE),
            ("scope", "todo:delete"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let (status, body) = token_request(
        &i,
        Some(("agent", "s3cret")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target"))
    );
    let (status, body) = token_request(
        &i,
        Some(("agent", "s3cret")),
        &[("grant_type", "password"), ("resource", RESOURCE)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}

#[tokio::test]
async fn flawed_tokens_are_rejected_exactly() {
    let i = issuer().await;
    let app = app(guard_for(&i));
    let good = i.token("alice", RESOURCE, "todo:read");
    assert_eq!(
        send(&app, request("/mcp", Some(&good))).await.status,
        StatusCode::OK
    );
    for (flaw, description) in [
        (Flaw::Expired, EXPIRED),
        (Flaw::WrongAudience, WRONG_AUD),
        (Flaw::WrongIssuer, UNTRUSTED),
        (Flaw::UnknownKid, UNKNOWN_KEY),
    ] {
        let t = i.mint_flawed("alice", RESOURCE, "todo:read", flaw);
        assert_invalid(&send(&app, request("/mcp", Some(&t))).await, description);
    }
    // No kid: the published keys are tried and the right one verifies it.
    let t = i.mint_flawed("alice", RESOURCE, "todo:read", Flaw::NoKid);
    assert_eq!(
        send(&app, request("/mcp", Some(&t))).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn rotation_is_followed_by_the_guard() {
    let i = issuer().await;
    // No refetch cooldown, so that two rotations in a row are both seen.
    let keys = mcp_resource_guard::jwks::RemoteJwks::discover(i.issuer())
        .refetch_cooldown(std::time::Duration::ZERO)
        .build()
        .unwrap();
    let app = app(GuardLayer::builder(RESOURCE)
        .add_issuer(Issuer::new(i.issuer()).key_source(keys))
        .scopes_supported(["todo:read", "todo:write"])
        .build()
        .unwrap());
    let old = i.token("alice", RESOURCE, "todo:read");
    assert_eq!(
        send(&app, request("/mcp", Some(&old))).await.status,
        StatusCode::OK
    );
    for alg in [Algorithm::RS256, Algorithm::EdDSA] {
        i.rotate(alg).unwrap();
        let new = i.token("alice", RESOURCE, "todo:read");
        assert_eq!(
            send(&app, request("/mcp", Some(&new))).await.status,
            StatusCode::OK,
            "{alg}"
        );
    }
    assert_eq!(i.jwks()["keys"].as_array().unwrap().len(), 5);
    i.rotate_without_overlap(Algorithm::ES256).unwrap();
    assert_eq!(i.jwks()["keys"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn rs256_es256_and_eddsa_keys_are_published_and_usable() {
    let i = issuer().await;
    let app = app(guard_for(&i));
    assert_eq!(i.jwks()["keys"].as_array().unwrap().len(), 3);
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let claims = serde_json::json!({"sub": "alice", "aud": RESOURCE, "scope": "todo:read"});
        let t = i.mint_with(alg, &claims).unwrap();
        let r = send(&app, request("/mcp", Some(&t))).await;
        assert_eq!(r.status, StatusCode::OK, "{alg}");
    }
    assert!(
        i.mint_with(Algorithm::PS512, &serde_json::json!({}))
            .is_none()
    );
}
