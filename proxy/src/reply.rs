//! The proxy's own answers: an HTTP status with a JSON-RPC error body, so
//! an MCP client reads every refusal the way it reads the server's.

use axum::body::Body;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

/// A JSON-RPC error answer (`id` null unless the request's is known).
pub fn error(status: StatusCode, id: Option<serde_json::Value>, message: &str) -> Response<Body> {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id.unwrap_or(serde_json::Value::Null),
        "error": {"code": -32603, "message": message},
    });
    let mut res = Response::new(Body::from(body.to_string()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// 503 with `Retry-After` (seconds): the proxy is full or draining.
pub fn busy(message: &str, retry_after_seconds: u32) -> Response<Body> {
    let mut res = error(StatusCode::SERVICE_UNAVAILABLE, None, message);
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
    res
}

/// The `id` of a single JSON-RPC request body, if any.
pub fn request_id(body: &Bytes) -> Option<serde_json::Value> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: Option<serde_json::Value>,
    }
    serde_json::from_slice::<Id>(body).ok().and_then(|m| m.id)
}
