//! The operations port: probes, and `/revoke` only with the operator's
//! secret and a JSON body.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use mcp_guard_proxy::config::Secret;
use mcp_guard_proxy::{app, config, ops};
use mcp_resource_guard::testing::TestIssuer;
use tower::ServiceExt;

use crate::common::{POLICY, call_body, env, write_policy};

const RESOURCE: &str = "http://127.0.0.1:3000/mcp";
const SECRET: &str = "operator-secret-0123456789";

struct Setup {
    dev: TestIssuer,
    app: app::App,
    draining: Arc<AtomicBool>,
}

async fn setup() -> Setup {
    let dev = TestIssuer::start().await.unwrap();
    let policy = write_policy(POLICY);
    let c = config::parse(
        "(test)",
        "",
        &env(&[
            ("MCP_UPSTREAM", "http://127.0.0.1:9/mcp"),
            ("MCP_ISSUER", dev.issuer()),
            ("MCP_RESOURCE", RESOURCE),
            ("MCP_POLICY", &policy),
        ]),
    )
    .unwrap();
    let app = app::build(&c).await.unwrap();
    for g in &app.guards {
        g.warm_up().await.unwrap();
    }
    Setup {
        dev,
        app,
        draining: Arc::new(AtomicBool::new(false)),
    }
}

impl Setup {
    fn router(&self, secret: Option<&str>) -> axum::Router {
        ops::router(ops::Ops {
            guards: self.app.guards.clone().into(),
            metrics: None,
            revoke_token: secret.map(|s| Arc::new(Secret(s.to_owned()))),
            draining: self.draining.clone(),
        })
    }

    /// The status of a stateless call with `token` through the proxy (the
    /// upstream is down: 502 means the guard let it through).
    async fn call(&self, token: &str) -> StatusCode {
        let req = Request::post("/mcp")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "whoami")
            .body(Body::from(call_body(0)))
            .unwrap();
        self.app.front.clone().oneshot(req).await.unwrap().status()
    }
}

async fn send(router: &axum::Router, req: Request<Body>) -> (StatusCode, String) {
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn revoke(auth: Option<&str>, content_type: &str, body: &str) -> Request<Body> {
    let mut b = Request::post("/revoke").header("content-type", content_type);
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

#[tokio::test]
async fn revoke_needs_the_operators_secret_and_a_json_body() {
    let s = setup().await;
    let token = s.dev.token("alice", RESOURCE, "todo:read");
    let body = format!(r#"{{"token": "{token}"}}"#);
    // Revocation off: 403, whatever is sent.
    let off = s.router(None);
    let (status, _) = send(
        &off,
        revoke(Some(&format!("Bearer {SECRET}")), "application/json", &body),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let on = s.router(Some(SECRET));
    // Without the secret, with another one, with it as Basic: 401.
    for auth in [
        None,
        Some("Bearer operator-secret-0123456780"),
        Some("Bearer operator-secret"),
        Some(&*format!("Basic {SECRET}")),
    ] {
        let (status, text) = send(&on, revoke(auth, "application/json", &body)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert!(text.contains("Bearer"), "{text}");
    }
    let auth = format!("Bearer {SECRET}");
    // A cross-site form: 415.
    let (status, _) = send(
        &on,
        revoke(
            Some(&auth),
            "application/x-www-form-urlencoded",
            &format!("token={token}"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Naming nothing, or an unknown key: 400 / 422.
    let (status, _) = send(&on, revoke(Some(&auth), "application/json", "{}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = send(
        &on,
        revoke(
            Some(&auth),
            "application/json",
            r#"{"token": "x", "all": true}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Still valid: the refusals revoked nothing.
    assert_eq!(s.call(&token).await, StatusCode::BAD_GATEWAY);
    let (status, _) = send(&on, revoke(Some(&auth), "application/json", &body)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(s.call(&token).await, StatusCode::UNAUTHORIZED);
    // By subject.
    let other = s.dev.token("bob", RESOURCE, "todo:read");
    assert_eq!(s.call(&other).await, StatusCode::BAD_GATEWAY);
    let by_sub = format!(r#"{{"issuer": "{}", "sub": "bob"}}"#, s.dev.issuer());
    let (status, _) = send(&on, revoke(Some(&auth), "application/json", &by_sub)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(s.call(&other).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn probes_say_live_ready_and_not_ready_while_draining() {
    let s = setup().await;
    let r = s.router(None);
    let get = |p: &str| Request::get(p).body(Body::empty()).unwrap();
    assert_eq!(send(&r, get("/live")).await.0, StatusCode::OK);
    let (status, body) = send(&r, get("/ready")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(RESOURCE), "{body}");
    s.draining.store(true, Ordering::Relaxed);
    let (status, body) = send(&r, get("/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("\"draining\":true"), "{body}");
    // Metrics off (no recorder): 404.
    assert_eq!(send(&r, get("/metrics")).await.0, StatusCode::NOT_FOUND);
}
