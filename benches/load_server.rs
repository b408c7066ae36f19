//! A release hello-world axum server for the load harness, with or without
//! the guard: `load_server plain|guard ADDR`. In `guard` mode it prints one
//! valid token on stdout's first line (a static in-memory key; every request
//! carries that token, so the guard serves it from its verified-token cache).

use axum::Router;
use axum::routing::get;
use mcp_resource_guard::jwks::StaticJwks;
use mcp_resource_guard::testing::{TestKey, jwks};
use mcp_resource_guard::{Algorithm, GuardLayer, Issuer};
use serde_json::json;

#[tokio::main(worker_threads = 1)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "plain".into());
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8081".into());
    let app = Router::new().route("/mcp", get(|| async { "hello" }));
    let app = if mode == "guard" {
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
        let guard = GuardLayer::builder("https://mcp.example.com/mcp")
            .add_issuer(
                Issuer::new("https://as.example.com")
                    .key_source(StaticJwks::from_json(jwks(&[&key]).to_string()).unwrap()),
            )
            .required_scopes(["todo:read"])
            .build()
            .unwrap();
        app.layer(guard)
    } else {
        println!("-");
        app
    };
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    axum::serve(listener, app).await.unwrap();
}
