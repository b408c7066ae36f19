//! [`DpopKey`]: the client's side of DPoP (RFC 9449): a key pair whose
//! proofs bind the tokens it gets, and the nonces servers hand out.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};
use serde_json::json;

use super::token::ClientError;
use crate::clock::Clock;
use crate::error::ConfigError;

/// At most this many origins' nonces are remembered.
const MAX_NONCES: usize = 64;
/// The longest nonce kept.
const MAX_NONCE_LEN: usize = 512;

/// A DPoP key (ES256, P-256), generated in memory and never exported: the
/// tokens an [`AuthorizedClient`](super::AuthorizedClient) or
/// [`ClientCredentials`](super::ClientCredentials) gets with it are bound
/// to it (`cnf.jkt`), so a stolen token is useless without it. Proofs
/// carry `htm`, `htu` (without query and fragment), `iat`, a random `jti`,
/// `ath` when a token goes with them, and the last nonce the origin gave
/// (RFC 9449 §8, §9). Feature `signing`.
///
/// ```
/// use mcp_resource_guard::client::DpopKey;
///
/// let key = DpopKey::generate()?;
/// let proof = key.proof("POST", "https://mcp.example.com/mcp?x=1", Some("token"))?;
/// assert_eq!(proof.split('.').count(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct DpopKey {
    pair: EcdsaKeyPair,
    jwk: serde_json::Value,
    thumbprint: String,
    rng: SystemRandom,
    clock: Clock,
    nonces: Mutex<HashMap<String, String>>,
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey")
            .field("alg", &"ES256")
            .field("jkt", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    base64_simd::URL_SAFE_NO_PAD.encode_to_string(bytes)
}

/// The origin a nonce belongs to (`None` for a URL that does not parse).
fn origin(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()
        .map(|u| u.origin().ascii_serialization())
}

impl DpopKey {
    /// A fresh P-256 key.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidClientKey`] when the system cannot generate one.
    pub fn generate() -> Result<Self, ConfigError> {
        let pair =
            EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| {
                ConfigError::InvalidClientKey {
                    reason: "the system could not generate a P-256 key",
                }
            })?;
        // The uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = pair.public_key().as_ref();
        let (x, y) = match point {
            [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
            _ => {
                return Err(ConfigError::InvalidClientKey {
                    reason: "unexpected P-256 public key encoding",
                });
            }
        };
        let jwk = json!({ "kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y) });
        let thumbprint = crate::dpop::thumbprint(&jwk).unwrap_or_default();
        Ok(Self {
            pair,
            jwk,
            thumbprint,
            rng: SystemRandom::new(),
            clock: Clock::default(),
            nonces: Mutex::default(),
        })
    }

    /// The RFC 7638 thumbprint of the public key: the `cnf.jkt` of the
    /// tokens bound to it.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// A proof for a `method` request to `url`, with `ath` for
    /// `access_token` when one goes with it, and the nonce `url`'s origin
    /// gave last.
    ///
    /// # Errors
    ///
    /// [`ClientError::Unavailable`] when the system RNG or signing fails.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
    ) -> Result<String, ClientError> {
        let fail = |what: &str| ClientError::Unavailable(format!("DPoP proof: {what}"));
        let htu = match url::Url::parse(url) {
            Ok(mut u) => {
                u.set_query(None);
                u.set_fragment(None);
                u.to_string()
            }
            Err(_) => return Err(fail("the URL does not parse")),
        };
        let mut jti = [0u8; 16];
        self.rng
            .fill(&mut jti)
            .map_err(|_| fail("the system RNG failed"))?;
        let mut claims = json!({
            "htm": method,
            "htu": htu,
            "iat": self.clock.unix_now(),
            "jti": b64(&jti),
        });
        if let Some(token) = access_token {
            claims["ath"] = b64(&crate::jose::crypto::sha256(token.as_bytes())).into();
        }
        if let Some(nonce) = self.nonce_for(url) {
            claims["nonce"] = nonce.into();
        }
        let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk });
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self
            .pair
            .sign(&self.rng, input.as_bytes())
            .map_err(|_| fail("signing failed"))?;
        Ok(format!("{input}.{}", b64(sig.as_ref())))
    }

    fn nonce_for(&self, url: &str) -> Option<String> {
        let nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        nonces.get(&origin(url)?).cloned()
    }

    /// Remembers the nonce `url`'s origin sent (its `DPoP-Nonce` header).
    /// Returns whether it is new (a retry with it can help).
    pub(crate) fn remember_nonce(&self, url: &str, nonce: &str) -> bool {
        let (Some(origin), true) = (origin(url), nonce.len() <= MAX_NONCE_LEN) else {
            return false;
        };
        let mut nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        if nonces.get(&origin).is_some_and(|n| n == nonce) {
            return false;
        }
        if nonces.len() >= MAX_NONCES && !nonces.contains_key(&origin) {
            // Nonces are a cache: forgetting one costs one retry.
            nonces.clear();
        }
        nonces.insert(origin, nonce.to_owned());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(proof: &str) -> serde_json::Value {
        let part = proof.split('.').nth(1).unwrap();
        serde_json::from_slice(&base64_simd::URL_SAFE_NO_PAD.decode_to_vec(part).unwrap()).unwrap()
    }

    #[test]
    fn proofs_carry_what_rfc_9449_asks() {
        let key = DpopKey::generate().unwrap();
        let p = key
            .proof("POST", "https://h.example/mcp?q=1#f", Some("tok"))
            .unwrap();
        let c = claims(&p);
        assert_eq!(c["htm"], "POST");
        assert_eq!(c["htu"], "https://h.example/mcp");
        assert_eq!(c["ath"], b64(&crate::jose::crypto::sha256(b"tok")).as_str());
        assert!(c.get("nonce").is_none());
        assert_ne!(
            claims(&key.proof("POST", "https://h.example/mcp", None).unwrap())["jti"],
            c["jti"]
        );
        assert!(key.remember_nonce("https://h.example/token", "n1"));
        assert!(!key.remember_nonce("https://h.example/x", "n1"));
        let c = claims(&key.proof("GET", "https://h.example/mcp", None).unwrap());
        assert_eq!(c["nonce"], "n1");
        assert!(c.get("ath").is_none());
        let other = claims(&key.proof("GET", "https://other.example/mcp", None).unwrap());
        assert!(other.get("nonce").is_none());
        assert!(!key.remember_nonce("https://h.example", &"n".repeat(MAX_NONCE_LEN + 1)));
    }

    #[test]
    fn the_proof_verifies_with_the_crates_own_checker() {
        let key = DpopKey::generate().unwrap();
        let proof = key
            .proof("POST", "https://h.example/mcp", Some("tok"))
            .unwrap();
        let header: serde_json::Value = serde_json::from_slice(
            &base64_simd::URL_SAFE_NO_PAD
                .decode_to_vec(proof.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(
            crate::dpop::thumbprint(&header["jwk"]).unwrap(),
            key.thumbprint()
        );
    }
}
