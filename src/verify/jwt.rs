//! JWT access-token verification (RFC 9068, RFC 8725).

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};

use super::TokenVerifier;
use super::claims::{Claim, StdClaims};
use crate::claims::AuthContext;
use crate::clock::Clock;
use crate::config::{AlgSet, Algorithm, ScopeClaim, TypPolicy};
use crate::error::{AuthError, AuthErrorKind};
use crate::guard::token::BearerToken;
use crate::jwks::{KeyRef, KeySet, KeySource, RefreshReason, VerificationKey};

#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
compile_error!(
    "mcp-resource-guard needs a crypto backend: enable the `aws-lc-rs` (default) or `rust-crypto` feature"
);

/// One trusted issuer as the verifier sees it.
#[derive(Debug)]
pub(crate) struct TrustedIssuer {
    pub(crate) issuer: String,
    pub(crate) keys: Arc<dyn KeySource>,
    pub(crate) algorithms: AlgSet,
    pub(crate) explicit_algorithms: bool,
    /// The accepted audiences: the canonical resource first.
    pub(crate) audiences: Vec<String>,
    pub(crate) scope_claim: ScopeClaim,
}

/// Verifies JWT access tokens: signature with the issuer's keys, `iss`,
/// `aud`, `exp`/`nbf`/`iat`, `typ`, `crit`, `cnf`.
///
/// Built by [`GuardLayer`](crate::GuardLayer)'s builder from its config; get
/// it with [`GuardLayer::verifier`](crate::GuardLayer::verifier) to verify
/// tokens outside HTTP.
///
/// Checks, in order (all before any network I/O except the last two):
/// 1. at most `max_token_bytes` bytes; three base64url segments (a
///    five-segment JWE is rejected);
/// 2. header: `alg` is an asymmetric algorithm (never `none` or `HS*`), no
///    `crit`, no nested JWT (`cty: JWT`), `typ` per the [`TypPolicy`];
///    `jku`, `x5u`, `jwk`, `x5c` are ignored and never fetched;
/// 3. `iss` equals a trusted issuer byte for byte;
/// 4. `aud` (string or array) contains the canonical resource (or an
///    additional audience you configured);
/// 5. `exp` present and not past (with leeway); `nbf` and `iat` not in the
///    future (with leeway);
/// 6. no `cnf` (a sender-constrained token is not a Bearer token) and no
///    `nonce` (an OIDC ID token);
/// 7. a key of *that* issuer with the token's `kid` whose algorithm (from the
///    JWK's `alg`, else inferred from its type and curve, within the issuer's
///    allow-list) equals the header's `alg`;
/// 8. the signature.
#[derive(Debug)]
pub(crate) struct JwtVerifier {
    pub(crate) issuers: Vec<TrustedIssuer>,
    pub(crate) leeway: u64,
    pub(crate) typ: TypPolicy,
    pub(crate) max_token_bytes: usize,
    pub(crate) clock: Clock,
    /// DPoP is accepted: `cnf.jkt`-bound tokens verify (the guard checks
    /// the proof); otherwise every `cnf` is refused.
    pub(crate) dpop: bool,
}

#[derive(Deserialize)]
pub(crate) struct Header {
    pub(crate) alg: String,
    pub(crate) kid: Option<String>,
    typ: Option<String>,
    cty: Option<String>,
    crit: Option<IgnoredAny>,
}

fn invalid(detail: &'static str) -> AuthError {
    AuthError::new(AuthErrorKind::InvalidToken, detail)
}

/// A compact JWS split into its parts, its header parsed as `H`.
pub(crate) struct Parts<'a, H = Header> {
    pub(crate) signing_input: &'a str,
    pub(crate) header: H,
    /// The decoded payload (JSON), parsed by the caller.
    pub(crate) payload: Vec<u8>,
    pub(crate) signature: Vec<u8>,
}

/// Splits a compact JWS strictly (canonical base64url, a JSON object header,
/// a non-empty signature; a JWE is refused).
pub(crate) fn split<H: serde::de::DeserializeOwned>(
    token: &str,
) -> Result<Parts<'_, H>, AuthError> {
    let mut dots = token.match_indices('.').map(|(i, _)| i);
    let (Some(d1), Some(d2)) = (dots.next(), dots.next()) else {
        return Err(invalid("not a JWS compact serialization"));
    };
    match dots.count() {
        0 => {}
        // Five segments (four dots): a JWE.
        2 => return Err(invalid("encrypted tokens (JWE) are not supported")),
        _ => return Err(invalid("not a JWS compact serialization")),
    }
    let header = base64_simd::URL_SAFE_NO_PAD
        .decode_to_vec(&token[..d1])
        .map_err(|_| invalid("the JOSE header is not base64url"))?;
    // The header is a JSON object (RFC 7515 §4); serde would also read an
    // array, positionally.
    if header.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(invalid("the JOSE header is not a JSON object"));
    }
    let header: H = serde_json::from_slice(&header)
        .map_err(|_| invalid("the JOSE header is not valid JSON"))?;
    let payload = base64_simd::URL_SAFE_NO_PAD
        .decode_to_vec(&token[d1 + 1..d2])
        .map_err(|_| invalid("the payload is not base64url"))?;
    let signature = base64_simd::URL_SAFE_NO_PAD
        .decode_to_vec(&token[d2 + 1..])
        .map_err(|_| invalid("the signature is not base64url"))?;
    if signature.is_empty() {
        return Err(invalid("the signature is empty"));
    }
    Ok(Parts {
        signing_input: &token[..d2],
        header,
        payload,
        signature,
    })
}

fn is_access_token_typ(typ: &str) -> bool {
    typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
}

impl JwtVerifier {
    fn check_header(&self, h: &Header) -> Result<Algorithm, AuthError> {
        let alg = Algorithm::from_name(&h.alg)
            .ok_or_else(|| invalid("alg is none, symmetric or unsupported"))?;
        if h.crit.is_some() {
            return Err(invalid("the token has critical header parameters (crit)"));
        }
        if h.cty
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("JWT"))
        {
            return Err(invalid("nested JWTs are not accepted"));
        }
        let typ_ok = match (self.typ, h.typ.as_deref()) {
            (_, Some(t)) if is_access_token_typ(t) => true,
            (TypPolicy::AllowJwt, None) => true,
            (TypPolicy::AllowJwt, Some(t)) => t.eq_ignore_ascii_case("JWT"),
            (TypPolicy::AccessTokenOnly, _) => false,
        };
        if !typ_ok {
            return Err(invalid("typ is not at+jwt (see TypPolicy)"));
        }
        Ok(alg)
    }

    fn check_claims(&self, claims: &StdClaims<'_>) -> Result<&TrustedIssuer, AuthError> {
        let Claim::Str(iss) = &claims.iss else {
            return Err(AuthError::new(
                AuthErrorKind::UntrustedIssuer,
                "iss is missing or not a string",
            ));
        };
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.issuer == *iss)
            .ok_or_else(|| {
                AuthError::new(
                    AuthErrorKind::UntrustedIssuer,
                    "iss is not a trusted issuer",
                )
            })?;

        let aud_ok = claims
            .aud
            .str_items()
            .is_some_and(|auds| auds.iter().any(|a| issuer.audiences.iter().any(|x| x == a)));
        if !aud_ok {
            return Err(AuthError::new(
                AuthErrorKind::WrongAudience,
                "aud does not contain this resource",
            ));
        }

        let now = self.clock.unix_now();
        let exp = claims
            .exp
            .numeric_date()
            .map_err(|_| invalid("exp is not a NumericDate"))?
            .ok_or_else(|| invalid("exp is missing"))?;
        if exp.saturating_add(self.leeway) <= now {
            return Err(AuthError::new(AuthErrorKind::Expired, "exp is in the past"));
        }
        for (claim, detail) in [
            (&claims.nbf, "nbf is in the future"),
            (&claims.iat, "iat is in the future"),
        ] {
            let t = claim
                .numeric_date()
                .map_err(|_| invalid("nbf or iat is not a NumericDate"))?;
            if t.is_some_and(|t| t > now.saturating_add(self.leeway)) {
                return Err(AuthError::new(AuthErrorKind::NotYetValid, detail));
            }
        }
        if claims.cnf.is_present() && !self.dpop {
            return Err(invalid(
                "the token is sender-constrained (cnf) and cannot be used as a Bearer token",
            ));
        }
        if claims.nonce.is_present() {
            return Err(invalid(
                "the token carries a nonce: an ID token, not an access token",
            ));
        }
        Ok(issuer)
    }

    /// Tries the candidate keys of `set`. `Ok(Some(key))`: verified by that
    /// key. `Ok(None)`: no candidate key (worth a refresh). `Err`: a
    /// candidate key exists but the token fails with it.
    fn try_keys(
        issuer: &TrustedIssuer,
        set: &Arc<KeySet>,
        parts: &Parts<'_>,
        alg: Algorithm,
    ) -> Result<Option<KeyRef>, AuthError> {
        let kid = parts.header.kid.as_deref();
        let mut found_kid = false;
        let mut tried = false;
        for key in set.candidates(kid) {
            found_kid = true;
            if !key
                .algorithms(issuer.algorithms, issuer.explicit_algorithms)
                .contains(alg)
            {
                continue;
            }
            tried = true;
            if verify_signature(key, alg, parts) {
                return Ok(Some(KeyRef::new(set, key)));
            }
        }
        match (kid.is_some(), found_kid, tried) {
            (true, true, false) => Err(invalid("alg is not allowed for the key with this kid")),
            (true, true, true) => Err(invalid("signature verification failed")),
            _ => Ok(None),
        }
    }
}

impl JwtVerifier {
    /// The key of `issuer` that verifies `parts`, refreshing the issuer's
    /// keys once if none of the current ones does.
    async fn signing_key(
        issuer: &TrustedIssuer,
        parts: &Parts<'_>,
        alg: Algorithm,
    ) -> Result<KeyRef, AuthError> {
        let unavailable = |e| {
            AuthError::with_source(
                AuthErrorKind::KeysUnavailable,
                "the issuer's keys could not be obtained",
                e,
            )
        };
        let set = issuer.keys.keys().await.map_err(unavailable)?;
        let mut verified = Self::try_keys(issuer, &set, parts, alg)?;
        if verified.is_none() {
            let reason = match parts.header.kid.as_deref() {
                Some(kid) => RefreshReason::UnknownKid(kid),
                None => RefreshReason::NoMatchingKey,
            };
            // A failed refresh is not an outage as long as keys are held:
            // the token is simply signed with a key we do not know.
            if let Ok(Some(fresh)) = issuer.keys.refresh(reason, &set).await {
                verified = Self::try_keys(issuer, &fresh, parts, alg)?;
            }
        }
        verified.ok_or_else(|| {
            if parts.header.kid.is_some() {
                AuthError::new(
                    AuthErrorKind::UnknownKey,
                    "no key of the issuer has this kid",
                )
            } else {
                invalid("no key of the issuer verifies the token")
            }
        })
    }

    /// Verifies an RFC 9701 signed introspection response from `issuer`
    /// whose `aud` names one of `recipients` (this resource server's client
    /// id, its resource URL); returns its `token_introspection` member.
    /// Every failure is a 503: the token itself was not judged.
    pub(crate) async fn verify_introspection_jwt(
        &self,
        issuer: &str,
        recipients: &[&str],
        body: &[u8],
    ) -> Result<Map<String, Value>, AuthError> {
        let bad = |detail| AuthError::new(AuthErrorKind::IntrospectionUnavailable, detail);
        let text = std::str::from_utf8(body)
            .map_err(|_| bad("the signed introspection response is not text"))?
            .trim();
        let parts: Parts<'_> =
            split(text).map_err(|_| bad("the signed introspection response is not a JWS"))?;
        let alg = Algorithm::from_name(&parts.header.alg)
            .ok_or_else(|| bad("the signed introspection response's alg is not allowed"))?;
        let typ_ok = parts.header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case("token-introspection+jwt")
                || t.eq_ignore_ascii_case("application/token-introspection+jwt")
        });
        if !typ_ok || parts.header.crit.is_some() {
            return Err(bad(
                "the signed introspection response's typ is not token-introspection+jwt",
            ));
        }
        let trusted = self
            .issuers
            .iter()
            .find(|i| i.issuer == issuer)
            .ok_or_else(|| bad("no keys are configured for the issuer's signed responses"))?;
        Self::signing_key(trusted, &parts, alg).await.map_err(|e| {
            if e.kind() == AuthErrorKind::KeysUnavailable {
                e
            } else {
                bad("the signed introspection response's signature does not verify")
            }
        })?;
        let mut claims: Map<String, Value> = serde_json::from_slice(&parts.payload)
            .map_err(|_| bad("the signed introspection response's payload is not a JSON object"))?;
        if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
            return Err(bad(
                "the signed introspection response names another issuer",
            ));
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => recipients.contains(&a.as_str()),
            Some(Value::Array(a)) => a
                .iter()
                .any(|a| a.as_str().is_some_and(|a| recipients.contains(&a))),
            _ => false,
        };
        if !aud_ok {
            return Err(bad(
                "the signed introspection response is not addressed to this client",
            ));
        }
        match claims.remove("token_introspection") {
            Some(Value::Object(map)) => Ok(map),
            _ => Err(bad(
                "the signed introspection response has no token_introspection object",
            )),
        }
    }
}

fn verify_signature(key: &VerificationKey, alg: Algorithm, parts: &Parts<'_>) -> bool {
    key.key
        .verify(alg, parts.signing_input.as_bytes(), &parts.signature)
}

#[async_trait]
impl TokenVerifier for JwtVerifier {
    async fn verify(&self, token: &BearerToken) -> Result<AuthContext, AuthError> {
        let token = token.secret();
        if token.len() > self.max_token_bytes {
            return Err(invalid("the token is longer than max_token_bytes"));
        }
        let parts: Parts<'_> = split(token)?;
        let alg = self.check_header(&parts.header)?;
        // A claim set is a JSON object (RFC 7519 §7.2); serde would also read
        // an array, positionally.
        let is_object = parts
            .payload
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{');
        let std: StdClaims<'_> = is_object
            .then(|| serde_json::from_slice(&parts.payload).ok())
            .flatten()
            .ok_or_else(|| {
                invalid("the payload is not a JSON object (or repeats a registered claim)")
            })?;
        let issuer = self.check_claims(&std)?;

        let key = Self::signing_key(issuer, &parts, alg).await?;
        let ctx = match &issuer.scope_claim {
            ScopeClaim::Named(n) if !StdClaims::NAMES.contains(&n.as_str()) => {
                let claims: Map<String, Value> = serde_json::from_slice(&parts.payload)
                    .map_err(|_| invalid("the payload is not a JSON object"))?;
                crate::verify::claims::context_from_map(claims, &issuer.scope_claim, Some(key))?
            }
            _ => crate::verify::claims::context_from_jwt(
                &std,
                &parts.payload,
                &issuer.scope_claim,
                key,
            )?,
        };
        if std.cnf.is_present() {
            #[derive(Deserialize)]
            struct Cnf {
                cnf: Value,
            }
            let cnf: Cnf = serde_json::from_slice(&parts.payload)
                .map_err(|_| invalid("the payload is not a JSON object"))?;
            let jkt = super::claims::dpop_binding(&cnf.cnf).map_err(invalid)?;
            let ath = crate::jose::crypto::sha256(token.as_bytes());
            return Ok(ctx.bound_to(jkt, Some(ath)));
        }
        Ok(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(token: &str) -> String {
        match split::<Header>(token) {
            Ok(_) => "ok".into(),
            Err(e) => e.detail().to_owned(),
        }
    }

    #[test]
    fn split_is_strict_about_base64url() {
        // {"alg":"RS256"} . {} . "AA" (one zero byte)
        let h = "eyJhbGciOiJSUzI1NiJ9";
        assert_eq!(detail(&format!("{h}.e30.AA")), "ok");
        // Non-canonical trailing bits, padding, the standard alphabet,
        // whitespace: each a different string for the same bytes, refused.
        assert_eq!(
            detail(&format!("{h}.e30.AB")),
            "the signature is not base64url"
        );
        assert_eq!(
            detail(&format!("{h}.e30.AA==")),
            "the signature is not base64url"
        );
        assert_eq!(
            detail(&format!("{h}.e30.+/")),
            "the signature is not base64url"
        );
        assert_eq!(
            detail(&format!("{h}.e31.AA")),
            "the payload is not base64url"
        );
        assert_eq!(
            detail(&format!(" {h}.e30.AA")),
            "the JOSE header is not base64url"
        );
        assert_eq!(detail(&format!("{h}.e30.")), "the signature is empty");
        assert_eq!(
            detail(&format!("{h}.e30.AA.AA.AA")),
            "encrypted tokens (JWE) are not supported"
        );
        assert_eq!(
            detail(&format!("{h}.e30.AA.AA")),
            "not a JWS compact serialization"
        );
        assert_eq!(detail("e30"), "not a JWS compact serialization");
        // ["RS256"]: serde would read it positionally as alg.
        assert_eq!(
            detail("WyJSUzI1NiJd.e30.AA"),
            "the JOSE header is not a JSON object"
        );
    }
}
