//! The bounded peek at a JSON-RPC body: what the policy needs of each
//! message (method, `params.name`, `params.uri`, `params.ref`, `id`), read
//! without building a JSON tree, and a refusal for anything it cannot judge.
//!
//! Refused (the MCP layer answers `400` with a JSON-RPC error, `id` null):
//! - `-32700` parse error: not UTF-8, a byte-order mark, not JSON (trailing
//!   bytes included), not an object or an array at the top;
//! - `-32600` invalid request: an element that is not a JSON-RPC 2.0
//!   message (`"jsonrpc": "2.0"`, a string `method`, or a response with an
//!   `id` and exactly one of `result` / `error`), an empty batch, a batch
//!   over the limit, a key the policy reads given twice or with the wrong
//!   type.
//!
//! Memory: strings for the few fields read, at most `max_batch` messages;
//! everything else is skipped as it is parsed.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

pub(crate) use super::json::Refusal;
use super::json::{Scalar, once, refuse, scalars};
use super::params::ParamsSeed;

/// What `completion/complete` completes (`params.ref`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reference {
    /// `{"type": "ref/prompt", "name": …}`
    Prompt(String),
    /// `{"type": "ref/resource", "uri": …}` (a URI or URI template)
    Resource(String),
}

/// One JSON-RPC message, as far as the policy needs it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    /// `method` of a request or notification; `None` for a response.
    pub(crate) method: Option<String>,
    /// `params.name`, when a string.
    pub(crate) name: Option<String>,
    /// `params.uri`, when a string.
    pub(crate) uri: Option<String>,
    /// `params.ref` of `completion/complete`.
    pub(crate) reference: Option<Reference>,
    /// `params.taskId` (the tasks extension).
    pub(crate) task_id: Option<String>,
    /// `params.notifications.taskIds` of `subscriptions/listen` (the tasks
    /// extension): the tasks whose status the client asks to hear of.
    pub(crate) listen_task_ids: Vec<String>,
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]`: the
    /// revision a stateless (`2026-07-28`) request speaks.
    pub(crate) protocol_version: Option<String>,
    /// The request may be answered with a task: it carries `params.task`
    /// (`2025-11-25`), or its `_meta` client capabilities name the tasks
    /// extension (`2026-07-28`). A server creates tasks for no other.
    pub(crate) task_capable: bool,
    /// `id` (a string, a number or null), when present.
    pub(crate) id: Option<Value>,
}

/// Reads the messages of a POST body: one message, or a batch of at most
/// `max_batch`.
pub(crate) fn peek(body: &[u8], max_batch: usize) -> Result<Vec<Message>, Refusal> {
    if body.starts_with(b"\xEF\xBB\xBF") {
        return Err(Refusal::parse("the body starts with a byte-order mark"));
    }
    // SIMD validation: a 64 KiB body costs about a tenth of std's pass.
    if simdutf8::basic::from_utf8(body).is_err() {
        return Err(Refusal::parse("the body is not UTF-8"));
    }
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    let batch = match start.map(|i| body[i]) {
        Some(b'[') => true,
        Some(b'{') => false,
        _ => return Err(Refusal::parse("the body is not a JSON object or array")),
    };
    // Set by the visitors when the JSON is well-formed but not judgeable.
    let invalid = Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = if batch {
        de.deserialize_seq(BatchVisitor {
            max: max_batch,
            invalid: &invalid,
        })
    } else {
        MessageSeed { invalid: &invalid }
            .deserialize(&mut de)
            .map(|m| vec![m])
    };
    let parsed = parsed.and_then(|m| de.end().map(|()| m));
    match (parsed, invalid.get()) {
        (_, Some(refusal)) => Err(refusal),
        (Ok(messages), None) => Ok(messages),
        (Err(_), None) => Err(Refusal::parse("the body is not valid JSON")),
    }
}

struct BatchVisitor<'c> {
    max: usize,
    invalid: &'c Cell<Option<Refusal>>,
}

impl<'de> Visitor<'de> for BatchVisitor<'_> {
    type Value = Vec<Message>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a batch of JSON-RPC messages")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(m) = seq.next_element_seed(MessageSeed {
            invalid: self.invalid,
        })? {
            if out.len() == self.max {
                return Err(refuse(
                    self.invalid,
                    Refusal::invalid("the batch holds more messages than max_batch_messages"),
                ));
            }
            out.push(m);
        }
        if out.is_empty() {
            return Err(refuse(self.invalid, Refusal::invalid("the batch is empty")));
        }
        Ok(out)
    }
}

struct MessageSeed<'c> {
    invalid: &'c Cell<Option<Refusal>>,
}

impl<'de> DeserializeSeed<'de> for MessageSeed<'_> {
    type Value = Message;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Message, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MessageSeed<'_> {
    type Value = Message;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
        let bad = |detail| refuse::<A::Error>(self.invalid, Refusal::invalid(detail));
        let mut m = Message::default();
        let (mut version, mut method, mut id, mut params) = (false, false, false, false);
        let (mut result, mut error) = (false, false);
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match &*key {
                "jsonrpc" => {
                    once(&mut version, self.invalid)?;
                    if map.next_value::<Scalar>()? != Scalar::Str("2.0".into()) {
                        return Err(bad("jsonrpc is not \"2.0\""));
                    }
                }
                "method" => {
                    once(&mut method, self.invalid)?;
                    match map.next_value::<Scalar>()? {
                        Scalar::Str(s) => m.method = Some(s),
                        _ => return Err(bad("method is not a string")),
                    }
                }
                "id" => {
                    once(&mut id, self.invalid)?;
                    m.id = Some(match map.next_value::<Scalar>()? {
                        Scalar::Str(s) => Value::String(s),
                        Scalar::Number(n) => Value::Number(n),
                        Scalar::Null => Value::Null,
                        Scalar::Other => return Err(bad("id is not a string, a number or null")),
                    });
                }
                "params" => {
                    once(&mut params, self.invalid)?;
                    map.next_value_seed(ParamsSeed {
                        invalid: self.invalid,
                        message: &mut m,
                    })?;
                }
                "result" => {
                    once(&mut result, self.invalid)?;
                    map.next_value::<IgnoredAny>()?;
                }
                "error" => {
                    once(&mut error, self.invalid)?;
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !version {
            return Err(bad("a message without \"jsonrpc\": \"2.0\""));
        }
        let valid = if method {
            !result && !error
        } else {
            id && (result != error)
        };
        if !valid {
            return Err(bad(
                "neither a request (method) nor a response (id and one of result, error)",
            ));
        }
        Ok(m)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Message, A::Error> {
        Err(refuse(
            self.invalid,
            Refusal::invalid("a batch element is an array"),
        ))
    }

    scalars!(Message, |this| Err(refuse(
        this.invalid,
        Refusal::invalid("a message is not a JSON object")
    )));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> Vec<Message> {
        peek(body.as_bytes(), 64).unwrap_or_else(|e| panic!("{body}: {e:?}"))
    }

    fn refused(body: &[u8]) -> Refusal {
        match peek(body, 64) {
            Ok(m) => panic!("{:?} accepted: {m:?}", String::from_utf8_lossy(body)),
            Err(r) => r,
        }
    }

    #[test]
    fn reads_what_the_policy_needs() {
        let m = ok(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":[1,{"name":"y"}]}}}"#,
        );
        assert_eq!(m[0].method.as_deref(), Some("tools/call"));
        assert_eq!(m[0].name.as_deref(), Some("x"));
        assert_eq!(m[0].id, Some(Value::from(1)));
        let m = ok(
            r#" [{"jsonrpc":"2.0","method":"tools/list"},{"jsonrpc":"2.0","id":9,"result":{}}]"#,
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].method, None);
        let m = ok(
            r#"{"jsonrpc":"2.0","id":"a","method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"file:///{p}"},"argument":{"name":"p","value":""}}}"#,
        );
        assert_eq!(
            m[0].reference,
            Some(Reference::Resource("file:///{p}".into()))
        );
        assert_eq!(m[0].name, None, "argument.name is not params.name");
        let m = ok(
            r#"{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"t-1","_meta":{"x":[1],"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        );
        assert_eq!(m[0].task_id.as_deref(), Some("t-1"));
        assert_eq!(m[0].protocol_version.as_deref(), Some("2026-07-28"));
        assert!(!m[0].task_capable);
        // Task-capable calls: `params.task`, or the tasks extension among
        // the `_meta` client capabilities.
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","task":{"ttl":60000}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","_meta":{"io.modelcontextprotocol/clientCapabilities":{"roots":{},"extensions":{"a":1,"io.modelcontextprotocol/tasks":{}}}}}}"#,
        ] {
            assert!(ok(body)[0].task_capable, "{body}");
        }
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","_meta":{"io.modelcontextprotocol/clientCapabilities":{"io.modelcontextprotocol/tasks":{}}}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"task":1},"_meta":{"extensions":{"io.modelcontextprotocol/tasks":{}}}}}"#,
        ] {
            assert!(!ok(body)[0].task_capable, "{body}");
        }
        // Escaped keys are the same keys.
        let m =
            ok(r#"{"jsonrpc":"2.0","id":1,"m\u0065thod":"tools/call","params":{"n\u0061me":"x"}}"#);
        assert_eq!(m[0].name.as_deref(), Some("x"));
    }

    #[test]
    fn refuses_what_it_cannot_judge() {
        use crate::challenge::JsonRpcError as E;
        let parse = [
            &b"not json"[..],
            b"",
            b"{\"method\":",
            b"\xEF\xBB\xBF{\"jsonrpc\":\"2.0\",\"method\":\"ping\"}",
            b"\xFF\xFE{\x00",
            b"{\"jsonrpc\":\"2.0\",\"method\":\"ping\"} trailing",
            b"{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"x\":\"\xC3\x28\"}",
            b"\"a string\"",
        ];
        for body in parse {
            assert_eq!(refused(body).code, E::PARSE_ERROR, "{body:?}");
        }
        // The refusals say why, in the audit trail.
        assert_eq!(
            refused(parse[3]).detail,
            "the body starts with a byte-order mark"
        );
        assert_eq!(refused(parse[6]).detail, "the body is not UTF-8");
        let invalid = [
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"a","name":"b"}}"#,
            r#"{"jsonrpc":"2.0","method":"tools/list","method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","method":7}"#,
            r#"{"method":"tools/list"}"#,
            r#"{"jsonrpc":"1.0","method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0"}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{}}"#,
            r#"{"jsonrpc":"2.0","method":"x","result":{}}"#,
            r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#,
            r#"{"jsonrpc":"2.0","method":"x","params":5}"#,
            r#"[]"#,
            r#"[1]"#,
            r#"[{"jsonrpc":"2.0","method":"tools/list"}, 1]"#,
            r#"[{"jsonrpc":"2.0","method":"tools/list"}, []]"#,
            r#"[{"jsonrpc":"2.0","method":"tools/list"}, {"id":1}]"#,
        ];
        for body in invalid {
            assert_eq!(refused(body.as_bytes()).code, E::INVALID_REQUEST, "{body}");
        }
        for body in [
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":["safe"]}}"#,
            r#"{"jsonrpc":"2.0","method":"resources/read","params":{"uri":1}}"#,
        ] {
            assert_eq!(refused(body.as_bytes()).code, E::INVALID_PARAMS, "{body}");
        }
    }

    #[test]
    fn batches_are_bounded() {
        let one = r#"{"jsonrpc":"2.0","method":"ping"}"#;
        let batch = |n: usize| format!("[{}]", vec![one; n].join(","));
        assert_eq!(peek(batch(64).as_bytes(), 64).unwrap().len(), 64);
        assert_eq!(
            peek(batch(65).as_bytes(), 64).unwrap_err(),
            Refusal::invalid("the batch holds more messages than max_batch_messages")
        );
        // A large array of numbers stops at the first element.
        let ones = format!("[{}1]", "1,".repeat(1_000_000));
        assert_eq!(
            peek(ones.as_bytes(), 64).unwrap_err(),
            Refusal::invalid("a message is not a JSON object")
        );
    }
}
