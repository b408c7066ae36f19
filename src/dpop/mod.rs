//! Sender-constrained tokens: DPoP (RFC 9449) at the resource server.
//!
//! A DPoP-bound access token carries `cnf.jkt`, the thumbprint of a key the
//! client holds; every request comes with `Authorization: DPoP <token>` and
//! a `DPoP` header holding a fresh proof signed by that key, for this method
//! and URL. A stolen token is useless without the key.
//!
//! Turn it on with [`GuardBuilder::dpop`](crate::GuardBuilder::dpop):
//!
//! - [`DpopMode::Disabled`] (the default): `cnf`-bound tokens are refused and
//!   the `DPoP` scheme is not accepted.
//! - [`DpopMode::Allowed`]: Bearer for unbound tokens, DPoP for bound ones.
//!   A bound token sent as Bearer, or an unbound one sent as DPoP, is a 401.
//! - [`DpopMode::Required`]: DPoP only.
//!
//! Every proof is checked on every request (RFC 9449 §4.3), also when the
//! token itself comes from the verified-token cache: exactly one `DPoP`
//! header; a compact JWS with `typ: dpop+jwt`; an asymmetric `alg` from the
//! allow-list; a public `jwk` in its header (private members refused; an
//! RSA key at most 4,096 bits) that verifies the signature; `htm` the request method; `htu` the request URL
//! without query and fragment, compared after normalization against the
//! guard's canonical URL (so it works behind proxies); `iat` within the
//! window (±5 minutes by default, the guard's clock); a `jti`; `ath` the
//! SHA-256 of the access token; the token's `cnf.jkt` the RFC 7638
//! thumbprint of the proof's `jwk`. Other `cnf` members are ignored; a
//! `cnf` with only `x5t#S256` (mutual TLS) is refused.
//!
//! Replay: the `iat` window, plus each proof's `jti` remembered for as
//! long as a proof could still pass it (twice the window, plus a second
//! for the clock's whole seconds) in a [`Store`](crate::store::Store) (in
//! memory and bounded by default, refusing new proofs with 503 rather than
//! forgetting old ones when full; the guard's
//! [shared store](crate::GuardBuilder::shared_store) for several
//! replicas). Optional server nonces
//! ([`Dpop::nonces`], feature `sealed-state`) need no shared state: a nonce is
//! an AEAD-sealed expiry bound to the proof's key; a proof without a valid
//! one is answered `401 error="use_dpop_nonce"` with a fresh `DPoP-Nonce`.
//!
//! ```
//! use mcp_resource_guard::dpop::{Dpop, DpopMode};
//! use mcp_resource_guard::{Algorithm, GuardLayer, Issuer};
//! # use mcp_resource_guard::jwks::StaticJwks;
//! # fn demo(keys: StaticJwks) -> Result<(), mcp_resource_guard::ConfigError> {
//! let guard = GuardLayer::builder("https://mcp.example.com/mcp")
//!     .add_issuer(Issuer::new("https://auth.example.com").key_source(keys))
//!     .dpop(Dpop::new(DpopMode::Allowed).algorithms([Algorithm::ES256, Algorithm::EdDSA]))
//!     .build()?;
//! # let _ = guard; Ok(()) }
//! ```

mod proof;
mod verifier;

use std::time::Duration;

#[cfg(any(feature = "testing", all(feature = "client", feature = "signing")))]
pub(crate) use proof::thumbprint;
#[cfg(feature = "testing")]
pub(crate) use proof::{
    ProofCheck, header_cache as proof_header_cache, validate as validate_proof,
};
pub(crate) use verifier::DpopVerifier;

use crate::config::{AlgSet, Algorithm};
use crate::error::ConfigError;

/// Whether DPoP is off, accepted next to Bearer, or required.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DpopMode {
    /// Bearer only; `cnf`-bound tokens are refused.
    #[default]
    Disabled,
    /// Bearer for unbound tokens, DPoP for bound ones.
    Allowed,
    /// DPoP only.
    Required,
}

/// The guard's DPoP settings. See the [module docs](self).
#[must_use]
#[derive(Clone)]
pub struct Dpop {
    pub(crate) mode: DpopMode,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) iat_window: Duration,
    #[cfg(feature = "sealed-state")]
    pub(crate) nonces: Option<crate::SealedState>,
    pub(crate) nonce_on_success: bool,
}

impl std::fmt::Debug for Dpop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Dpop");
        d.field("mode", &self.mode)
            .field("algorithms", &self.algorithms)
            .field("iat_window", &self.iat_window);
        #[cfg(feature = "sealed-state")]
        d.field("nonces", &self.nonces.is_some());
        d.finish_non_exhaustive()
    }
}

impl Default for Dpop {
    fn default() -> Self {
        Self::new(DpopMode::Disabled)
    }
}

/// The widest `iat` window accepted.
pub(crate) const MAX_IAT_WINDOW: Duration = Duration::from_secs(3600);

impl Dpop {
    /// DPoP in this mode, with the default settings: proofs signed with
    /// ES256, ES384, PS256, RS256 or EdDSA; an `iat` window of ±5 minutes;
    /// no server nonces. Proofs' `jti`s go to the guard's
    /// [shared store](crate::GuardBuilder::shared_store) when it has one,
    /// else to a bounded store in this process.
    pub fn new(mode: DpopMode) -> Self {
        Self {
            mode,
            algorithms: vec![
                Algorithm::ES256,
                Algorithm::ES384,
                Algorithm::PS256,
                Algorithm::RS256,
                Algorithm::EdDSA,
            ],
            iat_window: Duration::from_secs(300),
            #[cfg(feature = "sealed-state")]
            nonces: None,
            nonce_on_success: false,
        }
    }

    /// The proof algorithms accepted (asymmetric only: `none` and `HS*` are
    /// not [`Algorithm`]s). Advertised in `algs=` and in the metadata's
    /// `dpop_signing_alg_values_supported`.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// How far a proof's `iat` may be from now, either way. Defaults to 5
    /// minutes; from 1 second to 1 hour. Proofs' `jti`s are remembered this
    /// long.
    pub fn iat_window(mut self, window: Duration) -> Self {
        self.iat_window = window;
        self
    }

    /// Require server nonces (RFC 9449 §9), sealed with `sealer` (its TTL is
    /// the nonce's lifetime; give replicas the same key). A proof without a
    /// valid nonce gets `401 error="use_dpop_nonce"` and a fresh
    /// `DPoP-Nonce`. With `on_success`, every successful DPoP response also
    /// carries a fresh nonce. Feature `sealed-state`.
    #[cfg(feature = "sealed-state")]
    pub fn nonces(mut self, sealer: crate::SealedState, on_success: bool) -> Self {
        self.nonces = Some(sealer);
        self.nonce_on_success = on_success;
        self
    }

    /// `dpop_signing_alg_values_supported`: empty when DPoP is off.
    pub(crate) fn advertised_algorithms(&self) -> Vec<String> {
        if !self.enabled() {
            return Vec::new();
        }
        self.algorithms
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect()
    }

    pub(crate) fn enabled(&self) -> bool {
        self.mode != DpopMode::Disabled
    }

    /// The accepted algorithms as a set.
    pub(crate) fn alg_set(&self) -> AlgSet {
        self.algorithms.iter().copied().collect()
    }

    /// Checks the settings.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let range = |setting, reason| Err(ConfigError::OutOfRange { setting, reason });
        if self.enabled() && self.algorithms.is_empty() {
            return range("dpop algorithms", "at least one algorithm");
        }
        if self.iat_window < Duration::from_secs(1) || self.iat_window > MAX_IAT_WINDOW {
            return range("dpop iat_window", "from 1 second to 1 hour");
        }
        Ok(())
    }
}

/// The proof checks for the fuzz targets and property tests.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_validate(
    headers: &http::HeaderMap,
    method: &http::Method,
    htu: &str,
    now: u64,
) -> Result<String, crate::error::AuthError> {
    let check = proof::ProofCheck {
        with_token: true,
        method,
        htu,
        now,
        window: 300,
        algorithms: AlgSet::ALL,
    };
    proof::validate(headers, &check, &proof::header_cache()).map(|p| p.jkt)
}
