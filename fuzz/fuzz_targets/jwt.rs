//! The JWT verifier on arbitrary tokens: split, base64url, header and claim
//! parsing, every check, against a static key set (no I/O). Never panics,
//! and nothing made up by the fuzzer verifies.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use mcp_resource_guard::jwks::StaticJwks;
use mcp_resource_guard::{BearerToken, GuardLayer, Issuer, TokenVerifier};

const JWKS: &str = r#"{"keys":[
 {"kty":"EC","crv":"P-256","kid":"ec","alg":"ES256","use":"sig",
  "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
 {"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
]}"#;

static VERIFIER: LazyLock<Arc<dyn TokenVerifier>> = LazyLock::new(|| {
    let keys = StaticJwks::from_json(JWKS).expect("the fixed JWKS parses");
    let guard = GuardLayer::builder("https://mcp.example.com/mcp")
        .add_issuer(Issuer::new("https://as.example.com").key_source(keys))
        .build()
        .expect("a valid config");
    mcp_resource_guard::fuzzing::verifier(&guard)
});

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let token = BearerToken::new(s);
    let mut fut = pin!(VERIFIER.verify(&token));
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => assert!(r.is_err(), "a fuzzed token verified"),
        Poll::Pending => panic!("static keys never wait"),
    }
});
