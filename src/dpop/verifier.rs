//! [`DpopVerifier`]: the guard's DPoP checks at request time: the proof
//! (every request), the token's binding to the proof's key, the server
//! nonce and the replay store.

use std::time::Duration;

use http::header::HeaderValue;
use http::{HeaderMap, Method};

use super::proof::{Proof, ProofCheck, ProofHeaders, ath_of, header_cache, validate};
use super::{Dpop, DpopMode};
use crate::challenge::DpopChallenge;
use crate::claims::AuthContext;
use crate::clock::Clock;
use crate::config::AlgSet;
use crate::error::{AuthError, AuthErrorKind};
use crate::guard::resource::ResourceUrl;
use crate::store::{MemoryStore, ReplayWhenDown, SharedStore};

/// The default replay store's size: about a million proofs.
const REPLAY_BYTES: u64 = 128 * 1024 * 1024;

/// The guard's DPoP checks, built from its [`Dpop`] settings.
#[derive(Debug)]
pub(crate) struct DpopVerifier {
    algorithms: AlgSet,
    window: Duration,
    replay: SharedStore,
    #[cfg(feature = "sealed-state")]
    nonces: Option<crate::SealedState>,
    nonce_on_success: bool,
    /// `scheme://host[:port]` of the canonical resource URL: proofs name
    /// the public URL, whatever a proxy rewrote.
    origin: String,
    clock: Clock,
    headers: ProofHeaders,
}

impl DpopVerifier {
    /// `None` when DPoP is disabled.
    pub(crate) fn new(
        dpop: &Dpop,
        resource: &ResourceUrl,
        clock: &Clock,
        store: Option<&SharedStore>,
    ) -> Option<Self> {
        if !dpop.enabled() {
            return None;
        }
        let url = resource.as_str();
        let origin = url::Url::parse(url)
            .ok()
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        Some(Self {
            algorithms: dpop.alg_set(),
            window: dpop.iat_window,
            replay: store
                .cloned()
                .unwrap_or_else(|| SharedStore::new(MemoryStore::new(REPLAY_BYTES))),
            #[cfg(feature = "sealed-state")]
            nonces: dpop.nonces.clone(),
            nonce_on_success: dpop.nonce_on_success,
            origin,
            clock: clock.clone(),
            headers: header_cache(),
        })
    }

    /// The DPoP side of the guard's challenges.
    pub(crate) fn challenge(dpop: &Dpop) -> Option<DpopChallenge> {
        dpop.enabled().then(|| DpopChallenge {
            algs: dpop
                .algorithms
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            required: dpop.mode == DpopMode::Required,
        })
    }

    /// Checks the request's proof (RFC 9449 §4.3, all but `ath`, the
    /// binding, the nonce and replay, which need the token).
    pub(crate) fn check_proof(
        &self,
        headers: &HeaderMap,
        method: &Method,
        path: &str,
    ) -> Result<Proof, AuthError> {
        let htu = format!("{}{path}", self.origin);
        validate(
            headers,
            &ProofCheck {
                with_token: true,
                method,
                htu: &htu,
                now: self.clock.unix_now(),
                window: self.window.as_secs(),
                algorithms: self.algorithms,
            },
            &self.headers,
        )
    }

    /// The proof's `ath` must be the hash of `token`, and the token bound
    /// (`cnf.jkt`) to the proof's key; then the nonce, then the replay
    /// store.
    pub(crate) async fn check_bound(
        &self,
        ctx: &AuthContext,
        proof: &Proof,
        token: &[u8],
    ) -> Result<(), AuthError> {
        // The hash cached with a verified JWT, else computed now.
        let ath = ctx.dpop_ath().unwrap_or_else(|| ath_of(token));
        if proof.ath != ath {
            return Err(AuthError::new(
                AuthErrorKind::InvalidDpopProof,
                "the DPoP proof's ath is not the hash of the access token",
            ));
        }
        match ctx.dpop_thumbprint() {
            None => {
                return Err(AuthError::new(
                    AuthErrorKind::InvalidToken,
                    "the token is not DPoP-bound: send it with the Bearer scheme",
                ));
            }
            Some(jkt) if jkt != proof.jkt => {
                return Err(AuthError::new(
                    AuthErrorKind::InvalidToken,
                    "the token is bound to another key than the DPoP proof's",
                ));
            }
            Some(_) => {}
        }
        self.check_nonce(proof)?;
        // After every other check: only proofs that would be accepted are
        // remembered.
        let shared = &self.replay;
        let store = shared.store.name();
        let outage = &shared.uses.replay;
        match shared
            .store
            .insert_if_absent(&proof.replay_key, b"", replay_ttl(self.window))
            .await
        {
            Ok(true) => {
                outage.succeeded(store);
                Ok(())
            }
            Ok(false) => {
                outage.succeeded(store);
                crate::observe::metrics::dpop_replay();
                Err(AuthError::new(
                    AuthErrorKind::InvalidDpopProof,
                    "the DPoP proof was already used (its jti was seen before)",
                ))
            }
            Err(e) => {
                outage.failed(store, &e, "DPoP proofs are refused");
                let kind = match shared.replay_when_down {
                    ReplayWhenDown::Unauthorized => AuthErrorKind::InvalidDpopProof,
                    _ => AuthErrorKind::StoreUnavailable,
                };
                Err(AuthError::with_source(
                    kind,
                    "the DPoP replay store could not be reached",
                    e,
                ))
            }
        }
    }

    #[cfg(feature = "sealed-state")]
    fn check_nonce(&self, proof: &Proof) -> Result<(), AuthError> {
        let Some(sealer) = &self.nonces else {
            return Ok(());
        };
        let valid = proof.nonce.as_deref().is_some_and(|n| {
            sealer
                .open_for(NONCE_CALLER, proof.jkt.as_bytes(), n)
                .is_ok()
        });
        if valid {
            Ok(())
        } else {
            Err(AuthError::new(
                AuthErrorKind::UseDpopNonce,
                "the DPoP proof has no valid server nonce",
            ))
        }
    }

    #[cfg(not(feature = "sealed-state"))]
    fn check_nonce(&self, _proof: &Proof) -> Result<(), AuthError> {
        Ok(())
    }

    /// A fresh nonce for the proof key `jkt`, when nonces are on.
    #[cfg(feature = "sealed-state")]
    pub(crate) fn fresh_nonce(&self, jkt: &str) -> Option<HeaderValue> {
        let sealer = self.nonces.as_ref()?;
        let nonce = sealer.seal_for(NONCE_CALLER, jkt.as_bytes(), b"").ok()?;
        crate::observe::metrics::dpop_nonce_refresh();
        HeaderValue::from_str(&nonce).ok()
    }

    #[cfg(not(feature = "sealed-state"))]
    pub(crate) fn fresh_nonce(&self, _jkt: &str) -> Option<HeaderValue> {
        None
    }

    /// Whether successful DPoP responses carry a fresh nonce.
    pub(crate) fn nonce_on_success(&self) -> bool {
        self.nonce_on_success
    }
}

/// What DPoP nonces are sealed for (they are bound to the proof's key).
#[cfg(feature = "sealed-state")]
const NONCE_CALLER: &[u8] = b"mcp-resource-guard/dpop-nonce";

/// How long a proof's `jti` is remembered: as long as the proof could pass
/// the `iat` check. A proof with `iat` at the window's future edge passes
/// until `iat + window`, twice the window after its first use; the check
/// compares whole seconds of the clock, so a proof first used at `t.9`
/// still passes at `t + 2 × window + 0.9`: one second more.
pub(crate) fn replay_ttl(window: Duration) -> Duration {
    window
        .saturating_mul(2)
        .saturating_add(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_outlives_every_iat_its_proof_could_still_pass() {
        // iat at now + window passes until iat + window = now + 2 window,
        // compared in whole seconds: one more second.
        assert_eq!(
            replay_ttl(Duration::from_secs(300)),
            Duration::from_secs(601)
        );
        assert_eq!(replay_ttl(Duration::from_secs(1)), Duration::from_secs(3));
        assert_eq!(replay_ttl(Duration::MAX), Duration::MAX);
    }
}
