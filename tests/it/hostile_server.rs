//! The client side against a hostile MCP server: its metadata names itself
//! as the authorization server, points discovery at other origins,
//! redirects, or lies about the issuer. No credential and no token may
//! leave for it.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use mcp_resource_guard::Algorithm;
use mcp_resource_guard::client::{
    Assertion, AuthorizedClient, ClientError, EnterpriseIdp, Grant, TrustedIssuers,
};
use mcp_resource_guard::introspection::{ClientAssertionKey, ClientAuth};
use mcp_resource_guard::testing::TestIssuer;
use serde_json::json;

/// Every request a server got: method, path, and whether it carried
/// credentials (an Authorization header, a secret, an assertion or a token
/// in the body).
type Log = Arc<Mutex<Vec<String>>>;

/// A server on 127.0.0.1 that logs every request and answers with `reply`
/// (given its own base URL and the request).
async fn server(
    reply: impl Fn(&str, &str) -> Response + Clone + Send + Sync + 'static,
) -> (String, Log) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let log: Log = Arc::default();
    let (b, l) = (base.clone(), log.clone());
    let app = Router::new().fallback(move |req: Request| {
        let (b, l, reply) = (b.clone(), l.clone(), reply.clone());
        async move {
            let auth = req.headers().contains_key("authorization");
            let path = req.uri().path().to_owned();
            let method = req.method().to_string();
            let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                .await
                .unwrap();
            let body = String::from_utf8_lossy(&body).into_owned();
            let secret = [
                "client_secret",
                "client_assertion",
                "assertion",
                "subject_token",
            ]
            .iter()
            .any(|k| body.contains(&format!("{k}=")));
            l.lock().unwrap().push(format!(
                "{method} {path}{}",
                if auth || secret {
                    " WITH CREDENTIALS"
                } else {
                    ""
                }
            ));
            reply(&b, &path)
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, log)
}

fn json_reply(v: serde_json::Value) -> Response {
    axum::Json(v).into_response()
}

fn unauthorized(metadata: &str) -> Response {
    (
        http::StatusCode::UNAUTHORIZED,
        [(
            http::header::WWW_AUTHENTICATE,
            format!("Bearer resource_metadata=\"{metadata}\", scope=\"todo:read\""),
        )],
    )
        .into_response()
}

/// An MCP server whose metadata names `as_of(base)` as its authorization
/// server, and whose `/mcp` 401 points at `metadata_of(base)`; it also
/// plays that authorization server (a token endpoint that takes anything).
async fn hostile(metadata_of: fn(&str) -> String, as_of: fn(&str) -> String) -> (String, Log) {
    hostile_with_issuer(metadata_of, as_of, as_of).await
}

/// [`hostile`] whose authorization server metadata claims `issuer_of(base)`.
async fn hostile_with_issuer(
    metadata_of: fn(&str) -> String,
    as_of: fn(&str) -> String,
    issuer_of: fn(&str) -> String,
) -> (String, Log) {
    server(move |base, path| match path {
        "/mcp" => unauthorized(&metadata_of(base)),
        "/.well-known/oauth-protected-resource/mcp" => json_reply(json!({
            "resource": format!("{base}/mcp"),
            "authorization_servers": [as_of(base)],
        })),
        "/redirect" => (
            http::StatusCode::FOUND,
            [(
                http::header::LOCATION,
                format!("{base}/.well-known/oauth-protected-resource/mcp"),
            )],
        )
            .into_response(),
        "/.well-known/oauth-authorization-server" => json_reply(json!({
            "issuer": issuer_of(base),
            "token_endpoint": format!("{base}/token"),
            "code_challenge_methods_supported": ["S256"],
        })),
        "/token" => {
            json_reply(json!({"access_token": "stolen", "token_type": "Bearer", "expires_in": 60}))
        }
        _ => http::StatusCode::NOT_FOUND.into_response(),
    })
    .await
}

/// A fresh P-256 key for `private_key_jwt`.
fn assertion_key() -> ClientAssertionKey {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    ClientAssertionKey::from_pkcs8_der(Algorithm::ES256, pkcs8.as_ref()).unwrap()
}

fn grants(idp_token_endpoint: &str) -> Vec<(&'static str, Grant)> {
    let assertion_key = assertion_key();
    vec![
        (
            "client_secret_basic",
            Grant::client_credentials(ClientAuth::client_secret_basic("agent", "s3cret")),
        ),
        (
            "client_secret_post",
            Grant::client_credentials(ClientAuth::client_secret_post("agent", "s3cret")),
        ),
        (
            "private_key_jwt",
            Grant::client_credentials(ClientAuth::private_key_jwt("agent", assertion_key)),
        ),
        (
            "jwt_bearer",
            Grant::jwt_bearer(ClientAuth::none("agent"), Assertion::value("a.b.c")),
        ),
        (
            "enterprise",
            Grant::enterprise(
                ClientAuth::client_secret_basic("agent", "s3cret"),
                EnterpriseIdp::new(
                    idp_token_endpoint,
                    ClientAuth::none("idp-client"),
                    Assertion::value("id.token.x"),
                ),
            ),
        ),
    ]
}

fn credentials_sent(log: &Log) -> Vec<String> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|l| l.ends_with("WITH CREDENTIALS") || l.starts_with("POST"))
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_server_naming_itself_as_authorization_server_gets_no_credential() {
    let real = TestIssuer::start().await.unwrap();
    let (idp, idp_log) = server(|_, _| http::StatusCode::BAD_REQUEST.into_response()).await;
    let (evil, log) = hostile(
        |b| format!("{b}/.well-known/oauth-protected-resource/mcp"),
        str::to_owned,
    )
    .await;
    for (name, grant) in grants(&format!("{idp}/token")) {
        let client = AuthorizedClient::builder(grant)
            .trusted_issuers(TrustedIssuers::new([real.issuer()]).unwrap())
            .build()
            .unwrap();
        let url = format!("{evil}/mcp");
        let e = client.send(|h| h.post(&url).body("{}")).await.unwrap_err();
        assert_eq!(
            e,
            ClientError::UntrustedAuthorizationServer {
                issuer: evil.clone()
            },
            "{name}"
        );
        let e = client.token_for(&url, None).await.unwrap_err();
        assert_eq!(
            e,
            ClientError::UntrustedAuthorizationServer {
                issuer: evil.clone()
            },
            "{name}"
        );
    }
    assert_eq!(
        credentials_sent(&log),
        ["POST /mcp"; 5],
        "only the MCP requests, without credentials"
    );
    assert!(
        idp_log.lock().unwrap().is_empty(),
        "the ID token went nowhere"
    );
}

#[tokio::test]
async fn credentials_need_trusted_issuers() {
    for (name, grant) in grants("https://idp.example/token") {
        let e = AuthorizedClient::builder(grant).build().unwrap_err();
        assert!(e.to_string().contains("trusted_issuers"), "{name}: {e}");
    }
}

#[tokio::test]
async fn discovery_fetches_nothing_off_the_servers_origin_and_follows_no_redirect() {
    let real = TestIssuer::start().await.unwrap();
    // Where a hostile server would have the client go: counts requests.
    let (elsewhere, elsewhere_log) = server(|base, _| {
        json_reply(json!({"resource": format!("{base}/mcp"), "authorization_servers": [base]}))
    })
    .await;
    static ELSEWHERE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ELSEWHERE.set(elsewhere.clone()).unwrap();
    let client = AuthorizedClient::builder(Grant::client_credentials(
        ClientAuth::client_secret_basic("agent", "s3cret"),
    ))
    .trusted_issuers(TrustedIssuers::new([real.issuer()]).unwrap())
    .build()
    .unwrap();

    // resource_metadata on another origin (blind SSRF): refused unfetched.
    let (foreign, _) = hostile(
        |_| {
            format!(
                "{}/.well-known/oauth-protected-resource/mcp",
                ELSEWHERE.get().unwrap()
            )
        },
        str::to_owned,
    )
    .await;
    let url = format!("{foreign}/mcp");
    let e = client.send(|h| h.post(&url).body("{}")).await.unwrap_err();
    assert!(
        matches!(&e, ClientError::Discovery(m) if m.contains("not on the server's origin")),
        "{e:?}"
    );

    // A same-origin metadata URL that redirects: not followed.
    let (redirecting, log) = hostile(|b| format!("{b}/redirect"), str::to_owned).await;
    let url = format!("{redirecting}/mcp");
    let e = client.send(|h| h.post(&url).body("{}")).await.unwrap_err();
    assert!(
        matches!(&e, ClientError::Discovery(m) if m.contains("answered 302")),
        "{e:?}"
    );
    assert_eq!(*log.lock().unwrap(), ["POST /mcp", "GET /redirect"]);
    assert!(
        elsewhere_log.lock().unwrap().is_empty(),
        "{:?}",
        elsewhere_log.lock().unwrap()
    );
}

#[tokio::test]
async fn metadata_naming_another_issuer_is_not_used() {
    // The server names itself, a URL the client trusts (say, it is where the
    // client registered), but the metadata there claims another issuer the
    // client also trusts: RFC 8414 §3.3, the document is not used and
    // nothing goes to its token endpoint.
    let (evil, log) = hostile_with_issuer(
        |b| format!("{b}/.well-known/oauth-protected-resource/mcp"),
        str::to_owned,
        |_| "https://as.example.com".to_owned(),
    )
    .await;
    let trusted = TrustedIssuers::new([evil.clone(), "https://as.example.com".to_owned()]).unwrap();
    let client = AuthorizedClient::builder(Grant::client_credentials(
        ClientAuth::client_secret_basic("agent", "s3cret"),
    ))
    .trusted_issuers(trusted)
    .build()
    .unwrap();
    let url = format!("{evil}/mcp");
    let e = client.send(|h| h.post(&url).body("{}")).await.unwrap_err();
    assert!(
        matches!(&e, ClientError::Discovery(m) if m.contains("names issuer \"https://as.example.com\"")),
        "{e:?}"
    );
    assert!(
        credentials_sent(&log).iter().all(|l| l == "POST /mcp"),
        "{:?}",
        log.lock().unwrap()
    );
}

#[tokio::test]
async fn client_assertions_carry_the_issuer_they_are_sent_to() {
    // A trusted authorization server that records the assertion.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let s = seen.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let b = base.clone();
    let app = Router::new().fallback(move |req: Request| {
        let (b, s) = (b.clone(), s.clone());
        async move {
            let path = req.uri().path().to_owned();
            let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap();
            match path.as_str() {
                "/mcp" => unauthorized(&format!("{b}/.well-known/oauth-protected-resource/mcp")),
                "/.well-known/oauth-protected-resource/mcp" => json_reply(json!({
                    "resource": format!("{b}/mcp"), "authorization_servers": [format!("{b}/tenant")],
                })),
                "/.well-known/oauth-authorization-server/tenant" => json_reply(json!({
                    "issuer": format!("{b}/tenant"), "token_endpoint": format!("{b}/tenant/token"),
                })),
                _ => {
                    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
                    if let Some((_, a)) = form.iter().find(|(k, _)| k == "client_assertion") {
                        s.lock().unwrap().push(a.clone());
                    }
                    json_reply(json!({"error": "invalid_client"})).into_response()
                }
            }
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let auth = ClientAuth::private_key_jwt("agent", assertion_key());
    let client = AuthorizedClient::builder(Grant::client_credentials(auth))
        .trusted_issuers(TrustedIssuers::new([format!("{base}/tenant")]).unwrap())
        .build()
        .unwrap();
    let url = format!("{base}/mcp");
    let _ = client.send(|h| h.post(&url).body("{}")).await;
    let assertions = seen.lock().unwrap().clone();
    assert_eq!(assertions.len(), 1);
    let claims = assertions[0].split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&base64_url_decode(claims)).unwrap();
    assert_eq!(claims["aud"], format!("{base}/tenant"));
    assert_eq!(claims["iss"], "agent");
}

fn base64_url_decode(s: &str) -> Vec<u8> {
    base64_simd::URL_SAFE_NO_PAD.decode_to_vec(s).unwrap()
}

#[tokio::test]
async fn a_server_that_refuses_every_token_gets_one_authorization_not_a_loop() {
    let real = TestIssuer::start().await.unwrap();
    real.add_client("agent", "s3cret", ["todo:read"]);
    static ISSUER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ISSUER.set(real.issuer().to_owned()).unwrap();
    let (refuser, log) = hostile(
        |b| format!("{b}/.well-known/oauth-protected-resource/mcp"),
        |_| ISSUER.get().unwrap().clone(),
    )
    .await;
    let client = AuthorizedClient::builder(Grant::client_credentials(
        ClientAuth::client_secret_basic("agent", "s3cret"),
    ))
    .trusted_issuers(TrustedIssuers::new([real.issuer()]).unwrap())
    .build()
    .unwrap();
    let url = format!("{refuser}/mcp");
    let res = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        client.send(|h| h.post(&url).body("{}")),
    )
    .await
    .expect("no retry loop")
    .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        credentials_sent(&log),
        ["POST /mcp", "POST /mcp WITH CREDENTIALS"],
        "one try without, one with the new token"
    );
}
