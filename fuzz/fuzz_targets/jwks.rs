//! The JWK Set parser. Never panics; every key it keeps has a usable
//! algorithm, and kids are unique.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_resource_guard::jwks::KeySet;

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = KeySet::from_json(data) {
        let mut kids: Vec<_> = set.keys().iter().filter_map(|k| k.kid()).collect();
        let n = kids.len();
        kids.sort_unstable();
        kids.dedup();
        assert_eq!(kids.len(), n, "duplicate kid kept");
    }
});
