//! Session binding for the `2025-11-25` wire (`Mcp-Session-Id`): which
//! principal owns each session the server issued.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;

use crate::claims::AuthContext;
use crate::error::{AuthError, AuthErrorKind, ConfigError};
use crate::store::{KeyKind, SharedStore, StoreKey};

pub(crate) const MCP_SESSION_ID: &str = "mcp-session-id";

/// The longest session id accepted, in bytes.
pub(crate) const MAX_SESSION_ID: usize = 128;

const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;
const DEFAULT_IDLE: Duration = Duration::from_secs(24 * 3600);
const MAX_IDLE: Duration = Duration::from_secs(30 * 24 * 3600);
/// What an entry costs besides its strings (key box, `Arc`, moka's node).
const ENTRY_OVERHEAD: usize = 128;

/// Who owns a session: the issuer, and the subject or (for tokens without
/// `sub`) the client, kept apart so a `client_id` equal to someone's `sub`
/// is not that person. Anonymous callers (optional auth) own their sessions
/// as nobody in particular.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Principal {
    Subject {
        issuer: Box<str>,
        sub: Box<str>,
    },
    Client {
        issuer: Box<str>,
        client_id: Box<str>,
    },
    Anonymous,
}

impl Principal {
    pub(crate) fn of(ctx: Option<&AuthContext>) -> Self {
        let Some(ctx) = ctx else {
            return Self::Anonymous;
        };
        let issuer = ctx.issuer().into();
        match (ctx.subject(), ctx.client_id()) {
            (Some(sub), _) => Self::Subject {
                issuer,
                sub: sub.into(),
            },
            (None, Some(client_id)) => Self::Client {
                issuer,
                client_id: client_id.into(),
            },
            // A verified token naming nobody: only it, by issuer.
            (None, None) => Self::Client {
                issuer,
                client_id: "".into(),
            },
        }
    }

    /// The principal as stored: a tag, then length-prefixed strings.
    fn encode(&self) -> Vec<u8> {
        let (tag, a, b) = match self {
            Self::Subject { issuer, sub } => (b's', &**issuer, &**sub),
            Self::Client { issuer, client_id } => (b'c', &**issuer, &**client_id),
            Self::Anonymous => (b'a', "", ""),
        };
        let mut v = Vec::with_capacity(9 + a.len() + b.len());
        v.push(tag);
        v.extend_from_slice(&(a.len() as u32).to_be_bytes());
        v.extend_from_slice(a.as_bytes());
        v.extend_from_slice(&(b.len() as u32).to_be_bytes());
        v.extend_from_slice(b.as_bytes());
        v
    }

    /// `None` for bytes [`encode`](Self::encode) did not write.
    fn decode(v: &[u8]) -> Option<Self> {
        let (&tag, rest) = v.split_first()?;
        let (a, rest) = take_str(rest)?;
        let (b, rest) = take_str(rest)?;
        if !rest.is_empty() {
            return None;
        }
        match tag {
            b's' => Some(Self::Subject {
                issuer: a.into(),
                sub: b.into(),
            }),
            b'c' => Some(Self::Client {
                issuer: a.into(),
                client_id: b.into(),
            }),
            b'a' if a.is_empty() && b.is_empty() => Some(Self::Anonymous),
            _ => None,
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Self::Subject { issuer, sub } => issuer.len() + sub.len(),
            Self::Client { issuer, client_id } => issuer.len() + client_id.len(),
            Self::Anonymous => 0,
        }
    }
}

/// A length-prefixed UTF-8 string, and what follows it.
fn take_str(v: &[u8]) -> Option<(&str, &[u8])> {
    let len = u32::from_be_bytes(v.get(..4)?.try_into().ok()?) as usize;
    let s = std::str::from_utf8(v.get(4..4 + len)?).ok()?;
    Some((s, v.get(4 + len..)?))
}

/// Remembers which principal owns each `Mcp-Session-Id` (the `2025-11-25`
/// wire; the stateless `2026-07-28` wire has no sessions).
///
/// - A session is bound when the server's response issues its id (a
///   response carrying `Mcp-Session-Id` to a request that carried none): an
///   id first seen in a request is never bound.
/// - A request naming a session the layer did not see issued (or that was
///   forgotten) gets `404`, so MCP clients start a new session; another
///   principal's session gets `403`; a malformed id (empty, over 128 bytes,
///   outside visible ASCII) or two `Mcp-Session-Id` headers get `400`.
/// - A `DELETE` the server accepts ends the binding.
/// - Bounded in bytes (ids and principals, 16 MiB by default) and by idle
///   time (24 hours by default).
/// - With the guard's [shared store](crate::GuardBuilder::shared_store),
///   bindings are also written there (keyed by a digest of the id; the
///   idle time as TTL, counted from the binding), so a session issued
///   through one replica is owned there on every replica. A session not
///   known locally while the store is down gets 503; a binding that
///   cannot be written turns the issuing response into a 503 (the client
///   never learns an id the other replicas would not know).
///
/// A session id never stands in for a token: every request is verified.
#[derive(Clone)]
pub struct SessionBinding {
    owners: moka::sync::Cache<Box<str>, Arc<Principal>>,
    idle: Duration,
}

impl fmt::Debug for SessionBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionBinding")
            .field("sessions", &self.owners.entry_count())
            .finish()
    }
}

impl Default for SessionBinding {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionBinding {
    /// At most 16 MiB of bindings, each remembered for 24 hours after last use.
    pub fn new() -> Self {
        Self::build(DEFAULT_MAX_BYTES, DEFAULT_IDLE)
    }

    /// At most `max_bytes` of bindings (ids, principals and a fixed overhead
    /// per entry), each remembered for `idle` after last use.
    ///
    /// # Errors
    ///
    /// [`ConfigError::OutOfRange`] when `max_bytes` is under 64 KiB or `idle`
    /// is zero or over 30 days.
    pub fn with_limits(max_bytes: u64, idle: Duration) -> Result<Self, ConfigError> {
        if max_bytes < 64 * 1024 {
            return Err(ConfigError::OutOfRange {
                setting: "SessionBinding max_bytes",
                reason: "at least 64 KiB",
            });
        }
        if idle.is_zero() || idle > MAX_IDLE {
            return Err(ConfigError::OutOfRange {
                setting: "SessionBinding idle",
                reason: "from 1 second to 30 days",
            });
        }
        Ok(Self::build(max_bytes, idle))
    }

    #[allow(clippy::borrowed_box)] // moka's weigher takes `&K`, and K is `Box<str>`
    fn build(max_bytes: u64, idle: Duration) -> Self {
        Self {
            owners: moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|id: &Box<str>, p: &Arc<Principal>| -> u32 {
                    u32::try_from(id.len() + p.bytes() + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
                })
                .time_to_idle(idle)
                .build(),
            idle,
        }
    }

    /// Checks that `principal` may use session `id`: from this process's
    /// bindings, else from the shared store (and remembered here).
    pub(crate) async fn check(
        &self,
        id: &str,
        principal: &Principal,
        shared: Option<&SharedStore>,
    ) -> Result<(), AuthError> {
        let owner = match (self.owners.get(id), shared) {
            (Some(owner), _) => Some(owner),
            (None, None) => None,
            (None, Some(shared)) => self.fetch(id, shared).await?,
        };
        match owner {
            None => Err(AuthError::new(
                AuthErrorKind::UnknownSession,
                "the session id was not issued through this layer, or was forgotten",
            )),
            Some(owner) if *owner == *principal => Ok(()),
            Some(_) => Err(AuthError::new(
                AuthErrorKind::SessionMismatch,
                "the session id belongs to another principal",
            )),
        }
    }

    /// The owner the shared store holds for `id`, remembered here.
    async fn fetch(
        &self,
        id: &str,
        shared: &SharedStore,
    ) -> Result<Option<Arc<Principal>>, AuthError> {
        let store = shared.store.name();
        let outage = &shared.uses.sessions;
        match shared.store.get(&key(id)).await {
            Ok(value) => {
                outage.succeeded(store);
                // A value this layer did not write owns nothing.
                let Some(owner) = value.as_deref().and_then(Principal::decode) else {
                    return Ok(None);
                };
                let owner = Arc::new(owner);
                self.owners.insert(id.into(), owner.clone());
                Ok(Some(owner))
            }
            Err(e) => {
                outage.failed(store, &e, "sessions not known locally get 503");
                Err(AuthError::with_source(
                    AuthErrorKind::StoreUnavailable,
                    "the shared store could not say who owns the session",
                    e,
                ))
            }
        }
    }

    /// Binds a session the server just issued, unless it is bound already.
    pub(crate) async fn bind(
        &self,
        id: &str,
        principal: Principal,
        shared: Option<&SharedStore>,
    ) -> Result<(), AuthError> {
        if !valid_id(id) {
            return Ok(());
        }
        if let Some(shared) = shared {
            let store = shared.store.name();
            let outage = &shared.uses.sessions;
            match shared
                .store
                .insert_if_absent(&key(id), &principal.encode(), self.idle)
                .await
            {
                Ok(true) => outage.succeeded(store),
                // Bound already (by another replica): its owner stands.
                Ok(false) => {
                    outage.succeeded(store);
                    return Ok(());
                }
                Err(e) => {
                    outage.failed(store, &e, "new sessions get 503");
                    return Err(AuthError::with_source(
                        AuthErrorKind::StoreUnavailable,
                        "the session could not be bound in the shared store",
                        e,
                    ));
                }
            }
        }
        self.owners
            .entry(id.into())
            .or_insert_with(|| Arc::new(principal));
        Ok(())
    }

    /// Forgets a session the server ended.
    pub(crate) async fn end(&self, id: &str, shared: Option<&SharedStore>) {
        self.owners.invalidate(id);
        if let Some(shared) = shared
            && let Err(e) = shared.store.remove(&key(id)).await
        {
            // The binding expires with its TTL; its owner is unchanged.
            shared.uses.sessions.failed(
                shared.store.name(),
                &e,
                "ended sessions expire with their TTL",
            );
        }
    }

    /// The number of bound sessions (after pending evictions). For tests
    /// and metrics.
    pub fn len(&self) -> u64 {
        self.owners.run_pending_tasks();
        self.owners.entry_count()
    }

    /// `true` when no session is bound.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes the bindings weigh (after pending evictions).
    pub fn weighted_size(&self) -> u64 {
        self.owners.run_pending_tasks();
        self.owners.weighted_size()
    }
}

/// The store key of session `id`.
fn key(id: &str) -> StoreKey {
    StoreKey::new(KeyKind::Session, &[id.as_bytes()])
}

/// 1 to 128 visible ASCII characters (0x21–0x7E).
fn valid_id(id: &str) -> bool {
    (1..=MAX_SESSION_ID).contains(&id.len()) && id.bytes().all(|b| (0x21..=0x7E).contains(&b))
}

/// The request's session id: `Ok(None)` without one.
pub(crate) fn session_id(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let mut values = headers.get_all(MCP_SESSION_ID).iter();
    let Some(v) = values.next() else {
        return Ok(None);
    };
    let bad = |detail| AuthError::new(AuthErrorKind::InvalidSession, detail);
    if values.next().is_some() {
        return Err(bad("more than one Mcp-Session-Id header"));
    }
    match v.to_str() {
        Ok(id) if valid_id(id) => Ok(Some(id)),
        _ => Err(bad(
            "the Mcp-Session-Id is empty, over 128 bytes or not visible ASCII",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(sub: &str) -> Principal {
        Principal::Subject {
            issuer: "i".into(),
            sub: sub.into(),
        }
    }

    #[tokio::test]
    async fn bound_only_by_issuing() {
        let b = SessionBinding::new();
        assert_eq!(
            b.check("s1", &p("alice"), None).await.unwrap_err().kind(),
            AuthErrorKind::UnknownSession
        );
        b.bind("s1", p("alice"), None).await.unwrap();
        assert!(b.check("s1", &p("alice"), None).await.is_ok());
        assert_eq!(
            b.check("s1", &p("bob"), None).await.unwrap_err().kind(),
            AuthErrorKind::SessionMismatch
        );
        assert_eq!(
            b.check("s1", &Principal::Anonymous, None)
                .await
                .unwrap_err()
                .kind(),
            AuthErrorKind::SessionMismatch
        );
        // Rebinding never changes the owner.
        b.bind("s1", p("bob"), None).await.unwrap();
        assert!(b.check("s1", &p("alice"), None).await.is_ok());
        // A client whose id equals someone's sub is not that someone.
        let client = Principal::Client {
            issuer: "i".into(),
            client_id: "alice".into(),
        };
        assert_ne!(client, p("alice"));
        b.end("s1", None).await;
        assert_eq!(
            b.check("s1", &p("alice"), None).await.unwrap_err().kind(),
            AuthErrorKind::UnknownSession
        );
        b.bind(&"x".repeat(129), p("alice"), None).await.unwrap();
        b.bind("bad id", p("alice"), None).await.unwrap();
        assert!(b.is_empty());
    }

    #[tokio::test]
    async fn bounded_in_bytes() {
        let b = SessionBinding::with_limits(64 * 1024, Duration::from_secs(60)).unwrap();
        let long = "s".repeat(8 * 1024);
        for i in 0..10_000 {
            b.bind(&format!("{i:0128}"), p(&long), None).await.unwrap();
        }
        assert!(b.weighted_size() <= 64 * 1024, "{}", b.weighted_size());
        // Each entry holds over 8 KiB: at most 8 fit, whatever the weigher says.
        assert!(b.len() <= 8, "{} sessions in 64 KiB", b.len());
        assert!(SessionBinding::with_limits(1, Duration::from_secs(1)).is_err());
        assert!(SessionBinding::with_limits(1 << 20, Duration::MAX).is_err());
    }

    #[test]
    fn principals_round_trip_and_garbage_owns_nothing() {
        let all = [
            p("alice"),
            Principal::Client {
                issuer: "i".into(),
                client_id: "c".into(),
            },
            Principal::Anonymous,
        ];
        for x in all {
            assert_eq!(Principal::decode(&x.encode()), Some(x));
        }
        for bad in [&b""[..], b"s", b"x\0\0\0\0\0\0\0\0", b"s\0\0\0\x05ab"] {
            assert_eq!(Principal::decode(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn shared_by_two_layers_through_the_store() {
        let shared = SharedStore::new(crate::store::MemoryStore::new(1 << 20));
        let (a, b) = (SessionBinding::new(), SessionBinding::new());
        a.bind("s1", p("alice"), Some(&shared)).await.unwrap();
        assert!(b.check("s1", &p("alice"), Some(&shared)).await.is_ok());
        assert_eq!(
            b.check("s1", &p("bob"), Some(&shared))
                .await
                .unwrap_err()
                .kind(),
            AuthErrorKind::SessionMismatch
        );
        // Another replica binding the same id never changes its owner.
        b.bind("s1", p("bob"), Some(&shared)).await.unwrap();
        assert!(a.check("s1", &p("alice"), Some(&shared)).await.is_ok());
        // Without the store, the other layer does not know the session.
        assert_eq!(
            SessionBinding::new()
                .check("s1", &p("alice"), None)
                .await
                .unwrap_err()
                .kind(),
            AuthErrorKind::UnknownSession
        );
        a.end("s1", Some(&shared)).await;
        assert_eq!(
            SessionBinding::new()
                .check("s1", &p("alice"), Some(&shared))
                .await
                .unwrap_err()
                .kind(),
            AuthErrorKind::UnknownSession
        );
    }

    /// A store that is down.
    #[derive(Debug)]
    struct Down;

    #[async_trait::async_trait]
    impl crate::store::Store for Down {
        async fn insert_if_absent(
            &self,
            _: &StoreKey,
            _: &[u8],
            _: Duration,
        ) -> Result<bool, crate::store::StoreError> {
            Err(crate::store::StoreError::new("down"))
        }
        async fn set(
            &self,
            _: &StoreKey,
            _: &[u8],
            _: Duration,
        ) -> Result<(), crate::store::StoreError> {
            Err(crate::store::StoreError::new("down"))
        }
        async fn get_many(
            &self,
            _: &[StoreKey],
        ) -> Result<Vec<Option<Vec<u8>>>, crate::store::StoreError> {
            Err(crate::store::StoreError::new("down"))
        }
        async fn remove(&self, _: &StoreKey) -> Result<(), crate::store::StoreError> {
            Err(crate::store::StoreError::new("down"))
        }
        fn name(&self) -> &'static str {
            "down"
        }
    }

    #[tokio::test]
    async fn a_store_that_is_down_refuses_new_bindings_and_unknown_sessions_with_503() {
        let shared = SharedStore::new(Down);
        let b = SessionBinding::new();
        let e = b.bind("s1", p("alice"), Some(&shared)).await.unwrap_err();
        assert_eq!(e.kind(), AuthErrorKind::StoreUnavailable);
        assert_eq!(e.kind().status(), http::StatusCode::SERVICE_UNAVAILABLE);
        // Not bound locally either: no id the other replicas would not know.
        assert_eq!(
            b.check("s1", &p("alice"), None).await.unwrap_err().kind(),
            AuthErrorKind::UnknownSession
        );
        assert_eq!(
            b.check("s2", &p("alice"), Some(&shared))
                .await
                .unwrap_err()
                .kind(),
            AuthErrorKind::StoreUnavailable
        );
        assert_eq!(shared.outages(), [0, 0, 0, 1]);
    }

    #[test]
    fn session_ids() {
        let h = |vals: &[&str]| {
            let mut m = HeaderMap::new();
            for v in vals {
                m.append(MCP_SESSION_ID, v.parse().unwrap());
            }
            m
        };
        assert_eq!(session_id(&h(&[])).unwrap(), None);
        assert_eq!(session_id(&h(&["abc"])).unwrap(), Some("abc"));
        for bad in [&["a", "b"][..], &[""], &["a b"], &[&"x".repeat(129)]] {
            assert_eq!(
                session_id(&h(bad)).unwrap_err().kind(),
                AuthErrorKind::InvalidSession,
                "{bad:?}"
            );
        }
    }
}
