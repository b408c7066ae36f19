//! The `2026-07-28` header cross-check (SEP-2243): `Mcp-Method` and
//! `Mcp-Name` mirror the body so intermediaries can route without parsing
//! it; a server that reads the body must refuse a request whose headers say
//! something else (`400`, JSON-RPC `-32020`), or one that lacks them.
//!
//! The MCP layer checks them for any inner server, before the policy, and
//! judges from the body only: a header never decides authorization.
//! `Mcp-Param-*` headers are forwarded unchecked (their meaning lives in the
//! tool's schema, which the layer does not know) and never read.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName};
use serde_json::Value;

use super::jsonrpc::{Message, Refusal};
use crate::challenge::JsonRpcError;
use crate::guard::revision::{PROTOCOL_VERSION, Wire};

const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");
const BASE64_PREFIX: &str = "=?base64?";
const BASE64_SUFFIX: &str = "?=";

/// Why the headers and the body disagree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mismatch {
    /// The JSON-RPC error code: `-32020`, or `-32600` for a body the
    /// stateless wire does not carry (a batch, a response).
    pub(crate) code: i64,
    /// A fixed detail for logs.
    pub(crate) detail: &'static str,
    /// The request's `id` (`null` when it has none).
    pub(crate) id: Value,
}

impl Mismatch {
    fn header(detail: &'static str, id: &Value) -> Self {
        Self {
            code: JsonRpcError::HEADER_MISMATCH,
            detail,
            id: id.clone(),
        }
    }

    /// The JSON-RPC message answered.
    pub(crate) fn message(&self) -> &'static str {
        match self.code {
            JsonRpcError::HEADER_MISMATCH => "Header mismatch",
            _ => Refusal::invalid("").message(),
        }
    }
}

/// The one value of header `name`: `Ok(None)` when absent; an error when
/// repeated or not visible ASCII.
pub(super) fn single<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Result<Option<&'h str>, ()> {
    let mut values = headers.get_all(name).iter();
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(());
    }
    v.to_str().map(Some).map_err(|_| ())
}

/// A header value, Base64-decoded when it uses the sentinel form
/// `=?base64?…?=` (standard alphabet, padded); borrowed otherwise.
fn decode(value: &str) -> Option<Cow<'_, str>> {
    match value
        .strip_prefix(BASE64_PREFIX)
        .and_then(|v| v.strip_suffix(BASE64_SUFFIX))
    {
        Some(inner) => base64_simd::STANDARD
            .decode_to_vec(inner)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(Cow::Owned),
        None => Some(Cow::Borrowed(value)),
    }
}

/// The body value `Mcp-Name` mirrors for `m`'s method, and whether the
/// method has one at all.
fn name_source(m: &Message) -> (bool, Option<&str>) {
    match m.method.as_deref() {
        Some("tools/call" | "prompts/get") => (true, m.name.as_deref()),
        Some("resources/read" | "resources/subscribe" | "resources/unsubscribe") => {
            (true, m.uri.as_deref())
        }
        Some("tasks/get" | "tasks/update" | "tasks/cancel") => (true, m.task_id.as_deref()),
        _ => (false, None),
    }
}

/// The wire of a request, and for a stateless one, whether its headers
/// agree with its body. `batch`: the body was a JSON array.
pub(crate) fn cross_check(
    headers: &HeaderMap,
    messages: &[Message],
    batch: bool,
) -> Result<Wire, Mismatch> {
    let null = Value::Null;
    let first = messages.first();
    let id = first.and_then(|m| m.id.as_ref()).unwrap_or(&null);
    let header_version = single(headers, &PROTOCOL_VERSION).map_err(|()| {
        Mismatch::header(
            "the MCP-Protocol-Version header is repeated or not visible ASCII",
            id,
        )
    })?;
    let body_version = first.and_then(|m| m.protocol_version.as_deref());
    // Only a version that is itself stateless selects the stateless wire
    // (a body naming `2025-11-25` speaks the session wire), whichever
    // message of a batch names it.
    let stateless = header_version.is_some_and(|v| Wire::of_version(v) == Wire::Stateless)
        || messages.iter().any(|m| {
            m.protocol_version
                .as_deref()
                .is_some_and(|v| Wire::of_version(v) == Wire::Stateless)
        });
    if !stateless {
        return Ok(Wire::Session);
    }
    let (Some(m), false) = (first, batch) else {
        return Err(Mismatch {
            code: JsonRpcError::INVALID_REQUEST,
            detail: "a batch: the stateless wire carries one message per POST",
            id: Value::Null,
        });
    };
    let Some(method) = m.method.as_deref() else {
        return Err(Mismatch {
            code: JsonRpcError::INVALID_REQUEST,
            detail: "a JSON-RPC response: the stateless wire carries none from the client",
            id: id.clone(),
        });
    };
    let Some(header_version) = header_version else {
        return Err(Mismatch::header(
            "the body's _meta names a protocol version but the MCP-Protocol-Version header is missing",
            id,
        ));
    };
    if body_version.is_some_and(|b| b != header_version) {
        return Err(Mismatch::header(
            "the MCP-Protocol-Version header does not match the body's _meta protocol version",
            id,
        ));
    }
    let is_request = m.id.is_some();
    match single(headers, &MCP_METHOD) {
        Err(()) => {
            return Err(Mismatch::header(
                "the Mcp-Method header is repeated or not visible ASCII",
                id,
            ));
        }
        Ok(None) if is_request => {
            return Err(Mismatch::header("the Mcp-Method header is missing", id));
        }
        Ok(Some(h)) if h != method => {
            return Err(Mismatch::header(
                "the Mcp-Method header does not match the body's method",
                id,
            ));
        }
        Ok(_) => {}
    }
    let header_name = single(headers, &MCP_NAME).map_err(|()| {
        Mismatch::header("the Mcp-Name header is repeated or not visible ASCII", id)
    })?;
    match (name_source(m), header_name) {
        ((_, Some(_)), None) if is_request => {
            Err(Mismatch::header("the Mcp-Name header is missing", id))
        }
        ((_, Some(body)), Some(h)) => match decode(h) {
            Some(h) if h == body => Ok(Wire::Stateless),
            Some(_) => Err(Mismatch::header(
                "the Mcp-Name header does not match the body",
                id,
            )),
            None => Err(Mismatch::header(
                "the Mcp-Name header is not valid Base64 UTF-8",
                id,
            )),
        },
        ((_, None), Some(_)) => Err(Mismatch::header(
            "an Mcp-Name header for a request whose body names nothing",
            id,
        )),
        _ => Ok(Wire::Stateless),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(method: &str, name: Option<&str>) -> Message {
        Message {
            method: Some(method.into()),
            name: name.map(Into::into),
            id: Some(Value::from(7)),
            ..Message::default()
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
            );
        }
        h
    }

    const V: (&str, &str) = ("mcp-protocol-version", "2026-07-28");

    fn detail(h: &[(&str, &str)], m: Message) -> &'static str {
        match cross_check(&headers(h), &[m], false) {
            Ok(w) => panic!("accepted as {w:?}"),
            Err(e) => {
                assert_eq!(e.id, Value::from(7));
                e.detail
            }
        }
    }

    #[test]
    fn agreeing_headers_pass() {
        let call = || msg("tools/call", Some("add_todo"));
        let ok = |h: &[(&str, &str)], m: Message| cross_check(&headers(h), &[m], false);
        assert_eq!(
            ok(
                &[V, ("mcp-method", "tools/call"), ("mcp-name", "add_todo")],
                call()
            ),
            Ok(Wire::Stateless)
        );
        // The Base64 form, e.g. for a non-ASCII name.
        let m = msg("tools/call", Some("caf\u{e9}"));
        assert_eq!(
            ok(
                &[
                    V,
                    ("mcp-method", "tools/call"),
                    ("mcp-name", "=?base64?Y2Fmw6k=?=")
                ],
                m
            ),
            Ok(Wire::Stateless)
        );
        // No name for tools/list; the session wire is not checked at all.
        assert_eq!(
            ok(&[V, ("mcp-method", "tools/list")], msg("tools/list", None)),
            Ok(Wire::Stateless)
        );
        assert_eq!(
            ok(&[("mcp-protocol-version", "2025-11-25")], call()),
            Ok(Wire::Session)
        );
        assert_eq!(ok(&[], call()), Ok(Wire::Session));
        // A body naming a session-wire version does not select the stateless wire.
        let mut old = call();
        old.protocol_version = Some("2025-11-25".into());
        assert_eq!(
            ok(&[("mcp-protocol-version", "2025-11-25")], old.clone()),
            Ok(Wire::Session)
        );
        assert_eq!(ok(&[], old), Ok(Wire::Session));
        // A notification needs no Mcp-Method.
        let mut n = msg("notifications/cancelled", None);
        n.id = None;
        assert_eq!(ok(&[V], n), Ok(Wire::Stateless));
    }

    #[test]
    fn disagreeing_or_missing_headers_are_refused() {
        let call = || msg("tools/call", Some("add_todo"));
        assert_eq!(
            detail(&[V, ("mcp-name", "add_todo")], call()),
            "the Mcp-Method header is missing"
        );
        assert_eq!(
            detail(
                &[V, ("mcp-method", "tools/list"), ("mcp-name", "add_todo")],
                call()
            ),
            "the Mcp-Method header does not match the body's method"
        );
        assert_eq!(
            detail(&[V, ("mcp-method", "tools/call")], call()),
            "the Mcp-Name header is missing"
        );
        assert_eq!(
            detail(
                &[V, ("mcp-method", "tools/call"), ("mcp-name", "whoami")],
                call()
            ),
            "the Mcp-Name header does not match the body"
        );
        assert_eq!(
            detail(
                &[
                    V,
                    ("mcp-method", "tools/call"),
                    ("mcp-name", "=?base64?!!?=")
                ],
                call()
            ),
            "the Mcp-Name header is not valid Base64 UTF-8"
        );
        assert_eq!(
            detail(
                &[
                    V,
                    ("mcp-method", "tools/call"),
                    ("mcp-method", "tools/call"),
                    ("mcp-name", "add_todo")
                ],
                call()
            ),
            "the Mcp-Method header is repeated or not visible ASCII"
        );
        assert_eq!(
            detail(
                &[V, ("mcp-method", "tools/list"), ("mcp-name", "add_todo")],
                msg("tools/list", None)
            ),
            "an Mcp-Name header for a request whose body names nothing"
        );
        // The body says stateless: the header must say so too.
        let mut m = call();
        m.protocol_version = Some("2026-07-28".into());
        assert_eq!(
            detail(
                &[("mcp-method", "tools/call"), ("mcp-name", "add_todo")],
                m.clone()
            ),
            "the body's _meta names a protocol version but the MCP-Protocol-Version header is missing"
        );
        // A stateless header with a session-wire body version disagrees.
        m.protocol_version = Some("2025-11-25".into());
        assert_eq!(
            detail(
                &[V, ("mcp-method", "tools/call"), ("mcp-name", "add_todo")],
                m.clone()
            ),
            "the MCP-Protocol-Version header does not match the body's _meta protocol version"
        );
        m.protocol_version = Some("2027-01-01".into());
        assert_eq!(
            detail(
                &[V, ("mcp-method", "tools/call"), ("mcp-name", "add_todo")],
                m
            ),
            "the MCP-Protocol-Version header does not match the body's _meta protocol version"
        );
    }

    #[test]
    fn the_stateless_wire_carries_one_request_per_post() {
        let h = headers(&[V, ("mcp-method", "tools/list")]);
        let batch = cross_check(&h, &[msg("tools/list", None)], true).unwrap_err();
        assert_eq!((batch.code, batch.id), (-32600, Value::Null));
        // A batch whose second message names the stateless wire is refused too.
        let mut second = msg("tools/list", None);
        second.protocol_version = Some("2026-07-28".into());
        let batch = cross_check(&h, &[msg("ping", None), second], true).unwrap_err();
        assert_eq!(batch.code, -32600);
        let response = Message {
            id: Some(Value::from(7)),
            ..Message::default()
        };
        assert_eq!(
            cross_check(&h, &[response], false).unwrap_err().code,
            -32600
        );
    }
}
