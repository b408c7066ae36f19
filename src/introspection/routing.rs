//! [`RoutingVerifier`]: which tokens are verified locally, which are
//! introspected, which both, per issuer and [`IntrospectionMode`].

use std::sync::Arc;

use async_trait::async_trait;

use super::{IntrospectionMode, Introspector};
use crate::claims::AuthContext;
use crate::error::{AuthError, AuthErrorKind};
use crate::guard::token::BearerToken;
use crate::verify::{JwtVerifier, TokenVerifier};

/// The guard's verifier when an issuer has introspection.
#[derive(Debug)]
pub(crate) struct RoutingVerifier {
    /// Local verification: the built-in JWT verifier, or yours.
    pub(crate) local: Arc<dyn TokenVerifier>,
    /// The built-in JWT verifier (for RFC 9701 signed responses), when used.
    pub(crate) jwt: Option<Arc<JwtVerifier>>,
    pub(crate) introspectors: Vec<Arc<Introspector>>,
    pub(crate) max_token_bytes: usize,
}

/// The unverified `iss` of a token shaped like a JWS (three segments, a
/// JSON object header); `None` for anything else (an opaque token). A JWS
/// whose payload names no string `iss` gives `Some("")`.
fn jws_issuer(token: &str) -> Option<String> {
    let mut segments = token.split('.');
    let (Some(header), Some(payload), Some(_), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return None;
    };
    let header = base64_simd::URL_SAFE_NO_PAD.decode_to_vec(header).ok()?;
    if header.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: Option<String>,
    }
    let iss = base64_simd::URL_SAFE_NO_PAD
        .decode_to_vec(payload)
        .ok()
        .and_then(|p| serde_json::from_slice::<Iss>(&p).ok())
        .and_then(|i| i.iss);
    Some(iss.unwrap_or_default())
}

impl RoutingVerifier {
    /// `local` alone when no issuer introspects; else the routing verifier.
    pub(crate) fn wrap(
        local: Arc<dyn TokenVerifier>,
        jwt: Option<Arc<JwtVerifier>>,
        introspectors: Vec<Arc<Introspector>>,
        max_token_bytes: usize,
    ) -> Arc<dyn TokenVerifier> {
        if introspectors.is_empty() {
            return local;
        }
        Arc::new(Self {
            local,
            jwt,
            introspectors,
            max_token_bytes,
        })
    }

    fn find(&self, issuer: &str, mode: IntrospectionMode) -> Option<&Introspector> {
        self.introspectors
            .iter()
            .find(|i| i.mode() == mode && i.issuer() == issuer)
            .map(|i| &**i)
    }

    /// The one issuer that takes opaque tokens, if any (the builder allows
    /// at most one).
    fn opaque(&self) -> Option<&Introspector> {
        self.introspectors
            .iter()
            .find(|i| i.mode() != IntrospectionMode::JwtThenIntrospect)
            .map(|i| &**i)
    }
}

#[async_trait]
impl TokenVerifier for RoutingVerifier {
    async fn verify(&self, token: &BearerToken) -> Result<AuthContext, AuthError> {
        if token.secret().len() > self.max_token_bytes {
            return Err(AuthError::new(
                AuthErrorKind::InvalidToken,
                "the token is longer than max_token_bytes",
            ));
        }
        let jwt = self.jwt.as_deref();
        let Some(iss) = jws_issuer(token.secret()) else {
            return match self.opaque() {
                Some(i) => i.introspect(token, jwt).await,
                None => self.local.verify(token).await,
            };
        };
        if let Some(i) = self.find(&iss, IntrospectionMode::EveryToken) {
            return i.introspect(token, jwt).await;
        }
        let ctx = self.local.verify(token).await?;
        match self.find(ctx.issuer(), IntrospectionMode::JwtThenIntrospect) {
            Some(i) => {
                // Verified locally; the server must still call it active.
                let confirmed = i.introspect(token, jwt).await?;
                let until = confirmed.cache_until().unwrap_or(0);
                Ok(ctx.limit_caching(until))
            }
            None => Ok(ctx),
        }
    }

    fn forget(&self, token: &BearerToken) {
        self.local.forget(token);
        for i in &self.introspectors {
            i.forget(token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64_simd::URL_SAFE_NO_PAD.encode_to_string(s)
    }

    #[test]
    fn opaque_and_jws_shapes() {
        let h = b64(r#"{"alg":"ES256"}"#);
        let p = b64(r#"{"iss":"https://as"}"#);
        assert_eq!(
            jws_issuer(&format!("{h}.{p}.sig")).as_deref(),
            Some("https://as")
        );
        assert_eq!(
            jws_issuer(&format!("{h}.{}.sig", b64("{}"))).as_deref(),
            Some("")
        );
        assert_eq!(jws_issuer(&format!("{h}.!!.sig")).as_deref(), Some(""));
        // Opaque: no dots, PASETO-like segments, a JWE, a non-object header.
        assert_eq!(jws_issuer("2YotnFZFEjr1zCsicMWpAA"), None);
        assert_eq!(jws_issuer("v4.local.abc"), None);
        assert_eq!(jws_issuer(&format!("{h}.{p}.a.b.c")), None);
        assert_eq!(jws_issuer(&format!("{}.{p}.sig", b64("[1]"))), None);
    }
}
