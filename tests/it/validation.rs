//! SPEC C13–C20: token validation, each rule with a test that fails without it.

use crate::common::*;
use http::StatusCode;
use mcp_resource_guard::jwks::StaticJwks;
use mcp_resource_guard::testing::{TestKey, jwks, sign_hs256, unsigned};
use mcp_resource_guard::{Algorithm, GuardLayer, Issuer, ScopeClaim, TypPolicy};
use serde_json::json;

#[tokio::test]
async fn every_supported_algorithm_verifies() {
    for alg in Algorithm::ALL {
        let r = call(&keys().get(alg).sign(&claims())).await;
        assert_eq!(r.status, StatusCode::OK, "{alg}: {}", r.www());
        assert_eq!(r.json()["sub"], "alice");
    }
}

#[tokio::test]
async fn identity_reaches_the_handler() {
    let r = call(&token(&claims())).await;
    assert_eq!(r.status, StatusCode::OK);
    let j = r.json();
    assert_eq!(j["sub"], "alice");
    assert_eq!(j["client_id"], "agent-1");
    assert_eq!(j["iss"], ISSUER);
    assert_eq!(j["aud"], json!([RESOURCE]));
    assert_eq!(j["scopes"], json!(["todo:read", "todo:write"]));
    assert_eq!(j["jti"], "jti-1");
}

// C13: never `none`, never HS*, algorithm never from the header alone.

#[tokio::test]
async fn alg_none_in_every_casing_is_rejected() {
    let kid = keys().get(Algorithm::ES256).kid().unwrap();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let t = unsigned(&json!({"alg": alg, "typ": "at+jwt", "kid": kid}), &claims());
        assert_invalid(&call(&t).await, INVALID);
        // Even with a "signature" appended.
        let t = format!("{t}c2ln");
        assert_invalid(&call(&t).await, INVALID);
    }
}

#[tokio::test]
async fn hmac_with_the_public_key_as_secret_is_rejected() {
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let k = keys().get(alg);
        let mut secrets = vec![
            k.public_key_bytes(),
            k.public_jwk().to_string().into_bytes(),
        ];
        if let Some(n) = k.public_jwk()["n"].as_str() {
            secrets.push(n.as_bytes().to_vec());
        }
        for secret in secrets {
            for hs in ["HS256", "HS384", "HS512"] {
                let t = sign_hs256(
                    &secret,
                    &json!({"alg": hs, "typ": "at+jwt", "kid": k.kid()}),
                    &claims(),
                );
                assert_invalid(&call(&t).await, INVALID);
            }
        }
    }
}

#[tokio::test]
async fn header_alg_must_match_the_jwk_alg() {
    // An RS256 JWK (alg in the JWK) cannot be used with a PS256 header, even
    // though the signature is a valid PS256 signature by the same RSA key.
    let rs = keys().get(Algorithm::RS256);
    let ps_signer = keys().get(Algorithm::PS256);
    // Same key material is needed for a meaningful test: sign with PS256
    // using a PS256 key but publish it as RS256.
    let jwk = {
        let mut j = ps_signer.public_jwk();
        j["alg"] = json!("RS256");
        j
    };
    let guard = GuardLayer::builder(RESOURCE)
        .add_issuer(
            Issuer::new(ISSUER)
                .key_source(StaticJwks::from_json(json!({"keys": [jwk]}).to_string()).unwrap()),
        )
        .scopes_supported(["todo:read", "todo:write"])
        .build()
        .unwrap();
    let t = ps_signer.sign(&claims());
    let r = send(&app(guard), request("/mcp", Some(&t))).await;
    assert_invalid(&r, INVALID);
    // An ES256 header on an RSA kid.
    let t = rs.sign_with_header(
        &json!({"alg": "ES256", "typ": "at+jwt", "kid": rs.kid()}),
        &claims(),
    );
    assert_invalid(&call(&t).await, INVALID);
}

#[tokio::test]
async fn rsa_jwk_without_alg_is_rs256_unless_the_allow_list_says_otherwise() {
    let ps = keys().get(Algorithm::PS256);
    let rs = keys().get(Algorithm::RS256);
    let set =
        json!({"keys": [ps.public_jwk_without_alg(), rs.public_jwk_without_alg()]}).to_string();
    let build = |issuer: Issuer| {
        app(GuardLayer::builder(RESOURCE)
            .add_issuer(issuer.key_source(StaticJwks::from_json(&set).unwrap()))
            .scopes_supported(["todo:read", "todo:write"])
            .build()
            .unwrap())
    };
    let default = build(Issuer::new(ISSUER));
    let r = send(&default, request("/mcp", Some(&rs.sign(&claims())))).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(&default, request("/mcp", Some(&ps.sign(&claims())))).await;
    assert_invalid(&r, INVALID);

    let ps_only = build(Issuer::new(ISSUER).algorithms([Algorithm::PS256]));
    let r = send(&ps_only, request("/mcp", Some(&ps.sign(&claims())))).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(&ps_only, request("/mcp", Some(&rs.sign(&claims())))).await;
    assert_invalid(&r, INVALID);
}

#[tokio::test]
async fn allow_list_excludes_algorithms() {
    let es = keys().get(Algorithm::ES256);
    let guard = GuardLayer::builder(RESOURCE)
        .add_issuer(
            Issuer::new(ISSUER)
                .key_source(static_jwks(&[es]))
                .algorithms([Algorithm::EdDSA]),
        )
        .scopes_supported(["todo:read", "todo:write"])
        .build()
        .unwrap();
    let r = send(&app(guard), request("/mcp", Some(&es.sign(&claims())))).await;
    assert_invalid(&r, INVALID);
}

#[tokio::test]
async fn tampered_or_stripped_signatures_are_rejected() {
    let t = token(&claims());
    let (input, sig) = t.rsplit_once('.').unwrap();
    assert_invalid(&call(&format!("{input}.")).await, INVALID);
    // Tampered payload, original signature.
    let (h, _) = input.split_once('.').unwrap();
    let evil =
        mcp_resource_guard::testing::unsigned(&json!({}), &claims_with(json!({"sub": "mallory"})));
    let evil_payload = evil.split('.').nth(1).unwrap();
    assert_invalid(&call(&format!("{h}.{evil_payload}.{sig}")).await, INVALID);
    // A signature from another key under our kid.
    let es = keys().get(Algorithm::ES256);
    let forged = keys().stranger.sign_with_header(
        &json!({"alg": "ES256", "typ": "at+jwt", "kid": es.kid()}),
        &claims(),
    );
    assert_invalid(&call(&forged).await, INVALID);
}

#[tokio::test]
async fn unknown_kid_is_rejected() {
    let r = call(&keys().stranger.sign(&claims())).await;
    assert_invalid(&r, UNKNOWN_KEY);
}

#[tokio::test]
async fn a_token_without_kid_is_tried_against_the_keys() {
    let es = keys().get(Algorithm::ES256);
    let t = es.sign_with_header(&json!({"alg": "ES256", "typ": "at+jwt"}), &claims());
    assert_eq!(call(&t).await.status, StatusCode::OK);
    let t = keys()
        .stranger
        .sign_with_header(&json!({"alg": "ES256", "typ": "at+jwt"}), &claims());
    assert_invalid(&call(&t).await, INVALID);
}

#[tokio::test]
async fn malformed_tokens_are_rejected() {
    let t = token(&claims());
    let too_long = "a".repeat(9000);
    for bad in [
        "abc",
        "a.b",
        "a.b.c.d",
        "e30.e30.e30",
        "~~~.e30.c2ln",
        "e30.e30.c2ln==",
        &format!("{t}.x.y"),
        too_long.as_str(),
    ] {
        let r = send(
            &app(guard()),
            http::Request::get("/mcp")
                .header("authorization", format!("Bearer {bad}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
        assert_invalid(&r, INVALID);
    }
}

// C14: iss exact; keys belong to their issuer.

#[tokio::test]
async fn issuer_must_match_exactly() {
    for iss in [
        json!("https://as.example.com/"),
        json!("https://AS.example.com"),
        json!("https://evil.example.com"),
        json!(["https://as.example.com"]),
    ] {
        assert_invalid(
            &call(&token(&claims_with(json!({"iss": iss})))).await,
            UNTRUSTED,
        );
    }
    assert_invalid(
        &call(&token(&claims_with(json!({"iss": null})))).await,
        UNTRUSTED,
    );
}

#[tokio::test]
async fn a_key_of_another_trusted_issuer_does_not_verify() {
    // Signed by the other issuer's key but claiming our issuer.
    let t = keys().other.sign(&claims());
    assert_invalid(&call(&t).await, UNKNOWN_KEY);
    // The other issuer's own token is fine.
    let t = keys()
        .other
        .sign(&claims_with(json!({"iss": OTHER_ISSUER})));
    assert_eq!(call(&t).await.status, StatusCode::OK);
}

// C15: aud contains the canonical resource.

#[tokio::test]
async fn audience_must_contain_this_resource() {
    for aud in [
        json!(null),
        json!("https://other.example.com/mcp"),
        json!(["https://other.example.com/mcp"]),
        json!("https://mcp.example.com/mcp/"),
        json!("https://MCP.example.com/mcp"),
        json!("https://mcp.example.com"),
        json!([]),
        json!(5),
    ] {
        let r = call(&token(&claims_with(json!({"aud": aud.clone()})))).await;
        assert_invalid(&r, WRONG_AUD);
    }
    let r = call(&token(&claims_with(
        json!({"aud": ["https://other.example.com", RESOURCE]}),
    )))
    .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn a_root_resource_accepts_its_url_with_or_without_the_slash() {
    let k = keys();
    let root = mcp_resource_guard::GuardLayer::builder("https://mcp.example.com/")
        .add_issuer(
            mcp_resource_guard::Issuer::new(ISSUER)
                .key_source(static_jwks(&[k.get(mcp_resource_guard::Algorithm::ES256)])),
        )
        .scopes_supported(["todo:read", "todo:write"])
        .build()
        .unwrap();
    assert_eq!(root.resource().as_str(), "https://mcp.example.com");
    let app = app(root);
    for aud in ["https://mcp.example.com", "https://mcp.example.com/"] {
        let t = token(&claims_with(json!({"aud": aud})));
        let r = send(&app, request("/mcp", Some(&t))).await;
        assert_eq!(r.status, StatusCode::OK, "{aud}");
    }
    // Nothing else is loosened.
    let challenge = "Bearer error=\"invalid_token\", error_description=\"The access token was not issued for this resource\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource\", scope=\"todo:read todo:write\"";
    for aud in [
        "https://mcp.example.com//",
        "https://mcp.example.com/mcp",
        "https://MCP.example.com/",
        "https://mcp.example.com:443/",
        "http://mcp.example.com/",
    ] {
        let t = token(&claims_with(json!({"aud": aud})));
        let r = send(&app, request("/mcp", Some(&t))).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{aud}");
        assert_eq!(r.www(), challenge, "{aud}");
    }
}

#[tokio::test]
async fn additional_audiences_are_opt_in() {
    let guard = builder_with_issuer(|i| i.add_audience("api://todo"))
        .build()
        .unwrap();
    let t = token(&claims_with(json!({"aud": "api://todo"})));
    let r = send(&app(guard), request("/mcp", Some(&t))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_invalid(&call(&t).await, WRONG_AUD);
}

// C16: exp required and in the future; nbf/iat not in the future.

#[tokio::test]
async fn expiry_and_not_before() {
    let n = now();
    assert_invalid(
        &call(&token(&claims_with(json!({"exp": null})))).await,
        INVALID,
    );
    assert_invalid(
        &call(&token(&claims_with(json!({"exp": "9999999999"})))).await,
        INVALID,
    );
    assert_invalid(
        &call(&token(&claims_with(json!({"exp": n - 61})))).await,
        EXPIRED,
    );
    assert_invalid(
        &call(&token(&claims_with(json!({"exp": n - 3600})))).await,
        EXPIRED,
    );
    // Within the default 60 s leeway.
    assert_eq!(
        call(&token(&claims_with(json!({"exp": n - 30}))))
            .await
            .status,
        StatusCode::OK
    );
    assert_invalid(
        &call(&token(&claims_with(json!({"nbf": n + 120})))).await,
        NOT_YET,
    );
    assert_eq!(
        call(&token(&claims_with(json!({"nbf": n + 30}))))
            .await
            .status,
        StatusCode::OK
    );
    assert_invalid(
        &call(&token(&claims_with(json!({"iat": n + 3600})))).await,
        NOT_YET,
    );
    assert_invalid(
        &call(&token(&claims_with(json!({"nbf": "soon"})))).await,
        INVALID,
    );
}

#[tokio::test]
async fn leeway_is_configurable() {
    let guard = builder().leeway(std::time::Duration::ZERO).build().unwrap();
    let t = token(&claims_with(json!({"exp": now() - 2})));
    let r = send(&app(guard), request("/mcp", Some(&t))).await;
    assert_invalid(&r, EXPIRED);
    assert!(
        builder()
            .leeway(std::time::Duration::from_secs(301))
            .build()
            .is_err()
    );
}

// C17: typ.

#[tokio::test]
async fn typ_policy() {
    let es = keys().get(Algorithm::ES256);
    let with_typ = |typ: Option<&str>| {
        let mut h = json!({"alg": "ES256", "kid": es.kid()});
        if let Some(t) = typ {
            h["typ"] = json!(t);
        }
        es.sign_with_header(&h, &claims())
    };
    for ok in [
        "at+jwt",
        "AT+JWT",
        "application/at+jwt",
        "Application/AT+JWT",
    ] {
        assert_eq!(
            call(&with_typ(Some(ok))).await.status,
            StatusCode::OK,
            "{ok}"
        );
    }
    for bad in [
        Some("JWT"),
        None,
        Some("jwt"),
        Some("dpop+jwt"),
        Some("at+jwt2"),
    ] {
        assert_invalid(&call(&with_typ(bad)).await, INVALID);
    }
    let lenient = app(builder().typ_policy(TypPolicy::AllowJwt).build().unwrap());
    for ok in [Some("JWT"), None, Some("at+jwt")] {
        let r = send(&lenient, request("/mcp", Some(&with_typ(ok)))).await;
        assert_eq!(r.status, StatusCode::OK, "{ok:?}");
    }
    let r = send(&lenient, request("/mcp", Some(&with_typ(Some("dpop+jwt"))))).await;
    assert_invalid(&r, INVALID);
    // An OIDC ID token (nonce, azp) is refused even where JWT is allowed.
    let id_token = es.sign_with_header(
        &json!({"alg": "ES256", "typ": "JWT", "kid": es.kid()}),
        &claims_with(json!({"nonce": "n-0S6_WzA2Mj", "azp": "agent-1"})),
    );
    let r = send(&lenient, request("/mcp", Some(&id_token))).await;
    assert_invalid(&r, INVALID);
}

// C18: jku/x5u/jwk/x5c never followed; crit honoured.

#[tokio::test]
async fn key_url_headers_are_never_fetched() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let attacker = &keys().stranger;
    let es = keys().get(Algorithm::ES256);
    for (name, value) in [
        ("jku", json!(url)),
        ("x5u", json!(url)),
        ("jwk", attacker.public_jwk()),
        ("x5c", json!(["MIIB"])),
    ] {
        // The attacker's key signs, pointing at its own key material.
        let mut h = json!({"alg": "ES256", "typ": "at+jwt", "kid": attacker.kid()});
        h[name] = value.clone();
        assert_invalid(
            &call(&attacker.sign_with_header(&h, &claims())).await,
            UNKNOWN_KEY,
        );
        // A legitimately signed token with such a header still verifies with
        // our own key; the header is ignored.
        let mut h = json!({"alg": "ES256", "typ": "at+jwt", "kid": es.kid()});
        h[name] = value;
        assert_eq!(
            call(&es.sign_with_header(&h, &claims())).await.status,
            StatusCode::OK
        );
    }
    assert!(
        listener.accept().is_err(),
        "the guard connected to a URL taken from a token header"
    );
}

#[tokio::test]
async fn critical_headers_are_rejected() {
    let es = keys().get(Algorithm::ES256);
    for crit in [json!(["exp"]), json!(["b64"]), json!([]), json!("x")] {
        let h = json!({"alg": "ES256", "typ": "at+jwt", "kid": es.kid(), "crit": crit, "exp": 1});
        assert_invalid(&call(&es.sign_with_header(&h, &claims())).await, INVALID);
    }
}

#[tokio::test]
async fn nested_and_encrypted_tokens_are_rejected() {
    let es = keys().get(Algorithm::ES256);
    let h = json!({"alg": "ES256", "typ": "at+jwt", "kid": es.kid(), "cty": "JWT"});
    assert_invalid(&call(&es.sign_with_header(&h, &claims())).await, INVALID);
    let jwe = "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d";
    assert_invalid(&call(jwe).await, INVALID);
}

// C19: scope claim shapes.

#[tokio::test]
async fn scope_claim_shapes() {
    let cases = [
        (json!({"scope": "a b"}), json!(["a", "b"])),
        (json!({"scope": null, "scp": ["a", "b"]}), json!(["a", "b"])),
        (json!({"scope": null, "scp": "a b"}), json!(["a", "b"])),
        (json!({"scope": null, "scopes": ["x"]}), json!(["x"])),
        (
            json!({"scope": null, "permissions": ["p:1"]}),
            json!(["p:1"]),
        ),
        (json!({"scope": null}), json!([])),
    ];
    for (change, want) in cases {
        let r = call(&token(&claims_with(change.clone()))).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["scopes"], want, "{change}");
    }
    let guard = builder_with_issuer(|i| i.scope_claim(ScopeClaim::named("roles")))
        .build()
        .unwrap();
    let t = token(&claims_with(json!({"roles": ["admin"]})));
    let r = send(&app(guard), request("/mcp", Some(&t))).await;
    assert_eq!(r.json()["scopes"], json!(["admin"]));
    assert_invalid(
        &call(&token(&claims_with(json!({"scope": 42})))).await,
        INVALID,
    );
}

// C20: cnf-bound tokens are not Bearer tokens.

#[tokio::test]
async fn sender_constrained_tokens_are_rejected_as_bearer() {
    let t = token(&claims_with(
        json!({"cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}),
    ));
    assert_invalid(&call(&t).await, INVALID);
}

#[tokio::test]
async fn ed25519_keys_without_alg_or_kid_work() {
    let k = TestKey::generate(Algorithm::EdDSA).unwrap().without_kid();
    let set = json!({"keys": [k.public_jwk_without_alg()]}).to_string();
    let guard = GuardLayer::builder(RESOURCE)
        .add_issuer(Issuer::new(ISSUER).key_source(StaticJwks::from_json(set).unwrap()))
        .build()
        .unwrap();
    let r = send(&app(guard), request("/mcp", Some(&k.sign(&claims())))).await;
    assert_eq!(r.status, StatusCode::OK);
    let _ = jwks(&[&k]);
}

// The verifier and the guard each enforce issuer and audience on their own.

#[tokio::test]
async fn the_verifier_itself_checks_issuer_and_audience() {
    let v = mcp_resource_guard::fuzzing::verifier(&guard());
    let verify = |c: serde_json::Value| {
        let v = v.clone();
        async move {
            v.verify(&mcp_resource_guard::BearerToken::new(token(&c)))
                .await
                .map(|_| ())
                .map_err(|e| e.kind())
        }
    };
    use mcp_resource_guard::AuthErrorKind as K;
    assert_eq!(verify(claims()).await, Ok(()));
    assert_eq!(
        verify(claims_with(json!({"aud": "https://x"}))).await,
        Err(K::WrongAudience)
    );
    assert_eq!(
        verify(claims_with(json!({"iss": "https://x"}))).await,
        Err(K::UntrustedIssuer)
    );
    assert_eq!(
        verify(claims_with(json!({"exp": now() - 999}))).await,
        Err(K::Expired)
    );
}

#[derive(Debug)]
struct Lenient(serde_json::Value);

#[async_trait::async_trait]
impl mcp_resource_guard::TokenVerifier for Lenient {
    async fn verify(
        &self,
        _token: &mcp_resource_guard::BearerToken,
    ) -> Result<mcp_resource_guard::AuthContext, mcp_resource_guard::AuthError> {
        mcp_resource_guard::AuthContext::from_claims(
            self.0.as_object().unwrap().clone(),
            &ScopeClaim::Auto,
        )
    }
}

#[tokio::test]
async fn the_guard_rechecks_what_a_custom_verifier_returns() {
    let guard_for = |c: serde_json::Value| {
        app(GuardLayer::builder(RESOURCE)
            .add_issuer(Issuer::new(ISSUER))
            .scopes_supported(["todo:read", "todo:write"])
            .verifier(Lenient(c))
            .build()
            .unwrap())
    };
    let r = send(&guard_for(claims()), request("/mcp", Some("opaque"))).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(
        &guard_for(claims_with(json!({"aud": "https://x"}))),
        request("/mcp", Some("opaque")),
    )
    .await;
    assert_invalid(&r, WRONG_AUD);
    let r = send(
        &guard_for(claims_with(json!({"iss": "https://x"}))),
        request("/mcp", Some("opaque")),
    )
    .await;
    assert_invalid(&r, UNTRUSTED);
}

#[tokio::test]
async fn a_repeated_registered_claim_is_rejected() {
    let es = keys().get(Algorithm::ES256);
    // Two `aud` members: a parser that keeps the last one would see us.
    let h = b64(json!({"alg": "ES256", "typ": "at+jwt", "kid": es.kid()})
        .to_string()
        .as_bytes());
    let payload = format!(
        r#"{{"iss":"{ISSUER}","aud":"https://other.example.com","aud":"{RESOURCE}","exp":{},"sub":"alice"}}"#,
        now() + 300
    );
    let input = format!("{h}.{}", b64(payload.as_bytes()));
    let sig = es.sign_bytes(input.as_bytes()).unwrap();
    let t = format!("{input}.{}", b64(&sig));
    assert_invalid(&call(&t).await, INVALID);
}

#[tokio::test]
async fn every_claim_reaches_the_context() {
    #[derive(serde::Deserialize)]
    struct Custom {
        tenant: serde_json::Value,
        sub: String,
    }
    let v = mcp_resource_guard::fuzzing::verifier(&guard());
    let t = token(&claims_with(json!({"tenant": {"id": "t1", "tags": ["a"]}})));
    let ctx = v
        .verify(&mcp_resource_guard::BearerToken::new(t))
        .await
        .unwrap();
    assert_eq!(
        ctx.claim::<serde_json::Value>("tenant").unwrap().unwrap()["id"],
        "t1"
    );
    assert_eq!(
        ctx.claim::<String>("jti").unwrap().as_deref(),
        Some("jti-1")
    );
    let c: Custom = ctx.deserialize_claims().unwrap();
    assert_eq!(
        (c.sub.as_str(), &c.tenant["tags"][0]),
        ("alice", &json!("a"))
    );
}
