//! The DPoP proof checks (RFC 9449 §4.3) on arbitrary `DPoP` header values:
//! split, base64url, header parsing, the proof's own key, signature, claims.
//! Never panics. A proof carries its own key, so a mutated seed may still
//! be a valid proof; what comes out of an accepted one is a well-formed
//! RFC 7638 thumbprint.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_resource_guard::fuzzing::check_dpop_proof;

fuzz_target!(|data: &[u8]| {
    if let Ok(jkt) = check_dpop_proof(data) {
        assert_eq!(jkt.len(), 43, "a SHA-256 in unpadded base64url");
        assert!(
            jkt.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }
});
