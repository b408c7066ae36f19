//! The same workloads through the peer crates, in the same run as ours:
//! a cold token (each request verified in full) and a repeated token, for
//! RS256 and ES256.
//!
//! Peers: jwt-authorizer 0.15 (its `Authorizer::check_auth`: its layer needs
//! axum 0.7 response types), tower-oauth2-resource-server 0.12 (its tower
//! layer, static JWKS), oauth-resource-server 0.4 (its `OAuthValidator` and its
//! tower layer, initial JWKS). None of them caches verified tokens, so for
//! them a repeated token costs a full verification.
//!
//! Run: `cd benches && cargo bench --bench peers`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
mod common;

use crate::common::{ISSUER, RESOURCE, claims, inner, request};
use mcp_resource_guard::testing::{TestKey, jwks};
use mcp_resource_guard::{Algorithm, BearerToken, TokenCacheConfig};
use serde_json::Value;
use tower::{Layer, Service};

fn peers(c: &mut Criterion) {
    crate::common::pick_jsonwebtoken_backend();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for alg in [Algorithm::RS256, Algorithm::ES256] {
        let key = TestKey::generate(alg).unwrap();
        let token = key.sign(&claims(1));
        let jwks_text = jwks(&[&key]).to_string();
        let mut g = c.benchmark_group(format!("peers_{alg}"));

        // Ours.
        let verifier = mcp_resource_guard::fuzzing::verifier(&crate::common::guard(
            &jwks_text,
            TokenCacheConfig::default(),
        ));
        let bearer = BearerToken::new(token.clone());
        // Every async call below goes through the same `rt.block_on`, so
        // the runtime's overhead is the same for every crate.
        g.bench_function("ours/cold_verify", |b| {
            b.iter(|| rt.block_on(verifier.verify(black_box(&bearer))).unwrap())
        });
        let mut cold_svc =
            crate::common::guard(&jwks_text, TokenCacheConfig::disabled()).layer(inner());
        g.bench_function("ours/service_no_cache", |b| {
            b.iter(|| {
                let r = rt
                    .block_on(cold_svc.call(request(black_box(&token))))
                    .unwrap();
                assert_eq!(r.status(), 200);
            })
        });
        let mut hit_svc =
            crate::common::guard(&jwks_text, TokenCacheConfig::default()).layer(inner());
        g.bench_function("ours/service_repeated_token", |b| {
            b.iter(|| {
                let r = rt
                    .block_on(hit_svc.call(request(black_box(&token))))
                    .unwrap();
                assert_eq!(r.status(), 200);
            })
        });

        // jwt-authorizer.
        let authorizer: jwt_authorizer::Authorizer<Value> = rt
            .block_on(
                jwt_authorizer::JwtAuthorizer::from_jwks_text(&jwks_text)
                    .validation(
                        jwt_authorizer::Validation::new()
                            .iss(&[ISSUER])
                            .aud(&[RESOURCE]),
                    )
                    .build(),
            )
            .unwrap();
        g.bench_function("jwt_authorizer/check_auth", |b| {
            b.iter(|| {
                rt.block_on(authorizer.check_auth(black_box(&token)))
                    .unwrap()
            })
        });

        // tower-oauth2-resource-server.
        let tenant = tower_oauth2_resource_server::tenant::TenantConfiguration::static_builder(
            jwks_text.clone(),
        )
        .audiences(&[RESOURCE])
        .build()
        .unwrap();
        let server = rt
            .block_on(
                tower_oauth2_resource_server::server::OAuth2ResourceServer::<
                    tower_oauth2_resource_server::claims::DefaultClaims,
                >::builder()
                .add_tenant(tenant)
                .build(),
            )
            .unwrap();
        let mut toauth = server.into_layer::<String>().layer(inner());
        g.bench_function("tower_oauth2_resource_server/service", |b| {
            b.iter(|| {
                let r = rt
                    .block_on(toauth.call(request(black_box(&token))))
                    .unwrap();
                assert_eq!(r.status(), 200);
            })
        });

        // oauth-resource-server.
        let config = oauth_resource_server::OAuthConfig {
            enabled: true,
            issuer: ISSUER.to_owned(),
            jwks_uri: Some(format!("{ISSUER}/jwks")),
            audience: RESOURCE.to_owned(),
            resource: RESOURCE.to_owned(),
            // The same checks as ours: typ at+jwt and the audience.
            require_at_jwt: true,
            ..Default::default()
        }
        .resolve(oauth_resource_server::KeyNaming::Dotted("oauth"))
        .unwrap()
        .unwrap();
        let validator = Arc::new(
            oauth_resource_server::OAuthValidator::builder(&config)
                .initial_jwks(&jwks_text)
                .build()
                .unwrap(),
        );
        g.bench_function("oauth_resource_server/validate", |b| {
            b.iter(|| rt.block_on(validator.validate(black_box(&token))).unwrap())
        });
        let layer = oauth_resource_server::http_layer::HttpAuthLayer::builder()
            .oauth(validator.clone())
            .build()
            .unwrap();
        let mut ors = layer.layer(inner());
        g.bench_function("oauth_resource_server/service", |b| {
            b.iter(|| {
                let r = rt.block_on(ors.call(request(black_box(&token)))).unwrap();
                assert_eq!(r.status(), 200);
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = crate::common::config();
    targets = peers
}
criterion_main!(benches);
