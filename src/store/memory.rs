//! [`MemoryStore`]: a [`Store`] in this process, bounded in bytes.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::budget::Budget;
use super::{Store, StoreError, StoreKey, check_value};

/// What an entry costs besides its value (key, TTL, moka's node).
const ENTRY_OVERHEAD: usize = 112;

#[derive(Clone)]
struct Entry {
    value: Box<[u8]>,
    ttl: Duration,
}

/// Each entry expires after its own TTL.
struct PerEntryTtl;

impl moka::Expiry<StoreKey, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _: &StoreKey, e: &Entry, _: Instant) -> Option<Duration> {
        Some(e.ttl)
    }

    fn expire_after_update(
        &self,
        _: &StoreKey,
        e: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(e.ttl)
    }
}

/// A [`Store`] in this process: the default of a guard without a shared
/// store, and a way to test several guards in one process.
///
/// Bounded in bytes (values plus about 112 bytes per entry). When full it
/// refuses new entries ([`StoreError::is_full`]; a DPoP request then gets
/// 503) and never evicts one it holds before its TTL: a replay check or a
/// revocation that is forgotten lets a replayed proof or a revoked token
/// through. Size it above what one window brings (a DPoP proof costs about
/// 112 bytes and is kept for twice the `iat` window).
#[derive(Clone)]
pub struct MemoryStore {
    entries: moka::sync::Cache<StoreKey, Entry>,
    budget: Arc<Budget>,
}

/// What an entry weighs against the budget.
fn weight(value_len: usize) -> u64 {
    (value_len + ENTRY_OVERHEAD) as u64
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

impl MemoryStore {
    /// A store of at most `max_bytes` (at least 64 KiB).
    pub fn new(max_bytes: u64) -> Self {
        let budget = Budget::new(max_bytes.max(64 * 1024));
        let released = budget.clone();
        Self {
            // No capacity of its own: the budget refuses what does not fit,
            // and an entry leaves only when it expires or is removed.
            entries: moka::sync::Cache::builder()
                .expire_after(PerEntryTtl)
                .eviction_listener(move |_, e: Entry, _| released.release(weight(e.value.len())))
                .build(),
            budget,
        }
    }

    /// Reserves room for a value of `len` bytes, after dropping what has
    /// expired if it does not fit at first.
    fn reserve(&self, len: usize) -> Result<(), StoreError> {
        if self
            .budget
            .reserve_or_drop_expired(weight(len), || self.entries.run_pending_tasks())
        {
            return Ok(());
        }
        Err(StoreError::full(
            "the memory store is full: new entries are refused until others expire",
        ))
    }

    /// The entries held (after pending evictions).
    pub fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }

    /// `true` when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes held (after pending evictions), as the byte bound counts
    /// them.
    pub fn bytes(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.budget.used()
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn insert_if_absent(
        &self,
        key: &StoreKey,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        check_value(value)?;
        if let Err(full) = self.reserve(value.len()) {
            // There already (a replay): no room needed to say so.
            return if self.entries.contains_key(key) {
                Ok(false)
            } else {
                Err(full)
            };
        }
        let entry = self.entries.entry(key.clone()).or_insert_with(|| Entry {
            value: value.into(),
            ttl,
        });
        if !entry.is_fresh() {
            // Inserted by another call in between: nothing of ours stored.
            self.budget.release(weight(value.len()));
        }
        Ok(entry.is_fresh())
    }

    async fn set(&self, key: &StoreKey, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        check_value(value)?;
        // A value replaced gives its room back through the listener.
        self.reserve(value.len())?;
        self.entries.insert(
            key.clone(),
            Entry {
                value: value.into(),
                ttl,
            },
        );
        Ok(())
    }

    async fn get_many(&self, keys: &[StoreKey]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        Ok(keys
            .iter()
            .map(|k| self.entries.get(k).map(|e| e.value.to_vec()))
            .collect())
    }

    async fn remove(&self, key: &StoreKey) -> Result<(), StoreError> {
        self.entries.invalidate(key);
        Ok(())
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::super::{KeyKind, MAX_VALUE_BYTES};
    use super::*;

    fn key(i: u32) -> StoreKey {
        StoreKey::new(KeyKind::Session, &[&i.to_be_bytes()])
    }

    #[tokio::test]
    async fn insert_if_absent_set_get_remove() {
        let s = MemoryStore::new(1 << 20);
        let ttl = Duration::from_secs(60);
        assert!(s.insert_if_absent(&key(1), b"a", ttl).await.unwrap());
        assert!(!s.insert_if_absent(&key(1), b"b", ttl).await.unwrap());
        s.set(&key(2), b"c", ttl).await.unwrap();
        let got = s.get_many(&[key(1), key(2), key(3)]).await.unwrap();
        assert_eq!(got, vec![Some(b"a".to_vec()), Some(b"c".to_vec()), None]);
        s.remove(&key(1)).await.unwrap();
        assert_eq!(s.get_many(&[key(1)]).await.unwrap(), vec![None]);
        let big = vec![0u8; MAX_VALUE_BYTES + 1];
        assert!(s.set(&key(4), &big, ttl).await.is_err());
        assert!(s.insert_if_absent(&key(4), &big, ttl).await.is_err());
    }

    #[tokio::test]
    async fn entries_expire_after_their_own_ttl() {
        let s = MemoryStore::new(1 << 20);
        s.set(&key(1), b"short", Duration::from_millis(50))
            .await
            .unwrap();
        s.set(&key(2), b"long", Duration::from_secs(60))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        let got = s.get_many(&[key(1), key(2)]).await.unwrap();
        assert_eq!(got, vec![None, Some(b"long".to_vec())]);
    }

    #[tokio::test]
    async fn full_it_refuses_new_entries_and_forgets_none() {
        let s = MemoryStore::new(64 * 1024);
        let ttl = Duration::from_secs(60);
        let value = vec![7u8; 1024];
        let mut stored = Vec::new();
        for i in 0..10_000 {
            match s.insert_if_absent(&key(i), &value, ttl).await {
                Ok(true) => stored.push(i),
                Ok(false) => panic!("{i} was never inserted"),
                Err(e) => {
                    assert!(e.is_full(), "{e}");
                    break;
                }
            }
        }
        assert!(s.bytes() <= 64 * 1024, "{}", s.bytes());
        assert!((50..=64).contains(&stored.len()), "{}", stored.len());
        // Every entry stored is still there: a replay is still a replay.
        for i in &stored {
            assert!(!s.insert_if_absent(&key(*i), &value, ttl).await.unwrap());
        }
        assert!(
            s.set(&key(99_999), &value, ttl)
                .await
                .unwrap_err()
                .is_full()
        );
        // Room comes back when entries are removed, or expire.
        s.remove(&key(stored[0])).await.unwrap();
        assert!(s.insert_if_absent(&key(99_999), &value, ttl).await.unwrap());
        let short = MemoryStore::new(64 * 1024);
        for i in 0..50 {
            short
                .set(&key(i), &value, Duration::from_millis(50))
                .await
                .unwrap();
        }
        // Expired entries leave at the next tick of moka's timer wheel (about
        // a second), and give their room back then.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        for i in 50..100 {
            short.set(&key(i), &value, ttl).await.unwrap();
        }
        // Replacing a value does not leak room.
        for _ in 0..1000 {
            short.set(&key(50), &value, ttl).await.unwrap();
        }
        assert!(short.bytes() <= 64 * 1024);
    }
}
