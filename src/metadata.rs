//! RFC 9728 protected-resource metadata: the document and its service.
//!
//! The guard answers the metadata routes itself (no router wiring needed):
//! `GET`, `HEAD` and `OPTIONS` on both the path-inserted URL
//! (`/.well-known/oauth-protected-resource/<resource path>`) and the root URL
//! (`/.well-known/oauth-protected-resource`). Other methods get `405` with
//! `Allow`. Every answer carries `Access-Control-Allow-Origin: *`.
//!
//! When you apply the guard with axum's `route_layer` (so unmatched paths stay
//! 404), requests to the metadata paths never reach it: mount
//! [`GuardLayer::metadata_service`](crate::GuardLayer::metadata_service) at
//! [`GuardLayer::metadata_paths`](crate::GuardLayer::metadata_paths) instead.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue,
};
use http::{Method, Request, Response, StatusCode};
use serde::Serialize;

const ALLOWED: HeaderValue = HeaderValue::from_static("GET, HEAD, OPTIONS");

/// The RFC 9728 §2 metadata document. Fields with no value are omitted (§3.2).
#[non_exhaustive]
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProtectedResourceMetadata {
    /// The canonical resource URL.
    pub resource: String,
    /// The trusted issuers.
    pub authorization_servers: Vec<String>,
    /// The scopes this resource understands.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// Always `["header"]`: tokens are accepted in the `Authorization` header only.
    pub bearer_methods_supported: Vec<String>,
    /// A human-readable name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// Developer documentation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_documentation: Option<String>,
    /// The data-usage policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_policy_uri: Option<String>,
    /// The terms of service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_tos_uri: Option<String>,
    /// The DPoP proof algorithms accepted (RFC 9728 §2), when DPoP is on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// `true` when only DPoP-bound tokens are accepted (RFC 9728 §2).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dpop_bound_access_tokens_required: bool,
}

/// A tower service that serves a metadata document on any path it is mounted at.
///
/// ```
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use mcp_resource_guard::jwks::StaticJwks;
/// use mcp_resource_guard::{GuardLayer, Issuer};
/// # let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
/// let guard = GuardLayer::builder("https://mcp.example.com/mcp")
///     .add_issuer(Issuer::new("https://as.example.com").key_source(StaticJwks::from_json(jwks)?))
///     .build()?;
/// let mut app: axum::Router = axum::Router::new();
/// for path in guard.metadata_paths() {
///     app = app.route_service(&path, guard.metadata_service());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MetadataService {
    json: Arc<str>,
}

impl MetadataService {
    /// A service for `doc`.
    pub fn new(doc: &ProtectedResourceMetadata) -> Self {
        // Serializing a struct of strings cannot fail.
        let json = serde_json::to_string(doc).unwrap_or_default();
        Self { json: json.into() }
    }

    /// The document as served.
    pub fn json(&self) -> &str {
        &self.json
    }

    pub(crate) fn respond(&self, method: &Method) -> Response<String> {
        let (status, body) = match *method {
            Method::GET => (StatusCode::OK, self.json.to_string()),
            Method::HEAD => (StatusCode::OK, String::new()),
            Method::OPTIONS => (StatusCode::NO_CONTENT, String::new()),
            _ => (StatusCode::METHOD_NOT_ALLOWED, String::new()),
        };
        let mut res = Response::new(body);
        *res.status_mut() = status;
        let h = res.headers_mut();
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        match *method {
            Method::GET | Method::HEAD => {
                h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                h.insert(CONTENT_LENGTH, HeaderValue::from(self.json.len()));
            }
            Method::OPTIONS => {
                h.insert(ALLOW, ALLOWED);
                h.insert(ACCESS_CONTROL_ALLOW_METHODS, ALLOWED);
                h.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("*"));
                h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
            }
            _ => {
                h.insert(ALLOW, ALLOWED);
            }
        }
        res
    }
}

impl<B> tower_service::Service<Request<B>> for MetadataService {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ready(Ok(self.respond(req.method())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omits_empty_fields() {
        let doc = ProtectedResourceMetadata {
            resource: "https://h/mcp".into(),
            authorization_servers: vec!["https://as".into()],
            scopes_supported: vec![],
            bearer_methods_supported: vec!["header".into()],
            resource_name: None,
            resource_documentation: None,
            resource_policy_uri: None,
            resource_tos_uri: None,
            dpop_signing_alg_values_supported: Vec::new(),
            dpop_bound_access_tokens_required: false,
        };
        assert_eq!(
            MetadataService::new(&doc).json(),
            r#"{"resource":"https://h/mcp","authorization_servers":["https://as"],"bearer_methods_supported":["header"]}"#
        );
    }
}
