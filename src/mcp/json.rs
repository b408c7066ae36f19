//! The building blocks of the JSON-RPC peek: why a body is refused, the
//! scalar reader, and the helpers every visitor shares.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::challenge::JsonRpcError;
use crate::error::AuthError;

/// Why a body cannot be judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The JSON-RPC error code.
    pub(crate) code: i64,
    /// A fixed detail for logs.
    pub(crate) detail: &'static str,
}

impl Refusal {
    pub(crate) const fn parse(detail: &'static str) -> Self {
        Self {
            code: JsonRpcError::PARSE_ERROR,
            detail,
        }
    }

    pub(crate) const fn invalid(detail: &'static str) -> Self {
        Self {
            code: JsonRpcError::INVALID_REQUEST,
            detail,
        }
    }

    pub(crate) const fn params(detail: &'static str) -> Self {
        Self {
            code: JsonRpcError::INVALID_PARAMS,
            detail,
        }
    }

    /// The JSON-RPC message answered for this code.
    pub(crate) fn message(&self) -> &'static str {
        match self.code {
            JsonRpcError::PARSE_ERROR => "Parse error",
            JsonRpcError::INVALID_PARAMS => "Invalid params",
            _ => "Invalid Request",
        }
    }
}

/// Why a request is not forwarded: denied (answered with the error's
/// status and challenge), or refused as a request the layer cannot judge
/// (`400`). Both answers are JSON-RPC errors.
#[derive(Debug)]
pub(crate) enum NotForwarded {
    Denied(AuthError),
    Refused(Refusal),
}

impl From<AuthError> for NotForwarded {
    fn from(error: AuthError) -> Self {
        Self::Denied(error)
    }
}

impl From<Refusal> for NotForwarded {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

/// Visitor methods for the JSON scalars (strings, numbers, booleans, null),
/// all answered by `$answer`.
macro_rules! scalars {
    ($value:ty, |$this:ident| $answer:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<$value, E> {
            let $this = self;
            $answer
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<$value, E> {
            let $this = self;
            $answer
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<$value, E> {
            let $this = self;
            $answer
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<$value, E> {
            let $this = self;
            $answer
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<$value, E> {
            let $this = self;
            $answer
        }
        fn visit_unit<E: de::Error>(self) -> Result<$value, E> {
            let $this = self;
            $answer
        }
    };
}

pub(crate) use scalars;

/// Records the first reason the body cannot be judged and stops parsing.
pub(crate) fn refuse<E: de::Error>(slot: &Cell<Option<Refusal>>, refusal: Refusal) -> E {
    if slot.get().is_none() {
        slot.set(Some(refusal));
    }
    E::custom(refusal.detail)
}

/// A key the visitors read, seen at most once.
pub(crate) fn once<E: de::Error>(
    seen: &mut bool,
    invalid: &Cell<Option<Refusal>>,
) -> Result<(), E> {
    if std::mem::replace(seen, true) {
        return Err(refuse(
            invalid,
            Refusal::invalid("a key the policy reads appears twice"),
        ));
    }
    Ok(())
}

/// A value read as a string, number or null; anything else is skipped
/// unparsed into `Other`.
#[derive(Debug, PartialEq)]
pub(crate) enum Scalar {
    Str(String),
    Number(serde_json::Number),
    Null,
    Other,
}

impl<'de> serde::Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Str(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v.into()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(serde_json::Number::from_f64(v).map_or(Scalar::Other, Scalar::Number))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
        }
        d.deserialize_any(V)
    }
}
