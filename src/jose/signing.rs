//! Private keys that sign a JWS: client assertions (`private_key_jwt`) and
//! the test tokens of [`testing`](crate::testing). aws-lc-rs only.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair};

use crate::config::Algorithm;

/// A key pair of one of the JWS signature families.
pub(crate) enum SigningPair {
    Rsa(aws_lc_rs::rsa::KeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl SigningPair {
    /// A JWS signature over `message` with `alg` (the RSA padding and hash
    /// from `alg`; EC and Ed25519 keys have one algorithm each).
    pub(crate) fn sign(
        &self,
        alg: Algorithm,
        rng: &SystemRandom,
        message: &[u8],
    ) -> Result<Vec<u8>, ()> {
        match self {
            Self::Rsa(k) => {
                let padding: &'static dyn signature::RsaEncoding = match alg {
                    Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
                    Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
                    Algorithm::PS256 => &signature::RSA_PSS_SHA256,
                    Algorithm::PS384 => &signature::RSA_PSS_SHA384,
                    Algorithm::PS512 => &signature::RSA_PSS_SHA512,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(padding, rng, message, &mut sig).map_err(|_| ())?;
                Ok(sig)
            }
            Self::Ec(k) => Ok(k.sign(rng, message).map_err(|_| ())?.as_ref().to_vec()),
            Self::Ed(k) => Ok(k.sign(message).as_ref().to_vec()),
        }
    }
}
