//! A fleet: three `todo_server` replicas (the example binary) sharing one
//! real `redis-server` (`MCP_REDIS_URL`), behind one canonical URL as a
//! load balancer would put them; this driver spreads requests round-robin.
//! DPoP replay across replicas, revocation through one replica's
//! operations port, session owners across replicas, and the metrics names
//! scraped from the operations port.

use std::time::{Duration, Instant};

use http::StatusCode;
use mcp_resource_guard::Algorithm;
use mcp_resource_guard::testing::{TestIssuer, TestKey};
use serde_json::{Value, json};

use crate::free_port;
use crate::redis_server::RedisServer;
use crate::spawn_example;

struct Replica {
    _child: tokio::process::Child,
    /// Its own MCP URL (the driver's "load balancer" picks one).
    url: String,
    ops: String,
}

/// The operator's secret for `/revoke` on replicas 0 and 1 (replica 2 has
/// none: revocation is off there).
const REVOKE_TOKEN: &str = "fleet-operator-secret-1";

async fn fleet(issuer: &str, redis: &RedisServer, canonical: &str) -> Vec<Replica> {
    let mut out = Vec::new();
    for i in 0..3 {
        let ops = format!("127.0.0.1:{}", free_port());
        let redis_url = redis.url();
        let mut env = vec![
            ("MCP_RESOURCE", canonical),
            ("MCP_REDIS_URL", &redis_url),
            ("MCP_REDIS_PREFIX", "fleet-test"),
            ("MCP_REVOCATION_RECHECK_MS", "500"),
            ("MCP_DPOP", "allowed"),
            ("MCP_METRICS_BIND", &ops),
        ];
        if i < 2 {
            env.push(("MCP_REVOKE_TOKEN", REVOKE_TOKEN));
        }
        let (child, url, _logs) = spawn_example(issuer, &env).await;
        out.push(Replica {
            _child: child,
            url,
            ops: format!("http://{ops}"),
        });
    }
    out
}

fn whoami_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "whoami", "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}})
}

/// A stateless `whoami` with `Authorization: <authorization>` (and a DPoP
/// proof).
async fn whoami(url: &str, authorization: &str, proof: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("authorization", authorization)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "whoami")
        .json(&whoami_body());
    if let Some(p) = proof {
        req = req.header("dpop", p);
    }
    req.send().await.unwrap()
}

fn dpop_challenge(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("DPoP "))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_sharing_redis_refuse_replays_honour_revocations_and_export_metrics() {
    let redis = RedisServer::start();
    let dev = TestIssuer::start().await.unwrap();
    let canonical = format!("http://127.0.0.1:{}/mcp", free_port());
    let replicas = fleet(dev.issuer(), &redis, &canonical).await;

    // Round-robin: every replica serves the same token.
    let token = dev.token("alice", &canonical, "todo:read");
    for round in 0..2 {
        for r in &replicas {
            let res = whoami(&r.url, &format!("Bearer {token}"), None).await;
            assert_eq!(res.status(), StatusCode::OK, "round {round} at {}", r.url);
        }
    }

    // DPoP: a proof used at replica 0 is a replay at replicas 1 and 2.
    let key = TestKey::generate(Algorithm::ES256).unwrap();
    let bound = dev.dpop_token("alice", &canonical, "todo:read", &key);
    let proof = key.dpop_proof("POST", &canonical, &bound);
    let auth = format!("DPoP {bound}");
    let first = whoami(&replicas[0].url, &auth, Some(&proof)).await;
    assert_eq!(first.status(), StatusCode::OK);
    for r in &replicas[1..] {
        let res = whoami(&r.url, &auth, Some(&proof)).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "at {}", r.url);
        let c = dpop_challenge(&res);
        assert!(c.starts_with("DPoP error=\"invalid_dpop_proof\""), "{c}");
    }
    // A fresh proof is fine anywhere.
    let fresh = key.dpop_proof("POST", &canonical, &bound);
    assert_eq!(
        whoami(&replicas[2].url, &auth, Some(&fresh)).await.status(),
        StatusCode::OK
    );

    // Revoked through replica 0's operations port: every replica refuses
    // it within the recheck interval (500 ms here).
    let http = reqwest::Client::new();
    // Revocation needs the operator's secret and a JSON body: a form (what
    // a cross-site page can send) or a missing or wrong secret is refused.
    let revoke = |ops: &str| http.post(format!("{ops}/revoke"));
    for (req, status) in [
        (
            revoke(&replicas[0].ops).form(&[("token", token.as_str())]),
            StatusCode::UNAUTHORIZED,
        ),
        (
            revoke(&replicas[0].ops)
                .bearer_auth(REVOKE_TOKEN)
                .form(&[("token", token.as_str())]),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            revoke(&replicas[0].ops)
                .bearer_auth("not-the-operators-secret")
                .json(&json!({"token": token})),
            StatusCode::UNAUTHORIZED,
        ),
        (
            revoke(&replicas[0].ops)
                .bearer_auth(REVOKE_TOKEN)
                .json(&json!({"token": token, "extra": 1})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        assert_eq!(req.send().await.unwrap().status(), status);
    }
    assert_eq!(
        whoami(&replicas[0].url, &format!("Bearer {token}"), None)
            .await
            .status(),
        StatusCode::OK,
        "not revoked by a refused request"
    );
    let res = revoke(&replicas[0].ops)
        .bearer_auth(REVOKE_TOKEN)
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let revoked_at = Instant::now();
    let mut refused = [false; 3];
    while !refused.iter().all(|r| *r) {
        assert!(
            revoked_at.elapsed() < Duration::from_secs(3),
            "not refused everywhere within 3 s: {refused:?}"
        );
        for (i, r) in replicas.iter().enumerate() {
            let res = whoami(&r.url, &format!("Bearer {token}"), None).await;
            match res.status() {
                StatusCode::OK => assert!(!refused[i], "replica {i} accepted it again"),
                StatusCode::UNAUTHORIZED => {
                    let www = res.headers()["www-authenticate"]
                        .to_str()
                        .unwrap()
                        .to_owned();
                    assert!(
                        www.contains("error_description=\"The access token has been revoked\""),
                        "{www}"
                    );
                    refused[i] = true;
                }
                s => panic!("replica {i}: {s}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // By subject, through another replica's port.
    let carol = dev.token("carol", &canonical, "todo:read");
    assert_eq!(
        whoami(&replicas[1].url, &format!("Bearer {carol}"), None)
            .await
            .status(),
        StatusCode::OK
    );
    let res = revoke(&replicas[2].ops)
        .bearer_auth(REVOKE_TOKEN)
        .json(&json!({"issuer": dev.issuer(), "sub": "carol"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "revocation is off there"
    );
    let res = revoke(&replicas[1].ops)
        .bearer_auth(REVOKE_TOKEN)
        .json(&json!({"issuer": dev.issuer(), "sub": "carol"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for r in &replicas {
        let res = whoami(&r.url, &format!("Bearer {carol}"), None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "at {}", r.url);
    }
    let res = revoke(&replicas[1].ops)
        .bearer_auth(REVOKE_TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // Sessions (2025-11-25): a session issued through replica 0 belongs to
    // alice on every replica.
    let alice = dev.token("alice", &canonical, "todo:read");
    let mallory = dev.token("mallory", &canonical, "todo:read");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "fleet-test", "version": "1"}}});
    let res = http
        .post(&replicas[0].url)
        .bearer_auth(&alice)
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let session = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let res = http
        .post(&replicas[1].url)
        .bearer_auth(&mallory)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&list)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"jsonrpc": "2.0", "id": 2, "error": {"code": -31403, "message": "This MCP session belongs to another principal"}})
    );

    // Probes and metrics on the operations port.
    let ready = http
        .get(format!("{}/ready", replicas[0].ops))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(ready.json::<Value>().await.unwrap()["ready"], true);
    let live = http
        .get(format!("{}/live", replicas[0].ops))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    let scrape = |i: usize| {
        let http = http.clone();
        let url = format!("{}/metrics", replicas[i].ops);
        async move {
            let res = http.get(url).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            assert!(
                res.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/plain")
            );
            res.text().await.unwrap()
        }
    };
    // Three quick calls with a fresh token: cached verifications last
    // until the next whole second past the recheck interval, so at most one
    // second boundary falls between them and at least one is a cache hit.
    let zed = dev.token("zed", &canonical, "todo:read");
    for _ in 0..3 {
        let res = whoami(&replicas[0].url, &format!("Bearer {zed}"), None).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let m0 = scrape(0).await;
    for name in [
        "mcp_resource_guard_decisions_total{layer=\"guard\",outcome=\"allow\",reason=\"verified\"}",
        "mcp_resource_guard_decisions_total{layer=\"mcp\",outcome=\"allow\"",
        "mcp_resource_guard_token_cache_hits_total",
        "mcp_resource_guard_token_cache_misses_total",
        "mcp_resource_guard_token_cache_entries",
        "mcp_resource_guard_key_fetches_total{source=",
        "mcp_resource_guard_key_health{issuer=",
        "mcp_resource_guard_key_age_seconds{issuer=",
    ] {
        assert!(m0.contains(name), "{name} missing from:\n{m0}");
    }
    let m1 = scrape(1).await;
    for name in [
        "mcp_resource_guard_dpop_replays_total 1",
        "mcp_resource_guard_decisions_total{layer=\"guard\",outcome=\"deny\",reason=\"revoked\"}",
        "mcp_resource_guard_decisions_total{layer=\"mcp\",outcome=\"deny\",reason=\"session_mismatch\"}",
    ] {
        assert!(m1.contains(name), "{name} missing from:\n{m1}");
    }
    // Nothing from a request in a label: no token, no subject.
    assert!(!m1.contains("alice") && !m1.contains(&token[..30]));

    // Redis goes down: a token never seen gets 503, and the store errors
    // are counted.
    let mut redis = redis;
    redis.stop();
    let new = dev.token("erin", &canonical, "todo:read");
    let res = whoami(&replicas[0].url, &format!("Bearer {new}"), None).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let m0 = scrape(0).await;
    let name = "mcp_resource_guard_store_errors_total{store=\"redis\",used_for=\"revocation\"}";
    assert!(m0.contains(name), "{name} missing from:\n{m0}");
}
