//! The attack corpus: hostile tokens and requests, each with the exact
//! status and `WWW-Authenticate` the guard must answer. Every case goes
//! through the whole tower stack (axum router + `GuardLayer`); the default
//! test guard trusts two issuers with static keys, leeway 60 s.
//!
//! The same rules are tested one by one in `validation.rs` and
//! `challenges.rs`; this file is the catalogue an auditor reads.

use std::net::TcpListener;

use crate::common::*;
use axum::body::Body;
use http::{Request, StatusCode};
use mcp_resource_guard::Algorithm;
use mcp_resource_guard::testing::{TestKey, sign_hs256, unsigned};
use serde_json::{Value, json};

const MALFORMED: &str = "Bearer error=\"invalid_request\", error_description=\"The request is malformed\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\", scope=\"todo:read todo:write\"";

/// What the guard must answer.
enum Expect {
    /// 200: the attack is not one (a positive control).
    Ok,
    /// 401 `invalid_token` with this description.
    Invalid(&'static str),
    /// 400 `invalid_request`.
    Malformed,
    /// 401 without `error` (no usable credentials).
    Plain,
}

struct Case {
    name: &'static str,
    request: Request<Body>,
    expect: Expect,
}

fn es() -> &'static TestKey {
    keys().get(Algorithm::ES256)
}

fn rs() -> &'static TestKey {
    keys().get(Algorithm::RS256)
}

fn header(key: &TestKey, extra: Value) -> Value {
    let mut h = json!({"alg": key.algorithm().as_str(), "typ": "at+jwt", "kid": key.kid()});
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            h.as_object_mut().unwrap().remove(k);
        } else {
            h[k] = v.clone();
        }
    }
    h
}

/// A token over these exact header and payload texts, validly signed by our
/// ES256 key.
fn signed(header_text: &str, payload: &str) -> String {
    let input = format!(
        "{}.{}",
        b64(header_text.as_bytes()),
        b64(payload.as_bytes())
    );
    format!(
        "{input}.{}",
        b64(&es().sign_bytes(input.as_bytes()).unwrap())
    )
}

/// A token over this exact payload text with our usual header.
fn signed_payload(payload: &str) -> String {
    signed(&header(es(), json!({})).to_string(), payload)
}

fn bearer(token: &str) -> Request<Body> {
    request("/mcp", Some(token))
}

fn raw_authorization(value: &[u8]) -> Request<Body> {
    Request::get("/mcp")
        .header(
            "authorization",
            http::HeaderValue::from_bytes(value).unwrap(),
        )
        .body(Body::empty())
        .unwrap()
}

fn corpus(jku_url: &str) -> Vec<Case> {
    use Expect::*;
    let mut cases = Vec::new();
    let mut add = |name, request, expect| {
        cases.push(Case {
            name,
            request,
            expect,
        })
    };
    let good = token(&claims());

    // Positive controls: without them every rejection below could be a
    // guard that rejects everything.
    add("control: a valid ES256 token", bearer(&good), Ok);
    add(
        "control: lowercase scheme",
        raw_authorization(format!("bearer {good}").as_bytes()),
        Ok,
    );
    add(
        "control: aud array holding us among others",
        bearer(&token(&claims_with(
            json!({"aud": ["https://a.example", RESOURCE]}),
        ))),
        Ok,
    );
    add(
        "control: a fractional exp (RFC 7519 NumericDate)",
        bearer(&token(&claims_with(json!({"exp": now() as f64 + 300.5})))),
        Ok,
    );

    // alg none in every casing, with and without a trailing "signature".
    for (name, alg) in [
        ("alg none", "none"),
        ("alg None", "None"),
        ("alg NONE", "NONE"),
        ("alg nOnE", "nOnE"),
    ] {
        let t = unsigned(&header(es(), json!({"alg": alg})), &claims());
        add(name, bearer(&t), Invalid(INVALID));
    }
    let t = unsigned(&header(es(), json!({"alg": "none"})), &claims());
    add(
        "alg none with a signature appended",
        bearer(&format!("{t}c2ln")),
        Invalid(INVALID),
    );

    // Algorithm confusion: HMAC keyed with the public key.
    let rsa_der = rs().public_key_bytes();
    for (name, alg) in [
        ("HS256 keyed with the RSA public key", "HS256"),
        ("HS384 keyed with the RSA public key", "HS384"),
        ("HS512 keyed with the RSA public key", "HS512"),
    ] {
        let t = sign_hs256(&rsa_der, &header(rs(), json!({"alg": alg})), &claims());
        add(name, bearer(&t), Invalid(INVALID));
    }
    let t = sign_hs256(
        rs().public_jwk().to_string().as_bytes(),
        &header(rs(), json!({"alg": "HS256"})),
        &claims(),
    );
    add(
        "HS256 keyed with the JWK text",
        bearer(&t),
        Invalid(INVALID),
    );
    let t = sign_hs256(
        &es().public_key_bytes(),
        &header(es(), json!({"alg": "HS256"})),
        &claims(),
    );
    add(
        "HS256 keyed with the EC public point",
        bearer(&t),
        Invalid(INVALID),
    );
    // Another asymmetric algorithm than the key's.
    let t = es().sign_with_header(&header(rs(), json!({"alg": "ES256"})), &claims());
    add(
        "ES256 header naming the RSA key's kid",
        bearer(&t),
        Invalid(INVALID),
    );
    let t = rs().sign_with_header(&header(rs(), json!({"alg": "PS256"})), &claims());
    add(
        "PS256 header over an RS256 signature with the RS256 key",
        bearer(&t),
        Invalid(INVALID),
    );

    // Keys of the wrong issuer.
    let other = &keys().other;
    add(
        "our iss, signed by the other trusted issuer's key (its kid)",
        bearer(&other.sign(&claims())),
        Invalid(UNKNOWN_KEY),
    );
    add(
        "the other issuer's iss, signed by our key (our kid)",
        bearer(&token(&claims_with(json!({"iss": OTHER_ISSUER})))),
        Invalid(UNKNOWN_KEY),
    );

    // Key-carrying headers are ignored and never fetched.
    let attacker = &keys().stranger;
    for (name, param, value) in [
        ("jku to the attacker's JWKS", "jku", json!(jku_url)),
        ("x5u to the attacker's certificate", "x5u", json!(jku_url)),
        ("embedded jwk of the attacker", "jwk", attacker.public_jwk()),
        ("x5c chain of the attacker", "x5c", json!(["MIIBIjANBgkq"])),
    ] {
        let mut h = header(attacker, json!({}));
        h[param] = value;
        add(
            name,
            bearer(&attacker.sign_with_header(&h, &claims())),
            Invalid(UNKNOWN_KEY),
        );
    }
    add(
        "unknown crit",
        bearer(&es().sign_with_header(
            &header(es(), json!({"crit": ["urn:x"], "urn:x": 1})),
            &claims(),
        )),
        Invalid(INVALID),
    );

    // Signature games.
    let (input, _) = good.rsplit_once('.').unwrap();
    add(
        "signature stripped",
        bearer(&format!("{input}.")),
        Invalid(INVALID),
    );
    add(
        "signature of another token",
        bearer(&format!(
            "{input}.{}",
            token(&claims_with(json!({"sub": "bob"})))
                .rsplit_once('.')
                .unwrap()
                .1
        )),
        Invalid(INVALID),
    );
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] = b64(claims_with(json!({"sub": "admin"})).to_string().as_bytes());
    add(
        "payload tampered",
        bearer(&parts.join(".")),
        Invalid(INVALID),
    );
    add(
        "unknown kid",
        bearer(&es().sign_with_header(&header(es(), json!({"kid": "nope"})), &claims())),
        Invalid(UNKNOWN_KEY),
    );

    // ID tokens presented as access tokens.
    let id = claims_with(json!({"nonce": "n-1", "azp": "agent-1"}));
    add(
        "OIDC ID token (typ JWT, nonce, azp)",
        bearer(&es().sign_with_header(&header(es(), json!({"typ": "JWT"})), &id)),
        Invalid(INVALID),
    );
    add(
        "OIDC ID token without typ",
        bearer(&es().sign_with_header(&header(es(), json!({"typ": null})), &id)),
        Invalid(INVALID),
    );
    add(
        "at+jwt carrying a nonce",
        bearer(&token(&id)),
        Invalid(INVALID),
    );

    // Time.
    add(
        "expired one second past the leeway",
        bearer(&token(&claims_with(json!({"exp": now() - 61})))),
        Invalid(EXPIRED),
    );
    add(
        "nbf an hour ahead",
        bearer(&token(&claims_with(json!({"nbf": now() + 3600})))),
        Invalid(NOT_YET),
    );
    add(
        "iat a year ahead",
        bearer(&token(&claims_with(json!({"iat": now() + 365 * 86400})))),
        Invalid(NOT_YET),
    );
    add(
        "exp missing",
        bearer(&token(&claims_with(json!({"exp": null})))),
        Invalid(INVALID),
    );
    add(
        "exp a string",
        bearer(&token(&claims_with(
            json!({"exp": (now() + 300).to_string()}),
        ))),
        Invalid(INVALID),
    );
    add(
        "exp a fractional number in the past",
        bearer(&token(&claims_with(json!({"exp": 1.5})))),
        Invalid(EXPIRED),
    );
    add(
        "exp negative",
        bearer(&token(&claims_with(json!({"exp": -1})))),
        Invalid(INVALID),
    );
    add(
        "exp a boolean",
        bearer(&token(&claims_with(json!({"exp": true})))),
        Invalid(INVALID),
    );
    // Out of range for any JSON number parser: the payload is not JSON we
    // accept. (A huge but representable exp is the issuer's business; the
    // token cache still holds it for at most 5 minutes.)
    let huge = claims()
        .to_string()
        .replacen("\"exp\":", "\"exp\":1e400,\"x\":", 1);
    add(
        "exp absurdly large (1e400)",
        bearer(&signed_payload(&huge)),
        Invalid(INVALID),
    );

    // Audience.
    add(
        "aud missing",
        bearer(&token(&claims_with(json!({"aud": null})))),
        Invalid(WRONG_AUD),
    );
    add(
        "aud array without us",
        bearer(&token(&claims_with(
            json!({"aud": ["https://a.example", "https://mcp.example.com"]}),
        ))),
        Invalid(WRONG_AUD),
    );
    add(
        "aud with a trailing slash",
        bearer(&token(&claims_with(json!({"aud": format!("{RESOURCE}/")})))),
        Invalid(WRONG_AUD),
    );
    add(
        "aud in another case",
        bearer(&token(&claims_with(
            json!({"aud": "HTTPS://MCP.EXAMPLE.COM/mcp"}),
        ))),
        Invalid(WRONG_AUD),
    );
    add(
        "aud repeated (second one is ours)",
        bearer(&signed_payload(&claims().to_string().replacen(
            "\"aud\":",
            "\"aud\":\"https://a.example\",\"aud\":",
            1,
        ))),
        Invalid(INVALID),
    );

    // Issuer.
    add(
        "iss with a trailing slash",
        bearer(&token(&claims_with(json!({"iss": format!("{ISSUER}/")})))),
        Invalid(UNTRUSTED),
    );
    add(
        "iss in another case",
        bearer(&token(&claims_with(
            json!({"iss": "https://AS.example.com"}),
        ))),
        Invalid(UNTRUSTED),
    );

    // Structure.
    add(
        "nested JWT (cty JWT)",
        bearer(&es().sign_with_header(&header(es(), json!({"cty": "JWT"})), &claims())),
        Invalid(INVALID),
    );
    add(
        "JWE (five segments)",
        bearer("eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d"),
        Invalid(INVALID),
    );
    add(
        "a 1 MiB token",
        bearer(&format!(
            "{}.{}",
            &good[..good.len() - 10],
            "A".repeat(1 << 20)
        )),
        Invalid(INVALID),
    );
    // A claim set is a JSON object; serde would read an array positionally
    // into iss, aud, exp.
    add(
        "payload a JSON array laid out as iss, aud, exp",
        bearer(&signed_payload(
            &json!([ISSUER, RESOURCE, now() + 300]).to_string(),
        )),
        Invalid(INVALID),
    );
    add(
        "header a JSON array laid out as alg, kid, typ",
        bearer(&signed(
            &json!(["ES256", es().kid(), "at+jwt", null, null]).to_string(),
            &claims().to_string(),
        )),
        Invalid(INVALID),
    );
    add(
        "header not JSON",
        bearer(&format!("{}.e30.AA", b64(b"{alg"))),
        Invalid(INVALID),
    );

    // Characters no token68 holds.
    add(
        "non-ASCII bytes in the token",
        raw_authorization(format!("Bearer {}\u{e9}", &good[..20]).as_bytes()),
        Malformed,
    );
    add(
        "a control character (tab) in the token",
        raw_authorization(format!("Bearer {}\t{}", &good[..20], &good[20..]).as_bytes()),
        Malformed,
    );
    add(
        "a quote in the token",
        raw_authorization(format!("Bearer {}\"", &good).as_bytes()),
        Malformed,
    );

    // Claims that would break the challenge header if echoed into it.
    add(
        "CR/LF and quotes in iss",
        bearer(&token(&claims_with(
            json!({"iss": "https://as.example.com\"\r\nX-Evil: 1"}),
        ))),
        Invalid(UNTRUSTED),
    );
    add(
        "CR/LF and quotes in aud",
        bearer(&token(&claims_with(
            json!({"aud": "\", error=\"none\r\nSet-Cookie: a=b"}),
        ))),
        Invalid(WRONG_AUD),
    );

    // Transport of the token.
    add(
        "two Authorization headers",
        Request::get("/mcp")
            .header("authorization", format!("Bearer {good}"))
            .header("authorization", format!("Bearer {good}"))
            .body(Body::empty())
            .unwrap(),
        Malformed,
    );
    add(
        "the token in the query string as well",
        request(&format!("/mcp?access_token={good}"), Some(&good)),
        Malformed,
    );
    add(
        "the token only in the query string",
        request(&format!("/mcp?access_token={good}"), None),
        Malformed,
    );
    add(
        "Bearer with no token",
        raw_authorization(b"Bearer "),
        Malformed,
    );
    add(
        "another scheme",
        raw_authorization(b"Basic YWxpY2U6c2VjcmV0"),
        Plain,
    );
    add(
        "cnf-bound (DPoP/mTLS) token presented as Bearer",
        bearer(&token(&claims_with(json!({"cnf": {"jkt": "0ZcOCORZNYy"}})))),
        Invalid(INVALID),
    );
    add(
        "cnf present as null",
        bearer(&signed_payload(&claims().to_string().replacen(
            "\"aud\":",
            "\"cnf\":null,\"aud\":",
            1,
        ))),
        Invalid(INVALID),
    );
    cases
}

#[tokio::test]
async fn every_attack_gets_the_exact_answer() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let cases = corpus(&url);
    assert_eq!(
        cases.len(),
        64,
        "the catalogue in SECURITY.md counts 64 cases"
    );
    let app = app(guard());
    let mut failures = Vec::new();
    for case in cases {
        let r = send(&app, case.request).await;
        let (status, www, body) = match case.expect {
            Expect::Ok => (StatusCode::OK, String::new(), None),
            Expect::Invalid(d) => (
                StatusCode::UNAUTHORIZED,
                invalid_token(d),
                Some(json!({"error": "invalid_token", "error_description": d})),
            ),
            Expect::Malformed => (
                StatusCode::BAD_REQUEST,
                MALFORMED.to_owned(),
                Some(
                    json!({"error": "invalid_request", "error_description": "The request is malformed"}),
                ),
            ),
            Expect::Plain => (StatusCode::UNAUTHORIZED, PLAIN_CHALLENGE.to_owned(), None),
        };
        let body_ok = match &body {
            Some(b) => serde_json::from_str::<Value>(&r.body).ok().as_ref() == Some(b),
            None => true,
        };
        if r.status != status || r.www() != www || !body_ok {
            failures.push(format!(
                "{}: got {} {:?} {}, want {} {:?}",
                case.name,
                r.status,
                r.www(),
                r.body,
                status,
                www
            ));
        }
        if !r.www().is_empty() {
            assert_challenge_grammar(r.www());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        listener.accept().is_err(),
        "the guard connected to a URL taken from a token header"
    );
}
