//! SPEC A1–A5: RFC 9728 metadata, served by the guard from one config value.

use crate::common::*;
use axum::Router;
use axum::body::Body;
use axum::routing::post;
use http::{Method, Request, StatusCode};
use mcp_resource_guard::{AuthMode, ConfigError, GuardLayer, Issuer, dangerous};
use serde_json::json;

fn req(method: Method, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap()
}

const DOC: &str = r#"{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://as.example.com","https://other-as.example.com"],"scopes_supported":["todo:read","todo:write"],"bearer_methods_supported":["header"]}"#;

#[tokio::test]
async fn served_on_both_well_known_urls() {
    let app = app(guard());
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let r = send(&app, req(Method::GET, path)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.headers["access-control-allow-origin"], "*");
        assert_eq!(r.body, DOC);
        assert!(r.headers.get("www-authenticate").is_none());
    }
    // Not a prefix match.
    let r = send(
        &app,
        req(Method::GET, "/.well-known/oauth-protected-resource/mcpx"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn head_options_and_other_methods() {
    let app = app(guard());
    let path = "/.well-known/oauth-protected-resource/mcp";
    let r = send(&app, req(Method::HEAD, path)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "");
    assert_eq!(r.headers["content-length"], DOC.len().to_string());
    assert_eq!(r.headers["content-type"], "application/json");

    let preflight = Request::options(path)
        .header("origin", "https://inspector.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "mcp-protocol-version")
        .body(Body::empty())
        .unwrap();
    let r = send(&app, preflight).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    assert_eq!(
        r.headers["access-control-allow-methods"],
        "GET, HEAD, OPTIONS"
    );
    assert_eq!(r.headers["access-control-allow-headers"], "*");

    for m in [Method::POST, Method::PUT, Method::DELETE] {
        let r = send(&app, req(m.clone(), path)).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{m}");
        assert_eq!(r.headers["allow"], "GET, HEAD, OPTIONS");
    }
}

#[tokio::test]
async fn optional_fields_appear_only_when_set() {
    let g = builder()
        .resource_name("Todo MCP")
        .resource_documentation("https://docs.example.com/todo")
        .resource_policy_uri("https://example.com/policy")
        .resource_tos_uri("https://example.com/tos")
        .build()
        .unwrap();
    let r = send(
        &app(g),
        req(Method::GET, "/.well-known/oauth-protected-resource"),
    )
    .await;
    assert_eq!(
        r.json(),
        json!({
            "resource": RESOURCE,
            "authorization_servers": [ISSUER, OTHER_ISSUER],
            "scopes_supported": ["todo:read", "todo:write"],
            "bearer_methods_supported": ["header"],
            "resource_name": "Todo MCP",
            "resource_documentation": "https://docs.example.com/todo",
            "resource_policy_uri": "https://example.com/policy",
            "resource_tos_uri": "https://example.com/tos",
        })
    );
    assert!(matches!(
        builder().resource_tos_uri("not a url").build(),
        Err(ConfigError::InvalidMetadataUrl { .. })
    ));
}

#[tokio::test]
async fn one_normalized_url_drives_document_routes_challenge_and_audience() {
    let k = &keys().by_alg;
    let g = GuardLayer::builder("HTTPS://MCP.Example.COM:443/v1/mcp")
        .add_issuer(Issuer::new(ISSUER).key_source(static_jwks(&k.iter().collect::<Vec<_>>())))
        .build()
        .unwrap();
    assert_eq!(g.resource().as_str(), "https://mcp.example.com/v1/mcp");
    assert_eq!(
        g.metadata_paths(),
        [
            "/.well-known/oauth-protected-resource/v1/mcp",
            "/.well-known/oauth-protected-resource"
        ]
    );
    let app = Router::new()
        .route("/v1/mcp", post(identity).get(identity))
        .layer(g);
    let r = send(
        &app,
        req(Method::GET, "/.well-known/oauth-protected-resource/v1/mcp"),
    )
    .await;
    assert_eq!(r.json()["resource"], "https://mcp.example.com/v1/mcp");
    let r = send(&app, request("/v1/mcp", None)).await;
    assert_eq!(
        r.www(),
        "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/v1/mcp\""
    );
    let ok = token(&claims_with(
        json!({"aud": "https://mcp.example.com/v1/mcp"}),
    ));
    assert_eq!(
        send(&app, request("/v1/mcp", Some(&ok))).await.status,
        StatusCode::OK
    );
    let as_typed = token(&claims_with(
        json!({"aud": "HTTPS://MCP.Example.COM:443/v1/mcp"}),
    ));
    assert_eq!(
        send(&app, request("/v1/mcp", Some(&as_typed))).await.www(),
        "Bearer error=\"invalid_token\", error_description=\"The access token was not issued for this resource\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/v1/mcp\""
    );
}

#[tokio::test]
async fn a_root_resource_has_one_metadata_path() {
    let k = &keys().by_alg;
    let g = GuardLayer::builder("https://mcp.example.com/")
        .add_issuer(Issuer::new(ISSUER).key_source(static_jwks(&[&k[0]])))
        .build()
        .unwrap();
    assert_eq!(
        g.metadata_paths(),
        ["/.well-known/oauth-protected-resource"]
    );
    assert_eq!(g.metadata().resource, "https://mcp.example.com");
    let app = Router::new().route("/", post(identity)).layer(g);
    let r = send(
        &app,
        req(Method::GET, "/.well-known/oauth-protected-resource"),
    )
    .await;
    assert_eq!(r.json()["resource"], "https://mcp.example.com");
}

#[tokio::test]
async fn the_standalone_service_serves_the_same_document() {
    let g = guard();
    let mut app = Router::new()
        .route("/mcp", post(identity))
        .route_layer(g.clone());
    for p in g.metadata_paths() {
        app = app.route_service(&p, g.metadata_service());
    }
    for p in g.metadata_paths() {
        let r = send(&app, req(Method::GET, &p)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body, DOC);
        assert_eq!(r.headers["access-control-allow-origin"], "*");
    }
    // With route_layer an unknown path stays 404.
    assert_eq!(
        send(&app, req(Method::GET, "/nope")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn preflight_is_never_gated() {
    for g in [guard(), guard().with_mode(AuthMode::Required)] {
        let preflight = Request::options("/mcp")
            .header("origin", "https://inspector.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization")
            .body(Body::empty())
            .unwrap();
        let r = send(&app(g), preflight).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert!(r.headers.get("www-authenticate").is_none());
    }
    // A plain OPTIONS (not a preflight) is gated like any request.
    let r = send(&app(guard()), req(Method::OPTIONS, "/mcp")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[test]
fn config_errors_are_clear() {
    let k = &keys().by_alg;
    let issuer = || Issuer::new(ISSUER).key_source(static_jwks(&[&k[0]]));
    let err = |b: mcp_resource_guard::GuardBuilder| b.build().unwrap_err();
    assert_eq!(
        err(GuardLayer::builder("").add_issuer(issuer())),
        ConfigError::MissingResource
    );
    for bad in [
        "mcp.example.com",
        "https://h/mcp#x",
        "http://mcp.example.com/mcp",
    ] {
        assert!(matches!(
            err(GuardLayer::builder(bad).add_issuer(issuer())),
            ConfigError::InvalidResource { .. }
        ));
    }
    assert_eq!(
        err(GuardLayer::builder(RESOURCE)),
        ConfigError::MissingIssuer
    );
    assert!(matches!(
        err(GuardLayer::builder(RESOURCE)
            .add_issuer(Issuer::new("as.example.com").key_source(static_jwks(&[&k[0]])))),
        ConfigError::InvalidIssuer { .. }
    ));
    assert!(matches!(
        err(GuardLayer::builder(RESOURCE)
            .add_issuer(issuer())
            .add_issuer(issuer())),
        ConfigError::DuplicateIssuer { .. }
    ));
    assert!(matches!(
        err(GuardLayer::builder(RESOURCE)
            .add_issuer(issuer())
            .scopes_supported(["a b"])),
        ConfigError::InvalidScope { .. }
    ));
    assert!(matches!(
        err(GuardLayer::builder(RESOURCE)
            .add_issuer(issuer())
            .required_scopes(["a\"b"])),
        ConfigError::InvalidScope { .. }
    ));
    assert!(matches!(
        err(GuardLayer::builder(RESOURCE).add_issuer(issuer().algorithms([]))),
        ConfigError::EmptyAlgorithms { .. }
    ));
    assert!(matches!(
        err(GuardLayer::builder(RESOURCE)
            .add_issuer(Issuer::new(ISSUER).jwks_uri("http://as.example.com/jwks"))),
        ConfigError::InvalidJwksUri { .. }
    ));
    let msg = err(GuardLayer::builder(RESOURCE).add_issuer(Issuer::new("http://as.example.com")))
        .to_string();
    assert!(msg.contains("https is required"), "{msg}");
    // The escape hatch is in `dangerous` and names what it gives up.
    let g = dangerous::allow_insecure_http(
        GuardLayer::builder("http://mcp.internal:8080/mcp").add_issuer(issuer()),
    )
    .build()
    .unwrap();
    assert_eq!(g.resource().as_str(), "http://mcp.internal:8080/mcp");
}
