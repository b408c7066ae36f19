//! [`JsonRpcError`]: the JSON-RPC error every refusal of the MCP layer
//! answers with, and which code each kind of refusal gets.

use serde_json::Value;

use crate::error::AuthErrorKind;

/// A JSON-RPC error a rejection answers with (the MCP layer's refusals of
/// bodies it cannot judge).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonRpcError {
    code: i64,
    message: &'static str,
    id: Value,
}

impl JsonRpcError {
    /// `-32700`: the body is not JSON (or is compressed, or starts with a
    /// byte-order mark).
    pub const PARSE_ERROR: i64 = -32700;
    /// `-32600`: JSON, but not a JSON-RPC message the layer can judge.
    pub const INVALID_REQUEST: i64 = -32600;
    /// `-32020`: on the stateless (`2026-07-28`) wire, the `Mcp-Method` or
    /// `Mcp-Name` header is missing or does not match the body.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// `-32602`: a message whose parameters the policy reads (a tool or
    /// prompt name, a resource URI) are missing, mistyped or unusable.
    pub const INVALID_PARAMS: i64 = -32602;
    /// `-32603`: the server cannot answer now (a store or the keys are
    /// unavailable, a list answer could not be filtered, a wiring mistake).
    pub const INTERNAL_ERROR: i64 = -32603;
    /// `-31403`: an authorization refusal (HTTP 401 or 403): no or an
    /// unusable token, a missing scope (the `WWW-Authenticate` challenge
    /// names it), a policy that denies the call, another principal's session
    /// or task. Outside the ranges JSON-RPC and MCP reserve
    /// (`-32768..=-32000`); 403 for Forbidden.
    pub const ACCESS_DENIED: i64 = -31403;

    pub(crate) fn new(code: i64, message: &'static str, id: Value) -> Self {
        Self { code, message, id }
    }

    /// The JSON-RPC error the MCP layer answers an `error` of this kind
    /// with (every kind but
    /// [`InvalidMessage`](AuthErrorKind::InvalidMessage), whose code says
    /// what could not be read): the kind's client-safe description as the
    /// message, `id` the request's.
    pub(crate) fn for_kind(kind: AuthErrorKind, id: Value) -> Self {
        use AuthErrorKind as K;
        let code = match kind {
            K::InvalidMessage
            | K::InvalidSession
            | K::UnknownSession
            | K::BodyTooLarge
            | K::MethodNotAllowed => Self::INVALID_REQUEST,
            K::UnsupportedMediaType => Self::PARSE_ERROR,
            K::KeysUnavailable
            | K::IntrospectionUnavailable
            | K::StoreUnavailable
            | K::UnfilterableResponse
            | K::Misconfigured => Self::INTERNAL_ERROR,
            _ => Self::ACCESS_DENIED,
        };
        Self::new(code, kind.description(), id)
    }

    /// The JSON-RPC error code.
    pub fn code(&self) -> i64 {
        self.code
    }

    /// The JSON-RPC error message (fixed text, never request data).
    pub fn message(&self) -> &'static str {
        self.message
    }

    /// The `id` answered: the request's, or `null` when it could not be read.
    pub fn id(&self) -> &Value {
        &self.id
    }
}
