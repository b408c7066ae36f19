//! Ids the server hands out that stand for state of one principal's: the
//! `2025-11-25` sessions (`Mcp-Session-Id`) and the tasks of the tasks
//! extension (`taskId`). Each is bound to the principal whose request the
//! server issued it for, here and in the shared store, and refused to
//! everyone else. [`SessionBinding`](super::SessionBinding) and
//! [`TaskBinding`](super::TaskBinding) are two uses of this one map.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::claims::AuthContext;
use crate::error::{AuthError, AuthErrorKind, ConfigError};
use crate::store::{KeyKind, Outage, SharedStore, StoreKey};

/// The longest id accepted, in bytes.
pub(crate) const MAX_ID: usize = 128;

const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;
const DEFAULT_IDLE: Duration = Duration::from_secs(24 * 3600);
const MAX_IDLE: Duration = Duration::from_secs(30 * 24 * 3600);
/// What an entry costs besides its strings (key box, `Arc`, moka's node).
const ENTRY_OVERHEAD: usize = 128;

/// Who owns an id: the issuer, and the subject or (for tokens without
/// `sub`) the client, kept apart so a `client_id` equal to someone's `sub`
/// is not that person. Anonymous callers (optional auth) own their ids as
/// nobody in particular.
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

/// 1 to 128 visible ASCII characters (0x21–0x7E).
pub(crate) fn valid_id(id: &str) -> bool {
    (1..=MAX_ID).contains(&id.len()) && id.bytes().all(|b| (0x21..=0x7E).contains(&b))
}

/// What kind of id a map holds: its store keys, its outage log, the
/// answers for an id that is not the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdKind {
    Session,
    Task,
}

impl IdKind {
    fn key(self, id: &str) -> StoreKey {
        let kind = match self {
            Self::Session => KeyKind::Session,
            Self::Task => KeyKind::Task,
        };
        StoreKey::new(kind, &[id.as_bytes()])
    }

    fn outage(self, shared: &SharedStore) -> &Outage {
        match self {
            Self::Session => &shared.uses.sessions,
            Self::Task => &shared.uses.tasks,
        }
    }

    /// The refusal of an id bound to someone else.
    fn mismatch(self) -> AuthError {
        match self {
            Self::Session => AuthError::new(
                AuthErrorKind::SessionMismatch,
                "the session id belongs to another principal",
            ),
            Self::Task => AuthError::new(
                AuthErrorKind::UnownedTask,
                "the task id belongs to another principal",
            ),
        }
    }

    /// The refusal of an id never bound (or forgotten).
    fn unknown(self) -> AuthError {
        match self {
            Self::Session => AuthError::new(
                AuthErrorKind::UnknownSession,
                "the session id was not issued through this layer, or was forgotten",
            ),
            // The same answer as another principal's: a task id's existence
            // is not disclosed.
            Self::Task => AuthError::new(
                AuthErrorKind::UnownedTask,
                "the task id was not issued through this layer, or was forgotten",
            ),
        }
    }
}

/// Which principal owns each id: bounded in bytes and by idle time, and
/// written through to the guard's shared store when it has one.
#[derive(Clone)]
pub(crate) struct Owners {
    map: moka::sync::Cache<Box<str>, Arc<Principal>>,
    idle: Duration,
    kind: IdKind,
}

impl fmt::Debug for Owners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Owners")
            .field("kind", &self.kind)
            .field("entries", &self.map.entry_count())
            .finish()
    }
}

impl Owners {
    /// At most `max_bytes` of bindings (ids, principals and a fixed
    /// overhead per entry), each remembered for `idle` after last use.
    pub(crate) fn new(
        kind: IdKind,
        setting: &'static str,
        max_bytes: u64,
        idle: Duration,
    ) -> Result<Self, ConfigError> {
        if max_bytes < 64 * 1024 {
            return Err(ConfigError::OutOfRange {
                setting,
                reason: "max_bytes: at least 64 KiB",
            });
        }
        if idle.is_zero() || idle > MAX_IDLE {
            return Err(ConfigError::OutOfRange {
                setting,
                reason: "idle: from 1 second to 30 days",
            });
        }
        Ok(Self::unchecked(kind, max_bytes, idle))
    }

    /// At most 16 MiB of bindings, each remembered for 24 hours after last
    /// use.
    pub(crate) fn with_defaults(kind: IdKind) -> Self {
        Self::unchecked(kind, DEFAULT_MAX_BYTES, DEFAULT_IDLE)
    }

    /// A map with the limits [`new`](Self::new) checks, or the defaults.
    fn unchecked(kind: IdKind, max_bytes: u64, idle: Duration) -> Self {
        #[allow(clippy::borrowed_box)] // moka's weigher takes `&K`, and K is `Box<str>`
        let weigher = |id: &Box<str>, p: &Arc<Principal>| -> u32 {
            u32::try_from(id.len() + p.bytes() + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
        };
        Self {
            map: moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(weigher)
                .time_to_idle(idle)
                .build(),
            idle,
            kind,
        }
    }

    /// Checks that `principal` owns `id`: from this process's bindings,
    /// else from the shared store (and remembered here).
    pub(crate) async fn check(
        &self,
        id: &str,
        principal: &Principal,
        shared: Option<&SharedStore>,
    ) -> Result<(), AuthError> {
        let owner = match (self.map.get(id), shared) {
            (Some(owner), _) => Some(owner),
            (None, None) => None,
            (None, Some(shared)) => self.fetch(id, shared).await?,
        };
        match owner {
            None => Err(self.kind.unknown()),
            Some(owner) if *owner == *principal => Ok(()),
            Some(_) => Err(self.kind.mismatch()),
        }
    }

    /// The owner the shared store holds for `id`, remembered here.
    async fn fetch(
        &self,
        id: &str,
        shared: &SharedStore,
    ) -> Result<Option<Arc<Principal>>, AuthError> {
        let store = shared.store.name();
        let outage = self.kind.outage(shared);
        match shared.store.get(&self.kind.key(id)).await {
            Ok(value) => {
                outage.succeeded(store);
                // A value this layer did not write owns nothing.
                let Some(owner) = value.as_deref().and_then(Principal::decode) else {
                    return Ok(None);
                };
                let owner = Arc::new(owner);
                self.map.insert(id.into(), owner.clone());
                Ok(Some(owner))
            }
            Err(e) => {
                outage.failed(store, &e, "ids not known locally get 503");
                Err(AuthError::with_source(
                    AuthErrorKind::StoreUnavailable,
                    "the shared store could not say who owns the id",
                    e,
                ))
            }
        }
    }

    /// Binds an id the server just issued to `principal`. An id bound
    /// already (here, or by another replica) keeps its owner: binding it to
    /// someone else is refused, so the issuing answer never reaches a
    /// caller who could not use it (or one who could use another's).
    /// Malformed ids are not bound (and so are refused when used).
    pub(crate) async fn bind(
        &self,
        id: &str,
        principal: Principal,
        shared: Option<&SharedStore>,
    ) -> Result<(), AuthError> {
        if !valid_id(id) {
            return Ok(());
        }
        let principal = Arc::new(principal);
        if let Some(shared) = shared {
            let store = shared.store.name();
            let outage = self.kind.outage(shared);
            let key = self.kind.key(id);
            match shared
                .store
                .insert_if_absent(&key, &principal.encode(), self.idle)
                .await
            {
                Ok(true) => outage.succeeded(store),
                // Bound already (by another replica): its owner stands.
                Ok(false) => {
                    outage.succeeded(store);
                    return match self.fetch(id, shared).await? {
                        Some(owner) if *owner == *principal => Ok(()),
                        _ => Err(self.kind.mismatch()),
                    };
                }
                Err(e) => {
                    outage.failed(store, &e, "new ids get 503");
                    return Err(AuthError::with_source(
                        AuthErrorKind::StoreUnavailable,
                        "the id could not be bound in the shared store",
                        e,
                    ));
                }
            }
        }
        let entry = self
            .map
            .entry(id.into())
            .or_insert_with(|| principal.clone());
        if *entry.value() == principal {
            Ok(())
        } else {
            Err(self.kind.mismatch())
        }
    }

    /// Forgets an id the server ended.
    pub(crate) async fn end(&self, id: &str, shared: Option<&SharedStore>) {
        self.map.invalidate(id);
        if let Some(shared) = shared
            && let Err(e) = shared.store.remove(&self.kind.key(id)).await
        {
            // The binding expires with its TTL; its owner is unchanged.
            self.kind.outage(shared).failed(
                shared.store.name(),
                &e,
                "ended ids expire with their TTL",
            );
        }
    }

    /// The number of bound ids (after pending evictions).
    pub(crate) fn len(&self) -> u64 {
        self.map.run_pending_tasks();
        self.map.entry_count()
    }

    /// The bytes the bindings weigh (after pending evictions).
    pub(crate) fn weighted_size(&self) -> u64 {
        self.map.run_pending_tasks();
        self.map.weighted_size()
    }
}

/// The public face of an [`Owners`] map (`SessionBinding`,
/// `TaskBinding`): `Debug`, `Default`, `new`, `with_limits`, `len`,
/// `is_empty`, `weighted_size`. `$what` is the plural the docs use.
macro_rules! binding {
    ($name:ident, $kind:expr, $what:literal) => {
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field($what, &self.owners.len())
                    .finish()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl $name {
            /// At most 16 MiB of bindings, each remembered for 24 hours after
            /// last use.
            pub fn new() -> Self {
                Self {
                    owners: $crate::mcp::ownership::Owners::with_defaults($kind),
                }
            }

            /// At most `max_bytes` of bindings (ids, principals and a fixed
            /// overhead per entry), each remembered for `idle` after last use.
            ///
            /// # Errors
            ///
            /// [`ConfigError::OutOfRange`](crate::ConfigError::OutOfRange) when
            /// `max_bytes` is under 64 KiB or `idle` is zero or over 30 days.
            pub fn with_limits(
                max_bytes: u64,
                idle: std::time::Duration,
            ) -> Result<Self, $crate::error::ConfigError> {
                Ok(Self {
                    owners: $crate::mcp::ownership::Owners::new(
                        $kind,
                        stringify!($name),
                        max_bytes,
                        idle,
                    )?,
                })
            }

            #[doc = concat!("The number of bound ", $what, " (after pending evictions).")]
            pub fn len(&self) -> u64 {
                self.owners.len()
            }

            #[doc = concat!("`true` when no ", $what, " are bound.")]
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// The bytes the bindings weigh (after pending evictions), as
            /// the byte bound counts them.
            pub fn bytes(&self) -> u64 {
                self.owners.weighted_size()
            }
        }
    };
}

pub(crate) use binding;

#[cfg(test)]
mod tests {
    use super::*;

    fn p(sub: &str) -> Principal {
        Principal::Subject {
            issuer: "i".into(),
            sub: sub.into(),
        }
    }

    fn owners(kind: IdKind) -> Owners {
        Owners::new(kind, "test", DEFAULT_MAX_BYTES, DEFAULT_IDLE).unwrap()
    }

    #[tokio::test]
    async fn bound_only_by_issuing() {
        let b = owners(IdKind::Session);
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
        // Binding to another owner is refused and never changes the owner.
        assert_eq!(
            b.bind("s1", p("bob"), None).await.unwrap_err().kind(),
            AuthErrorKind::SessionMismatch
        );
        assert!(b.check("s1", &p("alice"), None).await.is_ok());
        b.bind("s1", p("alice"), None).await.unwrap();
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
        assert_eq!(b.len(), 0);
    }

    #[tokio::test]
    async fn tasks_do_not_disclose_whether_an_id_exists() {
        let t = owners(IdKind::Task);
        t.bind("t1", p("alice"), None).await.unwrap();
        for id in ["t1", "t2"] {
            assert_eq!(
                t.check(id, &p("bob"), None).await.unwrap_err().kind(),
                AuthErrorKind::UnownedTask,
                "{id}"
            );
        }
        assert!(t.check("t1", &p("alice"), None).await.is_ok());
    }

    #[tokio::test]
    async fn bounded_in_bytes() {
        let b = Owners::new(IdKind::Session, "t", 64 * 1024, Duration::from_secs(60)).unwrap();
        let long = "s".repeat(8 * 1024);
        for i in 0..10_000 {
            b.bind(&format!("{i:0128}"), p(&long), None).await.unwrap();
        }
        assert!(b.weighted_size() <= 64 * 1024, "{}", b.weighted_size());
        // Each entry holds over 8 KiB: at most 8 fit, whatever the weigher says.
        assert!(b.len() <= 8, "{} ids in 64 KiB", b.len());
        assert!(Owners::new(IdKind::Session, "t", 1, Duration::from_secs(1)).is_err());
        assert!(Owners::new(IdKind::Session, "t", 1 << 20, Duration::MAX).is_err());
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
        let (a, b) = (owners(IdKind::Session), owners(IdKind::Session));
        a.bind("s1", p("alice"), Some(&shared)).await.unwrap();
        assert!(b.check("s1", &p("alice"), Some(&shared)).await.is_ok());
        assert_eq!(
            b.check("s1", &p("bob"), Some(&shared))
                .await
                .unwrap_err()
                .kind(),
            AuthErrorKind::SessionMismatch
        );
        // Another replica binding the same id to someone else is refused,
        // and never changes its owner; the owner binding it again is fine.
        let fresh = owners(IdKind::Session);
        assert_eq!(
            fresh
                .bind("s1", p("bob"), Some(&shared))
                .await
                .unwrap_err()
                .kind(),
            AuthErrorKind::SessionMismatch
        );
        owners(IdKind::Session)
            .bind("s1", p("alice"), Some(&shared))
            .await
            .unwrap();
        assert!(a.check("s1", &p("alice"), Some(&shared)).await.is_ok());
        // Without the store, another layer does not know the session.
        assert_eq!(
            owners(IdKind::Session)
                .check("s1", &p("alice"), None)
                .await
                .unwrap_err()
                .kind(),
            AuthErrorKind::UnknownSession
        );
        // Sessions and tasks never share keys.
        assert_eq!(
            owners(IdKind::Task)
                .check("s1", &p("alice"), Some(&shared))
                .await
                .unwrap_err()
                .kind(),
            AuthErrorKind::UnownedTask
        );
        a.end("s1", Some(&shared)).await;
        assert_eq!(
            owners(IdKind::Session)
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
    async fn a_store_that_is_down_refuses_new_bindings_and_unknown_ids_with_503() {
        let shared = SharedStore::new(Down);
        let b = owners(IdKind::Session);
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
        let t = owners(IdKind::Task);
        assert_eq!(
            t.bind("t1", p("alice"), Some(&shared))
                .await
                .unwrap_err()
                .kind(),
            AuthErrorKind::StoreUnavailable
        );
        let o = shared.outages();
        assert_eq!(
            (o.replay, o.introspection, o.revocation, o.sessions, o.tasks),
            (0, 0, 0, 1, 1)
        );
    }
}
