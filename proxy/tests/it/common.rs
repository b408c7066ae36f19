//! Helpers: an environment, policy files, a proxy on a real socket in
//! front of a small upstream.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use mcp_guard_proxy::{app, config, server};
use mcp_resource_guard::testing::TestIssuer;
use serde_json::{Value, json};

/// The documented policy file.
pub const POLICY: &str = include_str!("../../examples/todo-policy.toml");

/// An environment of these variables only.
pub fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
}

/// A fresh folder for this test's files, under the target folder's
/// `tmp` (Cargo's place for integration tests' files: `cargo clean`
/// removes them, nothing is left in the system's temporary folder).
pub fn temp_dir() -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("mcp-guard-proxy-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `text` in a policy file of its own; its path.
pub fn write_policy(text: &str) -> String {
    let path = temp_dir().join("policy.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// An upstream MCP endpoint at `/mcp`: answers every POST after the
/// `sleep_ms` argument's time (0 when absent) with an empty result.
pub async fn start_upstream() -> String {
    start_upstream_seeing_peers().await.0
}

/// The connections the upstream was reached on: the proxy's client ports.
pub type Peers = std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<u16>>>;

/// [`start_upstream`], also recording each request's peer port.
pub async fn start_upstream_seeing_peers() -> (String, Peers) {
    let peers = Peers::default();
    let seen = peers.clone();
    let record = move |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
                       body: Bytes| {
        seen.lock().unwrap().insert(peer.port());
        answer(body)
    };
    let app = Router::new().route("/mcp", axum::routing::post(record));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });
    (format!("http://{addr}/mcp"), peers)
}

/// The upstream's answer: after the `sleep_ms` argument's time.
async fn answer(body: Bytes) -> axum::response::Response {
    let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let ms = msg["params"]["arguments"]["sleep_ms"].as_u64().unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    // `"close": true`: the upstream closes the connection after this answer.
    let connection = if msg["params"]["arguments"]["close"] == true {
        "close"
    } else {
        "keep-alive"
    };
    axum::response::IntoResponse::into_response((
        [
            ("content-type", "application/json"),
            ("connection", connection),
        ],
        json!({"jsonrpc": "2.0", "id": msg["id"], "result": {"content": []}}).to_string(),
    ))
}

/// A proxy on a real socket: its address, its issuer, a trigger for its
/// shutdown and the task that ends when it has drained.
pub struct Running {
    pub addr: SocketAddr,
    pub dev: TestIssuer,
    pub resource: String,
    pub shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub done: tokio::task::JoinHandle<()>,
}

impl Running {
    /// A read-only token for the proxy's resource.
    pub fn token(&self) -> String {
        self.dev.token("alice", &self.resource, "todo:read")
    }

    /// The URL of the MCP endpoint.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }
}

/// Starts the proxy with `extra` added to its configuration file (e.g. a
/// `[limits]` section) in front of a fresh upstream.
pub async fn start_proxy(extra: &str) -> Running {
    start_proxy_to(extra, &start_upstream().await).await
}

/// [`start_proxy`] in front of `upstream`.
pub async fn start_proxy_to(extra: &str, upstream: &str) -> Running {
    start_proxy_with(extra, upstream, "http", None).await
}

/// [`start_proxy_to`], its resource URL at `scheme://localhost:port`,
/// serving through `tls`.
pub async fn start_proxy_with(
    extra: &str,
    upstream: &str,
    scheme: &str,
    tls: server::Tls,
) -> Running {
    let dev = TestIssuer::start().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resource = if scheme == "http" {
        format!("http://{addr}/mcp")
    } else {
        format!("{scheme}://localhost:{}/mcp", addr.port())
    };
    let policy = write_policy(POLICY);
    let text = format!(
        "issuers = [\"{}\"]\n{extra}\n[[routes]]\nresource = \"{resource}\"\nupstream = \"{upstream}\"\npolicy_file = \"{policy}\"\n",
        dev.issuer()
    );
    let config = config::parse("proxy.toml", &text, &env(&[])).unwrap();
    let app = app::build(&config).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        server::serve(listener, app.front, &config.limits, tls, async {
            let _ = rx.await;
        })
        .await;
    });
    Running {
        addr,
        dev,
        resource,
        shutdown: Some(tx),
        done,
    }
}

/// A stateless `tools/call whoami` body (with `sleep_ms` for the upstream).
pub fn call_body(sleep_ms: u64) -> String {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "whoami", "arguments": {"sleep_ms": sleep_ms},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}})
    .to_string()
}

/// The headers of a stateless `tools/call whoami` with `token`.
pub fn call_headers(token: &str) -> reqwest::header::HeaderMap {
    let mut h = reqwest::header::HeaderMap::new();
    for (k, v) in [
        ("authorization", format!("Bearer {token}")),
        ("content-type", "application/json".to_owned()),
        ("accept", "application/json, text/event-stream".to_owned()),
        ("mcp-protocol-version", "2026-07-28".to_owned()),
        ("mcp-method", "tools/call".to_owned()),
        ("mcp-name", "whoami".to_owned()),
    ] {
        h.insert(
            reqwest::header::HeaderName::from_static(k),
            v.parse().unwrap(),
        );
    }
    h
}
