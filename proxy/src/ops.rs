//! The operations port (`[ops] bind`): probes, metrics and revocation,
//! apart from the traffic port.
//!
//! | route | answer |
//! |---|---|
//! | `GET /live` | 200 while the process serves |
//! | `GET /ready` | 200 when every route's issuers have usable keys; 503 before, and while draining on shutdown |
//! | `GET /metrics` | Prometheus text (`mcp_resource_guard_*`) |
//! | `POST /revoke` | with `Authorization: Bearer <revoke token>` and a JSON body `{"token": …}`, `{"issuer": …, "jti": …}` or `{"issuer": …, "sub": …}`: 204 (every route; every replica within the recheck interval with `[redis]`); 401 without the secret; 403 when no revoke token is configured; 415 for a body that is not `application/json`; 400 for one that names nothing; 503 when the shared store cannot be written |
//!
//! Probes and metrics have no authentication: bind the port to loopback
//! or a private network (as Kubernetes probes and Prometheus expect).
//! Revocation needs the operator's secret and a JSON body, so neither a
//! browser page (a cross-site form can send neither) nor anyone else who
//! reaches the port can revoke.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use mcp_resource_guard::{BearerToken, GuardLayer};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Secret;

/// What the operations port serves from.
#[derive(Clone)]
pub struct Ops {
    pub guards: Arc<[GuardLayer]>,
    pub metrics: Option<PrometheusHandle>,
    pub revoke_token: Option<Arc<Secret>>,
    /// Set on SIGTERM/SIGINT: `/ready` answers 503 so traffic moves away.
    pub draining: Arc<AtomicBool>,
}

/// The operations port's routes.
pub fn router(ops: Ops) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .route("/live", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .route("/revoke", post(revoke))
        .with_state(ops)
}

async fn render(State(ops): State<Ops>) -> axum::response::Response {
    for g in ops.guards.iter() {
        // Refreshes the key health and age gauges.
        let _ = g.readiness();
    }
    match &ops.metrics {
        Some(m) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            m.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are off").into_response(),
    }
}

async fn ready(State(ops): State<Ops>) -> impl IntoResponse {
    let mut issuers = Vec::new();
    let mut all = true;
    for g in ops.guards.iter() {
        let r = g.readiness();
        all &= r.is_ready();
        issuers.extend(r.issuers().iter().map(|(i, h)| {
            serde_json::json!({"resource": g.resource().as_str(), "issuer": i, "keys": format!("{h:?}")})
        }));
    }
    let draining = ops.draining.load(Ordering::Relaxed);
    let ready = all && !draining;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({"ready": ready, "draining": draining, "issuers": issuers});
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

/// `true` when `headers` carry `Authorization: Bearer <expected>`,
/// compared in constant time.
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
            "revocation is off: set [ops] revoke_token_file or MCP_REVOKE_TOKEN".to_owned(),
        );
    };
    if !is_operator(&headers, &expected.0) {
        return (
            StatusCode::UNAUTHORIZED,
            "send Authorization: Bearer <the revoke token>".to_owned(),
        );
    }
    let f = match body {
        Ok(axum::Json(f)) => f,
        Err(e) => return (e.status(), e.body_text()),
    };
    for g in ops.guards.iter() {
        let result = match (&f.token, &f.issuer, &f.jti, &f.sub) {
            (Some(token), None, None, None) => {
                g.revoke_token(&BearerToken::new(token.clone())).await
            }
            (None, Some(issuer), Some(jti), None) => g.revoke_jti(issuer, jti).await,
            (None, Some(issuer), None, Some(sub)) => g.revoke_subject(issuer, sub).await,
            _ => {
                return (
                    StatusCode::BAD_REQUEST,
                    r#"give {"token": …}, or {"issuer": …, "jti": …}, or {"issuer": …, "sub": …}"#
                        .to_owned(),
                );
            }
        };
        if let Err(e) = result {
            // Revoked here; the other replicas may not know.
            return (StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        }
    }
    (StatusCode::NO_CONTENT, String::new())
}
