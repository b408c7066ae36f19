//! Shared state for many replicas: one [`Store`] trait for everything a
//! fleet of guards must agree on.
//!
//! JWT validation scales out by itself; five things do not, and all of
//! them go through a [`Store`] once [`GuardBuilder::shared_store`] is set:
//!
//! | Use | Key | Value | TTL | When the store is down |
//! |---|---|---|---|---|
//! | DPoP proof `jti`s (replay) | proof key thumbprint + `jti` | empty | 2 × the `iat` window + 1 s | refused: 503 (or 401, [`SharedStore::replay_when_down`]) |
//! | introspection results | the token | the AS's answer | its cache window | the AS is asked directly, within the introspection bounds |
//! | revoked tokens, `jti`s, subjects | the token / issuer + `jti` / issuer + `sub` | revoked at | the revocation retention | a token not verified in the last [recheck](SharedStore::revocation_recheck) interval: 503 (or this replica's own list only, [`SharedStore::revocations_when_down`]) |
//! | `2025-11-25` session owners | the `Mcp-Session-Id` | the principal | the binding's idle time | a session not known locally: 503 |
//! | task owners (the tasks extension) | the `taskId` | the principal | the binding's idle time | a task not known locally: 503 |
//!
//! Keys are SHA-256 digests with a kind prefix ([`StoreKey`]): no token,
//! `jti`, subject, session or task id is ever written in clear. Values are at
//! most 64 KiB + 64 bytes; every entry has a TTL.
//!
//! Without a shared store each process keeps its own state in memory
//! (bounded): right for one replica, wrong for several.
//!
//! - [`MemoryStore`]: in this process (the default for one replica, and for
//!   tests of several guards in one process).
//! - `RedisStore` (feature `redis`): Redis or Valkey, standalone or
//!   cluster.
//!
//! ```
//! use mcp_resource_guard::store::{MemoryStore, SharedStore};
//! # use mcp_resource_guard::{GuardLayer, Issuer};
//! # fn demo(keys: mcp_resource_guard::jwks::StaticJwks) -> Result<(), mcp_resource_guard::ConfigError> {
//! // Two guards (think: two replicas) sharing one store.
//! let store = SharedStore::new(MemoryStore::new(64 * 1024 * 1024));
//! let a = GuardLayer::builder("https://mcp.example.com/mcp")
//!     .add_issuer(Issuer::new("https://auth.example.com").key_source(keys.clone()))
//!     .shared_store(store.clone())
//!     .build()?;
//! let b = GuardLayer::builder("https://mcp.example.com/mcp")
//!     .add_issuer(Issuer::new("https://auth.example.com").key_source(keys))
//!     .shared_store(store)
//!     .build()?;
//! # let _ = (a, b); Ok(()) }
//! ```
//!
//! [`GuardBuilder::shared_store`]: crate::GuardBuilder::shared_store

pub(crate) mod budget;
mod key;
mod memory;
mod outage;
#[cfg(feature = "redis")]
mod redis;
mod settings;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

pub use key::{KeyKind, StoreKey};
pub use memory::MemoryStore;
pub(crate) use outage::Outage;
#[cfg(feature = "redis")]
pub use redis::{RedisStore, RedisStoreBuilder};
pub use settings::{Outages, ReplayWhenDown, RevocationsWhenDown, SharedStore};

/// The largest value the guard writes (an introspection answer is capped
/// at 64 KiB, plus a small header). Stores refuse larger ones.
pub(crate) const MAX_VALUE_BYTES: usize = 64 * 1024 + 64;

/// A store could not answer: down, too slow, refused the command, or full.
/// The message never holds a key or a value.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the shared store failed: {message}")]
pub struct StoreError {
    message: String,
    full: bool,
}

impl StoreError {
    /// An error with a message (no secrets, please).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            full: false,
        }
    }

    /// The store is full and refused a new entry (rather than forget one it
    /// holds: see [`MemoryStore`]).
    pub fn full(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            full: true,
        }
    }

    /// `true` when the store refused a new entry because it is full.
    pub fn is_full(&self) -> bool {
        self.full
    }
}

/// Where replicas keep the state they share: key-value entries that expire.
///
/// Implementations must be atomic for [`insert_if_absent`](Self::insert_if_absent)
/// (Redis: `SET key value NX PX ttl`), honour every TTL, refuse values over
/// 64 KiB + 64 bytes, and answer within a bounded time (a hung store
/// hangs requests): return [`StoreError`] instead.
///
/// ```
/// use std::time::Duration;
/// use mcp_resource_guard::store::{KeyKind, MemoryStore, Store, StoreKey};
///
/// # async fn demo() -> Result<(), mcp_resource_guard::store::StoreError> {
/// let store = MemoryStore::new(1 << 20);
/// let key = StoreKey::new(KeyKind::DpopProof, &[b"thumbprint", b"jti-1"]);
/// assert!(store.insert_if_absent(&key, b"", Duration::from_secs(60)).await?);
/// assert!(!store.insert_if_absent(&key, b"", Duration::from_secs(60)).await?);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait Store: fmt::Debug + Send + Sync + 'static {
    /// Stores `value` under `key` for `ttl` unless `key` is there: `true`
    /// when it was stored (first use), `false` when it was there (a replay).
    ///
    /// # Errors
    ///
    /// When the store cannot answer, or `value` is too large.
    async fn insert_if_absent(
        &self,
        key: &StoreKey,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// Stores `value` under `key` for `ttl`, replacing what was there.
    ///
    /// # Errors
    ///
    /// When the store cannot answer, or `value` is too large.
    async fn set(&self, key: &StoreKey, value: &[u8], ttl: Duration) -> Result<(), StoreError>;

    /// The values under `keys`, in order (`None`: absent or expired). One
    /// round trip in a networked store.
    ///
    /// # Errors
    ///
    /// When the store cannot answer.
    async fn get_many(&self, keys: &[StoreKey]) -> Result<Vec<Option<Vec<u8>>>, StoreError>;

    /// Removes `key` (absent is fine).
    ///
    /// # Errors
    ///
    /// When the store cannot answer.
    async fn remove(&self, key: &StoreKey) -> Result<(), StoreError>;

    /// A short name for logs and metrics (`"memory"`, `"redis"`).
    fn name(&self) -> &'static str;
}

impl dyn Store {
    /// The value under `key`.
    pub(crate) async fn get(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, StoreError> {
        let mut values = self.get_many(std::slice::from_ref(key)).await?;
        Ok(values.pop().flatten())
    }
}

/// Refuses a value over [`MAX_VALUE_BYTES`].
pub(crate) fn check_value(value: &[u8]) -> Result<(), StoreError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(StoreError::new(format!(
            "a value of {} bytes is over the {MAX_VALUE_BYTES}-byte limit",
            value.len()
        )));
    }
    Ok(())
}

/// A TTL in whole milliseconds, at least 1 (a zero TTL would mean "never
/// expires" to some stores).
#[cfg(feature = "redis")]
pub(crate) fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}
