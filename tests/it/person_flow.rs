//! A person's flow (authorization code + PKCE) against an in-process MCP
//! server and authorization server: dynamic registration once per issuer,
//! PKCE S256 verified by the server, `resource` in both requests,
//! `offline_access` asked for because it is offered, and a refresh token
//! used when the server stops taking the access token (no second browser
//! round trip).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, Request};
use axum::response::{IntoResponse, Response};
use mcp_resource_guard::client::{
    AuthorizationCode, AuthorizedClient, ClientError, Grant, UserAgent,
};
use serde_json::json;

#[derive(Default)]
struct As {
    valid: HashSet<String>,
    challenge: Option<String>,
    registrations: usize,
    authorizations: Vec<std::collections::HashMap<String, String>>,
    token_forms: Vec<std::collections::HashMap<String, String>>,
    issued: usize,
}

type Shared = Arc<Mutex<As>>;

fn b64_sha256(s: &str) -> String {
    use aws_lc_rs::digest::{SHA256, digest};
    base64_simd::URL_SAFE_NO_PAD.encode_to_string(digest(&SHA256, s.as_bytes()).as_ref())
}

async fn server() -> (String, Shared) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state: Shared = Arc::default();
    let (b, st) = (base.clone(), state.clone());
    let app = Router::new().fallback(move |Query(q): Query<std::collections::HashMap<String, String>>, req: Request| {
        let (b, st) = (b.clone(), st.clone());
        async move {
            let path = req.uri().path().to_owned();
            let auth = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap();
            let form: std::collections::HashMap<String, String> =
                url::form_urlencoded::parse(&body).into_owned().collect();
            let mut s = st.lock().unwrap();
            let reply: Response = match path.as_str() {
                "/mcp" => match auth.and_then(|a| a.strip_prefix("Bearer ").map(str::to_owned)) {
                    Some(t) if s.valid.contains(&t) => "ok".into_response(),
                    _ => (
                        http::StatusCode::UNAUTHORIZED,
                        [(http::header::WWW_AUTHENTICATE, format!("Bearer resource_metadata=\"{b}/.well-known/oauth-protected-resource/mcp\", scope=\"mcp\""))],
                    )
                        .into_response(),
                },
                "/.well-known/oauth-protected-resource/mcp" => axum::Json(json!({
                    "resource": format!("{b}/mcp"), "authorization_servers": [b],
                }))
                .into_response(),
                "/.well-known/oauth-authorization-server" => axum::Json(json!({
                    "issuer": b,
                    "authorization_endpoint": format!("{b}/authorize"),
                    "token_endpoint": format!("{b}/token"),
                    "registration_endpoint": format!("{b}/register"),
                    "code_challenge_methods_supported": ["S256"],
                    "scopes_supported": ["mcp", "offline_access"],
                    "token_endpoint_auth_methods_supported": ["none"],
                    "authorization_response_iss_parameter_supported": true,
                }))
                .into_response(),
                "/register" => {
                    s.registrations += 1;
                    (http::StatusCode::CREATED, axum::Json(json!({"client_id": "c-1"}))).into_response()
                }
                "/authorize" => {
                    s.challenge = q.get("code_challenge").cloned();
                    s.authorizations.push(q.clone());
                    let mut to = url::Url::parse(&q["redirect_uri"]).unwrap();
                    to.query_pairs_mut()
                        .append_pair("code", "code-1")
                        .append_pair("state", &q["state"])
                        .append_pair("iss", &b);
                    (http::StatusCode::FOUND, [(http::header::LOCATION, to.to_string())]).into_response()
                }
                "/token" => {
                    s.token_forms.push(form.clone());
                    let ok = match form["grant_type"].as_str() {
                        "authorization_code" => {
                            form.get("code_verifier").map(|v| b64_sha256(v)) == s.challenge
                                && form["code"] == "code-1"
                        }
                        "refresh_token" => form["refresh_token"] == "rt-1",
                        _ => false,
                    };
                    if ok {
                        s.issued += 1;
                        let at = format!("at-{}", s.issued);
                        s.valid.insert(at.clone());
                        let mut t = json!({"access_token": at, "token_type": "Bearer", "expires_in": 3600});
                        if form["grant_type"] == "authorization_code" {
                            t["refresh_token"] = json!("rt-1");
                        }
                        axum::Json(t).into_response()
                    } else {
                        (http::StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_grant"}))).into_response()
                    }
                }
                _ => http::StatusCode::NOT_FOUND.into_response(),
            };
            reply
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, state)
}

/// The "browser": the authorization endpoint redirects at once.
#[derive(Debug)]
struct Browser(reqwest::Client);

#[async_trait::async_trait]
impl UserAgent for Browser {
    async fn authorize(&self, url: &str) -> Result<String, ClientError> {
        let res = self.0.get(url).send().await.unwrap();
        Ok(res.headers()["location"].to_str().unwrap().to_owned())
    }
}

#[tokio::test]
async fn authorization_code_with_pkce_then_a_refresh_instead_of_a_second_authorization() {
    let (base, state) = server().await;
    let browser = Browser(
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    );
    let flow = AuthorizationCode::new("http://127.0.0.1:7777/callback", browser);
    // A public client registered dynamically: no credential of its own, so
    // no trusted issuers are needed.
    let client = AuthorizedClient::builder(Grant::authorization_code(flow))
        .build()
        .unwrap();
    let url = format!("{base}/mcp");
    let res = client.send(|h| h.post(&url).body("{}")).await.unwrap();
    assert_eq!(res.text().await.unwrap(), "ok");
    {
        let s = state.lock().unwrap();
        assert_eq!(s.registrations, 1);
        let a = &s.authorizations[0];
        assert_eq!(a["response_type"], "code");
        assert_eq!(a["client_id"], "c-1");
        assert_eq!(a["code_challenge_method"], "S256");
        assert_eq!(a["resource"], url);
        assert_eq!(
            a["scope"], "mcp offline_access",
            "offline_access because it is offered"
        );
        let t = &s.token_forms[0];
        assert_eq!(t["resource"], url);
        assert_eq!(t["client_id"], "c-1");
        assert!(t["code_verifier"].len() >= 43);
    }
    // The server stops taking the access token: the refresh token gets a
    // new one, without a second authorization or registration.
    state.lock().unwrap().valid.clear();
    let res = client.send(|h| h.post(&url).body("{}")).await.unwrap();
    assert_eq!(res.text().await.unwrap(), "ok");
    let s = state.lock().unwrap();
    assert_eq!(s.authorizations.len(), 1);
    assert_eq!(s.registrations, 1);
    assert_eq!(s.token_forms.last().unwrap()["grant_type"], "refresh_token");
    assert_eq!(s.token_forms.last().unwrap()["resource"], url);
}
