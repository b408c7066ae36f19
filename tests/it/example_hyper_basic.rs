//! `examples/hyper_basic.rs`: the guard and `RequireScopeLayer` around a
//! plain hyper 1 service (no axum), in process and over TCP.

#[allow(dead_code)]
#[path = "../../examples/hyper_basic.rs"]
mod example;

use http::{Request, StatusCode};
use http_body_util::BodyExt;
use mcp_resource_guard::testing::TestKey;
use serde_json::json;
use tower::ServiceExt;

const RESOURCE: &str = "http://127.0.0.1:3001";

fn token(key: &TestKey, issuer: &str, sub: &str, scope: &str) -> String {
    let now = crate::common::now();
    key.sign(&json!({
        "iss": issuer, "sub": sub, "aud": RESOURCE, "scope": scope, "iat": now, "exp": now + 600,
    }))
}

async fn call(
    svc: &(
         impl tower::Service<
        Request<String>,
        Response = http::Response<example::Body>,
        Error = std::convert::Infallible,
    > + Clone
     ),
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, http::HeaderMap, String) {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let res = svc
        .clone()
        .oneshot(b.body(String::new()).unwrap())
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn the_guard_and_a_scope_layer_around_a_plain_service() {
    let (guard, key, issuer) = example::dev_guard(RESOURCE).unwrap();
    let svc = example::service::<String>(guard).unwrap();
    let rw = token(&key, &issuer, "alice", "todo:read todo:write");
    let ro = token(&key, &issuer, "bob", "todo:read");
    let (s, h, _) = call(&svc, "GET", "/me", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        h["www-authenticate"],
        "Bearer resource_metadata=\"http://127.0.0.1:3001/.well-known/oauth-protected-resource\", scope=\"todo:read todo:write\""
    );
    let (s, _, body) = call(&svc, "GET", "/me", Some(&rw)).await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "hello alice\n"));
    let (s, _, _) = call(&svc, "POST", "/todos", Some(&rw)).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, h, _) = call(&svc, "POST", "/todos", Some(&ro)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        h["www-authenticate"],
        "Bearer error=\"insufficient_scope\", error_description=\"The access token lacks a scope this request needs\", resource_metadata=\"http://127.0.0.1:3001/.well-known/oauth-protected-resource\", scope=\"todo:write\""
    );
    let (s, _, body) = call(&svc, "GET", "/.well-known/oauth-protected-resource", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["resource"],
        RESOURCE
    );
}

#[tokio::test]
async fn served_by_hyper_over_tcp() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (guard, key, issuer) = example::dev_guard(RESOURCE).unwrap();
    tokio::spawn(example::serve(listener, guard));
    let rw = token(&key, &issuer, "alice", "todo:read todo:write");
    let client = reqwest::Client::new();
    let res = client
        .get(format!("http://{addr}/me"))
        .bearer_auth(&rw)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), "hello alice\n");
    let res = client
        .get(format!("http://{addr}/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}
