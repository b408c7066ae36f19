//! The JWK Set parser: [`KeySet`] and its keys, each parsed once.

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

use crate::config::{AlgSet, Algorithm};
use crate::error::ConfigError;

/// How a key's acceptable algorithms are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyAlg {
    /// The JWK's `alg`.
    Explicit(Algorithm),
    /// An RSA key without `alg`.
    InferredRsa,
    /// Inferred from the curve (P-256 -> ES256, P-384 -> ES384, Ed25519 -> EdDSA).
    Inferred(Algorithm),
}

/// One parsed public key.
pub struct VerificationKey {
    pub(crate) kid: Option<String>,
    pub(crate) alg: KeyAlg,
    pub(crate) key: crate::jose::crypto::PublicKey,
    /// A hash of the `kid` and the key material: the same key in a later
    /// fetch has the same fingerprint.
    fingerprint: u64,
}

impl VerificationKey {
    /// The key's `kid`, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithms this key may verify under `allow` (the issuer's
    /// allow-list) and whether that allow-list was set explicitly.
    pub(crate) fn algorithms(&self, allow: AlgSet, explicit: bool) -> AlgSet {
        let mut s = AlgSet::default();
        match self.alg {
            KeyAlg::Explicit(a) | KeyAlg::Inferred(a) => s.insert(a),
            KeyAlg::InferredRsa if explicit => {
                for a in allow.iter().filter(|a| a.is_rsa()) {
                    s.insert(a);
                }
            }
            KeyAlg::InferredRsa => s.insert(Algorithm::RS256),
        }
        s.iter().filter(|a| allow.contains(*a)).collect()
    }
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// A parsed JWK Set: the usable public signing keys, each parsed once.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<VerificationKey>,
    skipped: Vec<SkippedKey>,
}

/// A JWK left out of a [`KeySet`], and why.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// The key's `kid`, if it had one.
    pub kid: Option<String>,
    /// Why it was skipped.
    pub reason: &'static str,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    alg: Option<String>,
    kid: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    d: Option<serde_json::Value>,
    p: Option<serde_json::Value>,
    q: Option<serde_json::Value>,
    dp: Option<serde_json::Value>,
    dq: Option<serde_json::Value>,
    qi: Option<serde_json::Value>,
    oth: Option<serde_json::Value>,
    k: Option<serde_json::Value>,
}

fn parse_key(raw: RawJwk) -> Result<VerificationKey, &'static str> {
    let private = [&raw.d, &raw.p, &raw.q, &raw.dp, &raw.dq, &raw.qi, &raw.oth];
    if private.iter().any(|m| m.is_some()) || raw.k.is_some() {
        return Err("private or symmetric key material in a published JWK");
    }
    if raw.use_.as_deref().is_some_and(|u| u != "sig") {
        return Err("use is not \"sig\"");
    }
    if let Some(ops) = &raw.key_ops
        && !ops.iter().any(|o| o == "verify")
    {
        return Err("key_ops does not include \"verify\"");
    }
    let explicit = match raw.alg.as_deref() {
        None => None,
        Some(name) => {
            Some(Algorithm::from_name(name).ok_or("alg is not a supported signature algorithm")?)
        }
    };
    let kty = raw.kty.as_deref().ok_or("kty is missing")?;
    let (key, inferred) = match kty {
        "RSA" => {
            let (Some(n), Some(e)) = (&raw.n, &raw.e) else {
                return Err("RSA key without n or e");
            };
            if explicit.is_some_and(|a| !a.is_rsa()) {
                return Err("alg does not match kty RSA");
            }
            // RFC 8725 §3.5, NIST SP 800-131A: at least 2048 bits, whatever
            // the backend accepts; at most 8192 (aws-lc-rs's bound).
            let bits = rsa_modulus_bits(n).ok_or("RSA n is not base64url")?;
            if !(2048..=8192).contains(&bits) {
                return Err("RSA modulus outside 2048..=8192 bits");
            }
            let key = crate::jose::crypto::PublicKey::rsa(n, e)?;
            (key, KeyAlg::InferredRsa)
        }
        "EC" => {
            let (Some(x), Some(y)) = (&raw.x, &raw.y) else {
                return Err("EC key without x or y");
            };
            let (alg, len) = match raw.crv.as_deref() {
                Some("P-256") => (Algorithm::ES256, 32),
                Some("P-384") => (Algorithm::ES384, 48),
                _ => return Err("unsupported EC curve"),
            };
            if explicit.is_some_and(|a| a != alg) {
                return Err("alg does not match the EC curve");
            }
            if b64_len(x) != Some(len) || b64_len(y) != Some(len) {
                return Err("EC coordinates of the wrong length");
            }
            let key = crate::jose::crypto::PublicKey::ec(alg, x, y)?;
            (key, KeyAlg::Inferred(alg))
        }
        "OKP" => {
            let Some(x) = &raw.x else {
                return Err("OKP key without x");
            };
            if raw.crv.as_deref() != Some("Ed25519") {
                return Err("unsupported OKP curve");
            }
            if explicit.is_some_and(|a| a != Algorithm::EdDSA) {
                return Err("alg does not match the OKP curve");
            }
            if b64_len(x) != Some(32) {
                return Err("Ed25519 key of the wrong length");
            }
            let key = crate::jose::crypto::PublicKey::ed25519(x)?;
            (key, KeyAlg::Inferred(Algorithm::EdDSA))
        }
        _ => return Err("unsupported kty"),
    };
    let fingerprint = fingerprint(&raw);
    Ok(VerificationKey {
        kid: raw.kid,
        alg: explicit.map_or(inferred, KeyAlg::Explicit),
        key,
        fingerprint,
    })
}

/// Identifies a key across fetches: its `kid`, type, algorithm and public
/// parameters. SipHash with fixed keys, so a key keeps its fingerprint for
/// the life of the process; the JWKS comes from a trusted issuer, so there
/// is no adversary to collide with.
fn fingerprint(raw: &RawJwk) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&raw.kid, &raw.kty, &raw.alg, &raw.crv).hash(&mut h);
    (&raw.n, &raw.e, &raw.x, &raw.y).hash(&mut h);
    h.finish()
}

/// The bit length of a base64url big-endian modulus (leading zeros ignored).
pub(crate) fn rsa_modulus_bits(n: &str) -> Option<usize> {
    let bytes = base64_simd::URL_SAFE_NO_PAD.decode_to_vec(n).ok()?;
    let start = bytes.iter().position(|b| *b != 0)?;
    Some((bytes.len() - start) * 8 - bytes[start].leading_zeros() as usize)
}

/// Decoded length of an unpadded base64url string, if it is one.
fn b64_len(s: &str) -> Option<usize> {
    base64_simd::URL_SAFE_NO_PAD
        .decode_to_vec(s)
        .ok()
        .map(|v| v.len())
}

/// Parses one public JWK (a DPoP proof's `jwk` header): the same rules as a
/// key in a JWK Set, private members refused.
pub(crate) fn parse_public_jwk(value: &serde_json::Value) -> Result<VerificationKey, &'static str> {
    if !value.is_object() {
        return Err("the jwk is not a JSON object");
    }
    let raw = RawJwk::deserialize(value).map_err(|_| "malformed JWK")?;
    parse_key(raw)
}

impl KeySet {
    /// Parses a JWK Set document (RFC 7517 §5).
    ///
    /// Unusable keys are skipped, not fatal: unknown `kty` or curve, `use`
    /// other than `sig`, an `alg` that is not an asymmetric signature
    /// algorithm or does not match the key, missing or malformed parameters,
    /// private key material, a repeated `kid`. [`skipped`](KeySet::skipped)
    /// says which and why.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidJwks`] only when the document is not a JWK Set
    /// (not an object with a `keys` array), the error
    /// [`StaticJwks::from_json`](super::StaticJwks::from_json) gives too.
    pub fn from_json(json: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        Self::parse(json.as_ref()).map_err(|e| ConfigError::InvalidJwks {
            reason: e.to_string(),
        })
    }

    fn parse(json: &[u8]) -> Result<Self, serde_json::Error> {
        // Objects only: serde would also read an array positionally.
        let mut doc: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(json)?;
        let raw: RawSet = match doc.remove("keys") {
            Some(keys @ serde_json::Value::Array(_)) => RawSet {
                keys: serde_json::from_value(keys)?,
            },
            _ => {
                return Err(serde::de::Error::custom(
                    "a JWK Set is an object with a \"keys\" array",
                ));
            }
        };
        let mut set = KeySet::default();
        for value in raw.keys {
            let kid = value.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
            let parsed = if value.is_object() {
                serde_json::from_value::<RawJwk>(value).map_err(|_| "malformed JWK")
            } else {
                Err("malformed JWK")
            }
            .and_then(parse_key);
            match parsed {
                Ok(k) if k.kid.is_some() && set.keys.iter().any(|o| o.kid == k.kid) => {
                    set.skipped.push(SkippedKey {
                        kid,
                        reason: "duplicate kid",
                    })
                }
                Ok(k) => set.keys.push(k),
                Err(reason) => set.skipped.push(SkippedKey { kid, reason }),
            }
        }
        Ok(set)
    }

    /// The usable keys.
    pub fn keys(&self) -> &[VerificationKey] {
        &self.keys
    }

    /// The keys that were left out, and why.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// `true` when a usable key has this `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// `true` when no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// `true` when `key` is in this set: the set it was found in, or the
    /// same key (same `kid` and material) fetched again.
    pub fn contains(self: &Arc<Self>, key: &KeyRef) -> bool {
        Arc::ptr_eq(self, &key.set) || self.keys.iter().any(|k| k.fingerprint == key.fingerprint)
    }

    /// The keys a token may be verified with: those whose `kid` equals the
    /// token's, or every key when the token has no `kid`.
    pub(crate) fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
    ) -> impl Iterator<Item = &'a VerificationKey> + 'a {
        self.keys
            .iter()
            .filter(move |k| kid.is_none() || k.kid.as_deref() == kid)
    }
}

/// Which key verified a token: the set it was found in and the key's
/// fingerprint. Carried in the verified [`AuthContext`](crate::AuthContext)
/// so that a cached verification ends as soon as the key leaves the
/// issuer's set (see [`KeySource::holds`](super::KeySource::holds)).
#[derive(Clone)]
pub struct KeyRef {
    set: Arc<KeySet>,
    fingerprint: u64,
}

impl KeyRef {
    pub(crate) fn new(set: &Arc<KeySet>, key: &VerificationKey) -> Self {
        Self {
            set: set.clone(),
            fingerprint: key.fingerprint,
        }
    }
}

impl fmt::Debug for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRef")
            .field("fingerprint", &format_args!("{:016x}", self.fingerprint))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    const P256_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const P256_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
    const RSA_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    fn set(keys: serde_json::Value) -> KeySet {
        KeySet::from_json(json!({ "keys": keys }).to_string().as_bytes()).unwrap()
    }

    #[test]
    fn alg_inference() {
        let s = set(json!([
            {"kty": "RSA", "n": RSA_N, "e": "AQAB", "kid": "r"},
            {"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y, "kid": "e"},
            {"kty": "OKP", "crv": "Ed25519", "x": ED_X, "kid": "o"},
            {"kty": "RSA", "n": RSA_N, "e": "AQAB", "kid": "p", "alg": "PS256"},
        ]));
        assert_eq!(s.keys().len(), 4, "{:?}", s.skipped());
        let all = AlgSet::ALL;
        let algs = |i: usize, explicit| s.keys()[i].algorithms(all, explicit);
        assert_eq!(algs(0, false), [Algorithm::RS256].into_iter().collect());
        let ps: AlgSet = [Algorithm::PS256, Algorithm::PS384].into_iter().collect();
        assert_eq!(s.keys()[0].algorithms(ps, true), ps);
        assert_eq!(algs(1, false), [Algorithm::ES256].into_iter().collect());
        assert_eq!(algs(2, false), [Algorithm::EdDSA].into_iter().collect());
        assert_eq!(algs(3, false), [Algorithm::PS256].into_iter().collect());
        let only_es: AlgSet = [Algorithm::ES256].into_iter().collect();
        assert!(s.keys()[3].algorithms(only_es, true).is_empty());
    }

    #[test]
    fn bad_keys_are_skipped_not_fatal() {
        let s = set(json!([
            {"kty": "oct", "k": "c2VjcmV0"},
            {"kty": "RSA", "n": RSA_N, "e": "AQAB", "use": "enc", "kid": "enc"},
            {"kty": "RSA", "n": RSA_N, "kid": "no-e"},
            {"kty": "RSA", "n": RSA_N, "e": "AQAB", "d": "AQAB", "kid": "private"},
            {"kty": "RSA", "n": RSA_N, "e": "AQAB", "alg": "HS256", "kid": "hs"},
            {"kty": "RSA", "n": RSA_N, "e": "AQAB", "alg": "ES256", "kid": "mismatch"},
            {"kty": "EC", "crv": "P-521", "x": P256_X, "y": P256_Y, "kid": "p521"},
            {"kty": "EC", "crv": "P-384", "x": P256_X, "y": P256_Y, "kid": "short"},
            {"kty": "OKP", "crv": "X25519", "x": ED_X, "kid": "x25519"},
            {"kty": "RSA", "n": RSA_N, "e": "AQAB", "key_ops": ["encrypt"], "kid": "ops"},
            "not an object",
            {"kty": "OKP", "crv": "Ed25519", "x": ED_X, "kid": "good"},
            {"kty": "OKP", "crv": "Ed25519", "x": ED_X, "kid": "good"},
            {"kty": "OKP", "crv": "Ed25519", "x": ED_X},
        ]));
        assert_eq!(s.keys().len(), 2);
        assert_eq!(s.keys()[0].kid(), Some("good"));
        assert_eq!(s.keys()[1].kid(), None);
        assert_eq!(s.skipped().len(), 12);
        assert_eq!(s.skipped()[11].reason, "duplicate kid");
    }

    #[test]
    fn rsa_keys_under_2048_bits_are_skipped() {
        let n = base64_simd::URL_SAFE_NO_PAD.decode_to_vec(RSA_N).unwrap();
        assert_eq!(rsa_modulus_bits(RSA_N), Some(2048));
        let b = |v: &[u8]| base64_simd::URL_SAFE_NO_PAD.encode_to_string(v);
        // 1024 bits; 2047 bits (top bit cleared); 2048 bits.
        let mut short = n.clone();
        short[0] &= 0x7f;
        let s = set(json!([
            {"kty": "RSA", "n": b(&n[..128]), "e": "AQAB", "kid": "1024"},
            {"kty": "RSA", "n": b(&short), "e": "AQAB", "kid": "2047"},
            {"kty": "RSA", "n": RSA_N, "e": "AQAB", "kid": "2048"},
        ]));
        assert_eq!(s.keys().len(), 1);
        assert_eq!(s.keys()[0].kid(), Some("2048"));
        assert_eq!(
            s.skipped()[0].reason,
            "RSA modulus outside 2048..=8192 bits"
        );
        assert_eq!(
            s.skipped()[1].reason,
            "RSA modulus outside 2048..=8192 bits"
        );
    }

    /// With aws-lc-rs the point is checked when the key is parsed (RFC 8725
    /// §3.4); RustCrypto checks it at verification, where it fails.
    #[cfg(feature = "aws-lc-rs")]
    #[test]
    fn ec_points_off_the_curve_are_skipped() {
        let mut y = base64_simd::URL_SAFE_NO_PAD.decode_to_vec(P256_Y).unwrap();
        y[31] ^= 1;
        let y = base64_simd::URL_SAFE_NO_PAD.encode_to_string(&y);
        let s = set(json!([
            {"kty": "EC", "crv": "P-256", "x": P256_X, "y": y, "kid": "off"},
            {"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y, "kid": "on"},
        ]));
        assert_eq!(s.keys().len(), 1);
        assert_eq!(s.keys()[0].kid(), Some("on"));
        assert_eq!(s.skipped()[0].kid.as_deref(), Some("off"));
    }

    #[test]
    fn a_key_fetched_again_is_the_same_key() {
        let doc = json!([
            {"kty": "OKP", "crv": "Ed25519", "x": ED_X, "kid": "a"},
            {"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y, "kid": "b"},
        ]);
        let first = Arc::new(set(doc.clone()));
        let again = Arc::new(set(doc));
        let a = KeyRef::new(&first, &first.keys()[0]);
        assert!(first.contains(&a));
        assert!(again.contains(&a), "same kid and material in a new fetch");
        // The same material under another kid, or another key under the
        // same kid, is not the same key.
        let renamed = Arc::new(set(
            json!([{"kty": "OKP", "crv": "Ed25519", "x": ED_X, "kid": "c"}]),
        ));
        assert!(!renamed.contains(&a));
        let replaced = Arc::new(set(json!([
            {"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y, "kid": "a"}
        ])));
        assert!(!replaced.contains(&a));
    }

    #[test]
    fn not_a_jwks() {
        assert!(KeySet::from_json(b"[]").is_err());
        assert!(KeySet::from_json(b"{\"keys\": 1}").is_err());
        assert!(KeySet::from_json(b"{}").is_err());
        // serde would read an array positionally as {"keys": [...]}.
        assert!(
            KeySet::from_json(
                format!("[[{}]]", json!({"kty": "OKP", "crv": "Ed25519", "x": ED_X})).as_bytes()
            )
            .is_err()
        );
        // A key laid out as an array is skipped, not read positionally.
        let s = KeySet::from_json(br#"{"keys": [["OKP"]]}"#).unwrap();
        assert_eq!(
            (s.keys().len(), s.skipped()[0].reason),
            (0, "malformed JWK")
        );
    }
}
