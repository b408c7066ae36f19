//! The operations side of the example servers: logging, and for running
//! many replicas: shared
//! state on Redis (`MCP_REDIS_URL`), and on a separate port
//! (`MCP_METRICS_BIND`) Prometheus metrics, liveness and readiness probes
//! and an operator's revocation hook.
//!
//! | route (operations port) | answer |
//! |---|---|
//! | `GET /metrics` | Prometheus text (`mcp_resource_guard_*`, see the crate's metrics docs) |
//! | `GET /live` | 200 while the process serves |
//! | `GET /ready` | 200 when every issuer's keys are usable, else 503 (`GuardLayer::readiness`) |
//! | `POST /revoke` | with `Authorization: Bearer <MCP_REVOKE_TOKEN>` and a JSON body `{"token": …}`, `{"issuer": …, "jti": …}` or `{"issuer": …, "sub": …}`: 204, on every replica within the recheck interval; 401 without the secret (403 when `MCP_REVOKE_TOKEN` is unset: revocation is off); 415 for a body that is not `application/json`; 400 for one that names nothing; 503 when the shared store cannot be written |
//!
//! Metrics and probes have no authentication: bind the operations port to
//! loopback or a private network only (as Kubernetes probes and Prometheus
//! expect). Revocation needs the operator's secret (`MCP_REVOKE_TOKEN`, at
//! least 16 characters) and a JSON body, so neither a browser page (a
//! cross-site form cannot send JSON or the header) nor anyone else who
//! reaches the port can revoke.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use mcp_resource_guard::store::{RedisStore, SharedStore};
use mcp_resource_guard::{BearerToken, GuardLayer};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Every access decision (the audit trail) and the crate's other events on
/// stderr, filtered by `RUST_LOG` (default `info`); colours only on a
/// terminal.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// `MCP_REDIS_URL` (and `MCP_REDIS_PREFIX`, `MCP_REVOCATION_RECHECK_MS`):
/// the replicas' shared store, or `None` for a single process.
pub async fn shared_store_from_env() -> Result<Option<SharedStore>, Box<dyn std::error::Error>> {
    let Ok(url) = std::env::var("MCP_REDIS_URL") else {
        return Ok(None);
    };
    let mut builder = RedisStore::builder(url);
    if let Ok(prefix) = std::env::var("MCP_REDIS_PREFIX") {
        builder = builder.prefix(prefix);
    }
    let store = builder.connect().await?;
    // Only noeviction keeps replay and revocation entries under memory
    // pressure (see RedisStore::eviction_policy, which also logs this).
    match store.eviction_policy().await {
        Ok(Some(p)) if p != "noeviction" => eprintln!(
            "warning: Redis maxmemory-policy is {p}: DPoP replays and revocations can be forgotten when memory runs out; set maxmemory-policy noeviction"
        ),
        Ok(_) => {}
        Err(e) => eprintln!("warning: Redis is not reachable yet: {e}"),
    }
    let mut shared = SharedStore::new(store);
    if let Ok(ms) = std::env::var("MCP_REVOCATION_RECHECK_MS") {
        let ms: u64 = ms
            .parse()
            .map_err(|_| format!("MCP_REVOCATION_RECHECK_MS={ms:?}: a number of milliseconds"))?;
        shared = shared.revocation_recheck(Duration::from_millis(ms));
    }
    Ok(Some(shared))
}

#[derive(Clone)]
struct Ops {
    guard: GuardLayer,
    metrics: PrometheusHandle,
    /// `MCP_REVOKE_TOKEN`: the secret `/revoke` needs (`None`: revocation off).
    revoke_token: Option<std::sync::Arc<str>>,
}

/// `MCP_REVOKE_TOKEN`: the operator's secret for `/revoke`, if set.
fn revoke_token_from_env() -> Result<Option<std::sync::Arc<str>>, Box<dyn std::error::Error>> {
    match std::env::var("MCP_REVOKE_TOKEN") {
        Err(_) => Ok(None),
        Ok(t) if t.len() >= 16 && t.bytes().all(|b| b.is_ascii_graphic()) => Ok(Some(t.into())),
        Ok(_) => Err("MCP_REVOKE_TOKEN: at least 16 visible ASCII characters".into()),
    }
}

/// With `MCP_METRICS_BIND` set: installs the Prometheus recorder (first
/// thing, so the startup's key fetch is counted).
pub fn metrics_from_env() -> Result<Option<PrometheusHandle>, Box<dyn std::error::Error>> {
    if std::env::var("MCP_METRICS_BIND").is_err() {
        return Ok(None);
    }
    Ok(Some(PrometheusBuilder::new().install_recorder()?))
}

/// With `MCP_METRICS_BIND` set: serves the operations port in the
/// background.
pub async fn serve_from_env(
    guard: &GuardLayer,
    metrics: Option<PrometheusHandle>,
) -> Result<(), Box<dyn std::error::Error>> {
    let (Ok(bind), Some(metrics)) = (std::env::var("MCP_METRICS_BIND"), metrics) else {
        return Ok(());
    };
    let revoke_token = revoke_token_from_env()?;
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("operations (metrics, probes, revoke) on http://{bind}");
    let ops = Ops {
        guard: guard.clone(),
        metrics,
        revoke_token,
    };
    let app = Router::new()
        .route("/metrics", get(render))
        .route("/live", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .route("/revoke", post(revoke))
        .with_state(ops);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("the operations port stopped: {e}");
        }
    });
    Ok(())
}

async fn render(State(ops): State<Ops>) -> impl IntoResponse {
    // Refreshes the key health and age gauges.
    let _ = ops.guard.readiness();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        ops.metrics.render(),
    )
}

async fn ready(State(ops): State<Ops>) -> impl IntoResponse {
    let r = ops.guard.readiness();
    let issuers: Vec<_> = r
        .issuers()
        .iter()
        .map(|(i, h)| serde_json::json!({"issuer": i, "keys": format!("{h:?}")}))
        .collect();
    let status = if r.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({"ready": r.is_ready(), "issuers": issuers});
    (status, axum::Json(body))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    token: Option<String>,
    issuer: Option<String>,
    jti: Option<String>,
    sub: Option<String>,
}

/// `true` when `given` is `Bearer <expected>`, compared in constant time.
fn is_operator(headers: &HeaderMap, expected: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn revoke(
    State(ops): State<Ops>,
    headers: HeaderMap,
    body: Result<axum::Json<RevokeRequest>, axum::extract::rejection::JsonRejection>,
) -> impl IntoResponse {
    let Some(expected) = &ops.revoke_token else {
        return (
            StatusCode::FORBIDDEN,
            "revocation is off: set MCP_REVOKE_TOKEN (the operator's secret)".to_owned(),
        );
    };
    if !is_operator(&headers, expected) {
        return (
            StatusCode::UNAUTHORIZED,
            "send Authorization: Bearer <MCP_REVOKE_TOKEN>".to_owned(),
        );
    }
    let f = match body {
        Ok(axum::Json(f)) => f,
        Err(e) => return (e.status(), e.body_text()),
    };
    let result = match (f.token, f.issuer, f.jti, f.sub) {
        (Some(token), None, None, None) => ops.guard.revoke_token(&BearerToken::new(token)).await,
        (None, Some(issuer), Some(jti), None) => ops.guard.revoke_jti(&issuer, &jti).await,
        (None, Some(issuer), None, Some(sub)) => ops.guard.revoke_subject(&issuer, &sub).await,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                r#"give {"token": …}, or {"issuer": …, "jti": …}, or {"issuer": …, "sub": …}"#
                    .to_owned(),
            );
        }
    };
    match result {
        Ok(()) => (StatusCode::NO_CONTENT, String::new()),
        // Revoked on this replica; the others may not know.
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}
