//! Metrics through the `metrics` facade (feature `metrics`; without it
//! every call here compiles to nothing). The names and labels are listed in
//! the crate docs ("Metrics"); a test scrapes them from the example.
#![cfg_attr(not(feature = "metrics"), allow(unused_variables))]

use std::time::Duration;

#[cfg(feature = "metrics")]
use ::metrics::{counter, gauge, histogram};

/// One access decision.
#[inline]
pub(crate) fn decision(layer: &'static str, allow: bool, reason: &'static str) {
    #[cfg(feature = "metrics")]
    counter!("mcp_resource_guard_decisions_total",
        "layer" => layer, "outcome" => if allow { "allow" } else { "deny" }, "reason" => reason)
    .increment(1);
}

/// A token-cache lookup.
#[inline]
pub(crate) fn token_cache(hit: bool) {
    #[cfg(feature = "metrics")]
    if hit {
        counter!("mcp_resource_guard_token_cache_hits_total").increment(1);
    } else {
        counter!("mcp_resource_guard_token_cache_misses_total").increment(1);
    }
}

/// The token cache's size after an insert.
#[cfg(feature = "metrics")]
pub(crate) fn token_cache_entries(entries: u64) {
    #[cfg(feature = "metrics")]
    gauge!("mcp_resource_guard_token_cache_entries").set(entries as f64);
}

/// A JWKS fetch from `source` (an issuer or a JWKS URL).
pub(crate) fn key_fetch(source: &str, ok: bool) {
    #[cfg(feature = "metrics")]
    counter!("mcp_resource_guard_key_fetches_total",
        "source" => source.to_owned(), "outcome" => if ok { "ok" } else { "error" })
    .increment(1);
}

/// The health (2 fresh, 1 stale, 0 absent) and age of an issuer's keys.
pub(crate) fn key_state(issuer: &str, health: u8, age: Option<Duration>) {
    #[cfg(feature = "metrics")]
    {
        gauge!("mcp_resource_guard_key_health", "issuer" => issuer.to_owned())
            .set(f64::from(health));
        if let Some(age) = age {
            gauge!("mcp_resource_guard_key_age_seconds", "issuer" => issuer.to_owned())
                .set(age.as_secs_f64());
        }
    }
}

/// An introspection call ended (`outcome`: `active`, `refused`, `error`).
pub(crate) fn introspection_call(issuer: &str, outcome: &'static str, took: Duration) {
    #[cfg(feature = "metrics")]
    {
        counter!("mcp_resource_guard_introspection_calls_total",
            "issuer" => issuer.to_owned(), "outcome" => outcome)
        .increment(1);
        histogram!("mcp_resource_guard_introspection_seconds", "issuer" => issuer.to_owned())
            .record(took.as_secs_f64());
    }
}

/// Introspection calls in flight: `+1` when one starts, `-1` when it ends.
pub(crate) fn introspection_in_flight(issuer: &str, delta: f64) {
    #[cfg(feature = "metrics")]
    gauge!("mcp_resource_guard_introspection_in_flight", "issuer" => issuer.to_owned())
        .increment(delta);
}

/// An introspection answer taken from the shared store.
pub(crate) fn introspection_shared_hit(issuer: &str) {
    #[cfg(feature = "metrics")]
    counter!("mcp_resource_guard_introspection_shared_hits_total", "issuer" => issuer.to_owned())
        .increment(1);
}

/// A DPoP proof refused as a replay.
pub(crate) fn dpop_replay() {
    #[cfg(feature = "metrics")]
    counter!("mcp_resource_guard_dpop_replays_total").increment(1);
}

/// A fresh `DPoP-Nonce` sent (nonces need `sealed-state`).
#[cfg_attr(not(feature = "sealed-state"), allow(dead_code))]
pub(crate) fn dpop_nonce_refresh() {
    #[cfg(feature = "metrics")]
    counter!("mcp_resource_guard_dpop_nonce_refreshes_total").increment(1);
}

/// A shared store call failed.
pub(crate) fn store_error(store: &'static str, used_for: &'static str) {
    #[cfg(feature = "metrics")]
    counter!("mcp_resource_guard_store_errors_total", "store" => store, "used_for" => used_for)
        .increment(1);
}
