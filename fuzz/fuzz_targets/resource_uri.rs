//! The resource URI form the MCP policy judges. Never panics; a judged
//! form is a fixed point (judging it again gives it back, so a rule's
//! pattern and a request's URI meet in one form) and is its own WHATWG
//! serialization (the TypeScript SDK's reading of it is itself).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_resource_guard::fuzzing::normalize_resource_uri;

fuzz_target!(|data: &[u8]| {
    let Ok(uri) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(judged) = normalize_resource_uri(uri) {
        assert_eq!(normalize_resource_uri(&judged).as_deref(), Ok(judged.as_str()), "{uri:?}");
        let whatwg = url::Url::parse(&judged).expect("a judged form is a URL");
        assert_eq!(whatwg.as_str(), judged, "{uri:?}");
    }
});
