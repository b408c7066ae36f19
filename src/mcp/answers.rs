//! A server's answer read as JSON-RPC messages (a JSON body, or the events
//! of an SSE stream), so the MCP layer can read or rewrite the responses in
//! it (filtered lists, created tasks) and write the answer out again.

use bytes::Bytes;
use serde_json::Value;

/// The JSON-RPC messages of an answer (a JSON body, or the events of an
/// SSE stream), to rewrite some of them and write the answer out again.
pub(crate) struct Answers {
    /// The JSON body, or each SSE event with its message if it holds one.
    parts: Vec<(String, Option<Value>)>,
    sse: bool,
}

impl Answers {
    /// `None` when a JSON body is not JSON, or an SSE body not UTF-8.
    pub(crate) fn parse(body: &[u8], sse: bool) -> Option<Self> {
        if !sse {
            let reply: Value = serde_json::from_slice(body).ok()?;
            return Some(Self {
                parts: vec![(String::new(), Some(reply))],
                sse,
            });
        }
        let text = std::str::from_utf8(body).ok()?.replace("\r\n", "\n");
        let parts = text
            .split_inclusive("\n\n")
            .map(|event| {
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| {
                        l.strip_prefix("data:")
                            .map(|d| d.strip_prefix(' ').unwrap_or(d))
                    })
                    .collect();
                let reply: Option<Value> = serde_json::from_str(&data.join("\n")).ok();
                (event.to_owned(), reply)
            })
            .collect();
        Some(Self { parts, sse })
    }

    /// The JSON-RPC responses (messages with a `result` or an `error`).
    pub(crate) fn replies(&self) -> impl Iterator<Item = &Value> {
        self.parts
            .iter()
            .filter_map(|(_, r)| r.as_ref())
            .filter(|r| r.get("result").is_some() || r.get("error").is_some())
    }

    /// The JSON-RPC responses, to rewrite in place.
    pub(crate) fn replies_mut(&mut self) -> impl Iterator<Item = &mut Value> {
        self.parts
            .iter_mut()
            .filter_map(|(_, r)| r.as_mut())
            .filter(|r| r.get("result").is_some() || r.get("error").is_some())
    }

    /// The answer written out: each message as it now is; an SSE event's
    /// other fields (`id`, `event`, `retry`) kept.
    pub(crate) fn to_bytes(&self) -> Bytes {
        if !self.sse {
            return Bytes::from(
                self.parts
                    .first()
                    .and_then(|(_, r)| r.as_ref())
                    .map(Value::to_string)
                    .unwrap_or_default(),
            );
        }
        let mut out = String::new();
        for (event, reply) in &self.parts {
            let Some(r) = reply else {
                out.push_str(event);
                continue;
            };
            for line in event.lines().filter(|l| !l.starts_with("data:")) {
                if !line.is_empty() {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            out.push_str("data: ");
            out.push_str(&r.to_string());
            out.push_str("\n\n");
        }
        Bytes::from(out)
    }
}
