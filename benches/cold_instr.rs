//! Instruction counts of one cold verification, ours next to the raw
//! aws-lc-rs verify of the same signature: a measure the machine's noise
//! does not move. Run under callgrind, counting only inside `run`:
//!
//! ```text
//! cargo build --release --bin cold_instr
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!   --toggle-collect='*cold_instr::run*' target/release/cold_instr guard RS256 200
//! ```
//!
//! `scripts/cold_instr.sh` does this for every algorithm and prints the ratios,
//! then counts one request through the tower service with a token-cache hit
//! (`hit`) next to the same request to the bare inner service (`plain`), and
//! the same through a hello-world axum route (`axum-hit` next to
//! `axum-plain`), where the request's extensions map exists anyway.

use std::hint::black_box;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_resource_guard::testing::{TestKey, jwks};
use mcp_resource_guard::{Algorithm, BearerToken, TokenCacheConfig};
use tower::{Layer, Service};

mod common;

#[inline(never)]
fn run(n: usize, mut f: impl FnMut()) {
    for _ in 0..n {
        f();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(alg), Some(n)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!(
            "usage: cold_instr raw|guard|plain|hit|axum-plain|axum-hit RS256|PS256|ES256|EdDSA N"
        );
        std::process::exit(2);
    };
    let alg = Algorithm::from_name(alg).expect("an algorithm");
    let n: usize = n.parse().expect("a count");
    let key = TestKey::generate(alg).expect("a key");
    let token = key.sign(&crate::common::claims(0));
    match mode.as_str() {
        "raw" => {
            let (input, sig) = token.rsplit_once('.').expect("a JWS");
            let sig = URL_SAFE_NO_PAD.decode(sig).expect("base64url");
            let parsed = crate::common::raw_key(&key);
            run(n, || {
                parsed
                    .verify_sig(black_box(input.as_bytes()), black_box(&sig))
                    .expect("a valid signature")
            });
        }
        "plain" | "hit" => {
            // The same request bytes (Authorization header included) in both.
            let guard =
                crate::common::guard(&jwks(&[&key]).to_string(), TokenCacheConfig::default());
            let mut plain = crate::common::inner();
            let mut guarded = guard.layer(crate::common::inner());
            // Warm the token cache.
            let res = crate::common::now(guarded.call(crate::common::request(&token))).unwrap();
            assert_eq!(res.status(), 200);
            if mode == "plain" {
                run(n, || {
                    let res =
                        crate::common::now(plain.call(crate::common::request(black_box(&token))));
                    black_box(res.unwrap());
                });
            } else {
                run(n, || {
                    let res =
                        crate::common::now(guarded.call(crate::common::request(black_box(&token))));
                    assert_eq!(res.unwrap().status(), 200);
                });
            }
        }
        "axum-plain" | "axum-hit" => {
            // A hello-world axum route; the guard wraps the router. The same
            // request bytes (Authorization header included) in both.
            let guard =
                crate::common::guard(&jwks(&[&key]).to_string(), TokenCacheConfig::default());
            let router = axum::Router::new().route("/mcp", axum::routing::post(|| async { "ok" }));
            let request = |token: &str| {
                let (parts, ()) = crate::common::request(token).into_parts();
                axum::http::Request::from_parts(parts, axum::body::Body::empty())
            };
            if mode == "axum-plain" {
                let mut plain = router;
                run(n, || {
                    let res = crate::common::now(plain.call(request(black_box(&token))));
                    assert_eq!(res.unwrap().status(), 200);
                });
            } else {
                let mut guarded = guard.layer(router);
                // Warm the token cache.
                let res = crate::common::now(guarded.call(request(&token))).unwrap();
                assert_eq!(res.status(), 200);
                run(n, || {
                    let res = crate::common::now(guarded.call(request(black_box(&token))));
                    assert_eq!(res.unwrap().status(), 200);
                });
            }
        }
        "dpop-raw" | "dpop-hit" => {
            // A DPoP request with a cached bound token vs the raw verify of
            // the proof's signature; the proofs are made before counting.
            use mcp_resource_guard::dpop::{Dpop, DpopMode};
            let mut c = crate::common::claims(0);
            c["cnf"] = serde_json::json!({"jkt": key.thumbprint()});
            let issuer = TestKey::generate(Algorithm::ES256).expect("a key");
            let bound = issuer.sign(&c);
            let guard = mcp_resource_guard::GuardLayer::builder(crate::common::RESOURCE)
                .add_issuer(
                    mcp_resource_guard::Issuer::new(crate::common::ISSUER).key_source(
                        mcp_resource_guard::jwks::StaticJwks::from_json(
                            jwks(&[&issuer]).to_string(),
                        )
                        .expect("a JWKS"),
                    ),
                )
                .dpop(Dpop::new(DpopMode::Allowed))
                .build()
                .expect("a guard");
            let mut svc = guard.layer(crate::common::inner());
            let request = |proof: &str| {
                let (mut parts, ()) = crate::common::request(&bound).into_parts();
                parts.headers.insert(
                    "authorization",
                    format!("DPoP {bound}").parse().expect("a header"),
                );
                parts
                    .headers
                    .insert("dpop", proof.parse().expect("a header"));
                http::Request::from_parts(parts, ())
            };
            let url = crate::common::RESOURCE;
            let warm = key.dpop_proof("POST", url, &bound);
            assert_eq!(
                crate::common::now(svc.call(request(&warm)))
                    .unwrap()
                    .status(),
                200
            );
            let proofs: Vec<String> = (0..n)
                .map(|_| key.dpop_proof("POST", url, &bound))
                .collect();
            if mode == "dpop-raw" {
                let parsed = crate::common::raw_key(&key);
                let split: Vec<(String, Vec<u8>)> = proofs
                    .iter()
                    .map(|p| {
                        let (i, s) = p.rsplit_once('.').expect("a JWS");
                        (i.to_owned(), URL_SAFE_NO_PAD.decode(s).expect("base64url"))
                    })
                    .collect();
                let mut it = split.iter();
                run(n, || {
                    let (i, s) = it.next().expect("a proof");
                    parsed
                        .verify_sig(black_box(i.as_bytes()), black_box(s))
                        .expect("a valid signature")
                });
            } else {
                let mut reqs: Vec<_> = proofs.iter().map(|p| request(p)).collect();
                run(n, || {
                    let req = reqs.pop().expect("a request");
                    let res = crate::common::now(svc.call(req));
                    assert_eq!(res.unwrap().status(), 200);
                });
            }
        }
        _ => {
            let verifier = mcp_resource_guard::fuzzing::verifier(&crate::common::guard(
                &jwks(&[&key]).to_string(),
                TokenCacheConfig::default(),
            ));
            let bearer = BearerToken::new(token.clone());
            run(n, || {
                crate::common::now(verifier.verify(black_box(&bearer))).expect("a valid token");
            });
        }
    }
}
