//! Remembering DPoP proofs' `jti`s for the `iat` window: the
//! [`ReplayStore`] trait and its in-memory [`MemoryReplayStore`].

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;

/// A replay store could not answer (a shared store that is down). The guard
/// answers 503 with `Retry-After`: it fails closed, never skipping the check.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the DPoP replay store failed: {message}")]
pub struct ReplayStoreError {
    message: String,
}

impl ReplayStoreError {
    /// An error with a message (no secrets, please).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Where DPoP proofs' `jti`s are remembered, so a proof is used once.
///
/// Keys are SHA-256 digests of the proof key's thumbprint and the `jti`
/// (never a token). Implement it on a shared store (Redis `SET key NX PX`,
/// say) so that replicas see each other's proofs.
///
/// ```
/// use std::time::Duration;
/// use mcp_resource_guard::dpop::{MemoryReplayStore, ReplayStore};
///
/// # async fn demo() {
/// let store = MemoryReplayStore::new(10_000);
/// let key = [7u8; 32];
/// assert!(store.insert_if_absent(key, Duration::from_secs(60)).await.unwrap());
/// assert!(!store.insert_if_absent(key, Duration::from_secs(60)).await.unwrap());
/// # }
/// ```
#[async_trait]
pub trait ReplayStore: fmt::Debug + Send + Sync + 'static {
    /// Remembers `key` for `ttl`: `true` if it was not there (first use),
    /// `false` if it was (a replay). Must be atomic.
    ///
    /// # Errors
    ///
    /// When the store cannot answer.
    async fn insert_if_absent(
        &self,
        key: [u8; 32],
        ttl: Duration,
    ) -> Result<bool, ReplayStoreError>;
}

/// Each entry expires after its own TTL.
struct PerEntryTtl;

impl moka::Expiry<[u8; 32], Duration> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        ttl: &Duration,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(*ttl)
    }
}

/// The default [`ReplayStore`]: in this process, bounded in entries (each
/// about 100 bytes). When full, the least useful entries go first, so keep
/// the capacity above the proofs one window brings.
#[derive(Clone)]
pub struct MemoryReplayStore {
    seen: moka::sync::Cache<[u8; 32], Duration>,
}

impl fmt::Debug for MemoryReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReplayStore")
            .field("entries", &self.seen.entry_count())
            .finish()
    }
}

impl MemoryReplayStore {
    /// A store for at most `capacity` proofs (the guard's default: 1,000,000,
    /// about 100 MB at most).
    pub fn new(capacity: u64) -> Self {
        Self {
            seen: moka::sync::Cache::builder()
                .max_capacity(capacity.max(1))
                .expire_after(PerEntryTtl)
                .build(),
        }
    }
}

#[async_trait]
impl ReplayStore for MemoryReplayStore {
    async fn insert_if_absent(
        &self,
        key: [u8; 32],
        ttl: Duration,
    ) -> Result<bool, ReplayStoreError> {
        Ok(self.seen.entry(key).or_insert(ttl).is_fresh())
    }
}
