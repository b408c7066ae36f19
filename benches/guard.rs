//! Criterion benches: cold verification per algorithm next to the raw
//! aws-lc-rs verify of the same signature and next to `jsonwebtoken::decode`;
//! a cache hit through the whole tower service next to the same service
//! without the guard; an introspected opaque token served from the guard's
//! token cache and from the introspection result cache; two threads over
//! 1,000 distinct tokens.
//!
//! Run: `cd benches && cargo bench --bench guard`

use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
mod common;

use crate::common::{ISSUER, RESOURCE, claims, inner, now, raw_key, request};
use mcp_resource_guard::testing::{TestKey, jwks};
use mcp_resource_guard::{Algorithm, BearerToken, GuardLayer, TokenCacheConfig};
use serde_json::Value;
use tower::{Layer, Service};

fn guard_for(keys: &[&TestKey]) -> GuardLayer {
    crate::common::guard(&jwks(keys).to_string(), TokenCacheConfig::default())
}

fn cold_verification(c: &mut Criterion) {
    crate::common::pick_jsonwebtoken_backend();
    let mut g = c.benchmark_group("cold_verify");
    for alg in [
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ] {
        let key = TestKey::generate(alg).unwrap();
        let token = key.sign(&claims(0));
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        let parsed = raw_key(&key);
        g.bench_with_input(BenchmarkId::new("raw_aws_lc_rs", alg), &(), |b, _| {
            b.iter(|| {
                parsed
                    .verify_sig(black_box(input.as_bytes()), black_box(&sig))
                    .unwrap()
            })
        });

        let verifier = mcp_resource_guard::fuzzing::verifier(&guard_for(&[&key]));
        let bearer = BearerToken::new(token.clone());
        g.bench_with_input(BenchmarkId::new("mcp_resource_guard", alg), &(), |b, _| {
            b.iter(|| now(verifier.verify(black_box(&bearer))).unwrap())
        });

        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.public_jwk()).unwrap();
        let dk = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let jalg = match alg {
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::PS256 => jsonwebtoken::Algorithm::PS256,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            _ => jsonwebtoken::Algorithm::EdDSA,
        };
        let mut v = jsonwebtoken::Validation::new(jalg);
        v.set_audience(&[RESOURCE]);
        v.set_issuer(&[ISSUER]);
        g.bench_with_input(BenchmarkId::new("jsonwebtoken_decode", alg), &(), |b, _| {
            b.iter(|| jsonwebtoken::decode::<Value>(black_box(&token), &dk, &v).unwrap())
        });
    }
    g.finish();
}

fn cache_hit(c: &mut Criterion) {
    let key = TestKey::generate(Algorithm::RS256).unwrap();
    let token = key.sign(&claims(0));
    let mut guarded = guard_for(&[&key]).layer(inner());
    let mut bare = inner();
    // Warm the cache.
    assert_eq!(now(guarded.call(request(&token))).unwrap().status(), 200);
    let mut g = c.benchmark_group("service");
    g.bench_function("no_guard", |b| {
        b.iter(|| now(bare.call(black_box(request(&token)))).unwrap())
    });
    g.bench_function("guard_cache_hit", |b| {
        b.iter(|| now(guarded.call(black_box(request(&token)))).unwrap())
    });
    g.finish();
}

/// An authorization server that answers every POST with `body`, at once.
#[derive(Debug)]
struct FixedAs(serde_json::Value);

#[async_trait::async_trait]
impl mcp_resource_guard::jwks::HttpFetch for FixedAs {
    /// The protected resource's and the authorization server's metadata.
    async fn get(
        &self,
        url: &str,
        _: usize,
    ) -> Result<mcp_resource_guard::jwks::HttpResponse, mcp_resource_guard::jwks::KeySourceError>
    {
        let doc = if url.contains("oauth-protected-resource") {
            serde_json::json!({"resource": RESOURCE, "authorization_servers": [ISSUER]})
        } else {
            serde_json::json!({"issuer": ISSUER, "token_endpoint": format!("{ISSUER}/token")})
        };
        Ok(mcp_resource_guard::jwks::HttpResponse::new(
            200,
            doc.to_string().into_bytes(),
        ))
    }
    async fn post_form(
        &self,
        _: &str,
        _: &[(http::HeaderName, http::HeaderValue)],
        _: &[(&str, &str)],
        _: usize,
    ) -> Result<mcp_resource_guard::jwks::HttpResponse, mcp_resource_guard::jwks::KeySourceError>
    {
        Ok(mcp_resource_guard::jwks::HttpResponse::new(
            200,
            self.0.to_string().into_bytes(),
        ))
    }
}

fn introspected(c: &mut Criterion) {
    use mcp_resource_guard::introspection::{ClientAuth, Introspection};
    use mcp_resource_guard::{Issuer, TokenCacheConfig as Tc};
    let token = "Xq3vL9tZ0pR7sK2mN8bW4yJ6hD1fG5cA";
    let guard = |cache: Tc| {
        GuardLayer::builder(RESOURCE)
            .add_issuer(
                Issuer::new(ISSUER).introspection(
                    Introspection::new(ClientAuth::client_secret_basic("rs", "s"))
                        .endpoint("https://as.example.com/introspect")
                        .http_fetch(FixedAs(serde_json::json!({"active": true,
                            "iss": ISSUER, "aud": RESOURCE, "scope": "todo:read todo:write",
                            "client_id": "agent-7f3a9c", "exp": crate::common::unix() + 3600}))),
                ),
            )
            .scopes_supported(["todo:read", "todo:write", "todo:delete"])
            .required_scopes(["todo:read"])
            .token_cache(cache)
            .build()
            .unwrap()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("opaque_token");
    for (name, cache) in [
        ("guard_cache_hit", Tc::default()),
        ("introspection_cache_hit", Tc::disabled()),
    ] {
        let mut svc = guard(cache).layer(inner());
        // The first request introspects (inside a runtime, for its timers).
        let res = rt.block_on(svc.call(request(token))).unwrap();
        assert_eq!(res.status(), 200);
        g.bench_function(name, |b| {
            b.iter(|| now(svc.call(black_box(request(token)))).unwrap())
        });
    }
    g.finish();
}

/// A DPoP request (RFC 9449) with a cached, bound token: one proof check
/// per request, next to the raw aws-lc-rs verify of the proof's signature.
fn dpop(c: &mut Criterion) {
    use criterion::BatchSize;
    use mcp_resource_guard::dpop::{Dpop, DpopMode};
    let mut g = c.benchmark_group("dpop");
    for alg in [Algorithm::ES256, Algorithm::EdDSA] {
        let issuer_key = TestKey::generate(Algorithm::ES256).unwrap();
        let client = TestKey::generate(alg).unwrap();
        let mut claims = claims(0);
        claims["cnf"] = serde_json::json!({"jkt": client.thumbprint()});
        let token = issuer_key.sign(&claims);
        let guard = GuardLayer::builder(RESOURCE)
            .add_issuer(
                mcp_resource_guard::Issuer::new(ISSUER).key_source(
                    mcp_resource_guard::jwks::StaticJwks::from_json(
                        jwks(&[&issuer_key]).to_string(),
                    )
                    .unwrap(),
                ),
            )
            .scopes_supported(["todo:read", "todo:write", "todo:delete"])
            .required_scopes(["todo:read"])
            .dpop(Dpop::new(DpopMode::Allowed))
            .build()
            .unwrap();
        let mut svc = guard.layer(inner());
        let dpop_request = |proof: String| {
            let (mut parts, ()) = request(&token).into_parts();
            parts
                .headers
                .insert("authorization", format!("DPoP {token}").parse().unwrap());
            parts.headers.insert("dpop", proof.parse().unwrap());
            http::Request::from_parts(parts, ())
        };
        let url = RESOURCE.to_string();
        // Warm the token cache.
        let warm = dpop_request(client.dpop_proof("POST", &url, &token));
        assert_eq!(now(svc.call(warm)).unwrap().status(), 200);

        // Like with like: each iteration gets a fresh proof, made outside
        // the timing, in both cases.
        let parsed = raw_key(&client);
        g.bench_with_input(BenchmarkId::new("raw_proof_verify", alg), &(), |b, _| {
            b.iter_batched(
                || {
                    let proof = client.dpop_proof("POST", &url, &token);
                    let (input, sig) = proof.rsplit_once('.').unwrap();
                    (input.to_owned(), URL_SAFE_NO_PAD.decode(sig).unwrap())
                },
                |(input, sig)| {
                    parsed
                        .verify_sig(black_box(input.as_bytes()), black_box(&sig))
                        .unwrap()
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_with_input(
            BenchmarkId::new("service_cached_token", alg),
            &(),
            |b, _| {
                b.iter_batched(
                    || dpop_request(client.dpop_proof("POST", &url, &token)),
                    |req| {
                        let res = now(svc.call(req)).unwrap();
                        assert_eq!(res.status(), 200);
                    },
                    BatchSize::SmallInput,
                )
            },
        );
    }
    g.finish();
}

/// A cached client-credentials token (the client side): the lookup an
/// agent pays per call once it holds a token.
fn client_token(c: &mut Criterion) {
    use mcp_resource_guard::client::{ClientCredentials, TokenSource};
    use mcp_resource_guard::introspection::ClientAuth;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let source = ClientCredentials::builder(ISSUER, ClientAuth::client_secret_basic("a", "s"))
        .token_endpoint(format!("{ISSUER}/token"))
        .http_fetch(FixedAs(serde_json::json!(
            {"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600}
        )))
        .build()
        .unwrap();
    let scopes = vec!["todo:read".to_owned(), "todo:write".to_owned()];
    rt.block_on(source.token(RESOURCE, &scopes)).unwrap();
    // The same through AuthorizedClient: the session for the URL (origin
    // and path checks), then the cache.
    use mcp_resource_guard::client::{AuthorizedClient, Grant, TrustedIssuers};
    let agent = AuthorizedClient::builder(Grant::client_credentials(
        ClientAuth::client_secret_basic("a", "s"),
    ))
    .trusted_issuers(TrustedIssuers::new([ISSUER]).unwrap())
    .http_fetch(FixedAs(serde_json::json!(
        {"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600}
    )))
    .build()
    .unwrap();
    rt.block_on(agent.token_for(RESOURCE, None)).unwrap();
    let mut g = c.benchmark_group("client");
    g.bench_function("cached_token", |b| {
        b.iter(|| now(source.token(black_box(RESOURCE), black_box(&scopes))).unwrap())
    });
    g.bench_function("authorized_client_cached_token", |b| {
        b.iter(|| now(agent.token_for(black_box(RESOURCE), None)).unwrap())
    });
    g.finish();
}

fn two_threads(c: &mut Criterion) {
    let key = TestKey::generate(Algorithm::ES256).unwrap();
    let tokens: Vec<String> = (0..1000).map(|i| key.sign(&claims(i))).collect();
    let guard = guard_for(&[&key]);
    let mut g = c.benchmark_group("two_threads_1000_tokens");
    g.throughput(criterion::Throughput::Elements(2 * tokens.len() as u64));
    g.bench_function("guard_cache_hits", |b| {
        b.iter_custom(|iters| {
            let mut warm = guard.layer(inner());
            for t in &tokens {
                now(warm.call(request(t))).unwrap();
            }
            let start = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..2 {
                    let mut svc = guard.layer(inner());
                    let tokens = &tokens;
                    s.spawn(move || {
                        for _ in 0..iters {
                            for t in tokens {
                                black_box(now(svc.call(request(t))).unwrap());
                            }
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = crate::common::config();
    targets = cold_verification, cache_hit, introspected, dpop, client_token, two_threads
}
criterion_main!(benches);
