//! How the resource server authenticates to the introspection endpoint:
//! [`ClientAuth`] (`client_secret_basic`, `client_secret_post`,
//! `private_key_jwt`), [`ClientSecret`] and [`ClientAssertionKey`].

use std::fmt;
#[cfg(feature = "signing")]
use std::sync::Arc;

use http::{HeaderName, HeaderValue};

use crate::clock::Clock;
use crate::error::{AuthError, AuthErrorKind};

/// A client secret. Its `Debug` prints `ClientSecret([redacted])`; it has no
/// `Display`, and the crate never logs it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ClientSecret(Box<str>);

impl ClientSecret {
    /// Wraps a secret.
    pub(crate) fn new(secret: impl Into<Box<str>>) -> Self {
        Self(secret.into())
    }

    /// The secret itself. Never log it.
    pub(crate) fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

/// How this resource server authenticates to the authorization server's
/// introspection endpoint (RFC 7662 §2.1 requires it).
///
/// ```
/// use mcp_resource_guard::introspection::ClientAuth;
///
/// let auth = ClientAuth::client_secret_basic("my-resource-server", "s3cret");
/// // Debug never shows the secret:
/// assert!(!format!("{auth:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct ClientAuth {
    client_id: String,
    method: Method,
}

#[derive(Clone)]
enum Method {
    None,
    Basic(ClientSecret),
    Post(ClientSecret),
    #[cfg(feature = "signing")]
    PrivateKeyJwt {
        key: Arc<ClientAssertionKey>,
        audience: Option<String>,
    },
}

impl ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the form-urlencoded client id
    /// and secret (RFC 6749 §2.3.1).
    pub fn client_secret_basic(client_id: impl Into<String>, secret: impl Into<Box<str>>) -> Self {
        Self {
            client_id: client_id.into(),
            method: Method::Basic(ClientSecret::new(secret)),
        }
    }

    /// `none`: a public client (RFC 6749 §2.1), only its `client_id` in the
    /// form. For token requests of the client side (an authorization code
    /// flow with PKCE, a workload assertion); introspection refuses it.
    pub fn none(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            method: Method::None,
        }
    }

    /// `client_secret_post`: `client_id` and `client_secret` in the form.
    pub fn client_secret_post(client_id: impl Into<String>, secret: impl Into<Box<str>>) -> Self {
        Self {
            client_id: client_id.into(),
            method: Method::Post(ClientSecret::new(secret)),
        }
    }

    /// `private_key_jwt` (RFC 7523 §2.2): a fresh assertion signed with
    /// `key` on every call, `iss` = `sub` = the client id, `aud` = the
    /// issuer identifier (change it with
    /// [`assertion_audience`](ClientAuth::assertion_audience)), a 60 s
    /// lifetime and a random `jti`. Feature `signing`.
    #[cfg(feature = "signing")]
    pub fn private_key_jwt(client_id: impl Into<String>, key: ClientAssertionKey) -> Self {
        Self {
            client_id: client_id.into(),
            method: Method::PrivateKeyJwt {
                key: Arc::new(key),
                audience: None,
            },
        }
    }

    /// For `private_key_jwt`: the assertion's `aud` (some servers, Okta's
    /// among them, want the endpoint URL rather than the issuer). No effect
    /// on the other methods.
    #[must_use]
    #[cfg_attr(not(feature = "signing"), allow(unused_mut))]
    pub fn assertion_audience(mut self, audience: impl Into<String>) -> Self {
        #[cfg(feature = "signing")]
        if let Method::PrivateKeyJwt { audience: a, .. } = &mut self.method {
            *a = Some(audience.into());
        }
        #[cfg(not(feature = "signing"))]
        let _ = audience.into();
        self
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The method's registered name, e.g. `client_secret_basic`.
    pub fn method_name(&self) -> &'static str {
        match &self.method {
            Method::None => "none",
            Method::Basic(_) => "client_secret_basic",
            Method::Post(_) => "client_secret_post",
            #[cfg(feature = "signing")]
            Method::PrivateKeyJwt { .. } => "private_key_jwt",
        }
    }

    /// Adds the authentication to a request's headers and form.
    pub(crate) fn apply(
        &self,
        issuer: &str,
        clock: &Clock,
        headers: &mut Vec<(HeaderName, HeaderValue)>,
        form: &mut Vec<(&'static str, String)>,
    ) -> Result<(), AuthError> {
        let _ = (issuer, clock);
        match &self.method {
            Method::None => form.push(("client_id", self.client_id.clone())),
            Method::Basic(secret) => {
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                let pair = format!("{}:{}", enc(&self.client_id), enc(secret.secret()));
                let value = format!("Basic {}", base64_simd::STANDARD.encode_to_string(pair));
                let mut value = HeaderValue::from_str(&value).map_err(|_| {
                    unavailable("the client credentials cannot form an Authorization header")
                })?;
                value.set_sensitive(true);
                headers.push((http::header::AUTHORIZATION, value));
            }
            Method::Post(secret) => {
                form.push(("client_id", self.client_id.clone()));
                form.push(("client_secret", secret.secret().to_owned()));
            }
            #[cfg(feature = "signing")]
            Method::PrivateKeyJwt { key, audience } => {
                let aud = audience.as_deref().unwrap_or(issuer);
                let assertion = key.assertion(&self.client_id, aud, clock.unix_now())?;
                form.push(("client_id", self.client_id.clone()));
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ));
                form.push(("client_assertion", assertion));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAuth")
            .field("client_id", &self.client_id)
            .field("method", &self.method_name())
            .finish_non_exhaustive()
    }
}

fn unavailable(detail: &'static str) -> AuthError {
    AuthError::new(AuthErrorKind::IntrospectionUnavailable, detail)
}

pub use key::ClientAssertionKey;

#[cfg(feature = "signing")]
mod key {
    use std::fmt;

    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair};

    use super::unavailable;
    use crate::config::Algorithm;
    use crate::error::{AuthError, ConfigError};

    use crate::jose::signing::SigningPair as Pair;

    /// The private key a `private_key_jwt` client signs its assertions
    /// with (feature `signing`). Its `Debug` shows the algorithm and
    /// `kid`, never the key.
    ///
    /// ```
    /// use mcp_resource_guard::Algorithm;
    /// use mcp_resource_guard::introspection::ClientAssertionKey;
    ///
    /// let pem = "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----";
    /// assert!(ClientAssertionKey::from_pkcs8_pem(Algorithm::ES256, pem).is_err());
    /// ```
    pub struct ClientAssertionKey {
        alg: Algorithm,
        kid: Option<String>,
        pair: Pair,
    }

    impl fmt::Debug for ClientAssertionKey {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("ClientAssertionKey")
                .field("alg", &self.alg)
                .field("kid", &self.kid)
                .finish_non_exhaustive()
        }
    }

    impl ClientAssertionKey {
        /// A PKCS#8 private key (DER) for `alg`: RS256/384/512, PS256/384/512
        /// (RSA), ES256 (P-256), ES384 (P-384) or EdDSA (Ed25519).
        ///
        /// # Errors
        ///
        /// [`ConfigError::InvalidClientKey`] when the key does not parse or
        /// does not fit `alg`.
        pub fn from_pkcs8_der(alg: Algorithm, der: &[u8]) -> Result<Self, ConfigError> {
            let bad = |reason: &'static str| ConfigError::InvalidClientKey { reason };
            let pair = match alg {
                a if a.is_rsa() => Pair::Rsa(
                    aws_lc_rs::rsa::KeyPair::from_pkcs8(der)
                        .map_err(|_| bad("not a PKCS#8 RSA private key"))?,
                ),
                Algorithm::ES256 => Pair::Ec(
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
                        .map_err(|_| bad("not a PKCS#8 P-256 private key"))?,
                ),
                Algorithm::ES384 => Pair::Ec(
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, der)
                        .map_err(|_| bad("not a PKCS#8 P-384 private key"))?,
                ),
                Algorithm::EdDSA => Pair::Ed(
                    Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                        .map_err(|_| bad("not a PKCS#8 Ed25519 private key"))?,
                ),
                _ => return Err(bad("the algorithm cannot sign client assertions")),
            };
            Ok(Self {
                alg,
                kid: None,
                pair,
            })
        }

        /// The same from PEM (`-----BEGIN PRIVATE KEY-----`).
        ///
        /// # Errors
        ///
        /// [`ConfigError::InvalidClientKey`] when the PEM or the key does not parse.
        pub fn from_pkcs8_pem(alg: Algorithm, pem: &str) -> Result<Self, ConfigError> {
            let body: String = pem
                .lines()
                .map(str::trim)
                .skip_while(|l| *l != "-----BEGIN PRIVATE KEY-----")
                .skip(1)
                .take_while(|l| *l != "-----END PRIVATE KEY-----")
                .collect();
            let der = base64_simd::STANDARD
                .decode_to_vec(body.as_bytes())
                .map_err(|_| ConfigError::InvalidClientKey {
                    reason: "not a PEM PRIVATE KEY block",
                })?;
            Self::from_pkcs8_der(alg, &der)
        }

        /// The `kid` to put in the assertion's header (the one registered
        /// with the authorization server, if it asks for one).
        #[must_use]
        pub fn kid(mut self, kid: impl Into<String>) -> Self {
            self.kid = Some(kid.into());
            self
        }

        /// A signed client assertion (RFC 7523 §3).
        pub(super) fn assertion(
            &self,
            client_id: &str,
            audience: &str,
            now: u64,
        ) -> Result<String, AuthError> {
            let rng = SystemRandom::new();
            let mut jti = [0u8; 16];
            rng.fill(&mut jti)
                .map_err(|_| unavailable("the system RNG failed"))?;
            let mut header = serde_json::json!({ "alg": self.alg.as_str(), "typ": "JWT" });
            if let Some(kid) = &self.kid {
                header["kid"] = kid.as_str().into();
            }
            let claims = serde_json::json!({
                "iss": client_id,
                "sub": client_id,
                "aud": audience,
                "iat": now,
                "exp": now + 60,
                "jti": base64_simd::URL_SAFE_NO_PAD.encode_to_string(jti),
            });
            let b64 = |b: &[u8]| base64_simd::URL_SAFE_NO_PAD.encode_to_string(b);
            let input = format!(
                "{}.{}",
                b64(header.to_string().as_bytes()),
                b64(claims.to_string().as_bytes())
            );
            let sig = self
                .sign(&rng, input.as_bytes())
                .map_err(|()| unavailable("signing the client assertion failed"))?;
            Ok(format!("{input}.{}", b64(&sig)))
        }

        fn sign(&self, rng: &SystemRandom, message: &[u8]) -> Result<Vec<u8>, ()> {
            self.pair.sign(self.alg, rng, message)
        }
    }
}

#[cfg(not(feature = "signing"))]
mod key {
    /// `private_key_jwt` needs the `signing` feature.
    #[derive(Debug)]
    pub enum ClientAssertionKey {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_form_encodes_then_base64s() {
        let auth = ClientAuth::client_secret_basic("rs:1", "a b+c");
        let (mut h, mut f) = (Vec::new(), Vec::new());
        auth.apply("https://as", &Clock::default(), &mut h, &mut f)
            .unwrap();
        assert!(f.is_empty());
        let expected = format!(
            "Basic {}",
            base64_simd::STANDARD.encode_to_string("rs%3A1:a+b%2Bc")
        );
        assert_eq!(h[0].1.to_str().unwrap(), expected);
        assert!(h[0].1.is_sensitive());
    }

    #[test]
    fn post_puts_credentials_in_the_form() {
        let auth = ClientAuth::client_secret_post("rs", "s3cret");
        let (mut h, mut f) = (Vec::new(), Vec::new());
        auth.apply("https://as", &Clock::default(), &mut h, &mut f)
            .unwrap();
        assert!(h.is_empty());
        assert_eq!(
            f,
            [
                ("client_id", "rs".to_owned()),
                ("client_secret", "s3cret".to_owned())
            ]
        );
    }

    #[cfg(feature = "signing")]
    #[test]
    fn pem_keys_sign_assertions_that_verify() {
        use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let public = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec();
        let b64 = base64_simd::STANDARD.encode_to_string(pkcs8.as_ref());
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        );
        let key = ClientAssertionKey::from_pkcs8_pem(crate::Algorithm::EdDSA, &pem).unwrap();
        assert!(!format!("{key:?}").contains(&b64[..16]));
        let jwt = key.assertion("rs", "https://as", 1_800_000_000).unwrap();
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let sig = base64_simd::URL_SAFE_NO_PAD.decode_to_vec(sig).unwrap();
        UnparsedPublicKey::new(&ED25519, &public)
            .verify(input.as_bytes(), &sig)
            .unwrap();
        // A key that does not fit the algorithm, or no key at all.
        assert!(matches!(
            ClientAssertionKey::from_pkcs8_pem(crate::Algorithm::ES256, &pem),
            Err(crate::ConfigError::InvalidClientKey { .. })
        ));
        assert!(matches!(
            ClientAssertionKey::from_pkcs8_der(crate::Algorithm::RS256, b"junk"),
            Err(crate::ConfigError::InvalidClientKey { .. })
        ));
    }

    #[test]
    fn debug_is_redacted() {
        let auth = ClientAuth::client_secret_post("rs", "s3cret");
        assert!(!format!("{auth:?}").contains("s3cret"));
        assert_eq!(
            format!("{:?}", ClientSecret::new("x")),
            "ClientSecret([redacted])"
        );
    }
}
