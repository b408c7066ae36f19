//! Store keys: a kind and a SHA-256 digest, never a secret in clear.

use std::fmt;

/// What a [`StoreKey`] is for; part of the key, so kinds never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// A DPoP proof seen (its key's thumbprint and `jti`).
    DpopProof,
    /// An introspection answer (the token).
    Introspection,
    /// A revoked token (the token).
    RevokedToken,
    /// A revoked token, by issuer and `jti`.
    RevokedJti,
    /// A revoked subject, by issuer and `sub`.
    RevokedSubject,
    /// The owner of a `2025-11-25` session (the session id).
    Session,
    /// The owner of a task of the tasks extension (the task id).
    Task,
}

impl KeyKind {
    /// A short label: `dpop`, `introspection`, `revoked-token`,
    /// `revoked-jti`, `revoked-sub`, `session`, `task`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DpopProof => "dpop",
            Self::Introspection => "introspection",
            Self::RevokedToken => "revoked-token",
            Self::RevokedJti => "revoked-jti",
            Self::RevokedSubject => "revoked-sub",
            Self::Session => "session",
            Self::Task => "task",
        }
    }
}

/// A key in a [`Store`](super::Store): the kind, and the SHA-256 of the
/// kind and the parts (each length-prefixed, so `("ab", "c")` and
/// `("a", "bc")` differ). Displayed as `kind:hex`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StoreKey {
    kind: KeyKind,
    digest: [u8; 32],
}

impl StoreKey {
    /// The key of `parts` for `kind`.
    pub fn new(kind: KeyKind, parts: &[&[u8]]) -> Self {
        let label = kind.as_str().as_bytes();
        let len: usize = parts.iter().map(|p| p.len() + 8).sum::<usize>() + label.len() + 1;
        let mut data = Vec::with_capacity(len);
        data.extend_from_slice(label);
        data.push(0);
        for p in parts {
            data.extend_from_slice(&(p.len() as u64).to_be_bytes());
            data.extend_from_slice(p);
        }
        Self {
            kind,
            digest: crate::jose::crypto::sha256(&data),
        }
    }

    /// What the key is for.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }
}

impl fmt::Display for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_str())?;
        f.write_str(":")?;
        for b in self.digest {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreKey({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_parts_never_collide() {
        let a = StoreKey::new(KeyKind::RevokedJti, &[b"ab", b"c"]);
        assert_ne!(a, StoreKey::new(KeyKind::RevokedJti, &[b"a", b"bc"]));
        assert_ne!(a, StoreKey::new(KeyKind::RevokedSubject, &[b"ab", b"c"]));
        assert_eq!(a, StoreKey::new(KeyKind::RevokedJti, &[b"ab", b"c"]));
        let shown = a.to_string();
        assert!(shown.starts_with("revoked-jti:"), "{shown}");
        assert_eq!(shown.len(), "revoked-jti:".len() + 64);
        assert!(!shown.contains("ab"));
    }
}
