//! [`SealedState`]: caller-bound, sealed state for the stateless wire.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{AES_256_GCM_SIV, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::{digest, hmac, rand};

use crate::claims::AuthContext;
use crate::clock::Clock;
use crate::error::ConfigError;

const PREFIX: &str = "ss2.";
const AAD_LABEL: &[u8] = b"mcp-resource-guard/sealed-state/v2";
/// The largest state sealed.
const MAX_STATE: usize = 64 * 1024;
const TAG_LEN: usize = 8;
const HEADER_LEN: usize = 4 + NONCE_LEN + TAG_LEN + TAG_LEN;
const GCM_TAG: usize = 16;

/// Why a sealed value was refused (or could not be made).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Not a value this sealer made (wrong prefix, not base64url, too short).
    #[error("not a sealed state value")]
    Malformed,
    /// Sealed under a key no longer held (rotated out, or another server).
    #[error("sealed under a key this server no longer holds")]
    UnknownKey,
    /// Sealed for another caller: a replay by someone else.
    #[error("sealed for another caller")]
    OtherCaller,
    /// Sealed for another request.
    #[error("sealed for another request")]
    OtherRequest,
    /// Altered, or forged.
    #[error("the sealed value was altered")]
    Tampered,
    /// Past its expiry.
    #[error("the sealed value has expired")]
    Expired,
    /// The state (or the sealed value) is over 64 KiB.
    #[error("the state is larger than 64 KiB")]
    TooLarge,
    /// The system RNG or the cipher failed.
    #[error("sealing failed")]
    Crypto,
}

/// One key of the ring.
struct Key {
    id: [u8; 4],
    aead: LessSafeKey,
    tags: hmac::Key,
    created: Instant,
}

impl Key {
    fn from_secret(secret: &[u8; 32], created: Instant) -> Result<Self, SealError> {
        let master = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let derive = |label: &[u8]| hmac::sign(&master, label);
        let aead = UnboundKey::new(&AES_256_GCM_SIV, derive(b"aead").as_ref())
            .map_err(|_| SealError::Crypto)?;
        let id_tag = derive(b"id");
        let mut id = [0u8; 4];
        id.copy_from_slice(&id_tag.as_ref()[..4]);
        Ok(Self {
            id,
            aead: LessSafeKey::new(aead),
            tags: hmac::Key::new(hmac::HMAC_SHA256, derive(b"tags").as_ref()),
            created,
        })
    }

    fn random(created: Instant) -> Result<Self, SealError> {
        let mut secret = [0u8; 32];
        rand::fill(&mut secret).map_err(|_| SealError::Crypto)?;
        Self::from_secret(&secret, created)
    }

    /// A short keyed tag of `bytes`: says "another caller/request" before
    /// decryption without revealing who.
    fn tag(&self, bytes: &[u8]) -> [u8; TAG_LEN] {
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(&hmac::sign(&self.tags, bytes).as_ref()[..TAG_LEN]);
        out
    }
}

struct Ring {
    current: Key,
    previous: Option<Key>,
}

struct Inner {
    ring: RwLock<Ring>,
    ttl: Duration,
    /// `None`: fixed keys (shared by replicas), never rotated here.
    rotation: Option<Duration>,
    clock: Clock,
}

/// Caller-bound state for the stateless wire (feature `sealed-state`): what a
/// `2026-07-28` server hands a client to bring back later (the
/// multi-round-trip `requestState`, a server-minted state handle) is
/// attacker-controlled input when it returns. [`SealedState`] seals it:
///
/// - encrypted and authenticated (AES-256-GCM-SIV, RFC 8452, aws-lc-rs):
///   the client can neither read nor alter it. GCM-SIV resists nonce
///   misuse: its random 96-bit nonces repeating by chance reveal at most
///   that two sealed values are equal (AES-GCM would lose its
///   authentication key), so one fixed key shared by a fleet for years
///   stays within bounds (RFC 8452 §9: about 2^48 values per key, against
///   GCM's 2^32);
/// - bound to the caller (issuer, and subject or client) and to a digest of
///   the originating request: replayed by another caller, or against another
///   request, it is refused;
/// - stamped with an expiry (default 10 minutes);
/// - under a rotating key ring (a new key every hour by default; the
///   previous one still opens what it sealed).
///
/// With rmcp, in a tool that asks the client for more input (MRTR):
///
/// ```ignore
/// use mcp_resource_guard::{AuthContext, SealedState};
/// use rmcp::model::{CallToolRequestParams, InputRequiredResult};
///
/// // The request digest: what identifies "this call" for your tool.
/// let digest = format!("tools/call:transfer:{}", params.arguments_json());
/// let caller = AuthContext::from_extensions(&parts.extensions).ok_or("no caller")?;
/// match params.request_state.as_deref() {
///     // First round: seal what the next round needs, hand it out.
///     None => {
///         let state = sealer.seal(&caller, digest.as_bytes(), br#"{"step":2}"#)?;
///         return Ok(InputRequiredResult::from_request_state(state).into());
///     }
///     // Retry: open it; another caller, another request, an expired or
///     // altered value is an error that says which.
///     Some(sealed) => {
///         let state = sealer.open(&caller, digest.as_bytes(), sealed)?;
///         // ... continue with `state` ...
///     }
/// }
/// ```
///
/// Several replicas: give each the same secret with
/// [`SealedStateBuilder::key`] (and the old one with
/// [`previous_key`](SealedStateBuilder::previous_key) while rotating it).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use mcp_resource_guard::{AuthContext, ScopeClaim, SealError, SealedState};
///
/// let sealer = SealedState::new()?;
/// # let claims = |sub: &str| serde_json::json!({"iss": "https://as.example", "sub": sub}).as_object().unwrap().clone();
/// # let alice = AuthContext::from_claims(claims("alice"), &ScopeClaim::Auto)?;
/// # let bob = AuthContext::from_claims(claims("bob"), &ScopeClaim::Auto)?;
/// let sealed = sealer.seal(&alice, b"tools/call:transfer", b"step 2")?;
/// assert_eq!(sealer.open(&alice, b"tools/call:transfer", &sealed)?, b"step 2");
/// assert_eq!(sealer.open(&bob, b"tools/call:transfer", &sealed), Err(SealError::OtherCaller));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SealedState(Arc<Inner>);

impl fmt::Debug for SealedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedState")
            .field("ttl", &self.0.ttl)
            .field("rotation", &self.0.rotation)
            .finish_non_exhaustive()
    }
}

/// Builds a [`SealedState`].
#[must_use]
pub struct SealedStateBuilder {
    ttl: Duration,
    rotation: Duration,
    key: Option<[u8; 32]>,
    previous: Option<[u8; 32]>,
    clock: Clock,
}

impl fmt::Debug for SealedStateBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedStateBuilder")
            .field("ttl", &self.ttl)
            .field("rotation", &self.rotation)
            .field("key", &self.key.map(|_| "[redacted]"))
            .field("previous", &self.previous.map(|_| "[redacted]"))
            .finish()
    }
}

impl SealedStateBuilder {
    /// How long a sealed value opens, from 1 second to 24 hours, and at most
    /// the rotation period. Defaults to 10 minutes.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How often a fresh random key replaces the current one (the previous
    /// key still opens values for one more period). From the TTL to 30
    /// days. Defaults to 1 hour. Ignored with a fixed [`key`](Self::key).
    pub fn rotation(mut self, every: Duration) -> Self {
        self.rotation = every;
        self
    }

    /// Use this 32-byte secret instead of random keys, so several replicas
    /// open each other's values (keep it in your secret manager; never log
    /// it). No automatic rotation then.
    pub fn key(mut self, secret: [u8; 32]) -> Self {
        self.key = Some(secret);
        self
    }

    /// A fixed key's predecessor, still accepted for opening while you
    /// rotate.
    pub fn previous_key(mut self, secret: [u8; 32]) -> Self {
        self.previous = Some(secret);
        self
    }

    /// Read time from this clock (a test's `ManualClock`).
    #[cfg(feature = "testing")]
    pub(crate) fn with_clock(mut self, clock: crate::clock::Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the settings and makes the first key.
    ///
    /// # Errors
    ///
    /// [`ConfigError::OutOfRange`] for a TTL or rotation outside its range,
    /// or (setting `SealedState key`) when the system RNG fails.
    pub fn build(self) -> Result<SealedState, ConfigError> {
        let range = |setting, reason| Err(ConfigError::OutOfRange { setting, reason });
        if self.ttl < Duration::from_secs(1) || self.ttl > Duration::from_secs(24 * 3600) {
            return range("SealedState ttl", "from 1 second to 24 hours");
        }
        if self.key.is_none()
            && (self.rotation < self.ttl || self.rotation > Duration::from_secs(30 * 24 * 3600))
        {
            return range("SealedState rotation", "from the ttl to 30 days");
        }
        let now = self.clock.now();
        let rng_failed = |_| ConfigError::OutOfRange {
            setting: "SealedState key",
            reason: "the system RNG or the cipher failed",
        };
        let (current, rotation) = match &self.key {
            Some(k) => (Key::from_secret(k, now).map_err(rng_failed)?, None),
            None => (Key::random(now).map_err(rng_failed)?, Some(self.rotation)),
        };
        let previous = match &self.previous {
            Some(k) => Some(Key::from_secret(k, now).map_err(rng_failed)?),
            None => None,
        };
        Ok(SealedState(Arc::new(Inner {
            ring: RwLock::new(Ring { current, previous }),
            ttl: self.ttl,
            rotation,
            clock: self.clock,
        })))
    }
}

/// The bytes that name a caller: issuer, then subject or client, kept apart.
fn caller_bytes(ctx: &AuthContext) -> Vec<u8> {
    let (kind, value) = match (ctx.subject(), ctx.client_id()) {
        (Some(s), _) => ("sub", s),
        (None, Some(c)) => ("client", c),
        (None, None) => ("none", ""),
    };
    [
        ctx.issuer().as_bytes(),
        b"\0",
        kind.as_bytes(),
        b"\0",
        value.as_bytes(),
    ]
    .concat()
}

fn aad(key_id: &[u8; 4], caller: &[u8], request: &[u8]) -> Vec<u8> {
    let c = digest::digest(&digest::SHA256, caller);
    let r = digest::digest(&digest::SHA256, request);
    [AAD_LABEL, key_id, c.as_ref(), r.as_ref()].concat()
}

impl SealedState {
    /// The largest state sealed: 64 KiB.
    pub const MAX_STATE: usize = MAX_STATE;

    /// A sealer with random, rotating keys and the default settings.
    ///
    /// # Errors
    ///
    /// When the system RNG fails.
    pub fn new() -> Result<Self, ConfigError> {
        Self::builder().build()
    }

    /// A builder: TTL 10 minutes, a new random key every hour.
    pub fn builder() -> SealedStateBuilder {
        SealedStateBuilder {
            ttl: Duration::from_secs(600),
            rotation: Duration::from_secs(3600),
            key: None,
            previous: None,
            clock: Clock::default(),
        }
    }

    /// Rotates the random key when its period is over.
    fn rotate_if_due(&self) -> Result<(), SealError> {
        let Some(every) = self.0.rotation else {
            return Ok(());
        };
        let now = self.0.clock.now();
        let due = |r: &Ring| now.saturating_duration_since(r.current.created) >= every;
        if !due(&self.0.ring.read().unwrap_or_else(|p| p.into_inner())) {
            return Ok(());
        }
        let mut ring = self.0.ring.write().unwrap_or_else(|p| p.into_inner());
        if due(&ring) {
            let fresh = Key::random(now)?;
            let old = std::mem::replace(&mut ring.current, fresh);
            ring.previous = Some(old);
        }
        Ok(())
    }

    /// Seals `state` for `caller` and the request digested as `request`.
    ///
    /// # Errors
    ///
    /// [`SealError::TooLarge`] for a state over 64 KiB;
    /// [`SealError::Crypto`] when the RNG fails.
    pub fn seal(
        &self,
        caller: &AuthContext,
        request: &[u8],
        state: &[u8],
    ) -> Result<String, SealError> {
        self.seal_for(&caller_bytes(caller), request, state)
    }

    /// [`seal`](Self::seal) for a caller given as bytes (the crate's own
    /// uses, such as DPoP nonces bound to a key thumbprint).
    pub(crate) fn seal_for(
        &self,
        caller: &[u8],
        request: &[u8],
        state: &[u8],
    ) -> Result<String, SealError> {
        if state.len() > MAX_STATE {
            return Err(SealError::TooLarge);
        }
        self.rotate_if_due()?;
        let ring = self.0.ring.read().unwrap_or_else(|p| p.into_inner());
        let key = &ring.current;
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce).map_err(|_| SealError::Crypto)?;
        let expires = self.0.clock.unix_now().saturating_add(self.0.ttl.as_secs());
        let mut body = Vec::with_capacity(8 + state.len() + GCM_TAG);
        body.extend_from_slice(&expires.to_be_bytes());
        body.extend_from_slice(state);
        key.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(&key.id, caller, request)),
                &mut body,
            )
            .map_err(|_| SealError::Crypto)?;
        let out = [
            &key.id[..],
            &nonce,
            &key.tag(caller),
            &key.tag(request),
            &body,
        ]
        .concat();
        Ok(format!(
            "{PREFIX}{}",
            base64_simd::URL_SAFE_NO_PAD.encode_to_string(out)
        ))
    }

    /// Opens a value [`seal`](Self::seal) made for the same caller and
    /// request.
    ///
    /// # Errors
    ///
    /// A [`SealError`] saying why: malformed, an unknown key, another caller,
    /// another request, altered, expired, too large.
    pub fn open(
        &self,
        caller: &AuthContext,
        request: &[u8],
        sealed: &str,
    ) -> Result<Vec<u8>, SealError> {
        self.open_for(&caller_bytes(caller), request, sealed)
    }

    /// [`open`](Self::open) for a caller given as bytes.
    pub(crate) fn open_for(
        &self,
        caller: &[u8],
        request: &[u8],
        sealed: &str,
    ) -> Result<Vec<u8>, SealError> {
        let encoded = sealed.strip_prefix(PREFIX).ok_or(SealError::Malformed)?;
        if encoded.len() > (MAX_STATE + 8 + HEADER_LEN + GCM_TAG) * 4 / 3 + 4 {
            return Err(SealError::TooLarge);
        }
        let raw = base64_simd::URL_SAFE_NO_PAD
            .decode_to_vec(encoded)
            .map_err(|_| SealError::Malformed)?;
        if raw.len() < HEADER_LEN + 8 + GCM_TAG {
            return Err(SealError::Malformed);
        }
        let (header, sealed_body) = raw.split_at(HEADER_LEN);
        let (id, rest) = header.split_at(4);
        let (nonce, rest) = rest.split_at(NONCE_LEN);
        let (caller_tag, request_tag) = rest.split_at(TAG_LEN);
        let ring = self.0.ring.read().unwrap_or_else(|p| p.into_inner());
        let key = std::iter::once(&ring.current)
            .chain(ring.previous.as_ref())
            .find(|k| k.id[..] == *id)
            .ok_or(SealError::UnknownKey)?;
        if key.tag(caller)[..] != *caller_tag {
            return Err(SealError::OtherCaller);
        }
        if key.tag(request)[..] != *request_tag {
            return Err(SealError::OtherRequest);
        }
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Malformed)?;
        let mut body = sealed_body.to_vec();
        let plain = key
            .aead
            .open_in_place(nonce, Aad::from(aad(&key.id, caller, request)), &mut body)
            .map_err(|_| SealError::Tampered)?;
        let (expires, state) = plain.split_at(8);
        let mut e = [0u8; 8];
        e.copy_from_slice(expires);
        if self.0.clock.unix_now() >= u64::from_be_bytes(e) {
            return Err(SealError::Expired);
        }
        Ok(state.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ScopeClaim;
    use serde_json::json;

    fn who(claims: serde_json::Value) -> AuthContext {
        AuthContext::from_claims(claims.as_object().unwrap().clone(), &ScopeClaim::Auto).unwrap()
    }

    fn alice() -> AuthContext {
        who(json!({"iss": "https://as", "sub": "alice"}))
    }

    #[test]
    fn round_trip_and_refusals() {
        let s = SealedState::new().unwrap();
        let sealed = s.seal(&alice(), b"req-1", b"state").unwrap();
        assert!(sealed.starts_with("ss2."));
        assert!(!sealed.contains("state") && !sealed.contains("alice"));
        assert_eq!(s.open(&alice(), b"req-1", &sealed).unwrap(), b"state");
        let bob = who(json!({"iss": "https://as", "sub": "bob"}));
        assert_eq!(s.open(&bob, b"req-1", &sealed), Err(SealError::OtherCaller));
        // Same value at another issuer, or as a client id: another caller.
        let other_iss = who(json!({"iss": "https://other", "sub": "alice"}));
        assert_eq!(
            s.open(&other_iss, b"req-1", &sealed),
            Err(SealError::OtherCaller)
        );
        let client = who(json!({"iss": "https://as", "client_id": "alice"}));
        assert_eq!(
            s.open(&client, b"req-1", &sealed),
            Err(SealError::OtherCaller)
        );
        assert_eq!(
            s.open(&alice(), b"req-2", &sealed),
            Err(SealError::OtherRequest)
        );
        // Flip a byte of the ciphertext: altered.
        let mut raw = base64_simd::URL_SAFE_NO_PAD
            .decode_to_vec(&sealed[4..])
            .unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let altered = format!(
            "ss2.{}",
            base64_simd::URL_SAFE_NO_PAD.encode_to_string(&raw)
        );
        assert_eq!(
            s.open(&alice(), b"req-1", &altered),
            Err(SealError::Tampered)
        );
        for bad in ["", "ss2.", "ss2.!!", "ss1.AAAA", &sealed[..40]] {
            assert!(
                matches!(
                    s.open(&alice(), b"req-1", bad),
                    Err(SealError::Malformed | SealError::UnknownKey)
                ),
                "{bad}"
            );
        }
        let other = SealedState::new().unwrap();
        assert_eq!(
            other.open(&alice(), b"req-1", &sealed),
            Err(SealError::UnknownKey)
        );
        assert_eq!(
            s.seal(&alice(), b"r", &vec![0; MAX_STATE + 1]),
            Err(SealError::TooLarge)
        );
    }

    #[cfg(feature = "testing")]
    #[test]
    fn expiry_and_rotation() {
        let clock = crate::testing::ManualClock::new();
        let s = SealedState::builder()
            .ttl(Duration::from_secs(60))
            .rotation(Duration::from_secs(120))
            .with_clock(clock.clock())
            .build()
            .unwrap();
        let a = s.seal(&alice(), b"r", b"a").unwrap();
        clock.advance(Duration::from_secs(59));
        assert_eq!(s.open(&alice(), b"r", &a).unwrap(), b"a");
        clock.advance(Duration::from_secs(2));
        assert_eq!(s.open(&alice(), b"r", &a), Err(SealError::Expired));
        // After one rotation the previous key still opens; after two, not.
        let s = SealedState::builder()
            .ttl(Duration::from_secs(60))
            .rotation(Duration::from_secs(60))
            .with_clock(clock.clock())
            .build()
            .unwrap();
        clock.advance(Duration::from_secs(50));
        let v1 = s.seal(&alice(), b"r", b"v1").unwrap();
        clock.advance(Duration::from_secs(15));
        let v2 = s.seal(&alice(), b"r", b"v2").unwrap();
        assert_eq!(
            s.open(&alice(), b"r", &v1).unwrap(),
            b"v1",
            "the previous key"
        );
        assert_eq!(s.open(&alice(), b"r", &v2).unwrap(), b"v2");
        clock.advance(Duration::from_secs(60));
        let _ = s.seal(&alice(), b"r", b"v3").unwrap();
        assert_eq!(s.open(&alice(), b"r", &v1), Err(SealError::UnknownKey));
        assert!(SealedState::builder().ttl(Duration::MAX).build().is_err());
        assert!(
            SealedState::builder()
                .ttl(Duration::from_secs(600))
                .rotation(Duration::from_secs(60))
                .build()
                .is_err()
        );
    }

    #[test]
    fn sealed_with_aes_256_gcm_siv() {
        // Opened outside the sealer with GCM-SIV and the key it derives,
        // the value is the expiry and the state; as AES-GCM it does not open.
        let secret = [7u8; 32];
        let s = SealedState::builder().key(secret).build().unwrap();
        let sealed = s.seal(&alice(), b"r", b"state").unwrap();
        let raw = base64_simd::URL_SAFE_NO_PAD
            .decode_to_vec(sealed.strip_prefix(PREFIX).unwrap())
            .unwrap();
        let (id, rest) = raw.split_at(4);
        let (nonce, rest) = rest.split_at(NONCE_LEN);
        let body = &rest[2 * TAG_LEN..];
        let master = hmac::Key::new(hmac::HMAC_SHA256, &secret);
        let aead = hmac::sign(&master, b"aead");
        let id: [u8; 4] = id.try_into().unwrap();
        let open = |alg: &'static aws_lc_rs::aead::Algorithm| {
            let key = LessSafeKey::new(UnboundKey::new(alg, aead.as_ref()).unwrap());
            let mut b = body.to_vec();
            key.open_in_place(
                Nonce::try_assume_unique_for_key(nonce).unwrap(),
                Aad::from(aad(&id, &caller_bytes(&alice()), b"r")),
                &mut b,
            )
            .map(|p| p[8..].to_vec())
        };
        assert_eq!(open(&AES_256_GCM_SIV).unwrap(), b"state");
        assert!(open(&aws_lc_rs::aead::AES_256_GCM).is_err());
    }

    #[test]
    fn replicas_share_a_fixed_key() {
        let k = [7u8; 32];
        let a = SealedState::builder().key(k).build().unwrap();
        let b = SealedState::builder()
            .key([9u8; 32])
            .previous_key(k)
            .build()
            .unwrap();
        let sealed = a.seal(&alice(), b"r", b"x").unwrap();
        assert_eq!(b.open(&alice(), b"r", &sealed).unwrap(), b"x");
        assert!(format!("{:?}", SealedState::builder().key(k)).contains("[redacted]"));
    }
}
