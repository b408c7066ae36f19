//! [`SharedStore`]: a [`Store`] and how the guard uses it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{Outage, Store};

/// What a DPoP request gets when the replay store cannot answer. Either
/// way the proof is refused: a replay check that cannot be made is never
/// skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ReplayWhenDown {
    /// 503 with `Retry-After` (the default): the client retries later.
    #[default]
    ServiceUnavailable,
    /// 401 `invalid_dpop_proof`.
    Unauthorized,
}

/// What a token that must be checked against the shared revocation list
/// gets when the store cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RevocationsWhenDown {
    /// 503 with `Retry-After` (the default): a token is not let through
    /// without the check. Tokens verified within the recheck interval are
    /// still served from the cache; a Redis outage longer than that stops
    /// every caller.
    #[default]
    ServiceUnavailable,
    /// Only this replica's own revocation list is checked until the store
    /// is back: revocations made on other replicas during the outage (or
    /// before, and not seen here) are not enforced. Availability over
    /// revocation; the outage is logged once.
    LocalListOnly,
}

/// The uses of a store, each with its own outage state.
#[derive(Debug)]
pub(crate) struct Uses {
    pub(crate) replay: Outage,
    pub(crate) introspection: Outage,
    pub(crate) revocation: Outage,
    pub(crate) sessions: Outage,
    pub(crate) tasks: Outage,
}

/// A [`Store`] shared by the replicas of one deployment, and the guard's
/// settings for it; give it to
/// [`GuardBuilder::shared_store`](crate::GuardBuilder::shared_store). The
/// MCP layer built from that guard keeps its session bindings there too.
///
/// Cheap to clone (clones share the store).
#[derive(Clone)]
pub struct SharedStore {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) recheck: Duration,
    pub(crate) replay_when_down: ReplayWhenDown,
    pub(crate) revocations_when_down: RevocationsWhenDown,
    pub(crate) uses: Arc<Uses>,
}

impl fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedStore")
            .field("store", &self.store)
            .field("revocation_recheck", &self.recheck)
            .field("replay_when_down", &self.replay_when_down)
            .field("revocations_when_down", &self.revocations_when_down)
            .finish()
    }
}

impl SharedStore {
    /// `store`, with revocations rechecked every second, and a 503 when the
    /// store is down for a replay check or a revocation check.
    pub fn new(store: impl Store) -> Self {
        Self {
            store: Arc::new(store),
            recheck: Duration::from_secs(1),
            replay_when_down: ReplayWhenDown::default(),
            revocations_when_down: RevocationsWhenDown::default(),
            uses: Arc::new(Uses {
                replay: Outage::new("replay"),
                introspection: Outage::new("introspection"),
                revocation: Outage::new("revocation"),
                sessions: Outage::new("sessions"),
                tasks: Outage::new("tasks"),
            }),
        }
    }

    /// How long a replica may serve a token from its own verified-token
    /// cache before it asks the store again whether the token, its `jti` or
    /// its subject was revoked elsewhere: a revocation made on one replica
    /// is enforced by all within this interval (counted in whole seconds of
    /// the guard's clock, so at most 1 s for anything under a second).
    /// Default 1 second;
    /// `Duration::ZERO` asks on every request (the token cache is then not
    /// used: each request pays a signature check and a store round trip).
    /// At most 5 minutes.
    pub fn revocation_recheck(mut self, every: Duration) -> Self {
        self.recheck = every.min(Duration::from_secs(300));
        self
    }

    /// What a DPoP request gets when the replay store is down (503 by
    /// default).
    pub fn replay_when_down(mut self, answer: ReplayWhenDown) -> Self {
        self.replay_when_down = answer;
        self
    }

    /// What a token gets when the shared revocation list cannot be read
    /// (503 by default).
    pub fn revocations_when_down(mut self, answer: RevocationsWhenDown) -> Self {
        self.revocations_when_down = answer;
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// How many outages of the store each use has seen (each is logged
    /// once, when it begins).
    pub fn outages(&self) -> Outages {
        let u = &self.uses;
        Outages {
            replay: u.replay.count(),
            introspection: u.introspection.count(),
            revocation: u.revocation.count(),
            sessions: u.sessions.count(),
            tasks: u.tasks.count(),
        }
    }
}

/// Outages of the shared store seen so far, per use
/// ([`SharedStore::outages`]): each began when a call failed after the
/// last one succeeded.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outages {
    /// DPoP proofs seen (replay checks).
    pub replay: u64,
    /// Shared introspection answers.
    pub introspection: u64,
    /// Shared revocations.
    pub revocation: u64,
    /// `2025-11-25` session owners.
    pub sessions: u64,
    /// Task owners.
    pub tasks: u64,
}
