//! The conformance kit on the crate's own examples (it must pass) and on a
//! deliberately broken server (it must catch the missing audience check).

use async_trait::async_trait;
use mcp_resource_guard::testing::TestIssuer;
use mcp_resource_guard::testing::conformance::{Call, Conformance};
use mcp_resource_guard::{
    AuthContext, AuthError, AuthErrorKind, BearerToken, GuardLayer, Issuer, ScopeClaim,
    TokenVerifier,
};

async fn listen() -> (tokio::net::TcpListener, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (l, format!("http://{addr}"))
}

#[tokio::test]
async fn the_axum_example_passes() {
    let dev = TestIssuer::start().await.unwrap();
    let ex = crate::examples::start("axum_basic", "", &[("MCP_ISSUER", dev.issuer())]).await;
    let base = &ex.base;
    let report = Conformance::new(base, &dev)
        .probe(Call::Get(format!("{base}/me")))
        .granted("todo:read")
        .needs_more(Call::Post(format!("{base}/todos")), "todo:write")
        .run()
        .await;
    assert!(report.is_ok(), "{report}");
    assert!(
        report.check("header_mismatch").is_none(),
        "not an MCP server"
    );
}

/// A verifier with the classic bug: it reads the claims but never checks
/// the audience (nor the signature), then claims the token was for us.
#[derive(Debug)]
struct NoAudienceCheck(String);

#[async_trait]
impl TokenVerifier for NoAudienceCheck {
    async fn verify(&self, token: &BearerToken) -> Result<AuthContext, AuthError> {
        let bad = || AuthError::new(AuthErrorKind::InvalidToken, "unreadable");
        let payload = token.secret().split('.').nth(1).ok_or_else(bad)?;
        let bytes = base64_simd::URL_SAFE_NO_PAD
            .decode_to_vec(payload)
            .map_err(|_| bad())?;
        let mut claims: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&bytes).map_err(|_| bad())?;
        claims.insert("aud".into(), self.0.clone().into());
        AuthContext::from_claims(claims, &ScopeClaim::Auto)
    }
}

#[tokio::test]
async fn a_server_without_an_audience_check_fails_the_kit() {
    let dev = TestIssuer::start().await.unwrap();
    let (listener, base) = listen().await;
    let guard = GuardLayer::builder(&base)
        .add_issuer(Issuer::new(dev.issuer()))
        .scopes_supported(["todo:read", "todo:write"])
        .verifier(NoAudienceCheck(base.clone()))
        .build()
        .unwrap();
    let app = axum::Router::new()
        .route("/me", axum::routing::get(|| async { "me" }))
        .route_layer(guard);
    tokio::spawn(axum::serve(listener, app).into_future());
    let report = Conformance::new(&base, &dev)
        .probe(Call::Get(format!("{base}/me")))
        .granted("todo:read")
        .run()
        .await;
    assert!(!report.is_ok(), "{report}");
    for caught in [
        "wrong_audience",
        "missing_audience",
        "alg_none",
        "untrusted_key",
    ] {
        assert!(
            !report.check(caught).unwrap().passed,
            "{caught} not caught:\n{report}"
        );
    }
    assert!(report.check("no_token").unwrap().passed, "{report}");
    assert!(report.check("valid_token").unwrap().passed, "{report}");
}
