//! A release hello-world axum server for the load harness, with or without
//! the guard: `load_server plain|noop-layer|guard|guard-outer|guard-redis
//! ADDR` (`guard`: `Router::layer`, inside axum's routing; `noop-layer`: a
//! layer that does nothing, there; `guard-outer`: the guard wrapping the
//! whole router). It prints one
//! valid token on stdout's first line (a static in-memory key); the harness
//! sends it in every mode (like with like), so the guard serves it from its
//! verified-token cache. With `MCP_ISSUER` and `MCP_RESOURCE` it discovers
//! that issuer instead (as a deployment does) and prints `-`: the harness
//! brings tokens from that authorization server. `guard-redis` shares state through the Redis at
//! `REDIS_URL` as a replica of a fleet would (revocations rechecked every
//! second, the default). `mcp-upstream` is a fast upstream MCP endpoint
//! for `scripts/proxy_load.sh`; `mcp-server` one that also answers
//! `initialize`, notifications and `tools/list` (an aggregating proxy such
//! as mcp-proxy talks to its backends), for `scripts/proxy_compare.sh`.

use axum::Router;
use axum::routing::get;
use mcp_resource_guard::jwks::StaticJwks;
use mcp_resource_guard::store::{RedisStore, SharedStore};
use mcp_resource_guard::testing::{TestKey, jwks};
use mcp_resource_guard::{Algorithm, GuardLayer, Issuer};
use serde_json::json;

#[tokio::main(worker_threads = 1)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "plain".into());
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8081".into());
    if mode == "mcp-upstream" {
        // A fast upstream MCP endpoint for the proxy load run: every POST
        // gets the same tools/call result.
        let app = Router::new().route(
            "/mcp",
            axum::routing::post(|| async {
                (
                    [("content-type", "application/json")],
                    r#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"{}"}]}}"#,
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
        println!("-");
        axum::serve(listener, app).await.unwrap();
        return;
    }
    if mode == "mcp-server" {
        let app = Router::new().route("/mcp", axum::routing::post(mcp_server));
        let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
        println!("-");
        axum::serve(listener, app).await.unwrap();
        return;
    }
    let app = Router::new().route("/mcp", get(|| async { "hello" }));
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    let mut builder = match std::env::var("MCP_ISSUER") {
        // An issuer discovered from a real authorization server (RFC 8414
        // metadata, then its `jwks_uri`); the harness brings the tokens.
        Ok(issuer) => {
            let resource = std::env::var("MCP_RESOURCE").expect("MCP_RESOURCE with MCP_ISSUER");
            println!("-");
            GuardLayer::builder(resource).add_issuer(Issuer::new(issuer))
        }
        Err(_) => {
            let key = TestKey::generate(Algorithm::RS256).unwrap();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let token = key.sign(&json!({
                "iss": "https://as.example.com", "sub": "load", "client_id": "load",
                "aud": "https://mcp.example.com/mcp", "exp": now + 3600, "iat": now,
                "scope": "todo:read",
            }));
            println!("{token}");
            GuardLayer::builder("https://mcp.example.com/mcp").add_issuer(
                Issuer::new("https://as.example.com")
                    .key_source(StaticJwks::from_json(jwks(&[&key]).to_string()).unwrap()),
            )
        }
    }
    .required_scopes(["todo:read"]);
    if mode == "guard-redis" {
        let url = std::env::var("REDIS_URL").expect("REDIS_URL for guard-redis");
        let store = RedisStore::connect(url).await.unwrap();
        builder = builder.shared_store(SharedStore::new(store));
    }
    let app = match mode.as_str() {
        // The guard around the whole router (a tower layer outside axum's
        // routing) rather than `Router::layer` (inside it, per route).
        "guard-outer" => {
            let svc = tower::Layer::layer(&builder.build().unwrap(), app);
            let make = axum::ServiceExt::<axum::extract::Request>::into_make_service(svc);
            axum::serve(listener, make).await.unwrap();
            return;
        }
        "guard" | "guard-redis" => app.layer(builder.build().unwrap()),
        // Any layer given to `Router::layer` (here one that does nothing):
        // what axum's per-route layering costs by itself.
        "noop-layer" => app.layer(tower::layer::util::Identity::new()),
        _ => app,
    };
    axum::serve(listener, app).await.unwrap();
}

/// A minimal stateless MCP server: `initialize`, notifications (202),
/// `tools/list` (one tool, `whoami`), and every other request answered
/// with the `tools/call` result, echoing the request's `id`.
async fn mcp_server(body: axum::body::Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    #[derive(serde::Deserialize)]
    struct Msg<'a> {
        #[serde(borrow)]
        id: Option<&'a serde_json::value::RawValue>,
        method: Option<&'a str>,
        #[serde(borrow)]
        params: Option<&'a serde_json::value::RawValue>,
    }
    let Ok(m) = serde_json::from_slice::<Msg>(&body) else {
        return (axum::http::StatusCode::BAD_REQUEST, "not JSON-RPC").into_response();
    };
    let id = m.id.map_or("null", |i| i.get());
    let result = match m.method.unwrap_or("") {
        "initialize" => {
            let version = m
                .params
                .and_then(|p| serde_json::from_str::<serde_json::Value>(p.get()).ok())
                .and_then(|p| p["protocolVersion"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "2025-11-25".to_owned());
            format!(
                r#"{{"protocolVersion":"{version}","capabilities":{{"tools":{{}}}},"serverInfo":{{"name":"bench","version":"1"}}}}"#
            )
        }
        "tools/list" => {
            r#"{"tools":[{"name":"whoami","inputSchema":{"type":"object"}}]}"#.to_owned()
        }
        m if m.starts_with("notifications/") => {
            return axum::http::StatusCode::ACCEPTED.into_response();
        }
        _ => r#"{"content":[{"type":"text","text":"{}"}]}"#.to_owned(),
    };
    (
        [("content-type", "application/json")],
        format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#),
    )
        .into_response()
}
