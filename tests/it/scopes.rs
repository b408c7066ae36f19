//! RequireScope (SPEC B10), optional auth, and the axum extractors.

use crate::common::*;
use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use mcp_resource_guard::{
    AuthContext, AuthError, AuthErrorKind, AuthMode, ConfigError, GuardLayer, RequireScopeLayer,
};
use serde_json::json;
use tower::ServiceExt;

fn scoped_app(guard: GuardLayer) -> Router {
    Router::new()
        .route("/mcp", get(identity))
        .route(
            "/write",
            post(identity).route_layer(RequireScopeLayer::all(&guard, ["todo:write"]).unwrap()),
        )
        .route(
            "/both",
            post(identity).route_layer(
                RequireScopeLayer::all(&guard, ["todo:write", "todo:delete"]).unwrap(),
            ),
        )
        .route(
            "/any",
            post(identity).route_layer(
                RequireScopeLayer::any(&guard, ["todo:admin", "todo:delete"]).unwrap(),
            ),
        )
        .route(
            "/me",
            get(|ctx: AuthContext| async move { ctx.subject().unwrap_or("").to_owned() }),
        )
        .route(
            "/maybe",
            get(|ctx: Option<AuthContext>| async move {
                ctx.map_or("anonymous".to_owned(), |c| {
                    c.subject().unwrap_or("").to_owned()
                })
            }),
        )
        .layer(guard)
}

fn post_req(uri: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::post(uri);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::empty()).unwrap()
}

fn forbidden(scope: &str) -> String {
    format!(
        "Bearer error=\"insufficient_scope\", error_description=\"The access token lacks a scope this request needs\", resource_metadata=\"{METADATA_URL}\", scope=\"{scope}\""
    )
}

#[tokio::test]
async fn all_of() {
    let app = scoped_app(guard());
    let rw = token(&claims());
    assert_eq!(
        send(&app, post_req("/write", Some(&rw))).await.status,
        StatusCode::OK
    );
    let ro = token(&claims_with(json!({"scope": "todo:read"})));
    let r = send(&app, post_req("/write", Some(&ro))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.www(), forbidden("todo:write"));
    assert_eq!(
        r.json(),
        json!({"error": "insufficient_scope", "error_description": "The access token lacks a scope this request needs"})
    );
    assert_challenge_grammar(r.www());
    // Every scope of the route is named, not only the missing one.
    let r = send(&app, post_req("/both", Some(&rw))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.www(), forbidden("todo:write todo:delete"));
    let all = token(&claims_with(json!({"scope": "todo:write todo:delete"})));
    assert_eq!(
        send(&app, post_req("/both", Some(&all))).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn any_of() {
    let app = scoped_app(guard());
    let del = token(&claims_with(json!({"scope": "todo:delete"})));
    assert_eq!(
        send(&app, post_req("/any", Some(&del))).await.status,
        StatusCode::OK
    );
    let admin = token(&claims_with(json!({"scope": "todo:admin"})));
    assert_eq!(
        send(&app, post_req("/any", Some(&admin))).await.status,
        StatusCode::OK
    );
    let r = send(&app, post_req("/any", Some(&token(&claims())))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.www(), forbidden("todo:admin"));
}

#[tokio::test]
async fn step_up_scope_includes_the_scopes_every_request_needs() {
    let app = scoped_app(builder().required_scopes(["todo:read"]).build().unwrap());
    let ro = token(&claims_with(json!({"scope": "todo:read"})));
    let r = send(&app, post_req("/write", Some(&ro))).await;
    assert_eq!(r.www(), forbidden("todo:read todo:write"));
}

#[tokio::test]
async fn require_scope_without_its_guard_in_front_is_a_500_never_a_pass() {
    let guard = guard();
    // The scope layer is built from the guard, but the guard is not applied.
    let app: Router = Router::new().route(
        "/write",
        post(|| async { "x" }).route_layer(RequireScopeLayer::all(&guard, ["todo:write"]).unwrap()),
    );
    let t = token(&claims());
    for token in [None, Some(t.as_str())] {
        let res = app
            .clone()
            .oneshot(post_req("/write", token))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let error = res.extensions().get::<AuthError>().unwrap().clone();
        assert_eq!(error.kind(), AuthErrorKind::Misconfigured);
        assert!(
            error
                .detail()
                .contains("RequireScopeLayer needs its GuardLayer in front of it"),
            "{}",
            error.detail()
        );
        assert!(res.headers().get("www-authenticate").is_none());
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            json!({"error": "server_error", "error_description": "The server is misconfigured"})
        );
    }
}

#[test]
fn require_scope_config_errors_say_what_to_fix() {
    let g = guard();
    assert!(matches!(
        RequireScopeLayer::all(&g, ["a b"]),
        Err(ConfigError::InvalidScope { .. })
    ));
    for empty in [
        RequireScopeLayer::any(&g, Vec::<String>::new()),
        RequireScopeLayer::all(&g, Vec::<String>::new()),
    ] {
        let e = empty.unwrap_err();
        assert!(matches!(e, ConfigError::EmptyScopes { .. }));
        assert!(e.to_string().contains("needs at least one scope"), "{e}");
    }
}

#[tokio::test]
async fn a_custom_rejection_body_shapes_the_extractors_challenge_too() {
    let guard = builder()
        .rejection_body(|r: &mcp_resource_guard::challenge::Rejection| {
            http::Response::new(format!("custom: {}", r.status().as_u16()))
        })
        .build()
        .unwrap()
        .with_mode(AuthMode::Optional);
    let app: Router = Router::new()
        .route(
            "/me",
            get(|ctx: AuthContext| async move { ctx.subject().unwrap_or("?").to_owned() }),
        )
        .layer(guard);
    let r = send(&app, request("/me", None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, "custom: 401");
    assert!(
        r.www().starts_with("Bearer resource_metadata="),
        "{}",
        r.www()
    );
}

#[tokio::test]
async fn a_custom_rejection_body_shapes_the_scope_layers_answers_too() {
    let guard = builder()
        .rejection_body(|r: &mcp_resource_guard::challenge::Rejection| {
            http::Response::new(format!("custom: {}", r.status().as_u16()))
        })
        .build()
        .unwrap();
    let app: Router = Router::new()
        .route(
            "/write",
            post(identity).route_layer(RequireScopeLayer::all(&guard, ["todo:write"]).unwrap()),
        )
        .layer(guard);
    let ro = token(&claims_with(json!({"scope": "todo:read"})));
    let r = send(&app, post_req("/write", Some(&ro))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body, "custom: 403");
    assert_eq!(r.www(), forbidden("todo:write"));
}

#[tokio::test]
async fn optional_auth_lets_anonymous_callers_through_but_not_bad_tokens() {
    let app = scoped_app(guard().with_mode(AuthMode::Optional));
    let r = send(&app, request("/mcp", None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"anonymous": true}));
    let basic = Request::get("/mcp")
        .header("authorization", "Basic dXNlcjpwYXNz")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, basic).await.json(), json!({"anonymous": true}));
    let r = send(&app, request("/mcp", Some(&token(&claims())))).await;
    assert_eq!(r.json()["sub"], "alice");
    let expired = token(&claims_with(json!({"exp": now() - 3600})));
    assert_invalid(&send(&app, request("/mcp", Some(&expired))).await, EXPIRED);
    let r = send(&app, request("/mcp", Some("garbage"))).await;
    assert_invalid(&r, INVALID);
    let r = send(&app, request("/mcp?access_token=x", None)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // A scoped route answers an anonymous caller with the 401 challenge.
    let r = send(&app, post_req("/write", None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.www(), PLAIN_CHALLENGE);
    // So does a handler that demands an AuthContext.
    let r = send(&app, request("/me", None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.www(), PLAIN_CHALLENGE);
    // A handler that allows anonymous callers gets None, or the caller.
    let r = send(&app, request("/maybe", None)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "anonymous"));
    let r = send(&app, request("/maybe", Some(&token(&claims())))).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "alice"));
    // The metadata is still served.
    let r = send(
        &app,
        request("/.well-known/oauth-protected-resource/mcp", None),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn the_extractor_without_a_guard_is_a_500_that_says_why() {
    let app: Router = Router::new()
        .route(
            "/me",
            get(|ctx: AuthContext| async move { ctx.issuer().to_owned() }),
        )
        .route(
            "/maybe",
            get(|ctx: Option<AuthContext>| async move { format!("{}", ctx.is_some()) }),
        );
    let r = send(&app, request("/me", None)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        r.body.contains("is GuardLayer applied to this route?"),
        "{}",
        r.body
    );
    // Option<AuthContext> too: no guard is a wiring mistake, not an
    // anonymous caller.
    let r = send(&app, request("/maybe", None)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        r.body.contains("is GuardLayer applied to this route?"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn the_extractor_reads_the_context() {
    let app = scoped_app(guard());
    let r = send(&app, request("/me", Some(&token(&claims())))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "alice");
}
