//! The `axum_basic` example's behaviours, in-process and over a real socket.

#[allow(dead_code)]
#[path = "../../examples/axum_basic.rs"]
pub(crate) mod example;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

const RESOURCE: &str = "http://127.0.0.1:3000";

async fn send(
    app: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
) -> (StatusCode, String, String) {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let res = app
        .clone()
        .oneshot(b.body(Body::from("milk")).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let www = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (status, www, body)
}

#[tokio::test]
async fn routes_behave_as_documented() {
    let dev = example::Dev::new(RESOURCE).unwrap();
    let app = example::app(dev.guard.clone());
    let rw = dev.token(RESOURCE, "alice", "todo:read todo:write");
    let ro = dev.token(RESOURCE, "bob", "todo:read");

    assert_eq!(send(&app, "GET", "/public", None).await.0, StatusCode::OK);

    let (status, www, _) = send(&app, "GET", "/me", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        www,
        "Bearer resource_metadata=\"http://127.0.0.1:3000/.well-known/oauth-protected-resource\", scope=\"todo:read todo:write\""
    );

    let (status, _, body) = send(&app, "GET", "/me", Some(&ro)).await;
    assert_eq!(status, StatusCode::OK);
    let me: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(me["sub"], "bob");
    assert_eq!(me["client_id"], "dev-client");

    let (status, www, _) = send(&app, "POST", "/todos", Some(&ro)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        www,
        "Bearer error=\"insufficient_scope\", error_description=\"The access token lacks a scope this request needs\", resource_metadata=\"http://127.0.0.1:3000/.well-known/oauth-protected-resource\", scope=\"todo:write\""
    );

    let (status, _, body) = send(&app, "POST", "/todos", Some(&rw)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["by"], "alice");

    let (status, _, body) = send(&app, "GET", "/.well-known/oauth-protected-resource", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["resource"],
        RESOURCE
    );

    // route_layer keeps unknown paths a 404.
    assert_eq!(
        send(&app, "GET", "/nope", None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn over_a_real_socket() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let dev = example::Dev::new(&base).unwrap();
    let token = dev.token(&base, "alice", "todo:write");
    tokio::spawn(axum::serve(listener, example::app(dev.guard.clone())).into_future());
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/todos"))
        .bearer_auth(&token)
        .body("milk")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client.post(format!("{base}/todos")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}
