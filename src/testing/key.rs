//! [`TestKey`]: signing key pairs for tests.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

use super::b64;
use crate::config::Algorithm;

/// Key generation or signing failed (in practice: the system RNG failed).
#[derive(Debug, Clone, thiserror::Error)]
#[error("test key operation failed")]
pub struct TestKeyError;

use crate::jose::signing::SigningPair as Pair;

/// A signing key pair for tests, with a `kid`.
pub struct TestKey {
    alg: Algorithm,
    kid: Option<String>,
    pair: Pair,
}

impl fmt::Debug for TestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A process-wide counter for unique `kid`s and `jti`s.
pub(crate) static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl TestKey {
    /// A fresh key for `alg` (RSA keys are 2048 bits), with a unique `kid`.
    ///
    /// # Errors
    ///
    /// When the system RNG fails.
    pub fn generate(alg: Algorithm) -> Result<Self, TestKeyError> {
        let pair = match alg {
            a if a.is_rsa() => Pair::Rsa(
                aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| TestKeyError)?,
            ),
            Algorithm::ES256 => Pair::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| TestKeyError)?,
            ),
            Algorithm::ES384 => Pair::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING)
                    .map_err(|_| TestKeyError)?,
            ),
            _ => Pair::Ed(Ed25519KeyPair::generate().map_err(|_| TestKeyError)?),
        };
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Ok(Self {
            alg,
            kid: Some(format!("test-{}-{n}", alg.as_str().to_ascii_lowercase())),
            pair,
        })
    }

    /// The same key under another `kid`.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The same key without a `kid` (tokens and JWK then carry none).
    pub fn without_kid(mut self) -> Self {
        self.kid = None;
        self
    }

    /// The key's `kid`.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The public key as a JWK with `kid`, `alg` and `use: "sig"`.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.public_jwk_without_alg();
        jwk["alg"] = json!(self.alg.as_str());
        jwk
    }

    /// The public key as a JWK without `alg` (so verifiers must infer it).
    pub fn public_jwk_without_alg(&self) -> Value {
        let mut jwk = match &self.pair {
            Pair::Rsa(k) => {
                let p = k.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64(p.modulus().big_endian_without_leading_zero()),
                    "e": b64(p.exponent().big_endian_without_leading_zero()),
                })
            }
            Pair::Ec(k) => {
                let point = k.public_key().as_ref();
                let len = (point.len() - 1) / 2;
                json!({
                    "kty": "EC",
                    "crv": if len == 32 { "P-256" } else { "P-384" },
                    "x": b64(&point[1..1 + len]),
                    "y": b64(&point[1 + len..]),
                })
            }
            Pair::Ed(k) => json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": b64(k.public_key().as_ref()),
            }),
        };
        jwk["use"] = json!("sig");
        if let Some(kid) = &self.kid {
            jwk["kid"] = json!(kid);
        }
        jwk
    }

    /// The raw public key bytes: DER `RSAPublicKey` for RSA, the uncompressed
    /// point for EC, 32 bytes for Ed25519. Handy for algorithm-confusion tests.
    pub fn public_key_bytes(&self) -> Vec<u8> {
        match &self.pair {
            Pair::Rsa(k) => k.public_key().as_ref().to_vec(),
            Pair::Ec(k) => k.public_key().as_ref().to_vec(),
            Pair::Ed(k) => k.public_key().as_ref().to_vec(),
        }
    }

    /// The RFC 7638 thumbprint of this key: what a token bound to it carries
    /// in `cnf.jkt` (RFC 9449 §6.1).
    pub fn thumbprint(&self) -> String {
        crate::dpop::thumbprint(&self.public_jwk_without_alg()).unwrap_or_default()
    }

    /// A DPoP proof (RFC 9449 §4.2) by this key for a request `method` `url`
    /// carrying `access_token`: `iat` now, a fresh `jti`, `ath`.
    pub fn dpop_proof(&self, method: &str, url: &str, access_token: &str) -> String {
        self.dpop_proof_with(method, url, access_token, &json!({}))
    }

    /// [`dpop_proof`](Self::dpop_proof) with `claims` merged in (a `nonce`,
    /// or a wrong `htm` for a test; `null` removes a claim).
    pub fn dpop_proof_with(
        &self,
        method: &str,
        url: &str,
        access_token: &str,
        claims: &Value,
    ) -> String {
        let mut jwk = self.public_jwk_without_alg();
        if let Some(o) = jwk.as_object_mut() {
            o.remove("kid");
            o.remove("use");
        }
        let header = json!({ "typ": "dpop+jwt", "alg": self.alg.as_str(), "jwk": jwk });
        let ath = b64(&crate::jose::crypto::sha256(access_token.as_bytes()));
        let now = crate::clock::Clock::default().unix_now();
        let jti = format!("jti-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
        let mut c = json!({ "htm": method, "htu": url, "iat": now, "jti": jti, "ath": ath });
        if let (Some(c), Some(extra)) = (c.as_object_mut(), claims.as_object()) {
            for (k, v) in extra {
                if v.is_null() {
                    c.remove(k);
                } else {
                    c.insert(k.clone(), v.clone());
                }
            }
        }
        self.sign_with_header(&header, &c)
    }

    /// Signs `claims` as an access token: header `{"alg", "typ": "at+jwt", "kid"}`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = json!({ "alg": self.alg.as_str(), "typ": "at+jwt" });
        if let Some(kid) = &self.kid {
            header["kid"] = json!(kid);
        }
        self.sign_with_header(&header, claims)
    }

    /// Signs with exactly this header (which may lie about `alg` or `kid`:
    /// the signature always uses this key's own algorithm).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self.sign_bytes(input.as_bytes()).unwrap_or_default();
        format!("{input}.{}", b64(&sig))
    }

    /// A raw signature over `message` with this key's algorithm.
    ///
    /// # Errors
    ///
    /// When signing fails (the system RNG, in practice).
    pub fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, TestKeyError> {
        self.pair
            .sign(self.alg, &SystemRandom::new(), message)
            .map_err(|()| TestKeyError)
    }
}
