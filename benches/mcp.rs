//! The MCP layer's cost per `tools/call`: the guard (cache hit) with and
//! without `McpLayer` in front of the same hello-world service, with the
//! same request bytes, at 1 KiB and 64 KiB; the stateless header
//! cross-check; and `serde_json::from_slice::<IgnoredAny>` on the same
//! 64 KiB body, the floor of any JSON reading.
//!
//! `cd benches && cargo bench --bench mcp`

use std::convert::Infallible;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::Full;
use mcp_resource_guard::mcp::{McpLayer, McpPolicy, Rule};
use mcp_resource_guard::testing::{TestKey, jwks};
use mcp_resource_guard::{Algorithm, TokenCacheConfig};
use tower::{Layer, Service, service_fn};

mod common;

type Body = Full<Bytes>;

async fn hello(_: Request<Body>) -> Result<Response<Body>, Infallible> {
    Ok(Response::new(Body::from("ok")))
}

fn mcp(c: &mut Criterion) {
    let key = TestKey::generate(Algorithm::ES256).unwrap();
    let guard = common::guard(&jwks(&[&key]).to_string(), TokenCacheConfig::default());
    let token = key.sign(&common::claims(0));
    let policy = McpPolicy::builder()
        .default_rule(Rule::Deny)
        .tool("add_todo", Rule::require(["todo:write"]))
        .build()
        .unwrap();
    let mut plain = guard.layer(service_fn(hello));
    let mut layered = guard.layer(McpLayer::new(&guard, policy).layer(service_fn(hello)));
    // Warm the token cache.
    assert_eq!(
        common::now(plain.call(common::mcp_request(
            &token,
            &common::mcp_body(100, false),
            false
        )))
        .unwrap()
        .status(),
        200
    );
    let mut g = c.benchmark_group("mcp_tools_call");
    for (size, label) in [(1024, "1KiB"), (64 * 1024, "64KiB")] {
        let b = common::mcp_body(size, false);
        let sb = common::mcp_body(size, true);
        for (req, what) in [
            (common::mcp_request(&token, &b, false), "session"),
            (common::mcp_request(&token, &sb, true), "stateless"),
        ] {
            assert_eq!(
                common::now(layered.call(req)).unwrap().status(),
                200,
                "{what}"
            );
        }
        g.bench_function(format!("guard_only_{label}"), |bench| {
            bench.iter(|| {
                black_box(common::now(plain.call(common::mcp_request(&token, &b, false))).unwrap())
            })
        });
        g.bench_function(format!("guard_and_mcp_{label}"), |bench| {
            bench.iter(|| {
                black_box(
                    common::now(layered.call(common::mcp_request(&token, &b, false))).unwrap(),
                )
            })
        });
        g.bench_function(format!("guard_only_stateless_headers_{label}"), |bench| {
            bench.iter(|| {
                black_box(common::now(plain.call(common::mcp_request(&token, &sb, true))).unwrap())
            })
        });
        g.bench_function(
            format!("guard_and_mcp_stateless_headers_{label}"),
            |bench| {
                bench.iter(|| {
                    black_box(
                        common::now(layered.call(common::mcp_request(&token, &sb, true))).unwrap(),
                    )
                })
            },
        );
        g.bench_function(format!("serde_ignored_any_{label}"), |bench| {
            bench.iter(|| {
                serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&b)).unwrap();
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = mcp
}
criterion_main!(benches);
