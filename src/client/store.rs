//! [`TokenStore`]: where a person's tokens (with their refresh tokens)
//! are kept between runs; [`MemoryTokenStore`] by default.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;

use super::token::AccessToken;

/// Where the authorization code flow keeps the tokens it got, keyed by
/// authorization server, resource, client and scopes: a CLI that stores
/// them on disk (encrypted, or in the OS keychain) spares the person a
/// browser round trip on its next run. The key never contains a secret.
#[async_trait]
pub trait TokenStore: fmt::Debug + Send + Sync + 'static {
    /// The token saved under `key`, if any.
    async fn load(&self, key: &str) -> Option<AccessToken>;
    /// Saves `token` (which may carry a refresh token) under `key`.
    async fn save(&self, key: &str, token: &AccessToken);
    /// Forgets what is saved under `key` (the server refused it).
    async fn remove(&self, key: &str);
}

/// At most this many tokens are kept in memory.
const MAX_TOKENS: usize = 256;

/// Tokens in memory, for this process only (the default). Bounded: beyond
/// 256 keys the oldest half is dropped (they can be had again).
#[derive(Default)]
pub struct MemoryTokenStore {
    tokens: Mutex<HashMap<String, (u64, AccessToken)>>,
    next: std::sync::atomic::AtomicU64,
}

impl fmt::Debug for MemoryTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.tokens.lock().map_or(0, |t| t.len());
        f.debug_struct("MemoryTokenStore")
            .field("tokens", &n)
            .finish()
    }
}

#[async_trait]
impl TokenStore for MemoryTokenStore {
    async fn load(&self, key: &str) -> Option<AccessToken> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.get(key).map(|(_, t)| t.clone())
    }

    async fn save(&self, key: &str, token: &AccessToken) {
        let order = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if tokens.len() >= MAX_TOKENS && !tokens.contains_key(key) {
            let mut ages: Vec<u64> = tokens.values().map(|(o, _)| *o).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            tokens.retain(|_, (o, _)| *o > cut);
        }
        tokens.insert(key.to_owned(), (order, token.clone()));
    }

    async fn remove(&self, key: &str) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_store_is_bounded() {
        let store = MemoryTokenStore::default();
        let t = AccessToken::restore("t", "Bearer", None, None, Some("r".into()));
        for i in 0..=MAX_TOKENS {
            store.save(&i.to_string(), &t).await;
        }
        assert!(store.tokens.lock().unwrap().len() <= MAX_TOKENS);
        assert!(store.load(&MAX_TOKENS.to_string()).await.is_some());
        assert!(store.load("0").await.is_none());
        store.remove(&MAX_TOKENS.to_string()).await;
        assert!(store.load(&MAX_TOKENS.to_string()).await.is_none());
    }
}
