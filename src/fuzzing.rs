//! Entry points into the parsers for the fuzz targets (`fuzz/`) and the
//! property tests. **Not a public API**: hidden, behind the `fuzzing`
//! feature, and free to change in any release.

use http::{HeaderMap, HeaderValue, Method, Uri};

use std::sync::Arc;

use crate::error::AuthErrorKind;
use crate::guard::token::{self, Credentials};

/// What the guard makes of a request's `Authorization` headers and query.
#[derive(Debug, PartialEq, Eq)]
pub enum Authorization {
    /// No `Authorization` header.
    None,
    /// Another scheme.
    OtherScheme,
    /// A Bearer token that passed the token68 check.
    Bearer(String),
    /// A DPoP token that passed the token68 check.
    Dpop(String),
}

/// The Authorization parser as the guard runs it on a cache miss: extract,
/// then the token68 check.
///
/// # Errors
///
/// The kind of the guard's refusal.
pub fn parse_authorization(headers: &HeaderMap, uri: &Uri) -> Result<Authorization, AuthErrorKind> {
    match token::extract(headers, uri).map_err(|e| e.kind())? {
        Credentials::None => Ok(Authorization::None),
        Credentials::OtherScheme => Ok(Authorization::OtherScheme),
        Credentials::Bearer(raw) => token::validate(raw)
            .map(|t| Authorization::Bearer(t.secret().to_owned()))
            .map_err(|e| e.kind()),
        Credentials::Dpop(raw) => token::validate(raw)
            .map(|t| Authorization::Dpop(t.secret().to_owned()))
            .map_err(|e| e.kind()),
    }
}

/// One JSON-RPC message as the MCP policy sees it.
#[derive(Debug, PartialEq, Eq)]
pub struct PeekedCall {
    /// `method` (absent for a response).
    pub method: Option<String>,
    /// `params.name`.
    pub name: Option<String>,
    /// `params.uri`.
    pub uri: Option<String>,
    /// `params.ref` of `completion/complete`: its prompt name or resource URI.
    pub reference: Option<String>,
}

/// The MCP body peek with a batch limit of 64: the messages, or the
/// JSON-RPC error code of the refusal (`-32700`, `-32600`, `-32602`).
///
/// # Errors
///
/// The refusal's JSON-RPC error code.
pub fn peek_jsonrpc(body: &[u8]) -> Result<Vec<PeekedCall>, i64> {
    use crate::mcp::{Reference, peek};
    let messages = peek(body, 64).map_err(|r| r.code)?;
    Ok(messages
        .into_iter()
        .map(|m| PeekedCall {
            method: m.method,
            name: m.name,
            uri: m.uri,
            reference: m.reference.map(|r| match r {
                Reference::Prompt(n) => n,
                Reference::Resource(u) => u,
            }),
        })
        .collect())
}

/// The one form in which the MCP policy judges a resource URI (WHATWG URL,
/// then RFC 3986 normalization; see the `mcp` module docs), or why the URI
/// is refused.
///
/// # Errors
///
/// Why the URI has no judged form.
pub fn normalize_resource_uri(uri: &str) -> Result<String, &'static str> {
    crate::mcp::normalize_resource_uri(uri)
}

/// The DPoP proof checks (RFC 9449 §4.3, all but those that need the token)
/// on a `DPoP` header value, for `POST https://mcp.example.com/mcp` at
/// Unix time 1,800,000,000 with a ±300 s window and every algorithm.
/// Returns the proof key's thumbprint.
///
/// # Errors
///
/// The kind of the guard's refusal (always `InvalidDpopProof`).
pub fn check_dpop_proof(value: &[u8]) -> Result<String, AuthErrorKind> {
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_bytes(value).map_err(|_| AuthErrorKind::InvalidDpopProof)?;
    headers.insert("dpop", value);
    crate::dpop::fuzz_validate(
        &headers,
        &Method::POST,
        "https://mcp.example.com/mcp",
        1_800_000_000,
    )
    .map_err(|e| e.kind())
}

/// The guard's token verifier alone: signature and registered claims, none
/// of the checks the guard adds around it (required scopes, revocation, the
/// token cache). For fuzzing and tests of the verification itself.
pub fn verifier(guard: &crate::GuardLayer) -> Arc<dyn crate::TokenVerifier> {
    guard.verifier()
}
