//! Validating a DPoP proof (RFC 9449 §4.3), step by step, and the RFC 7638
//! thumbprint of its key.

use http::{HeaderMap, Method};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use std::sync::Arc;

use crate::config::{AlgSet, Algorithm};
use crate::error::{AuthError, AuthErrorKind};
use crate::jwks::{VerificationKey, parse_public_jwk, rsa_modulus_bits};

/// The `DPoP` request header.
const DPOP: http::HeaderName = http::HeaderName::from_static("dpop");

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

/// Proof headers that passed their checks (`typ`, `crit`, `alg` from the
/// allow-list, a usable public `jwk` fitting the `alg`), keyed by the exact
/// base64url header segment: a client signs many proofs with one key and
/// one header, so the header is decoded, parsed and its key built once.
/// Bounded in bytes (each entry counts its segment and 1 KiB).
pub(crate) type ProofHeaders = moka::sync::Cache<String, Arc<CheckedHeader>>;

/// What a checked header gives: the algorithm, the key, its thumbprint.
#[derive(Debug)]
pub(crate) struct CheckedHeader {
    alg: Algorithm,
    key: VerificationKey,
    jkt: String,
}

/// The bytes the header cache may hold.
pub(crate) const PROOF_HEADER_BYTES: u64 = 16 * 1024 * 1024;

/// The largest RSA proof key accepted: the client picks its key, and an
/// RSA verification's cost grows with the modulus (8,192 bits costs about
/// four times 4,096); no DPoP client uses more than 4,096.
pub(crate) const MAX_PROOF_RSA_BITS: usize = 4096;

/// A header cache bounded by [`PROOF_HEADER_BYTES`].
pub(crate) fn header_cache() -> ProofHeaders {
    moka::sync::Cache::builder()
        .max_capacity(PROOF_HEADER_BYTES)
        .weigher(|k: &String, _: &Arc<CheckedHeader>| {
            u32::try_from(k.len())
                .unwrap_or(u32::MAX)
                .saturating_add(1024)
        })
        .build()
}

/// Steps 3 to 5 of RFC 9449 §4.3 on a header segment not seen before.
fn check_header(segment: &str, algorithms: AlgSet) -> Result<CheckedHeader, AuthError> {
    let raw = base64_simd::URL_SAFE_NO_PAD
        .decode_to_vec(segment)
        .map_err(|_| bad("the DPoP proof is not a well-formed JWS"))?;
    if raw.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(bad("the DPoP proof is not a well-formed JWS"));
    }
    let header: Header =
        serde_json::from_slice(&raw).map_err(|_| bad("the DPoP proof is not a well-formed JWS"))?;
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
        .filter(|a| algorithms.contains(*a))
        .ok_or_else(|| bad("the DPoP proof's alg is not accepted"))?;
    // 5. A public key (private members refused) of that algorithm.
    let jwk = header
        .jwk
        .as_ref()
        .ok_or_else(|| bad("the DPoP proof has no jwk"))?;
    let key = parse_public_jwk(jwk)
        .map_err(|_| bad("the DPoP proof's jwk is not a usable public key"))?;
    if jwk.get("kty").and_then(Value::as_str) == Some("RSA")
        && jwk
            .get("n")
            .and_then(Value::as_str)
            .and_then(rsa_modulus_bits)
            .is_none_or(|bits| bits > MAX_PROOF_RSA_BITS)
    {
        return Err(bad("the DPoP proof's RSA key is over 4096 bits"));
    }
    // The key's own algorithm (its `alg`, else its type and curve) must be
    // the header's: an RSA key published for RS256 does not verify PS256.
    if !key.algorithms(AlgSet::ALL, true).contains(alg) {
        return Err(bad("the DPoP proof's alg does not fit its jwk"));
    }
    let jkt = thumbprint(jwk).ok_or_else(|| bad("the DPoP proof's jwk has no thumbprint"))?;
    Ok(CheckedHeader { alg, key, jkt })
}

/// The `ath` of `token`: base64url(SHA-256(token)), as bytes.
pub(crate) fn ath_of(token: &[u8]) -> [u8; 32] {
    crate::jose::crypto::sha256(token)
}

/// What a request's proof must match.
pub(crate) struct ProofCheck<'a> {
    pub(crate) method: &'a Method,
    /// The public URL the request reached (`origin` + path).
    pub(crate) htu: &'a str,
    pub(crate) now: u64,
    /// Seconds `iat` may be off, either way.
    pub(crate) window: u64,
    pub(crate) algorithms: AlgSet,
    /// A token goes with the request (a resource server): `ath` required.
    /// `false` at a token endpoint (RFC 9449 §5), where `ath` is all zeros.
    pub(crate) with_token: bool,
}

/// A proof that passed every check that needs no state.
#[derive(Debug)]
pub(crate) struct Proof {
    /// The RFC 7638 thumbprint of the proof's key (base64url SHA-256).
    pub(crate) jkt: String,
    /// The replay-store key: a digest of the thumbprint and the `jti`.
    pub(crate) replay_key: crate::store::StoreKey,
    /// `ath`, decoded: checked against the token once it is known.
    pub(crate) ath: [u8; 32],
    /// The server nonce the proof carries, if any.
    #[cfg_attr(not(feature = "sealed-state"), allow(dead_code))]
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
    Some(
        base64_simd::URL_SAFE_NO_PAD
            .encode_to_string(crate::jose::crypto::sha256(canonical.as_bytes())),
    )
}

/// Checks the request's `DPoP` header: every RFC 9449 §4.3 step except
/// those that need the token (`ath`, `cnf.jkt`: see `DpopVerifier`), the
/// server nonce and the replay store.
pub(crate) fn validate(
    headers: &HeaderMap,
    check: &ProofCheck<'_>,
    cache: &ProofHeaders,
) -> Result<Proof, AuthError> {
    // 1. Exactly one DPoP header.
    let mut values = headers.get_all(&DPOP).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(bad("exactly one DPoP header is required"));
    };
    if value.len() > MAX_PROOF_LEN {
        return Err(bad("the DPoP proof is too long"));
    }
    let proof = value
        .to_str()
        .map_err(|_| bad("the DPoP proof is not ASCII"))?;
    // 2. A well-formed JWS: three base64url segments (a JWE has five).
    let mut dots = proof.match_indices('.').map(|(i, _)| i);
    let (Some(d1), Some(d2), None) = (dots.next(), dots.next(), dots.next()) else {
        return Err(bad("the DPoP proof is not a well-formed JWS"));
    };
    let segment = &proof[..d1];
    // 3 to 5, once per distinct header (remembered only once a proof
    // signed under it verifies: unsigned headers cannot fill the cache).
    let (header, fresh) = match cache.get(segment) {
        Some(h) => (h, false),
        None => (Arc::new(check_header(segment, check.algorithms)?), true),
    };
    let b64 = |s: &str| {
        base64_simd::URL_SAFE_NO_PAD
            .decode_to_vec(s)
            .map_err(|_| bad("the DPoP proof is not a well-formed JWS"))
    };
    let payload = b64(&proof[d1 + 1..d2])?;
    let signature = b64(&proof[d2 + 1..])?;
    // 5. The signature, with the header's key.
    if !header
        .key
        .key
        .verify(header.alg, &proof.as_bytes()[..d2], &signature)
    {
        return Err(bad("the DPoP proof's signature does not verify"));
    }
    if fresh {
        cache.insert(segment.to_owned(), header.clone());
    }
    if payload.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(bad("the DPoP proof's payload is not a JSON object"));
    }
    let claims: Claims = serde_json::from_slice(&payload)
        .map_err(|_| bad("the DPoP proof's payload is not a JSON object"))?;
    // 6. htm: the request method.
    if claims.htm.as_deref() != Some(check.method.as_str()) {
        return Err(bad("the DPoP proof's htm is not the request method"));
    }
    // 7. htu: the request URL, without query and fragment, compared after
    // normalization (the byte-equal case first).
    let htu_ok = claims.htu.as_deref().is_some_and(|h| {
        h == check.htu || normalize_htu(h).is_some_and(|h| Some(h) == normalize_htu(check.htu))
    });
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
    // 10. ath: decoded here, compared with the token's hash by the caller.
    let ath = match check.with_token {
        true => claims
            .ath
            .as_deref()
            .and_then(|a| base64_simd::URL_SAFE_NO_PAD.decode_to_vec(a).ok())
            .and_then(|a| <[u8; 32]>::try_from(a).ok())
            .ok_or_else(|| bad("the DPoP proof's ath is not the hash of the access token"))?,
        false => [0; 32],
    };
    let jkt = &header.jkt;
    let replay_key = crate::store::StoreKey::new(
        crate::store::KeyKind::DpopProof,
        &[jkt.as_bytes(), jti.as_bytes()],
    );
    Ok(Proof {
        jkt: jkt.clone(),
        replay_key,
        ath,
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

    /// A base64url RSA modulus of exactly `bits` bits (odd, top bit set).
    fn modulus(bits: usize) -> String {
        let mut n = vec![0x5Au8; bits / 8];
        n[0] = 0x80 | 0x5A;
        if let Some(last) = n.last_mut() {
            *last |= 1;
        }
        base64_simd::URL_SAFE_NO_PAD.encode_to_string(&n)
    }

    fn rsa_header(bits: usize) -> String {
        let h = json!({"typ": "dpop+jwt", "alg": "RS256",
            "jwk": {"kty": "RSA", "n": modulus(bits), "e": "AQAB"}});
        base64_simd::URL_SAFE_NO_PAD.encode_to_string(h.to_string())
    }

    #[test]
    fn rsa_proof_keys_over_4096_bits_are_refused() {
        let algs = AlgSet::ALL;
        assert!(check_header(&rsa_header(4096), algs).is_ok());
        for bits in [4104, 8192] {
            assert_eq!(
                check_header(&rsa_header(bits), algs).unwrap_err().detail(),
                "the DPoP proof's RSA key is over 4096 bits",
                "{bits}"
            );
        }
    }

    #[cfg(feature = "testing")]
    #[test]
    fn only_headers_of_proofs_that_verify_are_cached() {
        let key = crate::testing::TestKey::generate(Algorithm::ES256).unwrap();
        let url = "https://mcp.example.com/mcp";
        let check = ProofCheck {
            with_token: true,
            method: &Method::GET,
            htu: url,
            now: crate::clock::Clock::default().unix_now(),
            window: 300,
            algorithms: AlgSet::ALL,
        };
        let cache = header_cache();
        let headers = |proof: &str| {
            let mut h = HeaderMap::new();
            h.insert("dpop", proof.parse().unwrap());
            h
        };
        let proof = key.dpop_proof("GET", url, "token");
        // The same header with a signature that does not verify.
        let (signed, _) = proof.rsplit_once('.').unwrap();
        let forged = format!("{signed}.{}", "A".repeat(86));
        assert!(validate(&headers(&forged), &check, &cache).is_err());
        cache.run_pending_tasks();
        assert_eq!(cache.entry_count(), 0, "an unsigned header was cached");
        assert!(validate(&headers(&proof), &check, &cache).is_ok());
        cache.run_pending_tasks();
        assert_eq!(cache.entry_count(), 1);
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
