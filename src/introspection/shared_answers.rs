//! Introspection answers shared by replicas through the shared store: one
//! call per token and cache window for the whole fleet (sequential
//! requests; two replicas missing at the same instant may both call).
//!
//! The stored value is the authorization server's answer itself (`is_jwt`,
//! the Unix second it holds until, the body): every replica judges it anew
//! (and verifies an RFC 9701 signature), so a replica trusts the store no
//! more than it trusts the network. The key is a digest of the issuer and
//! the token. A store that fails is skipped (the endpoint is asked, within
//! the introspection bounds); the outage is logged once.

use std::time::Duration;

use crate::store::{SharedStore, StoreKey};

/// An answer as stored.
pub(super) struct Answer {
    pub(super) is_jwt: bool,
    /// Unix seconds.
    pub(super) until: u64,
    pub(super) body: Vec<u8>,
}

const HEADER: usize = 9;

impl Answer {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(HEADER + self.body.len());
        v.push(u8::from(self.is_jwt));
        v.extend_from_slice(&self.until.to_be_bytes());
        v.extend_from_slice(&self.body);
        v
    }

    fn decode(v: Vec<u8>) -> Option<Self> {
        let (&flag, rest) = v.split_first()?;
        let is_jwt = match flag {
            0 => false,
            1 => true,
            _ => return None,
        };
        let until = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
        let body = rest.get(8..)?.to_vec();
        Some(Self {
            is_jwt,
            until,
            body,
        })
    }
}

/// The answer stored for `key`, if any and still within its window.
pub(super) async fn get(shared: &SharedStore, key: &StoreKey, now: u64) -> Option<Answer> {
    let store = shared.store.name();
    let outage = &shared.uses.introspection;
    match shared.store.get(key).await {
        Ok(v) => {
            outage.succeeded(store);
            Answer::decode(v?).filter(|a| a.until > now)
        }
        Err(e) => {
            outage.failed(store, &e, "the introspection endpoint is asked directly");
            None
        }
    }
}

/// Stores `answer` for the rest of its window.
pub(super) async fn put(shared: &SharedStore, key: &StoreKey, answer: &Answer, now: u64) {
    let Some(left) = answer.until.checked_sub(now).filter(|s| *s > 0) else {
        return;
    };
    let store = shared.store.name();
    let outage = &shared.uses.introspection;
    match shared
        .store
        .set(key, &answer.encode(), Duration::from_secs(left))
        .await
    {
        Ok(()) => outage.succeeded(store),
        Err(e) => outage.failed(store, &e, "answers are not shared"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{KeyKind, MemoryStore};

    #[tokio::test]
    async fn an_answer_past_its_window_is_not_used_whatever_the_store_keeps() {
        let shared = SharedStore::new(MemoryStore::new(1 << 20));
        let key = StoreKey::new(KeyKind::Introspection, &[b"i", b"t"]);
        let answer = Answer {
            is_jwt: false,
            until: 1_000,
            body: b"{}".to_vec(),
        };
        // Written with a long TTL (a store that keeps entries too long).
        shared
            .store
            .set(&key, &answer.encode(), Duration::from_secs(60))
            .await
            .unwrap();
        assert!(get(&shared, &key, 999).await.is_some());
        assert!(get(&shared, &key, 1_000).await.is_none());
        // Nothing is written for an answer whose window is over.
        let key2 = StoreKey::new(KeyKind::Introspection, &[b"i", b"u"]);
        put(&shared, &key2, &answer, 1_000).await;
        assert!(shared.store.get(&key2).await.unwrap().is_none());
    }

    #[test]
    fn round_trip_and_garbage() {
        let a = Answer {
            is_jwt: true,
            until: 1_700_000_000,
            body: b"{\"active\":true}".to_vec(),
        };
        let b = Answer::decode(a.encode()).unwrap();
        assert!(b.is_jwt);
        assert_eq!(b.until, a.until);
        assert_eq!(b.body, a.body);
        assert!(Answer::decode(vec![]).is_none());
        assert!(Answer::decode(vec![2, 0, 0, 0, 0, 0, 0, 0, 0]).is_none());
        assert!(Answer::decode(vec![0, 1, 2]).is_none());
    }
}
