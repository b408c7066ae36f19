//! Entry points into the parsers for the fuzz targets (`fuzz/`) and the
//! property tests. **Not a public API**: hidden, behind the `fuzzing`
//! feature, and free to change in any release.

use http::{HeaderMap, Uri};

use crate::error::AuthErrorKind;
use crate::token::{self, Credentials};

/// What the guard makes of a request's `Authorization` headers and query.
#[derive(Debug, PartialEq, Eq)]
pub enum Authorization {
    /// No `Authorization` header.
    None,
    /// Another scheme.
    OtherScheme,
    /// A Bearer token that passed the token68 check.
    Bearer(String),
}

/// The Authorization parser as the guard runs it on a cache miss: extract,
/// then the token68 check.
pub fn parse_authorization(headers: &HeaderMap, uri: &Uri) -> Result<Authorization, AuthErrorKind> {
    match token::extract(headers, uri).map_err(|e| e.kind())? {
        Credentials::None => Ok(Authorization::None),
        Credentials::OtherScheme => Ok(Authorization::OtherScheme),
        Credentials::Bearer(raw) => token::validate(raw)
            .map(|t| Authorization::Bearer(t.secret().to_owned()))
            .map_err(|e| e.kind()),
    }
}

/// One JSON-RPC message as the MCP policy sees it.
#[derive(Debug, PartialEq, Eq)]
pub struct PeekedCall {
    /// `method`, when a string.
    pub method: Option<String>,
    /// `params.name`, when a string.
    pub name: Option<String>,
    /// `params.uri`, when a string.
    pub uri: Option<String>,
    /// A key the policy reads appeared twice or had the wrong type.
    pub ambiguous: bool,
}

/// The MCP body peek: `None` when the body is not JSON (passed on as is).
pub fn peek_jsonrpc(body: &[u8]) -> Option<Vec<PeekedCall>> {
    crate::mcp::peek_calls(body).map(|calls| {
        calls
            .into_iter()
            .map(|(method, name, uri, ambiguous)| PeekedCall {
                method,
                name,
                uri,
                ambiguous,
            })
            .collect()
    })
}
