//! The configuration's guard sections reach the guard: `[dpop]` and
//! `[cors]` change what the proxy answers.

use axum::body::Body;
use http::{Request, StatusCode};
use mcp_guard_proxy::{app, config};
use mcp_resource_guard::testing::TestIssuer;
use tower::ServiceExt;

use crate::common::{POLICY, call_body, env, write_policy};

const RESOURCE: &str = "http://127.0.0.1:3000/mcp";

async fn front(dev: &TestIssuer, sections: &str) -> mcp_guard_proxy::front::Front {
    let text = format!(
        "issuers = [\"{}\"]\n[[routes]]\nresource = \"{RESOURCE}\"\nupstream = \"http://127.0.0.1:9/mcp\"\npolicy_file = \"{}\"\n{sections}",
        dev.issuer(),
        write_policy(POLICY)
    );
    let c = config::parse("proxy.toml", &text, &env(&[])).unwrap();
    app::build(&c).await.unwrap().front
}

fn call(token: &str, origin: Option<&str>) -> Request<Body> {
    let mut b = Request::post("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "whoami");
    if let Some(o) = origin {
        b = b.header("origin", o);
    }
    b.body(Body::from(call_body(0))).unwrap()
}

#[tokio::test]
async fn dpop_required_refuses_a_bearer_token_with_a_dpop_challenge() {
    let dev = TestIssuer::start().await.unwrap();
    let token = dev.token("alice", RESOURCE, "todo:read");
    // Without [dpop]: the Bearer token passes (502: the upstream is down).
    let plain = front(&dev, "").await;
    assert_eq!(
        plain.oneshot(call(&token, None)).await.unwrap().status(),
        StatusCode::BAD_GATEWAY
    );
    let strict = front(&dev, "[dpop]\nmode = \"required\"\n").await;
    let res = strict.oneshot(call(&token, None)).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("DPoP "), "{challenge}");
}

#[tokio::test]
async fn cors_origins_are_the_only_ones_a_browser_may_read_from() {
    let dev = TestIssuer::start().await.unwrap();
    let token = dev.token("alice", RESOURCE, "todo:read");
    let f = front(&dev, "[cors]\norigins = [\"https://app.example.com\"]\n").await;
    let res = f
        .clone()
        .oneshot(call(&token, Some("https://app.example.com")))
        .await
        .unwrap();
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let res = f
        .oneshot(call(&token, Some("https://evil.example.com")))
        .await
        .unwrap();
    assert!(
        res.headers()
            .get("access-control-allow-origin")
            .is_none_or(|v| v != "https://evil.example.com"),
        "{:?}",
        res.headers()
    );
}
