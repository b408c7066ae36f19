//! Instructions per MCP `tools/call` through the guard with and without
//! `McpLayer` (callgrind counts them; `scripts/cold_instr.sh` prints them).
//!
//! ```text
//! cargo build --release --bin mcp_instr
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!   --toggle-collect='*mcp_instr::run*' target/release/mcp_instr layered stateless 65536 200
//! ```

use std::convert::Infallible;
use std::hint::black_box;

use bytes::Bytes;
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

#[inline(never)]
fn run(n: usize, mut f: impl FnMut()) {
    for _ in 0..n {
        f();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: mcp_instr plain|layered|ignored session|stateless SIZE N";
    let (Some(mode), Some(wire), Some(size), Some(n)) =
        (args.get(1), args.get(2), args.get(3), args.get(4))
    else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let stateless = wire == "stateless";
    let size: usize = size.parse().expect("a size");
    let n: usize = n.parse().expect("a count");
    let key = TestKey::generate(Algorithm::ES256).expect("a key");
    let guard = common::guard(&jwks(&[&key]).to_string(), TokenCacheConfig::default());
    let token = key.sign(&common::claims(0));
    let body = common::mcp_body(size, stateless);
    let request = || common::mcp_request(&token, &body, stateless);
    let policy = McpPolicy::builder()
        .default_rule(Rule::Deny)
        .tool("add_todo", Rule::require(["todo:write"]))
        .build()
        .expect("a policy");
    let mut plain = guard.layer(service_fn(hello));
    let mut layered = guard.layer(McpLayer::new(&guard, policy).layer(service_fn(hello)));
    assert_eq!(
        common::now(layered.call(request()))
            .expect("a response")
            .status(),
        200
    );
    match mode.as_str() {
        "plain" => run(n, || {
            black_box(common::now(plain.call(black_box(request()))).expect("a response"));
        }),
        "layered" => run(n, || {
            black_box(common::now(layered.call(black_box(request()))).expect("a response"));
        }),
        _ => run(n, || {
            serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&body)).expect("JSON");
        }),
    }
}
