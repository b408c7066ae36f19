//! Property tests of the parsers the fuzz targets (`fuzz/`) exercise: the
//! Authorization header parser, the JWT verifier's pre-parse, the JWK Set
//! parser, the MCP body peek and the resource URI form the MCP policy
//! judges. They run in the normal test command.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use crate::common::*;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue, Uri};
use mcp_resource_guard::fuzzing::{
    Authorization, PeekedCall, normalize_resource_uri, parse_authorization, peek_jsonrpc,
};
use mcp_resource_guard::jwks::KeySet;
use mcp_resource_guard::testing::{TestKey, jwks};
use mcp_resource_guard::{Algorithm, AuthErrorKind, BearerToken, TokenVerifier};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Polls a future that never waits (static keys).
fn now_ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("static keys never wait"),
    }
}

fn verifier() -> &'static Arc<dyn TokenVerifier> {
    static V: OnceLock<Arc<dyn TokenVerifier>> = OnceLock::new();
    V.get_or_init(|| mcp_resource_guard::fuzzing::verifier(&guard()))
}

fn headers(values: &[&[u8]]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in values {
        h.append(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
    }
    h
}

const TOKEN68: &str = "[A-Za-z0-9._~+/-]{1,200}={0,2}";

/// Arbitrary JSON of bounded depth.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[ -~]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    // Authorization header.

    #[test]
    fn a_token68_after_bearer_comes_out_unchanged(
        t in TOKEN68,
        scheme in "(?i)bearer",
        spaces in 1usize..4,
    ) {
        let h = format!("{scheme}{}{t}", " ".repeat(spaces));
        let got = parse_authorization(&headers(&[h.as_bytes()]), &Uri::from_static("/mcp"));
        prop_assert_eq!(got, Ok(Authorization::Bearer(t)));
    }

    #[test]
    fn any_header_bytes_parse_without_panic(
        value in prop::collection::vec(any::<u8>(), 0..300),
        query in "[ -~]{0,40}",
    ) {
        let Ok(v) = HeaderValue::from_bytes(&value) else { return Ok(()) };
        let uri = format!("/mcp?{}", query.replace(['#', ' '], ""))
            .parse::<Uri>()
            .unwrap_or(Uri::from_static("/mcp"));
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, v);
        if let Ok(Authorization::Bearer(t)) = parse_authorization(&h, &uri) {
            // What comes out is a token68 taken from the end of the header.
            prop_assert!(value.ends_with(t.as_bytes()));
            prop_assert!(!t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()));
        }
    }

    #[test]
    fn two_headers_or_a_query_token_are_malformed(a in TOKEN68, b in TOKEN68) {
        let root = Uri::from_static("/mcp");
        let two = headers(&[format!("Bearer {a}").as_bytes(), format!("Bearer {b}").as_bytes()]);
        prop_assert_eq!(parse_authorization(&two, &root), Err(AuthErrorKind::MalformedRequest));
        let one = headers(&[format!("Bearer {a}").as_bytes()]);
        let q: Uri = format!("/mcp?x=1&access_token={}", b.replace(['+', '/', '='], "x")).parse().unwrap();
        prop_assert_eq!(parse_authorization(&one, &q), Err(AuthErrorKind::MalformedRequest));
    }

    // JWT pre-parse.

    #[test]
    fn arbitrary_strings_never_verify(s in "\\PC{0,400}") {
        prop_assert!(now_ready(verifier().verify(&BearerToken::new(s))).is_err());
    }

    #[test]
    fn arbitrary_dpop_proofs_are_refused(s in "\\PC{0,400}") {
        prop_assert_eq!(
            mcp_resource_guard::fuzzing::check_dpop_proof(s.as_bytes()),
            Err(mcp_resource_guard::AuthErrorKind::InvalidDpopProof)
        );
    }

    #[test]
    fn dpop_proofs_of_arbitrary_json_segments_are_refused(
        header in json_value(),
        payload in json_value(),
        sig in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        let p = format!("{}.{}.{}", b64(header.to_string().as_bytes()), b64(payload.to_string().as_bytes()), b64(&sig));
        prop_assert_eq!(
            mcp_resource_guard::fuzzing::check_dpop_proof(p.as_bytes()),
            Err(mcp_resource_guard::AuthErrorKind::InvalidDpopProof)
        );
    }

    #[test]
    fn arbitrary_json_segments_never_verify(
        header in json_value(),
        payload in json_value(),
        sig in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        let t = format!("{}.{}.{}", b64(header.to_string().as_bytes()), b64(payload.to_string().as_bytes()), b64(&sig));
        prop_assert!(now_ready(verifier().verify(&BearerToken::new(t))).is_err());
    }

    #[test]
    fn changing_any_character_of_a_valid_token_invalidates_it(
        pos in any::<prop::sample::Index>(),
        c in "[A-Za-z0-9_.-]",
    ) {
        static GOOD: OnceLock<String> = OnceLock::new();
        let good = GOOD.get_or_init(|| token(&claims_with(json!({"exp": now() + 86400}))));
        prop_assert!(now_ready(verifier().verify(&BearerToken::new(good.clone()))).is_ok());
        let i = pos.index(good.len());
        let c = c.chars().next().unwrap();
        prop_assume!(good.as_bytes()[i] != c as u8);
        let mut bad = good.clone();
        bad.replace_range(i..=i, &c.to_string());
        prop_assert!(now_ready(verifier().verify(&BearerToken::new(bad))).is_err());
    }

    // JWK Set.

    #[test]
    fn arbitrary_jwk_sets_parse_without_panic(keys in prop::collection::vec(json_value(), 0..6)) {
        let doc = json!({"keys": keys}).to_string();
        let set = KeySet::from_json(doc.as_bytes()).unwrap();
        prop_assert_eq!(set.keys().len() + set.skipped().len(), keys.len());
    }

    #[test]
    fn usable_keys_survive_junk_around_them(
        junk in prop::collection::vec(json_value(), 0..4),
        at in any::<prop::sample::Index>(),
    ) {
        static KEY: OnceLock<TestKey> = OnceLock::new();
        let key = KEY.get_or_init(|| TestKey::generate(Algorithm::EdDSA).unwrap().with_kid("good"));
        let mut keys: Vec<Value> = junk.into_iter()
            .map(|mut j| { if let Some(o) = j.as_object_mut() { o.remove("kid"); } j })
            .collect();
        let i = at.index(keys.len() + 1);
        keys.insert(i, jwks(&[key])["keys"][0].clone());
        let set = KeySet::from_json(json!({"keys": keys}).to_string().as_bytes()).unwrap();
        prop_assert!(set.has_kid("good"));
    }

    // MCP body peek.

    #[test]
    fn peek_reads_method_and_name_of_every_message(
        calls in prop::collection::vec(("[a-z/_]{1,20}", prop::option::of("[ -~]{0,20}"), json_value()), 1..5),
        batch in any::<bool>(),
        pad in "[ \t\r\n]{0,3}",
    ) {
        let msgs: Vec<Value> = calls.iter().map(|(m, name, args)| {
            let mut params = json!({"arguments": args});
            if let Some(n) = name { params["name"] = json!(n); }
            json!({"jsonrpc": "2.0", "id": 1, "method": m, "params": params})
        }).collect();
        let body = if batch || msgs.len() > 1 { Value::Array(msgs) } else { msgs[0].clone() };
        let text = format!("{pad}{body}{pad}");
        let want: Vec<PeekedCall> = calls.iter().map(|(m, name, _)| PeekedCall {
            method: Some(m.clone()),
            name: name.clone(),
            uri: None,
            reference: None,
        }).collect();
        prop_assert_eq!(peek_jsonrpc(text.as_bytes()), Ok(want));
    }

    #[test]
    fn peek_never_panics_and_refuses_non_json(body in prop::collection::vec(any::<u8>(), 0..300)) {
        let got = peek_jsonrpc(&body);
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if !matches!(first, Some(b'{' | b'[')) {
            prop_assert_eq!(got, Err(-32700));
        }
    }

    #[test]
    fn peek_refuses_every_junk_batch_element(
        good in prop::collection::vec("[a-z/]{1,12}", 1..4),
        junk in json_value(),
        at in any::<prop::sample::Index>(),
    ) {
        // Any element that is not a JSON-RPC message makes the whole batch unjudgeable.
        prop_assume!(!junk.is_object() || junk.get("jsonrpc") != Some(&json!("2.0")));
        let mut msgs: Vec<Value> = good.iter()
            .map(|m| json!({"jsonrpc": "2.0", "id": 1, "method": m}))
            .collect();
        msgs.insert(at.index(msgs.len() + 1), junk);
        let got = peek_jsonrpc(Value::Array(msgs).to_string().as_bytes());
        // -32602 when the junk's params hold a mistyped name or uri.
        prop_assert!(matches!(got, Err(-32600 | -32602)), "{:?}", got);
    }

    // The resource URI form.

    #[test]
    fn a_judged_resource_uri_is_a_fixed_point_and_its_own_whatwg_form(
        scheme in prop::sample::select(vec!["file", "FILE", "https", "Http", "custom", "urn", "ws"]),
        slashes in prop::sample::select(vec!["", "/", "//", "///"]),
        host in prop::sample::select(vec!["", "localhost", "LOCALHOST", "Host", "%65x", "127.0.0.1", "2130706433", "0x7f.1", "[::1]", "u:p@H", "h:443", "h:80", "\u{ff48}"]),
        path in prop::collection::vec("([a-zA-Z0-9._~-]|%[0-9a-fA-F]{2}|[!$&'()*+,;=:@]|[{}é]){0,6}", 0..4),
        tail in "(\\?[a-z%0-9=/.]{0,6})?(#[a-z%0-9/.]{0,6})?",
    ) {
        let authority = if slashes == "//" { host } else { "" };
        let uri = format!("{scheme}:{slashes}{authority}/{}{tail}", path.join("/"));
        if let Ok(judged) = normalize_resource_uri(&uri) {
            prop_assert_eq!(normalize_resource_uri(&judged), Ok(judged.clone()), "{}", uri);
            let whatwg = url::Url::parse(&judged);
            prop_assert_eq!(whatwg.as_ref().map(url::Url::as_str), Ok(judged.as_str()), "{}", uri);
        }
    }

    #[test]
    fn resource_uris_judge_without_panic(uri in "\\PC{0,80}") {
        let _ = normalize_resource_uri(&uri);
    }
}

#[test]
fn the_dpop_fuzz_seed_is_a_valid_proof() {
    let seed = std::fs::read("fuzz/seeds/dpop/valid-es256").unwrap();
    let jkt = mcp_resource_guard::fuzzing::check_dpop_proof(&seed).unwrap();
    assert_eq!(jkt.len(), 43);
}
