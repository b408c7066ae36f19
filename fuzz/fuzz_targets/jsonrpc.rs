//! The MCP JSON-RPC body peek. Never panics, never accepts a body that does
//! not start with `{` or `[` (after whitespace) or is not UTF-8, and every
//! message it accepts is a request with a method or a response.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_resource_guard::fuzzing::peek_jsonrpc;

fuzz_target!(|data: &[u8]| {
    if let Ok(messages) = peek_jsonrpc(data) {
        let first = data.iter().find(|b| !b.is_ascii_whitespace());
        assert!(matches!(first, Some(b'{' | b'[')));
        assert!(std::str::from_utf8(data).is_ok());
        assert!(!messages.is_empty() && messages.len() <= 64);
    }
});
