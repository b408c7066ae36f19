//! The caller's identity: [`AuthContext`] and [`Scopes`].

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::config::ScopeClaim;
use crate::error::AuthError;
use crate::jwks::KeyRef;

/// The scopes granted to a token.
///
/// ```
/// use mcp_resource_guard::Scopes;
///
/// let s = Scopes::from_space_separated("todo:read todo:write");
/// assert!(s.contains("todo:read"));
/// assert!(s.contains_all(["todo:read", "todo:write"]));
/// assert!(!s.contains_all(["todo:read", "todo:delete"]));
/// assert_eq!(s.iter().collect::<Vec<_>>(), ["todo:read", "todo:write"]);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Scopes(Box<[Box<str>]>);

impl Scopes {
    /// Scopes from a space-separated string (RFC 6749 §3.3). Empty entries and
    /// duplicates are dropped.
    pub fn from_space_separated(s: &str) -> Self {
        s.split(' ').collect()
    }

    /// `true` when `scope` was granted.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| &**s == scope)
    }

    /// `true` when every scope in `scopes` was granted (also when `scopes` is empty).
    pub fn contains_all<I, S>(&self, scopes: I) -> bool
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        scopes.into_iter().all(|s| self.contains(s.as_ref()))
    }

    /// `true` when at least one scope in `scopes` was granted (`false` when `scopes` is empty).
    pub fn contains_any<I, S>(&self, scopes: I) -> bool
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        scopes.into_iter().any(|s| self.contains(s.as_ref()))
    }

    /// The granted scopes, in the token's order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|s| &**s)
    }

    /// How many scopes were granted.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `true` when no scope was granted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<S: AsRef<str>> FromIterator<S> for Scopes {
    fn from_iter<T: IntoIterator<Item = S>>(iter: T) -> Self {
        let mut v: Vec<Box<str>> = Vec::new();
        for s in iter {
            let s = s.as_ref();
            if !s.is_empty() && !v.iter().any(|x| &**x == s) {
                v.push(s.into());
            }
        }
        Self(v.into_boxed_slice())
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl fmt::Display for Scopes {
    /// Space-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(s)?;
        }
        Ok(())
    }
}

/// The verified identity of the caller, put in the request's extensions by
/// the guard.
///
/// Cheap to clone (one `Arc`). With the `axum` feature it is an extractor
/// (`AuthContext` answers 500 when the guard is missing; `Option<AuthContext>`
/// gives `None`).
///
/// ```
/// use mcp_resource_guard::AuthContext;
/// use serde::Deserialize;
///
/// let claims = serde_json::json!({
///     "iss": "https://as.example.com", "sub": "alice", "client_id": "agent-1",
///     "aud": "https://mcp.example.com/mcp", "exp": 4102444800u64,
///     "scope": "todo:read", "tenant": {"id": "t1"}
/// });
/// let ctx = AuthContext::from_claims(claims.as_object().unwrap().clone(), &Default::default()).unwrap();
/// assert_eq!(ctx.subject(), Some("alice"));
/// assert!(ctx.scopes().contains("todo:read"));
///
/// #[derive(Deserialize)]
/// struct Tenant { id: String }
/// let tenant: Tenant = ctx.claim("tenant").unwrap().unwrap();
/// assert_eq!(tenant.id, "t1");
/// ```
#[derive(Clone)]
pub struct AuthContext(Arc<Inner>);

/// One link of an RFC 8693 `act` chain (see [`AuthContext::actor`]).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The actor's `sub`.
    pub sub: Option<String>,
    /// The actor's `client_id`, when the server names it.
    pub client_id: Option<String>,
    /// Whom this actor acts for in turn (the previous link), if anyone.
    pub actor: Option<Box<Actor>>,
}

impl Actor {
    /// At most this many links are read (a chain is short in practice).
    const MAX_DEPTH: usize = 8;

    fn from_value(v: &Value, depth: usize) -> Option<Self> {
        let o = v.as_object()?;
        let s = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            sub: s("sub"),
            client_id: s("client_id"),
            actor: if depth + 1 < Self::MAX_DEPTH {
                o.get("act")
                    .and_then(|a| Self::from_value(a, depth + 1))
                    .map(Box::new)
            } else {
                None
            },
        })
    }
}

/// What a verifier found in a token; [`AuthContext::new`] wraps it.
pub(crate) struct Inner {
    pub(crate) issuer: String,
    pub(crate) subject: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) scopes: Scopes,
    pub(crate) expires_at: Option<u64>,
    pub(crate) not_before: Option<u64>,
    pub(crate) issued_at: Option<u64>,
    pub(crate) jti: Option<String>,
    /// Every claim, parsed from `payload` at first use (JWTs), or given.
    pub(crate) claims: OnceLock<Map<String, Value>>,
    /// The decoded JWT payload, when the context came from a JWT.
    pub(crate) payload: Option<Box<[u8]>>,
    /// The key that verified the token's signature, when the built-in JWT
    /// verifier did: a cached verification ends when that key leaves the
    /// issuer's key set.
    pub(crate) key: Option<KeyRef>,
    /// The latest time (Unix seconds) the guard's token cache may keep this
    /// verification, when the verifier limits it (an introspection result
    /// is reused only for its own cache window).
    pub(crate) cache_until: Option<u64>,
    /// `cnf.jkt`: the thumbprint of the key a DPoP-bound token is bound to.
    pub(crate) dpop_jkt: Option<String>,
    /// SHA-256 of the bound token (a DPoP proof's `ath`), when the verifier
    /// had the token at hand: not recomputed on every request.
    pub(crate) dpop_ath: Option<[u8; 32]>,
}

impl AuthContext {
    pub(crate) fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    /// The key that verified this token, if known.
    pub(crate) fn key(&self) -> Option<&KeyRef> {
        self.0.key.as_ref()
    }

    /// See `Inner::cache_until`.
    pub(crate) fn cache_until(&self) -> Option<u64> {
        self.0.cache_until
    }

    /// This context, bound to the DPoP key with thumbprint `jkt`; `ath`,
    /// the token's hash when known.
    pub(crate) fn bound_to(mut self, jkt: String, ath: Option<[u8; 32]>) -> Self {
        if Arc::get_mut(&mut self.0).is_none() {
            let until = self.0.cache_until.unwrap_or(u64::MAX);
            self = self.limit_caching(until);
        }
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner.dpop_jkt = Some(jkt);
            inner.dpop_ath = ath;
        }
        self
    }

    /// See `Inner::dpop_ath`.
    pub(crate) fn dpop_ath(&self) -> Option<[u8; 32]> {
        self.0.dpop_ath
    }

    /// This context, cached at most until `until` (the earlier limit wins).
    pub(crate) fn limit_caching(mut self, until: u64) -> Self {
        let until = self.0.cache_until.map_or(until, |u| u.min(until));
        match Arc::get_mut(&mut self.0) {
            Some(inner) => inner.cache_until = Some(until),
            None => {
                let i = &*self.0;
                let claims = OnceLock::new();
                if let Some(c) = i.claims.get() {
                    let _ = claims.set(c.clone());
                }
                self = Self::new(Inner {
                    issuer: i.issuer.clone(),
                    subject: i.subject.clone(),
                    client_id: i.client_id.clone(),
                    audiences: i.audiences.clone(),
                    scopes: i.scopes.clone(),
                    expires_at: i.expires_at,
                    not_before: i.not_before,
                    issued_at: i.issued_at,
                    jti: i.jti.clone(),
                    claims,
                    payload: i.payload.clone(),
                    key: i.key.clone(),
                    cache_until: Some(until),
                    dpop_jkt: i.dpop_jkt.clone(),
                    dpop_ath: i.dpop_ath,
                });
            }
        }
        self
    }
}

impl AuthContext {
    /// The context the guard put in a request's extensions, if any: from
    /// `req.extensions()`, or inside an rmcp tool, which can take the HTTP
    /// request's head as `Extension(parts): Extension<http::request::Parts>`,
    /// from `&parts.extensions` (see `examples/todo_server.rs`). With axum,
    /// extract `AuthContext` (or `Option<AuthContext>` in optional mode).
    ///
    /// ```
    /// use mcp_resource_guard::AuthContext;
    ///
    /// let (parts, ()) = http::Request::new(()).into_parts();
    /// assert!(AuthContext::from_extensions(&parts.extensions).is_none()); // no guard ran
    /// ```
    pub fn from_extensions(extensions: &http::Extensions) -> Option<Self> {
        extensions.get::<Self>().cloned()
    }

    /// Builds a context from a verified claim set: for custom
    /// [`TokenVerifier`](crate::TokenVerifier)s (introspection, say).
    ///
    /// Reads `iss` (required string), `sub`, `client_id` (else `azp`, `cid`,
    /// `appid`), `aud`
    /// (string or array), `exp`, `nbf`, `iat`, `jti` and the scopes per
    /// `scope_claim`. It checks shapes only: signature, issuer, audience and
    /// time checks are the verifier's job (the guard re-checks issuer and
    /// audience on every context it receives).
    ///
    /// # Errors
    ///
    /// An [`AuthErrorKind::InvalidToken`](crate::AuthErrorKind::InvalidToken) error when `iss` is missing or a
    /// claim has the wrong shape (its detail names the claim).
    pub fn from_claims(
        claims: Map<String, Value>,
        scope_claim: &ScopeClaim,
    ) -> Result<Self, AuthError> {
        crate::verify::claims::context_from_map(claims, scope_claim, None)
    }

    /// `iss`: the authorization server that issued the token.
    pub fn issuer(&self) -> &str {
        &self.0.issuer
    }

    /// `sub`: the resource owner (a user), or the client itself for
    /// client-credentials tokens.
    pub fn subject(&self) -> Option<&str> {
        self.0.subject.as_deref()
    }

    /// `client_id` (RFC 9068), else `azp` (OIDC, Entra ID v2), `cid` (Okta) or
    /// `appid` (Entra ID v1): the OAuth client that obtained the token.
    pub fn client_id(&self) -> Option<&str> {
        self.0.client_id.as_deref()
    }

    /// `aud`, always as a list.
    pub fn audiences(&self) -> &[String] {
        &self.0.audiences
    }

    /// The granted scopes.
    pub fn scopes(&self) -> &Scopes {
        &self.0.scopes
    }

    /// `exp` as a time, if present.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.0
            .expires_at
            .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
    }

    /// `nbf` as a time, if present.
    pub fn not_before(&self) -> Option<SystemTime> {
        self.0
            .not_before
            .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
    }

    /// `iat` as a time, if present.
    pub fn issued_at(&self) -> Option<SystemTime> {
        self.0
            .issued_at
            .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
    }

    /// `exp` in seconds since the Unix epoch (what the checks compare).
    pub(crate) fn expires_at_unix(&self) -> Option<u64> {
        self.0.expires_at
    }

    /// `nbf` in seconds since the Unix epoch.
    pub(crate) fn not_before_unix(&self) -> Option<u64> {
        self.0.not_before
    }

    /// `cnf.jkt` of a DPoP-bound token (RFC 9449 §6): the RFC 7638
    /// thumbprint of the key every request's proof was checked against.
    /// `None` for a Bearer token.
    pub fn dpop_thumbprint(&self) -> Option<&str> {
        self.0.dpop_jkt.as_deref()
    }

    /// `iat` in seconds since the Unix epoch.
    pub(crate) fn issued_at_unix(&self) -> Option<u64> {
        self.0.issued_at
    }

    /// `jti`: the token's unique identifier, if present.
    pub fn jti(&self) -> Option<&str> {
        self.0.jti.as_deref()
    }

    /// The RFC 8693 §4.1 `act` chain of a delegated token: the party acting
    /// for the subject (its `sub`, `client_id`), and who it acts for in
    /// turn. `None` when the token has no `act` (or it is not an object).
    ///
    /// ```
    /// # use mcp_resource_guard::AuthContext;
    /// let claims = serde_json::json!({"iss": "https://as", "sub": "alice",
    ///     "act": {"sub": "gateway", "act": {"sub": "agent"}}});
    /// let ctx = AuthContext::from_claims(claims.as_object().unwrap().clone(), &Default::default()).unwrap();
    /// let actor = ctx.actor().unwrap();
    /// assert_eq!(actor.sub.as_deref(), Some("gateway"));
    /// assert_eq!(actor.actor.unwrap().sub.as_deref(), Some("agent"));
    /// ```
    pub fn actor(&self) -> Option<Actor> {
        Actor::from_value(self.claims().get("act")?, 0)
    }

    /// Every claim of the token (read them with [`claim`](Self::claim) or
    /// [`deserialize_claims`](Self::deserialize_claims)).
    pub(crate) fn claims(&self) -> &Map<String, Value> {
        self.0.claims.get_or_init(|| {
            self.0
                .payload
                .as_deref()
                .and_then(|p| serde_json::from_slice(p).ok())
                .unwrap_or_default()
        })
    }

    /// One claim, deserialized into `T`. `Ok(None)` when absent.
    ///
    /// # Errors
    ///
    /// When the claim does not deserialize into `T`.
    pub fn claim<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, serde_json::Error> {
        self.claims()
            .get(name)
            .map(|v| T::deserialize(v))
            .transpose()
    }

    /// The whole claim set, deserialized into your own type (unknown claims
    /// are ignored unless `T` says otherwise).
    ///
    /// # Errors
    ///
    /// When the claim set does not deserialize into `T`.
    pub fn deserialize_claims<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        // Deserializing from a borrowed map: `Map` implements `IntoDeserializer`
        // only by value, so go through a `Value` reference.
        match &self.0.payload {
            Some(p) => serde_json::from_slice(p),
            None => T::deserialize(MapRef(self.claims())),
        }
    }
}

/// Deserializes a borrowed claim map without cloning it.
struct MapRef<'a>(&'a Map<String, Value>);

impl<'de> serde::Deserializer<'de> for MapRef<'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        use serde::de::value::MapDeserializer;
        let mut de = MapDeserializer::new(self.0.iter().map(|(k, v)| (k.as_str(), v)));
        let value = visitor.visit_map(&mut de)?;
        de.end()?;
        Ok(value)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl fmt::Debug for AuthContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthContext")
            .field("issuer", &self.0.issuer)
            .field("subject", &self.0.subject)
            .field("client_id", &self.0.client_id)
            .field("audiences", &self.0.audiences)
            .field("scopes", &self.0.scopes)
            .field("expires_at", &self.0.expires_at)
            .field("jti", &self.0.jti)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ScopeClaim;
    use serde_json::json;

    #[test]
    fn typed_claims() {
        #[derive(serde::Deserialize)]
        struct Mine {
            sub: String,
            tenant: u32,
        }
        let c = AuthContext::from_claims(
            json!({"iss": "i", "sub": "s", "tenant": 7})
                .as_object()
                .unwrap()
                .clone(),
            &ScopeClaim::Auto,
        )
        .unwrap();
        let m: Mine = c.deserialize_claims().unwrap();
        assert_eq!((m.sub.as_str(), m.tenant), ("s", 7));
        assert_eq!(c.claim::<u32>("tenant").unwrap(), Some(7));
        assert_eq!(c.claim::<u32>("nope").unwrap(), None);
        assert!(c.claim::<u32>("sub").is_err());
    }
}
