//! The client side: ClientCredentials against a real local token endpoint
//! (counting requests) and TestIssuer, discovery from a 401, the
//! AuthorizedClient against a guarded axum server.

use mcp_resource_guard::testing::Clocked;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use mcp_resource_guard::client::{
    AuthorizedClient, ClientCredentials, ClientError, Grant, TokenSource, TrustedIssuers,
};
use mcp_resource_guard::introspection::ClientAuth;
use mcp_resource_guard::testing::{ManualClock, TestIssuer};
use mcp_resource_guard::{GuardLayer, Issuer, RequireScopeLayer};
use serde_json::{Value, json};

/// A token endpoint on 127.0.0.1 that counts requests and answers `reply`
/// after `delay`.
async fn token_server(reply: Value, status: u16, delay: Duration) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = Router::new().route(
        "/token",
        post(move |body: String| {
            let h = h.clone();
            let reply = reply.clone();
            async move {
                let n = h.fetch_add(1, Ordering::SeqCst);
                assert!(body.contains("grant_type=client_credentials"), "{body}");
                assert!(
                    body.contains("resource=https%3A%2F%2Fmcp.example.com%2Fmcp"),
                    "{body}"
                );
                tokio::time::sleep(delay).await;
                let mut r = reply.clone();
                if r.get("access_token").is_some() {
                    r["access_token"] = json!(format!("tok-{n}"));
                }
                (http::StatusCode::from_u16(status).unwrap(), axum::Json(r))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, hits)
}

fn credentials(base: &str, clock: &ManualClock) -> ClientCredentials {
    ClientCredentials::builder(base, ClientAuth::client_secret_basic("agent", "s3cret"))
        .token_endpoint(format!("{base}/token"))
        .clock(clock)
        .build()
        .unwrap()
}

const MCP: &str = "https://mcp.example.com/mcp";

/// An agent with client credentials, trusting `issuer` only.
pub(crate) fn agent(issuer: &TestIssuer, id: &str, secret: &str) -> AuthorizedClient {
    AuthorizedClient::builder(Grant::client_credentials(ClientAuth::client_secret_basic(
        id, secret,
    )))
    .trusted_issuers(TrustedIssuers::new([issuer.issuer()]).unwrap())
    .build()
    .unwrap()
}

fn scopes(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| (*x).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_make_one_token_request() {
    let good = json!({"access_token": "x", "token_type": "Bearer", "expires_in": 100});
    let (base, hits) = token_server(good, 200, Duration::from_millis(100)).await;
    let clock = ManualClock::new();
    let source = credentials(&base, &clock);
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let s = source.clone();
            tokio::spawn(async move { s.token(MCP, &scopes(&["todo:read"])).await.unwrap() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().secret(), "tok-0");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // Expired: again one request for a thousand callers.
    clock.advance(Duration::from_secs(101));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let s = source.clone();
            tokio::spawn(async move { s.token(MCP, &scopes(&["todo:read"])).await.unwrap() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().secret(), "tok-1");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn tokens_are_cached_per_resource_and_scopes_and_refreshed_ahead_of_expiry() {
    let good = json!({"access_token": "x", "token_type": "bearer", "expires_in": 100, "scope": "todo:read"});
    let (base, hits) = token_server(good, 200, Duration::ZERO).await;
    let clock = ManualClock::new();
    let source = credentials(&base, &clock);
    let t = source.token(MCP, &scopes(&["todo:read"])).await.unwrap();
    assert_eq!(t.token_type(), "bearer");
    assert_eq!(t.scope(), Some("todo:read"));
    // Same key (scopes in any order, repeated): cached.
    source
        .token(MCP, &scopes(&["todo:read", "todo:read"]))
        .await
        .unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // Other scopes: another key.
    source
        .token(MCP, &scopes(&["todo:write", "todo:read"]))
        .await
        .unwrap();
    source
        .token(MCP, &scopes(&["todo:read", "todo:write"]))
        .await
        .unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // Before 70 % of the lifetime: cached; after 80 %: refreshed.
    clock.advance(Duration::from_secs(69));
    source.token(MCP, &scopes(&["todo:read"])).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    clock.advance(Duration::from_secs(12));
    let fresh = source.token(MCP, &scopes(&["todo:read"])).await.unwrap();
    assert_eq!(fresh.secret(), "tok-2");
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    // Debug never shows a token or the secret.
    assert!(!format!("{fresh:?}").contains("tok-2"));
    assert!(!format!("{source:?}").contains("s3cret"));
}

#[tokio::test]
async fn failures_back_off_and_bad_responses_are_typed() {
    let (base, hits) = token_server(json!({"oops": true}), 500, Duration::ZERO).await;
    let clock = ManualClock::new();
    let source = credentials(&base, &clock);
    let e = source.token(MCP, &[]).await.unwrap_err();
    assert_eq!(
        e,
        ClientError::Unavailable("the token endpoint answered 500".into())
    );
    // Within the backoff: no request.
    assert_eq!(
        source.token(MCP, &[]).await.unwrap_err(),
        ClientError::BackingOff(Duration::from_secs(2))
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    clock.advance(Duration::from_secs(3));
    source.token(MCP, &[]).await.unwrap_err();
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    let cases = [
        (
            json!({"error": "invalid_client", "error_description": "bad secret"}),
            401,
            ClientError::Refused {
                error: "invalid_client".into(),
                description: "bad secret".into(),
            },
        ),
        (
            json!({"access_token": "x", "token_type": "mac", "expires_in": 60}),
            200,
            ClientError::BadTokenResponse("token_type is neither Bearer nor DPoP"),
        ),
        (
            json!({"access_token": "x", "token_type": "Bearer"}),
            200,
            ClientError::BadTokenResponse("no expires_in: the client cannot know when to refresh"),
        ),
        (
            json!({"token_type": "Bearer", "expires_in": 60}),
            200,
            ClientError::BadTokenResponse("no access_token"),
        ),
        (
            json!(["not", "an", "object"]),
            200,
            ClientError::Unavailable("the token response is not a JSON object".into()),
        ),
    ];
    for (reply, status, want) in cases {
        let (base, _) = token_server(reply, status, Duration::ZERO).await;
        let source = credentials(&base, &ManualClock::new());
        assert_eq!(source.token(MCP, &[]).await.unwrap_err(), want);
    }
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let good = json!({"access_token": "x", "token_type": "Bearer", "expires_in": 100});
    let (base, _) = token_server(good, 200, Duration::from_secs(5)).await;
    let source = ClientCredentials::builder(&base, ClientAuth::client_secret_post("agent", "s"))
        .token_endpoint(format!("{base}/token"))
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    assert_eq!(
        source.token(MCP, &[]).await.unwrap_err(),
        ClientError::Unavailable("the token request timed out".into())
    );
}

#[test]
fn non_https_authorization_servers_are_refused() {
    let e = ClientCredentials::builder(
        "http://as.example.com",
        ClientAuth::client_secret_basic("a", "b"),
    )
    .build()
    .unwrap_err();
    assert!(matches!(
        e,
        mcp_resource_guard::ConfigError::InvalidIssuer { .. }
    ));
}

/// A guarded server on 127.0.0.1: `/mcp` needs todo:read, `/mcp/write`
/// todo:write; its issuer is `issuer`.
async fn guarded_server(issuer: &TestIssuer) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let guard = GuardLayer::builder(format!("{base}/mcp"))
        .add_issuer(Issuer::new(issuer.issuer()).jwks_uri(issuer.jwks_uri()))
        .scopes_supported(["todo:read", "todo:write"])
        .required_scopes(["todo:read"])
        .build()
        .unwrap();
    let write = RequireScopeLayer::all(&guard, ["todo:write"]).unwrap();
    let never = format!(
        "Bearer error=\"insufficient_scope\", resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\", scope=\"todo:read\""
    );
    let app = Router::new()
        .route(
            "/mcp/never",
            get(move || {
                let never = never.clone();
                async move {
                    (
                        http::StatusCode::FORBIDDEN,
                        [(http::header::WWW_AUTHENTICATE, never)],
                        "never enough",
                    )
                }
            }),
        )
        .route(
            "/mcp/write",
            get(|ctx: mcp_resource_guard::AuthContext| async move {
                ctx.scopes().iter().collect::<Vec<_>>().join(" ")
            })
            .layer(write),
        )
        .route(
            "/mcp",
            get(|ctx: mcp_resource_guard::AuthContext| async move {
                ctx.client_id().unwrap_or_default().to_owned()
            }),
        )
        .layer(guard);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test]
async fn the_authorized_client_follows_the_401_and_steps_up_once() {
    let issuer = TestIssuer::start().await.unwrap();
    issuer.add_client("agent", "s3cret", ["todo:read", "todo:write"]);
    issuer.add_client("reader", "s3cret", ["todo:read"]);
    let base = guarded_server(&issuer).await;
    let client = agent(&issuer, "agent", "s3cret");
    let url = format!("{base}/mcp");
    let res = client.send(|h| h.get(&url)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "agent");
    // The token was for todo:read (the challenge's scope); this route needs
    // todo:write: one step-up to the union.
    let write = format!("{base}/mcp/write");
    let res = client.send(|h| h.get(&write)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "todo:read todo:write");

    // A server that refuses whatever the token holds: one step-up, then a
    // typed error (no loop).
    let never = format!("{base}/mcp/never");
    let e = tokio::time::timeout(Duration::from_secs(10), client.send(|h| h.get(&never)))
        .await
        .expect("no retry loop")
        .unwrap_err();
    assert_eq!(e, ClientError::InsufficientScope("todo:read".into()));

    // A client that may not have todo:write: the authorization server
    // refuses the step-up, and the call ends with that error.
    let reader = agent(&issuer, "reader", "s3cret");
    let e = reader.send(|h| h.get(&write)).await.unwrap_err();
    assert!(
        matches!(&e, ClientError::Refused { error, .. } if error == "invalid_scope"),
        "{e:?}"
    );
}

#[tokio::test]
async fn discovery_refuses_what_it_cannot_trust() {
    let issuer = TestIssuer::start().await.unwrap();
    issuer.add_client("agent", "s3cret", ["todo:read", "todo:write"]);
    let base = guarded_server(&issuer).await;
    let meta = format!("{base}/.well-known/oauth-protected-resource/mcp");
    let www = format!("Bearer resource_metadata=\"{meta}\", scope=\"todo:read\"");
    // The challenge's scope.
    let t = agent(&issuer, "agent", "s3cret")
        .token_for(&format!("{base}/mcp"), Some(&www))
        .await
        .unwrap();
    assert_eq!(t.scope(), Some("todo:read"));
    // Without a challenge: the well-known URI with the path inserted, and
    // the document's scopes_supported.
    let t = agent(&issuer, "agent", "s3cret")
        .token_for(&format!("{base}/mcp"), None)
        .await
        .unwrap();
    assert_eq!(t.scope(), Some("todo:read todo:write"));
    // The document names another resource than the server asked.
    let e = agent(&issuer, "agent", "s3cret")
        .token_for(&format!("{base}/other"), Some(&www))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Discovery(m) if m.contains("refusing to get a token for another resource")),
        "{e:?}"
    );
    // A resource_metadata on another origin is not fetched.
    let e = agent(&issuer, "agent", "s3cret")
        .token_for(
            &format!("{base}/mcp"),
            Some("Bearer resource_metadata=\"http://evil.example.com/m\""),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Discovery(m) if m.contains("not on the server's origin")),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_token_is_never_sent_to_another_origin() {
    let issuer = TestIssuer::start().await.unwrap();
    issuer.add_client("agent", "s3cret", ["todo:read"]);
    let base = guarded_server(&issuer).await;
    // A server that records the Authorization header it gets, and one that
    // redirects there.
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let s = seen.clone();
    let other = Router::new().route(
        "/echo",
        get(move |h: http::HeaderMap| {
            let s = s.clone();
            async move {
                s.lock().unwrap().push(
                    h.get("authorization")
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default(),
                );
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, other).await.unwrap() });

    let client = agent(&issuer, "agent", "s3cret");
    let url = format!("{base}/mcp");
    assert_eq!(client.send(|h| h.get(&url)).await.unwrap().status(), 200);
    let echo = format!("{other_base}/echo");
    assert_eq!(client.send(|h| h.get(&echo)).await.unwrap().status(), 200);
    assert_eq!(
        *seen.lock().unwrap(),
        [String::new()],
        "no token went to another origin"
    );
}

/// A token endpoint implementing RFC 8693 token exchange on 127.0.0.1:
/// counts requests and echoes what it got in the token.
async fn exchange_server() -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (h, b) = (hits.clone(), bodies.clone());
    let app = Router::new().route(
        "/token",
        post(move |body: String| {
            let (h, b) = (h.clone(), b.clone());
            async move {
                let n = h.fetch_add(1, Ordering::SeqCst);
                b.lock().unwrap().push(body.clone());
                let ok = body.contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange")
                    && body.contains("subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token");
                if !ok {
                    return (http::StatusCode::BAD_REQUEST, axum::Json(json!({"error": "unsupported_grant_type"})));
                }
                (
                    http::StatusCode::OK,
                    axum::Json(json!({"access_token": format!("exchanged-{n}"), "token_type": "Bearer",
                        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token", "expires_in": 3600})),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, hits, bodies)
}

fn ctx(claims: Value) -> mcp_resource_guard::AuthContext {
    mcp_resource_guard::AuthContext::from_claims(
        claims.as_object().unwrap().clone(),
        &Default::default(),
    )
    .unwrap()
}

#[tokio::test]
async fn token_exchange_is_cached_per_subject_and_never_outlives_it() {
    let (base, hits, bodies) = exchange_server().await;
    let clock = ManualClock::new();
    let cc = credentials(&base, &clock);
    let now = mcp_resource_guard_now();
    let alice = ctx(json!({"iss": "https://as", "sub": "alice", "aud": MCP, "exp": now + 100}));
    let api = "https://api.example.com/";
    let read = scopes(&["read"]);
    let t = cc
        .exchange("alice-token", &alice)
        .resource(api)
        .scopes(&read)
        .send()
        .await
        .unwrap();
    assert_eq!(t.secret(), "exchanged-0");
    let body = bodies.lock().unwrap()[0].clone();
    assert!(body.contains("subject_token=alice-token"), "{body}");
    assert!(
        body.contains("resource=https%3A%2F%2Fapi.example.com%2F"),
        "{body}"
    );
    assert!(body.contains("scope=read"), "{body}");
    assert!(!body.contains("actor_token"), "{body}");
    // Cached for this subject token; another subject token is its own key.
    cc.exchange("alice-token", &alice)
        .resource(api)
        .scopes(&read)
        .send()
        .await
        .unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    cc.exchange("bob-token", &alice)
        .resource(api)
        .scopes(&read)
        .send()
        .await
        .unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // The exchanged token (3600 s) is kept no longer than the subject
    // token (100 s): refreshed by 81 s.
    clock.advance(Duration::from_secs(81));
    assert_eq!(
        cc.exchange("alice-token", &alice)
            .resource(api)
            .scopes(&read)
            .send()
            .await
            .unwrap()
            .secret(),
        "exchanged-2"
    );
    // With this server's own actor token.
    cc.exchange("alice-token", &alice)
        .resource(api)
        .scopes(&read)
        .actor_token("my-own-token")
        .send()
        .await
        .unwrap();
    let body = bodies.lock().unwrap().last().unwrap().clone();
    assert!(body.contains("actor_token=my-own-token"), "{body}");
    assert!(
        body.contains("actor_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"),
        "{body}"
    );
    // A subject token without exp is exchanged every time.
    let no_exp = ctx(json!({"iss": "https://as", "sub": "carol", "aud": MCP}));
    let before = hits.load(Ordering::SeqCst);
    cc.exchange("carol-token", &no_exp)
        .resource(api)
        .scopes(&read)
        .send()
        .await
        .unwrap();
    cc.exchange("carol-token", &no_exp)
        .resource(api)
        .scopes(&read)
        .send()
        .await
        .unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), before + 2);
}

fn mcp_resource_guard_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn cascading_is_allowed_only_within_the_token_audience() {
    use mcp_resource_guard::client::forward_same_audience;
    let c = ctx(json!({"iss": "https://as", "aud": [MCP, "https://other.example.com/"]}));
    assert_eq!(
        forward_same_audience(&c, "https://mcp.example.com/mcp"),
        Ok(())
    );
    assert_eq!(
        forward_same_audience(&c, "https://mcp.example.com/mcp/sub"),
        Ok(())
    );
    assert_eq!(
        forward_same_audience(&c, "https://other.example.com/anything"),
        Ok(())
    );
    assert_eq!(
        forward_same_audience(&c, "https://api.example.com/"),
        Err(ClientError::WrongAudience {
            resource: format!("{MCP} https://other.example.com/"),
            url: "https://api.example.com/".into()
        })
    );
    assert!(forward_same_audience(&c, "https://mcp.example.com/mcpx").is_err());
    assert!(forward_same_audience(&c, "http://mcp.example.com/mcp").is_err());
}

#[test]
fn the_act_chain_is_exposed() {
    let c = ctx(json!({"iss": "https://as", "sub": "alice",
        "act": {"sub": "gateway", "client_id": "gw", "act": {"sub": "agent"}}}));
    let a = c.actor().unwrap();
    assert_eq!(
        (a.sub.as_deref(), a.client_id.as_deref()),
        (Some("gateway"), Some("gw"))
    );
    let b = a.actor.unwrap();
    assert_eq!(b.sub.as_deref(), Some("agent"));
    assert!(b.actor.is_none());
    assert!(
        ctx(json!({"iss": "https://as", "act": "not an object"}))
            .actor()
            .is_none()
    );
    // A deep chain is cut at 8 links.
    let mut act = json!({"sub": "a0"});
    for i in 1..20 {
        act = json!({"sub": format!("a{i}"), "act": act});
    }
    let mut link = ctx(json!({"iss": "https://as", "act": act})).actor();
    let mut n = 0;
    while let Some(l) = link {
        n += 1;
        link = l.actor.map(|b| *b);
    }
    assert_eq!(n, 8);
}

#[tokio::test]
async fn the_test_issuer_exchanges_tokens_and_records_the_actor() {
    let issuer = TestIssuer::start().await.unwrap();
    issuer.add_client("gateway", "gw-secret", ["todo:read"]);
    let gateway_url = "https://gateway.example.com/mcp";
    let downstream_url = "https://todo.example.com/mcp";
    let verifier_for = |resource: &str| {
        let guard = GuardLayer::builder(resource)
            .add_issuer(Issuer::new(issuer.issuer()).jwks_uri(issuer.jwks_uri()))
            .build()
            .unwrap();
        mcp_resource_guard::fuzzing::verifier(&guard)
    };
    let incoming = issuer.token("alice", gateway_url, "todo:read todo:write");
    let subject = verifier_for(gateway_url)
        .verify(&mcp_resource_guard::BearerToken::new(incoming.clone()))
        .await
        .unwrap();
    let cc = ClientCredentials::builder(
        issuer.issuer(),
        ClientAuth::client_secret_basic("gateway", "gw-secret"),
    )
    .build()
    .unwrap();
    let exchanged = cc
        .exchange(&incoming, &subject)
        .resource(downstream_url)
        .scopes(["todo:read"])
        .send()
        .await
        .unwrap();
    let down = verifier_for(downstream_url)
        .verify(&mcp_resource_guard::BearerToken::new(exchanged.secret()))
        .await
        .unwrap();
    assert_eq!(down.subject(), Some("alice"));
    assert_eq!(down.audiences(), [downstream_url]);
    assert_eq!(down.scopes().iter().collect::<Vec<_>>(), ["todo:read"]);
    assert_eq!(down.actor().unwrap().sub.as_deref(), Some("gateway"));
    assert!(down.expires_at() <= subject.expires_at());
    // Not a scope the subject token holds; not a token of this issuer.
    let e = cc
        .exchange(&incoming, &subject)
        .resource(downstream_url)
        .scopes(["todo:delete"])
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Refused { error, .. } if error == "invalid_scope"),
        "{e:?}"
    );
    let forged = format!("{incoming}x");
    let e = cc
        .exchange(&forged, &subject)
        .resource(downstream_url)
        .scopes(["todo:read"])
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Refused { error, .. } if error == "invalid_grant"),
        "{e:?}"
    );
}

#[tokio::test]
async fn the_tower_layer_adds_tokens_within_its_resource_only() {
    use mcp_resource_guard::client::{AuthorizeLayer, StaticCredential};
    use tower::{Layer, ServiceExt, service_fn};
    let sent = Arc::new(AtomicUsize::new(0));
    let s = sent.clone();
    let send = service_fn(move |req: http::Request<()>| {
        let s = s.clone();
        async move {
            s.fetch_add(1, Ordering::SeqCst);
            let auth = req.headers().get("authorization").cloned().unwrap();
            assert!(auth.is_sensitive());
            Ok::<_, std::convert::Infallible>(auth)
        }
    });
    let layer = AuthorizeLayer::new(
        StaticCredential::new("k-1"),
        "https://api.example.com/v1",
        ["read"],
    );
    let svc = layer.layer(send);
    let ok = http::Request::get("https://api.example.com/v1/items?x=1")
        .body(())
        .unwrap();
    assert_eq!(svc.clone().oneshot(ok).await.unwrap(), "Bearer k-1");
    for elsewhere in [
        "https://evil.example.com/v1/items",
        "https://api.example.com/v2/items",
        "http://api.example.com/v1/items",
    ] {
        let req = http::Request::get(elsewhere).body(()).unwrap();
        let e = svc.clone().oneshot(req).await.unwrap_err();
        let e = e.downcast_ref::<ClientError>().unwrap();
        assert!(matches!(e, ClientError::WrongAudience { .. }), "{e:?}");
    }
    assert_eq!(sent.load(Ordering::SeqCst), 1, "nothing was sent elsewhere");
    // A token source that fails: the request is not sent either.
    let layer = AuthorizeLayer::new(
        ClientCredentials::builder(
            "http://127.0.0.1:9",
            ClientAuth::client_secret_basic("a", "b"),
        )
        .token_endpoint("http://127.0.0.1:9/token")
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap(),
        "https://api.example.com/v1",
        ["read"],
    );
    let req = http::Request::get("https://api.example.com/v1/items")
        .body(())
        .unwrap();
    let e = layer
        .layer(service_fn(|_: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(())
        }))
        .oneshot(req)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.downcast_ref::<ClientError>(),
            Some(ClientError::Unavailable(_))
        ),
        "an authorization server that is down: {e:?}"
    );
}

#[tokio::test]
async fn redirects_are_not_followed_with_a_token() {
    let issuer = TestIssuer::start().await.unwrap();
    issuer.add_client("agent", "s3cret", ["todo:read"]);
    let base = guarded_server(&issuer).await;
    // A route of the guarded server that redirects to another origin.
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let other = Router::new().route(
        "/",
        get(move || {
            h.fetch_add(1, Ordering::SeqCst);
            async { "other" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, other).await.unwrap() });
    let redirector = Router::new().route(
        "/mcp/go",
        get(move || {
            let to = format!("{other_base}/");
            async move { (http::StatusCode::FOUND, [(http::header::LOCATION, to)]) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirect_base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, redirector).await.unwrap() });
    let client = agent(&issuer, "agent", "s3cret");
    // Authorized at the guarded server first.
    let url = format!("{base}/mcp");
    assert_eq!(client.send(|h| h.get(&url)).await.unwrap().status(), 200);
    let go = format!("{redirect_base}/mcp/go");
    let res = client.send(|h| h.get(&go)).await.unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the redirect was not followed"
    );
}

#[tokio::test]
async fn a_dpop_client_gets_bound_tokens_and_answers_the_guards_nonces() {
    use mcp_resource_guard::client::DpopKey;
    use mcp_resource_guard::dpop::{Dpop, DpopMode};
    let issuer = TestIssuer::start().await.unwrap();
    issuer.add_client("agent", "s3cret", ["todo:read"]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let guard = GuardLayer::builder(format!("{base}/mcp"))
        .add_issuer(Issuer::new(issuer.issuer()).jwks_uri(issuer.jwks_uri()))
        .scopes_supported(["todo:read"])
        .dpop(
            Dpop::new(DpopMode::Required)
                .nonces(mcp_resource_guard::SealedState::new().unwrap(), false),
        )
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/mcp",
            post(
                |h: http::HeaderMap, ctx: mcp_resource_guard::AuthContext| async move {
                    format!(
                        "{} {}",
                        ctx.client_id().unwrap_or_default(),
                        h["authorization"]
                            .to_str()
                            .unwrap()
                            .split(' ')
                            .next()
                            .unwrap()
                    )
                },
            ),
        )
        .layer(guard);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = AuthorizedClient::builder(Grant::client_credentials(
        ClientAuth::client_secret_basic("agent", "s3cret"),
    ))
    .trusted_issuers(TrustedIssuers::new([issuer.issuer()]).unwrap())
    .dpop(DpopKey::generate().unwrap())
    .build()
    .unwrap();
    let url = format!("{base}/mcp");
    // 401 (no token) → a DPoP-bound token → 401 use_dpop_nonce → the
    // retry with the nonce.
    let res = client.send(|h| h.post(&url).body("{}")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "agent DPoP");
    let token = client.token_for(&url, None).await.unwrap();
    assert!(token.is_dpop());
    // The same client without its key: a bound token cannot be had as
    // Bearer, and a guard requiring DPoP refuses Bearer.
    let bearer = agent(&issuer, "agent", "s3cret");
    let res = bearer.send(|h| h.post(&url).body("{}")).await.unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn the_token_endpoints_dpop_nonce_is_used_once_asked_for() {
    use mcp_resource_guard::client::DpopKey;
    // A token endpoint that wants nonce "n-1" in the proof (RFC 9449 §8).
    let proofs = Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let p = proofs.clone();
    let app = Router::new().route(
        "/token",
        post(move |h: http::HeaderMap| {
            let p = p.clone();
            async move {
                let proof = h["dpop"].to_str().unwrap();
                let claims: Value = serde_json::from_slice(
                    &base64_simd::URL_SAFE_NO_PAD
                        .decode_to_vec(proof.split('.').nth(1).unwrap())
                        .unwrap(),
                )
                .unwrap();
                p.lock().unwrap().push(claims.clone());
                if claims["nonce"] == "n-1" {
                    let ok = json!({"access_token": "t", "token_type": "DPoP", "expires_in": 60});
                    (
                        http::StatusCode::OK,
                        [("dpop-nonce", "n-1")],
                        axum::Json(ok),
                    )
                } else {
                    let e = json!({"error": "use_dpop_nonce"});
                    (
                        http::StatusCode::BAD_REQUEST,
                        [("dpop-nonce", "n-1")],
                        axum::Json(e),
                    )
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let cc = ClientCredentials::builder(&base, ClientAuth::client_secret_basic("a", "s"))
        .token_endpoint(format!("{base}/token"))
        .dpop(Arc::new(DpopKey::generate().unwrap()))
        .build()
        .unwrap();
    let t = cc.token(MCP, &[]).await.unwrap();
    assert!(t.is_dpop());
    let seen = proofs.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one challenge, one retry");
    assert_eq!(seen[0]["htu"], format!("{base}/token"));
    assert_eq!(seen[0]["htm"], "POST");
    assert!(seen[0].get("nonce").is_none() && seen[0].get("ath").is_none());
    assert_eq!(seen[1]["nonce"], "n-1");
    assert_ne!(seen[0]["jti"], seen[1]["jti"]);
}
