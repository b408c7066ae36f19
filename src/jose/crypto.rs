//! Public keys parsed once per key-set refresh, and signature verification.
//!
//! With the `aws-lc-rs` feature, keys are aws-lc-rs `ParsedPublicKey`s built
//! once (RSA keys once per algorithm, at first use), so a verification is a
//! bare signature check: jsonwebtoken's verifier rebuilds the key from its
//! components on every call. With only `rust-crypto`, verification goes
//! through jsonwebtoken's RustCrypto provider.

#[cfg(feature = "aws-lc-rs")]
fn b64(s: &str) -> Result<Vec<u8>, &'static str> {
    base64_simd::URL_SAFE_NO_PAD
        .decode_to_vec(s)
        .map_err(|_| "a key parameter is not base64url")
}

#[cfg(feature = "aws-lc-rs")]
mod imp {
    use std::sync::OnceLock;

    use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};

    use super::b64;
    use crate::config::Algorithm;

    pub(crate) enum PublicKey {
        Rsa {
            n: Vec<u8>,
            e: Vec<u8>,
            /// One parsed key per RSA algorithm, built at first use.
            parsed: Box<[OnceLock<Option<ParsedPublicKey>>; 6]>,
        },
        Fixed(Algorithm, ParsedPublicKey),
    }

    fn rsa_index(alg: Algorithm) -> Option<(usize, &'static signature::RsaParameters)> {
        Some(match alg {
            Algorithm::RS256 => (0, &signature::RSA_PKCS1_2048_8192_SHA256),
            Algorithm::RS384 => (1, &signature::RSA_PKCS1_2048_8192_SHA384),
            Algorithm::RS512 => (2, &signature::RSA_PKCS1_2048_8192_SHA512),
            Algorithm::PS256 => (3, &signature::RSA_PSS_2048_8192_SHA256),
            Algorithm::PS384 => (4, &signature::RSA_PSS_2048_8192_SHA384),
            Algorithm::PS512 => (5, &signature::RSA_PSS_2048_8192_SHA512),
            _ => return None,
        })
    }

    impl PublicKey {
        pub(crate) fn rsa(n: &str, e: &str) -> Result<Self, &'static str> {
            let (n, e) = (b64(n)?, b64(e)?);
            // Validate once now, so a bad key is skipped at refresh time.
            RsaPublicKeyComponents { n: &n, e: &e }
                .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
                .map_err(|_| "bad RSA n or e")?;
            Ok(Self::Rsa {
                n,
                e,
                parsed: Default::default(),
            })
        }

        pub(crate) fn ec(alg: Algorithm, x: &str, y: &str) -> Result<Self, &'static str> {
            let mut point = vec![4u8];
            point.extend(b64(x)?);
            point.extend(b64(y)?);
            let params = match alg {
                Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
                _ => &signature::ECDSA_P384_SHA384_FIXED,
            };
            let key = ParsedPublicKey::new(params, point).map_err(|_| "bad EC x or y")?;
            Ok(Self::Fixed(alg, key))
        }

        pub(crate) fn ed25519(x: &str) -> Result<Self, &'static str> {
            let key =
                ParsedPublicKey::new(&signature::ED25519, b64(x)?).map_err(|_| "bad OKP x")?;
            Ok(Self::Fixed(Algorithm::EdDSA, key))
        }

        pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], sig: &[u8]) -> bool {
            match self {
                Self::Fixed(a, key) => *a == alg && key.verify_sig(message, sig).is_ok(),
                Self::Rsa { n, e, parsed } => {
                    let Some((i, params)) = rsa_index(alg) else {
                        return false;
                    };
                    let key = parsed[i].get_or_init(|| {
                        RsaPublicKeyComponents {
                            n: &n[..],
                            e: &e[..],
                        }
                        .to_parsed_public_key(params)
                        .ok()
                    });
                    key.as_ref()
                        .is_some_and(|k| k.verify_sig(message, sig).is_ok())
                }
            }
        }
    }
}

#[cfg(not(feature = "aws-lc-rs"))]
mod imp {
    use jsonwebtoken::DecodingKey;
    use jsonwebtoken::crypto::CryptoProvider;

    use crate::config::Algorithm;

    static PROVIDER: &CryptoProvider = &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;

    pub(crate) struct PublicKey(DecodingKey);

    impl PublicKey {
        pub(crate) fn rsa(n: &str, e: &str) -> Result<Self, &'static str> {
            DecodingKey::from_rsa_components(n, e)
                .map(Self)
                .map_err(|_| "bad RSA n or e")
        }

        pub(crate) fn ec(_alg: Algorithm, x: &str, y: &str) -> Result<Self, &'static str> {
            DecodingKey::from_ec_components(x, y)
                .map(Self)
                .map_err(|_| "bad EC x or y")
        }

        pub(crate) fn ed25519(x: &str) -> Result<Self, &'static str> {
            DecodingKey::from_ed_components(x)
                .map(Self)
                .map_err(|_| "bad OKP x")
        }

        pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], sig: &[u8]) -> bool {
            match (PROVIDER.verifier_factory)(&alg.to_jwt(), &self.0) {
                Ok(v) => v.verify(message, &sig.to_vec()).is_ok(),
                Err(_) => false,
            }
        }
    }
}

pub(crate) use imp::PublicKey;

/// SHA-256 of `data` (DPoP `ath` and JWK thumbprints).
#[cfg(feature = "aws-lc-rs")]
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// SHA-256 of `data` (DPoP `ath` and JWK thumbprints).
#[cfg(not(feature = "aws-lc-rs"))]
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}
