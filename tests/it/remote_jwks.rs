//! The remote key source against a real HTTP server on 127.0.0.1, and the
//! guard behind a real axum server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use http::StatusCode;
use mcp_resource_guard::jwks::RemoteJwks;
use mcp_resource_guard::testing::{TestKey, jwks};
use mcp_resource_guard::{Algorithm, GuardLayer, Issuer};
use serde_json::{Value, json};

#[derive(Clone)]
struct JwksServer {
    doc: Arc<Mutex<(StatusCode, String)>>,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(doc: Value) -> (Self, String) {
        let s = JwksServer {
            doc: Arc::new(Mutex::new((StatusCode::OK, doc.to_string()))),
            hits: Arc::new(AtomicUsize::new(0)),
        };
        let app = Router::new()
            .route(
                "/jwks",
                get(|State(s): State<JwksServer>| async move {
                    s.hits.fetch_add(1, Ordering::SeqCst);
                    s.doc.lock().unwrap().clone()
                }),
            )
            .with_state(s.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (s, url)
    }

    fn set(&self, status: StatusCode, body: String) {
        *self.doc.lock().unwrap() = (status, body);
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn remote_guard(url: &str, cooldown: Duration) -> GuardLayer {
    let source = RemoteJwks::builder(url)
        .refetch_cooldown(cooldown)
        .build()
        .unwrap();
    GuardLayer::builder(RESOURCE)
        .add_issuer(Issuer::new(ISSUER).key_source(source))
        .scopes_supported(["todo:read", "todo:write"])
        .build()
        .unwrap()
}

#[tokio::test]
async fn keys_are_fetched_once_and_cached() {
    let k1 = TestKey::generate(Algorithm::RS256).unwrap();
    let (server, url) = JwksServer::start(jwks(&[&k1])).await;
    let app = app(remote_guard(&url, Duration::from_secs(60)));
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let app = app.clone();
            let t = k1.sign(&claims());
            tokio::spawn(async move { send(&app, request("/mcp", Some(&t))).await.status })
        })
        .collect();
    for h in handles {
        assert_eq!(h.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_and_unknown_kids_respect_the_cooldown() {
    let k1 = TestKey::generate(Algorithm::ES256).unwrap();
    let k2 = TestKey::generate(Algorithm::EdDSA).unwrap();
    let (server, url) = JwksServer::start(jwks(&[&k1])).await;
    let app = app(remote_guard(&url, Duration::from_secs(60)));
    assert_eq!(
        send(&app, request("/mcp", Some(&k1.sign(&claims()))))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(server.hits(), 1);
    // Rotation: the issuer now publishes k2 too; a k2 token triggers one refetch.
    server.set(StatusCode::OK, jwks(&[&k1, &k2]).to_string());
    assert_eq!(
        send(&app, request("/mcp", Some(&k2.sign(&claims()))))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(server.hits(), 2);
    // Random kids within the cooldown cause no further fetch.
    for i in 0..50 {
        let stranger = TestKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid(format!("random-{i}"));
        assert_invalid(
            &send(&app, request("/mcp", Some(&stranger.sign(&claims())))).await,
            UNKNOWN_KEY,
        );
    }
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn unknown_kid_refetch_waits_for_the_token_claims_to_pass() {
    let k1 = TestKey::generate(Algorithm::ES256).unwrap();
    let (server, url) = JwksServer::start(jwks(&[&k1])).await;
    let app = app(remote_guard(&url, Duration::ZERO));
    assert_eq!(
        send(&app, request("/mcp", Some(&k1.sign(&claims()))))
            .await
            .status,
        StatusCode::OK
    );
    let stranger = TestKey::generate(Algorithm::ES256).unwrap();
    for (change, description) in [
        (json!({"iss": "https://evil.example.com"}), UNTRUSTED),
        (json!({"aud": "https://other.example.com"}), WRONG_AUD),
        (json!({"exp": now() - 3600}), EXPIRED),
    ] {
        let r = send(
            &app,
            request("/mcp", Some(&stranger.sign(&claims_with(change)))),
        )
        .await;
        assert_invalid(&r, description);
    }
    assert_eq!(
        server.hits(),
        1,
        "no refetch for tokens that fail their claims"
    );
}

#[tokio::test]
async fn an_unreachable_or_broken_jwks_gives_503_not_401() {
    let k1 = TestKey::generate(Algorithm::ES256).unwrap();
    let (server, url) = JwksServer::start(jwks(&[&k1])).await;
    for (status, body) in [
        (StatusCode::INTERNAL_SERVER_ERROR, "oops".to_owned()),
        (StatusCode::OK, "not json".to_owned()),
        (StatusCode::OK, r#"{"keys":[]}"#.to_owned()),
        (
            StatusCode::OK,
            format!(r#"{{"keys":[],"pad":"{}"}}"#, "x".repeat(2 * 1024 * 1024)),
        ),
    ] {
        server.set(status, body);
        let app = app(remote_guard(&url, Duration::ZERO));
        let r = send(&app, request("/mcp", Some(&k1.sign(&claims())))).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers["retry-after"], "10");
    }
    // Nothing listening at all.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/jwks", l.local_addr().unwrap())
    };
    let r = send(
        &app(remote_guard(&dead, Duration::ZERO)),
        request("/mcp", Some(&k1.sign(&claims()))),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_real_server_end_to_end() {
    let k1 = TestKey::generate(Algorithm::PS256).unwrap();
    let (_server, url) = JwksServer::start(jwks(&[&k1])).await;
    let app = Router::new()
        .route("/mcp", post(identity))
        .layer(remote_guard(&url, Duration::from_secs(10)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = reqwest::Client::new();

    let r = client.post(format!("{base}/mcp")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], PLAIN_CHALLENGE);

    let r = client
        .get(format!("{base}/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(doc["resource"], RESOURCE);

    let r = client
        .post(format!("{base}/mcp"))
        .bearer_auth(k1.sign(&claims()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(body["sub"], "alice");

    // Two Authorization headers over the wire.
    let r = client
        .post(format!("{base}/mcp"))
        .header("authorization", format!("Bearer {}", k1.sign(&claims())))
        .header("authorization", "Bearer other")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}
