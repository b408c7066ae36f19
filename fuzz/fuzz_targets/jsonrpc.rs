//! The MCP JSON-RPC body peek. Never panics, and never reports a call for a
//! body that does not start with `{` or `[`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_resource_guard::fuzzing::peek_jsonrpc;

fuzz_target!(|data: &[u8]| {
    if peek_jsonrpc(data).is_some() {
        let first = data.iter().find(|b| !b.is_ascii_whitespace());
        assert!(matches!(first, Some(b'{' | b'[')));
    }
});
