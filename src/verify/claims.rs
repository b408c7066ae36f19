//! The registered claims of a JWT, parsed once into their JSON shapes, and
//! the [`AuthContext`] built from them.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::OnceLock;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::claims::{AuthContext, Inner, Scopes};
use crate::config::ScopeClaim;
use crate::error::{AuthError, AuthErrorKind};
use crate::jwks::KeyRef;

/// The claims the guard reads, parsed once into their shapes (strings
/// borrowed from the payload); the other claims are skipped unparsed. A
/// repeated standard claim makes the payload invalid (RFC 7519 §4 allows
/// rejecting it).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct StdClaims<'a> {
    #[serde(borrow, default)]
    pub(crate) iss: Claim<'a>,
    #[serde(borrow, default)]
    pub(crate) aud: Claim<'a>,
    #[serde(borrow, default)]
    pub(crate) exp: Claim<'a>,
    #[serde(borrow, default)]
    pub(crate) nbf: Claim<'a>,
    #[serde(borrow, default)]
    pub(crate) iat: Claim<'a>,
    #[serde(borrow, default)]
    sub: Claim<'a>,
    #[serde(borrow, default)]
    client_id: Claim<'a>,
    #[serde(borrow, default)]
    azp: Claim<'a>,
    #[serde(borrow, default)]
    cid: Claim<'a>,
    #[serde(borrow, default)]
    appid: Claim<'a>,
    #[serde(borrow, default)]
    jti: Claim<'a>,
    #[serde(borrow, default)]
    pub(crate) cnf: Claim<'a>,
    #[serde(borrow, default)]
    pub(crate) nonce: Claim<'a>,
    #[serde(borrow, default)]
    scope: Claim<'a>,
    #[serde(borrow, default)]
    scp: Claim<'a>,
    #[serde(borrow, default)]
    scopes: Claim<'a>,
    #[serde(borrow, default)]
    permissions: Claim<'a>,
    /// A [`ScopeClaim::Named`] claim that is none of the above, filled in
    /// by [`StdClaims::from_map`].
    #[serde(skip)]
    named_scope: Claim<'a>,
}

impl<'a> StdClaims<'a> {
    /// The names [`StdClaims`] picks out.
    pub(crate) const NAMES: [&'static str; 17] = [
        "iss",
        "aud",
        "exp",
        "nbf",
        "iat",
        "sub",
        "client_id",
        "azp",
        "cid",
        "appid",
        "jti",
        "cnf",
        "nonce",
        "scope",
        "scp",
        "scopes",
        "permissions",
    ];

    /// The standard claims of a parsed claim map, borrowed from it.
    pub(crate) fn from_map(map: &'a Map<String, Value>, scope_claim: &ScopeClaim) -> Self {
        let c = |name: &str| Claim::from_value(map.get(name));
        Self {
            iss: c("iss"),
            aud: c("aud"),
            exp: c("exp"),
            nbf: c("nbf"),
            iat: c("iat"),
            sub: c("sub"),
            client_id: c("client_id"),
            azp: c("azp"),
            cid: c("cid"),
            appid: c("appid"),
            jti: c("jti"),
            cnf: c("cnf"),
            nonce: c("nonce"),
            scope: c("scope"),
            scp: c("scp"),
            scopes: c("scopes"),
            permissions: c("permissions"),
            named_scope: match scope_claim {
                ScopeClaim::Named(n) => c(n),
                ScopeClaim::Auto => Claim::Absent,
            },
        }
    }

    fn get(&self, name: &str) -> &Claim<'a> {
        match name {
            "iss" => &self.iss,
            "aud" => &self.aud,
            "exp" => &self.exp,
            "nbf" => &self.nbf,
            "iat" => &self.iat,
            "sub" => &self.sub,
            "client_id" => &self.client_id,
            "azp" => &self.azp,
            "cid" => &self.cid,
            "appid" => &self.appid,
            "jti" => &self.jti,
            "cnf" => &self.cnf,
            "nonce" => &self.nonce,
            "scope" => &self.scope,
            "scp" => &self.scp,
            "scopes" => &self.scopes,
            "permissions" => &self.permissions,
            _ => &self.named_scope,
        }
    }
}

fn invalid(detail: &'static str) -> AuthError {
    AuthError::new(AuthErrorKind::InvalidToken, detail)
}

fn opt_string(claim: &Claim<'_>) -> Result<Option<String>, AuthError> {
    match claim {
        Claim::Absent | Claim::Null => Ok(None),
        Claim::Str(s) => Ok(Some(s.as_ref().to_owned())),
        _ => Err(invalid(
            "a string claim (sub, client_id, azp, jti) is not a string",
        )),
    }
}

fn parse_scopes(claims: &StdClaims<'_>, claim: &ScopeClaim) -> Result<Scopes, AuthError> {
    let value = match claim {
        ScopeClaim::Auto => [
            &claims.scope,
            &claims.scp,
            &claims.scopes,
            &claims.permissions,
        ]
        .into_iter()
        .find(|v| !v.is_empty()),
        ScopeClaim::Named(n) => Some(claims.get(n)).filter(|v| !v.is_empty()),
    };
    match value {
        None => Ok(Scopes::default()),
        Some(Claim::Str(s)) => Ok(Scopes::from_space_separated(s)),
        Some(Claim::Strs(a)) => Ok(a.iter().flat_map(|s| s.split(' ')).collect()),
        Some(Claim::Mixed) => Err(invalid("the scope claim holds a non-string")),
        Some(_) => Err(invalid("the scope claim is neither a string nor an array")),
    }
}

/// [`AuthContext::from_claims`], remembering the key that verified the
/// token.
pub(crate) fn context_from_map(
    claims: Map<String, Value>,
    scope_claim: &ScopeClaim,
    key: Option<KeyRef>,
) -> Result<AuthContext, AuthError> {
    let mut inner = build(
        &StdClaims::from_map(&claims, scope_claim),
        scope_claim,
        None,
    )?;
    inner.key = key;
    // `build` left the claim map empty: it is the one we were given.
    let _ = inner.claims.set(claims);
    Ok(AuthContext::new(inner))
}

/// A context for a verified JWT whose standard claims are `std` (borrowed
/// from `payload`); the full claim map is parsed at first use.
pub(crate) fn context_from_jwt(
    std: &StdClaims<'_>,
    payload: &[u8],
    scope_claim: &ScopeClaim,
    key: KeyRef,
) -> Result<AuthContext, AuthError> {
    let mut inner = build(std, scope_claim, Some(payload.into()))?;
    inner.key = Some(key);
    Ok(AuthContext::new(inner))
}

/// A context's fields from the standard claims.
fn build(
    claims: &StdClaims<'_>,
    scope_claim: &ScopeClaim,
    payload: Option<Box<[u8]>>,
) -> Result<Inner, AuthError> {
    let Claim::Str(issuer) = &claims.iss else {
        return Err(invalid("iss is missing or not a string"));
    };
    let audiences = match &claims.aud {
        Claim::Absent | Claim::Null => Vec::new(),
        aud => aud
            .str_items()
            .ok_or_else(|| invalid("aud is neither a string nor an array of strings"))?
            .iter()
            .map(|a| a.as_ref().to_owned())
            .collect(),
    };
    let date = |c: &Claim<'_>| -> Result<Option<u64>, AuthError> {
        match c {
            Claim::Null => Ok(None),
            c => c
                .numeric_date()
                .map_err(|_| invalid("exp, nbf or iat is not a NumericDate")),
        }
    };
    // RFC 9068 `client_id`, else `azp` (OIDC, Entra v2), `cid` (Okta),
    // `appid` (Entra v1).
    let mut client_id = None;
    for c in [&claims.client_id, &claims.azp, &claims.cid, &claims.appid] {
        if let Some(c) = opt_string(c)? {
            client_id = Some(c);
            break;
        }
    }
    Ok(Inner {
        subject: opt_string(&claims.sub)?,
        jti: opt_string(&claims.jti)?,
        scopes: parse_scopes(claims, scope_claim)?,
        issuer: issuer.as_ref().to_owned(),
        client_id,
        audiences,
        expires_at: date(&claims.exp)?,
        not_before: date(&claims.nbf)?,
        issued_at: date(&claims.iat)?,
        claims: OnceLock::new(),
        payload,
        key: None,
        cache_until: None,
        dpop_jkt: None,
        dpop_ath: None,
    })
}

/// The key a token is bound to (RFC 9449 §6.1): `cnf.jkt`. Other `cnf`
/// members are ignored; a `cnf` without `jkt` (a certificate-bound token,
/// `x5t#S256`, say) cannot be honoured here.
pub(crate) fn dpop_binding(cnf: &Value) -> Result<String, &'static str> {
    let Some(cnf) = cnf.as_object() else {
        return Err("cnf is not a JSON object");
    };
    match cnf.get("jkt") {
        Some(Value::String(jkt)) if !jkt.is_empty() => Ok(jkt.clone()),
        Some(_) => Err("cnf.jkt is not a thumbprint"),
        None if cnf.contains_key("x5t#S256") => Err(
            "the token is bound to a TLS client certificate (cnf x5t#S256): certificate-bound tokens are not supported",
        ),
        None => Err("the token's cnf names no DPoP key (jkt)"),
    }
}

/// One claim value as the guard reads it: its JSON shape, with strings
/// borrowed from the payload where they hold no escapes. Parsing into it
/// never fails on a well-formed JSON value, so a claim of the wrong type is
/// judged by the check that reads it, with its own error.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum Claim<'a> {
    /// Not in the claim set.
    #[default]
    Absent,
    /// JSON `null`.
    Null,
    /// A string.
    Str(Cow<'a, str>),
    /// A non-negative integer.
    Uint(u64),
    /// Any other number (negative or fractional).
    Float(f64),
    /// An array of strings only (possibly empty).
    Strs(Vec<Cow<'a, str>>),
    /// An array holding something other than strings.
    Mixed,
    /// A boolean or an object.
    Other,
}

impl<'a> Claim<'a> {
    /// The claim of a parsed claim map, borrowed from it.
    pub(crate) fn from_value(v: Option<&'a Value>) -> Self {
        match v {
            None => Self::Absent,
            Some(Value::Null) => Self::Null,
            Some(Value::String(s)) => Self::Str(Cow::Borrowed(s)),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(u) => Self::Uint(u),
                None => n.as_f64().map_or(Self::Other, Self::Float),
            },
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(Cow::Borrowed))
                .collect::<Option<Vec<_>>>()
                .map_or(Self::Mixed, Self::Strs),
            Some(Value::Bool(_) | Value::Object(_)) => Self::Other,
        }
    }

    /// `true` when the claim is present (even as `null`).
    pub(crate) fn is_present(&self) -> bool {
        !matches!(self, Self::Absent)
    }

    /// `true` when absent or `null`.
    fn is_empty(&self) -> bool {
        matches!(self, Self::Absent | Self::Null)
    }

    /// The strings of a string-or-array-of-strings claim.
    pub(crate) fn str_items(&self) -> Option<&[Cow<'a, str>]> {
        match self {
            Self::Str(s) => Some(std::slice::from_ref(s)),
            Self::Strs(v) => Some(v),
            _ => None,
        }
    }

    /// A NumericDate (RFC 7519 §2): a JSON number of seconds, possibly
    /// fractional. `Ok(None)` when absent; `null`, negative, non-numeric
    /// values are errors; fractions are truncated; values past `u64::MAX`
    /// saturate.
    pub(crate) fn numeric_date(&self) -> Result<Option<u64>, ()> {
        match *self {
            Self::Absent => Ok(None),
            Self::Uint(u) => Ok(Some(u)),
            // `as` saturates for floats past u64::MAX.
            Self::Float(f) if f.is_finite() && f >= 0.0 => Ok(Some(f as u64)),
            _ => Err(()),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Claim<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Claim<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<Claim<'a>, E> {
                Ok(Claim::Null)
            }
            fn visit_none<E>(self) -> Result<Claim<'a>, E> {
                Ok(Claim::Null)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Claim<'a>, E> {
                Ok(Claim::Other)
            }
            fn visit_u64<E>(self, v: u64) -> Result<Claim<'a>, E> {
                Ok(Claim::Uint(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Claim<'a>, E> {
                Ok(u64::try_from(v).map_or(Claim::Float(v as f64), Claim::Uint))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Claim<'a>, E> {
                Ok(Claim::Float(v))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Claim<'a>, E> {
                Ok(Claim::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Claim<'a>, E> {
                Ok(Claim::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Claim<'a>, E> {
                Ok(Claim::Str(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Claim<'a>, A::Error> {
                let mut strs = Vec::new();
                let mut all_strings = true;
                while let Some(item) = seq.next_element::<Claim<'a>>()? {
                    match item {
                        Claim::Str(s) if all_strings => strs.push(s),
                        _ => all_strings = false,
                    }
                }
                Ok(if all_strings {
                    Claim::Strs(strs)
                } else {
                    Claim::Mixed
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Claim<'a>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Claim::Other)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(v: Value, claim: &ScopeClaim) -> Result<AuthContext, AuthError> {
        AuthContext::from_claims(v.as_object().unwrap().clone(), claim)
    }

    #[test]
    fn scope_shapes() {
        let auto = ScopeClaim::Auto;
        let c = ctx(json!({"iss": "i", "scope": "a b  a"}), &auto).unwrap();
        assert_eq!(c.scopes().iter().collect::<Vec<_>>(), ["a", "b"]);
        let c = ctx(json!({"iss": "i", "scp": ["a", "b"]}), &auto).unwrap();
        assert!(c.scopes().contains_all(["a", "b"]));
        let c = ctx(json!({"iss": "i", "scp": "a"}), &auto).unwrap();
        assert!(c.scopes().contains("a"));
        let c = ctx(json!({"iss": "i", "permissions": ["p:1"]}), &auto).unwrap();
        assert!(c.scopes().contains("p:1"));
        let c = ctx(
            json!({"iss": "i", "scope": "s", "permissions": ["p"]}),
            &auto,
        )
        .unwrap();
        assert_eq!(c.scopes().iter().collect::<Vec<_>>(), ["s"]);
        let named = ScopeClaim::named("roles");
        let c = ctx(json!({"iss": "i", "scope": "s", "roles": ["r"]}), &named).unwrap();
        assert_eq!(c.scopes().iter().collect::<Vec<_>>(), ["r"]);
        assert!(ctx(json!({"iss": "i", "scope": 5}), &auto).is_err());
        assert!(ctx(json!({"iss": "i", "scp": ["a", 1]}), &auto).is_err());
    }

    #[test]
    fn standard_claims() {
        let c = ctx(
            json!({"iss": "i", "sub": "s", "azp": "c", "aud": ["x", "y"], "exp": 10.9, "jti": "j"}),
            &ScopeClaim::Auto,
        )
        .unwrap();
        assert_eq!(c.client_id(), Some("c"));
        assert_eq!(c.audiences(), ["x", "y"]);
        assert_eq!(c.expires_at_unix(), Some(10));
        assert_eq!(c.jti(), Some("j"));
        let c = ctx(
            json!({"iss": "i", "client_id": "a", "azp": "b"}),
            &ScopeClaim::Auto,
        )
        .unwrap();
        assert_eq!(c.client_id(), Some("a"));
        assert!(ctx(json!({"sub": "s"}), &ScopeClaim::Auto).is_err());
        assert!(ctx(json!({"iss": "i", "exp": "10"}), &ScopeClaim::Auto).is_err());
        assert!(ctx(json!({"iss": "i", "exp": -1}), &ScopeClaim::Auto).is_err());
        assert!(ctx(json!({"iss": "i", "sub": 5}), &ScopeClaim::Auto).is_err());
        assert!(ctx(json!({"iss": "i", "aud": [1]}), &ScopeClaim::Auto).is_err());
    }

    #[test]
    fn claim_shapes_parse_once() {
        let std: StdClaims<'_> = serde_json::from_str(
            r#"{"iss":"a\u0062","aud":["x","y"],"exp":10,"nbf":-1,"iat":1.5,
                "cnf":null,"nonce":{"n":[1,{}]},"scope":["a",2],"other":[[[]]]}"#,
        )
        .unwrap();
        // An escaped string is unescaped into an owned copy.
        assert_eq!(std.iss, Claim::Str(Cow::Owned("ab".into())));
        assert_eq!(std.aud.str_items().unwrap(), ["x", "y"]);
        assert_eq!(std.exp.numeric_date(), Ok(Some(10)));
        assert_eq!(std.nbf.numeric_date(), Err(()));
        assert_eq!(std.iat.numeric_date(), Ok(Some(1)));
        // Present as null still counts as present.
        assert!(std.cnf.is_present());
        assert_eq!(std.cnf.numeric_date(), Err(()));
        assert_eq!(std.nonce, Claim::Other);
        assert_eq!(std.scope, Claim::Mixed);
        assert!(!std.sub.is_present());
        assert_eq!(std.sub.numeric_date(), Ok(None));
        // A repeated standard claim is an error.
        assert!(serde_json::from_str::<StdClaims<'_>>(r#"{"aud":"x","aud":"y"}"#).is_err());
        // The same shapes from a claim map.
        let map = json!({"iss": "i", "aud": "x", "exp": 1e300, "scp": ["a", 1]});
        let m = StdClaims::from_map(map.as_object().unwrap(), &ScopeClaim::Auto);
        assert_eq!(m.aud.str_items().unwrap(), ["x"]);
        assert_eq!(m.exp.numeric_date(), Ok(Some(u64::MAX)));
        assert_eq!(m.scp, Claim::Mixed);
    }
}
