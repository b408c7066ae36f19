//! Test keys and token minting (feature `testing`).
//!
//! **For development and tests only.** Nothing here is an authorization
//! server: keys live in memory, tokens say whatever you ask them to, clients
//! are whatever you register, there is no user, no consent, no revocation.
//! Never expose a [`TestIssuer`] beyond `127.0.0.1` or trust it in production.
//!
//! ```
//! use mcp_resource_guard::testing::{TestKey, jwks};
//! use mcp_resource_guard::Algorithm;
//!
//! let key = TestKey::generate(Algorithm::ES256).unwrap();
//! let token = key.sign(&serde_json::json!({"iss": "https://as.test", "sub": "alice"}));
//! assert_eq!(token.split('.').count(), 3);
//! let set = jwks(&[&key]);
//! assert_eq!(set["keys"][0]["kty"], "EC");
//! ```

mod clocked;
pub mod conformance;
mod endpoints;
mod issuer;
mod key;

pub use crate::clock::ManualClock;
pub use clocked::Clocked;
pub use issuer::{Flaw, TestIssuer, TestIssuerBuilder};
pub use key::{TestKey, TestKeyError};

use serde_json::{Value, json};

pub(crate) fn b64(bytes: &[u8]) -> String {
    base64_simd::URL_SAFE_NO_PAD.encode_to_string(bytes)
}

/// A JWK Set (`{"keys": [...]}`) of the keys' public JWKs.
pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>() })
}

/// A token signed with HMAC-SHA256 under `secret`, with exactly this header.
/// For algorithm-confusion tests (e.g. the secret is a public key's bytes).
pub fn sign_hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

/// `header.payload.` with an empty signature, e.g. for `alg: none`.
pub fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}
