//! Validating a DPoP proof (RFC 9449 §4.3), step by step, and the RFC 7638
//! thumbprint of its key.

use http::{HeaderMap, Method};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use crate::config::{AlgSet, Algorithm};
use crate::error::{AuthError, AuthErrorKind};
use crate::jwks::parse_public_jwk;
use crate::verify::jwt::{Parts, split};

/// The largest `DPoP` header read.
pub(crate) const MAX_PROOF_LEN: usize = 8 * 1024;

fn bad(detail: &'static str) -> AuthError {
    AuthError::new(AuthErrorKind::InvalidDpopProof, detail)
}

#[derive(Deserialize)]
struct Header {
    typ: Option<String>,
    alg: String,
    jwk: Option<Value>,
    crit: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Claims {
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<Value>,
    jti: Option<String>,
    ath: Option<String>,
    nonce: Option<String>,
}

/// What a request's proof must match.
pub(crate) struct ProofCheck<'a> {
    pub(crate) method: &'a Method,
    /// The URL the request reached, normalized (see [`normalize_htu`]).
    pub(crate) htu: &'a str,
    /// The access token the proof must be bound to (`ath`).
    pub(crate) token: &'a str,
    pub(crate) now: u64,
    /// Seconds `iat` may be off, either way.
    pub(crate) window: u64,
    pub(crate) algorithms: AlgSet,
}

/// A proof that passed every check that needs no state.
#[derive(Debug)]
pub(crate) struct Proof {
    /// The RFC 7638 thumbprint of the proof's key (base64url SHA-256).
    pub(crate) jkt: String,
    /// SHA-256 of the thumbprint and the `jti`: the replay-store key.
    pub(crate) replay_key: [u8; 32],
    /// The server nonce the proof carries, if any.
    #[cfg_attr(not(feature = "aws-lc-rs"), allow(dead_code))]
    pub(crate) nonce: Option<String>,
}

/// `scheme://host[:port]/path` with the scheme and host lowercased, the
/// default port dropped, no query and no fragment; `None` if not a URL.
pub(crate) fn normalize_htu(url: &str) -> Option<String> {
    let mut u = url::Url::parse(url).ok()?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return None;
    }
    u.set_query(None);
    u.set_fragment(None);
    Some(u.to_string())
}

/// RFC 7638: SHA-256 over the required members in lexicographic order.
pub(crate) fn thumbprint(jwk: &Value) -> Option<String> {
    let s = |k: &str| jwk.get(k).and_then(Value::as_str);
    let q = |v: &str| serde_json::to_string(v).ok();
    let canonical = match s("kty")? {
        "EC" => format!(
            r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
            q(s("crv")?)?,
            q(s("x")?)?,
            q(s("y")?)?
        ),
        "RSA" => format!(r#"{{"e":{},"kty":"RSA","n":{}}}"#, q(s("e")?)?, q(s("n")?)?),
        "OKP" => format!(
            r#"{{"crv":{},"kty":"OKP","x":{}}}"#,
            q(s("crv")?)?,
            q(s("x")?)?
        ),
        _ => return None,
    };
    Some(base64_simd::URL_SAFE_NO_PAD.encode_to_string(crate::crypto::sha256(canonical.as_bytes())))
}

/// Checks the request's `DPoP` header: every RFC 9449 §4.3 step except the
/// token binding (`cnf.jkt`, checked once the token is verified), the
/// server nonce and the replay store.
pub(crate) fn validate(headers: &HeaderMap, check: &ProofCheck<'_>) -> Result<Proof, AuthError> {
    // 1. Exactly one DPoP header.
    let mut values = headers.get_all("dpop").iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(bad("exactly one DPoP header is required"));
    };
    if value.len() > MAX_PROOF_LEN {
        return Err(bad("the DPoP proof is too long"));
    }
    let proof = value
        .to_str()
        .map_err(|_| bad("the DPoP proof is not ASCII"))?;
    // 2. A well-formed JWS.
    let parts: Parts<'_, Header> =
        split(proof).map_err(|_| bad("the DPoP proof is not a well-formed JWS"))?;
    let header = &parts.header;
    // 3. typ dpop+jwt.
    if !header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt"))
    {
        return Err(bad("the DPoP proof's typ is not dpop+jwt"));
    }
    if header.crit.is_some() {
        return Err(bad("the DPoP proof has critical header parameters"));
    }
    // 4. An asymmetric algorithm from the allow-list (`none` and HMAC are
    // not algorithms here at all).
    let alg = Algorithm::from_name(&header.alg)
        .filter(|a| check.algorithms.contains(*a))
        .ok_or_else(|| bad("the DPoP proof's alg is not accepted"))?;
    // 5. A public key in the header that verifies the signature.
    let jwk = header
        .jwk
        .as_ref()
        .ok_or_else(|| bad("the DPoP proof has no jwk"))?;
    let key = parse_public_jwk(jwk)
        .map_err(|_| bad("the DPoP proof's jwk is not a usable public key"))?;
    // The key's own algorithm (its `alg`, else its type and curve) must be
    // the header's: an RSA key published for RS256 does not verify PS256.
    if !key.algorithms(AlgSet::ALL, true).contains(alg) {
        return Err(bad("the DPoP proof's alg does not fit its jwk"));
    }
    if !key
        .key
        .verify(alg, parts.signing_input.as_bytes(), &parts.signature)
    {
        return Err(bad("the DPoP proof's signature does not verify"));
    }
    if parts.payload.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(bad("the DPoP proof's payload is not a JSON object"));
    }
    let claims: Claims = serde_json::from_slice(&parts.payload)
        .map_err(|_| bad("the DPoP proof's payload is not a JSON object"))?;
    // 6. htm: the request method.
    if claims.htm.as_deref() != Some(check.method.as_str()) {
        return Err(bad("the DPoP proof's htm is not the request method"));
    }
    // 7. htu: the request URL, without query and fragment.
    let htu_ok = claims
        .htu
        .as_deref()
        .and_then(normalize_htu)
        .is_some_and(|h| h == check.htu);
    if !htu_ok {
        return Err(bad("the DPoP proof's htu is not the request URL"));
    }
    // 8. iat within the window.
    let iat = claims
        .iat
        .as_ref()
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("the DPoP proof's iat is missing or not a NumericDate"))?;
    if iat.saturating_add(check.window) < check.now || iat > check.now.saturating_add(check.window)
    {
        return Err(bad("the DPoP proof's iat is outside the accepted window"));
    }
    // 9. jti.
    let jti = claims
        .jti
        .as_deref()
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| bad("the DPoP proof has no usable jti"))?;
    // 10. ath: the hash of this access token.
    let ath = base64_simd::URL_SAFE_NO_PAD
        .encode_to_string(crate::crypto::sha256(check.token.as_bytes()));
    if claims.ath.as_deref() != Some(ath.as_str()) {
        return Err(bad(
            "the DPoP proof's ath is not the hash of the access token",
        ));
    }
    let jkt = thumbprint(jwk).ok_or_else(|| bad("the DPoP proof's jwk has no thumbprint"))?;
    let replay_key = crate::crypto::sha256(format!("{jkt}.{jti}").as_bytes());
    Ok(Proof {
        jkt,
        replay_key,
        nonce: claims.nonce,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(&jwk).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
        assert_eq!(thumbprint(&json!({"kty": "oct", "k": "x"})), None);
        assert_eq!(
            thumbprint(&json!({"kty": "EC", "crv": "P-256", "x": "a"})),
            None
        );
    }

    #[test]
    fn htu_normalization() {
        let n = |s| normalize_htu(s);
        assert_eq!(
            n("HTTPS://MCP.Example.com:443/mcp?x=1#f").as_deref(),
            Some("https://mcp.example.com/mcp")
        );
        assert_eq!(
            n("http://127.0.0.1:80/mcp").as_deref(),
            Some("http://127.0.0.1/mcp")
        );
        assert_eq!(
            n("https://mcp.example.com:8443/mcp").as_deref(),
            Some("https://mcp.example.com:8443/mcp")
        );
        assert_eq!(n("/mcp"), None);
        assert_eq!(n("ftp://mcp.example.com/mcp"), None);
    }
}
