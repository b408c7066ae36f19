//! What the peek reads of a message's `params`: `name`, `uri`, `ref`,
//! `taskId`, `task`, `notifications.taskIds` and, in `_meta`, the protocol
//! version and whether the client capabilities name the tasks extension.
//! Each key once and with its type; everything else skipped as it is
//! parsed.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::json::{Refusal, Scalar, once, refuse, scalars};
use super::jsonrpc::{Message, Reference};

/// `params`: an object whose `name`, `uri` and `ref` are read, or an array
/// (positional parameters, which no MCP method has: nothing is read).
pub(super) struct ParamsSeed<'c, 'm> {
    pub(super) invalid: &'c Cell<Option<Refusal>>,
    pub(super) message: &'m mut Message,
}

impl<'de> DeserializeSeed<'de> for ParamsSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ParamsSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("params")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let wrong = |detail| refuse::<A::Error>(self.invalid, Refusal::params(detail));
        let (mut name, mut uri, mut reference) = (false, false, false);
        let (mut task, mut meta, mut notifications) = (false, false, false);
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match &*key {
                "name" => {
                    once(&mut name, self.invalid)?;
                    match map.next_value::<Scalar>()? {
                        Scalar::Str(s) => self.message.name = Some(s),
                        _ => return Err(wrong("params.name is not a string")),
                    }
                }
                "uri" => {
                    once(&mut uri, self.invalid)?;
                    match map.next_value::<Scalar>()? {
                        Scalar::Str(s) => self.message.uri = Some(s),
                        _ => return Err(wrong("params.uri is not a string")),
                    }
                }
                "ref" => {
                    once(&mut reference, self.invalid)?;
                    let r = map.next_value_seed(RefSeed {
                        invalid: self.invalid,
                    })?;
                    self.message.reference = r;
                }
                "taskId" => {
                    once(&mut task, self.invalid)?;
                    match map.next_value::<Scalar>()? {
                        Scalar::Str(s) => self.message.task_id = Some(s),
                        _ => return Err(wrong("params.taskId is not a string")),
                    }
                }
                "notifications" => {
                    once(&mut notifications, self.invalid)?;
                    self.message.listen_task_ids = map.next_value_seed(TaskIdsSeed {
                        invalid: self.invalid,
                    })?;
                }
                "_meta" => {
                    once(&mut meta, self.invalid)?;
                    let (version, tasks) = map.next_value_seed(MetaSeed {
                        invalid: self.invalid,
                    })?;
                    self.message.protocol_version = version;
                    self.message.task_capable |= tasks;
                }
                "task" => {
                    map.next_value::<IgnoredAny>()?;
                    self.message.task_capable = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    scalars!((), |this| Err(refuse(
        this.invalid,
        Refusal::invalid("params is not an object or an array")
    )));
}

/// `params._meta`: only its protocol version (a string) and whether its
/// client capabilities name the tasks extension are read; anything else
/// there is skipped.
struct MetaSeed<'c> {
    invalid: &'c Cell<Option<Refusal>>,
}

/// The `_meta` key that carries a stateless request's revision.
const PROTOCOL_VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";
/// The `_meta` key of a stateless request's client capabilities.
const CLIENT_CAPABILITIES_KEY: &str = "io.modelcontextprotocol/clientCapabilities";
/// The tasks extension's identifier.
const TASKS_EXTENSION: &str = "io.modelcontextprotocol/tasks";

impl<'de> DeserializeSeed<'de> for MetaSeed<'_> {
    type Value = (Option<String>, bool);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MetaSeed<'_> {
    type Value = (Option<String>, bool);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("_meta")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut seen, mut version, mut tasks) = (false, None, false);
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == PROTOCOL_VERSION_KEY {
                once(&mut seen, self.invalid)?;
                match map.next_value::<Scalar>()? {
                    Scalar::Str(s) => version = Some(s),
                    _ => {
                        return Err(refuse(
                            self.invalid,
                            Refusal::params("the _meta protocol version is not a string"),
                        ));
                    }
                }
            } else if key == CLIENT_CAPABILITIES_KEY {
                tasks |= map.next_value_seed(HasKeySeed {
                    path: &["extensions", TASKS_EXTENSION],
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok((version, tasks))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok((None, false))
    }

    scalars!((Option<String>, bool), |_this| Ok((None, false)));
}

/// `true` when the value is an object holding the nested keys of `path`
/// (anything else there is skipped).
struct HasKeySeed<'p> {
    path: &'p [&'p str],
}

impl<'de> DeserializeSeed<'de> for HasKeySeed<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for HasKeySeed<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let Some((first, rest)) = self.path.split_first() else {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(true);
        };
        let mut found = false;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == *first {
                found |= match rest {
                    [] => map.next_value::<IgnoredAny>().map(|_| true)?,
                    _ => map.next_value_seed(HasKeySeed { path: rest })?,
                };
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    scalars!(bool, |_this| Ok(false));
}

/// `params.notifications`: only its `taskIds` (an array of strings) is
/// read; anything else there is skipped.
struct TaskIdsSeed<'c> {
    invalid: &'c Cell<Option<Refusal>>,
}

impl<'de> DeserializeSeed<'de> for TaskIdsSeed<'_> {
    type Value = Vec<String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TaskIdsSeed<'_> {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("notifications")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut seen, mut ids) = (false, Vec::new());
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key != "taskIds" {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            once(&mut seen, self.invalid)?;
            let strings = map.next_value::<Vec<Scalar>>().ok().and_then(|list| {
                list.into_iter()
                    .map(|id| match id {
                        Scalar::Str(id) => Some(id),
                        _ => None,
                    })
                    .collect::<Option<Vec<String>>>()
            });
            let Some(strings) = strings else {
                return Err(refuse(
                    self.invalid,
                    Refusal::params("params.notifications.taskIds is not an array of strings"),
                ));
            };
            ids = strings;
        }
        Ok(ids)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Vec::new())
    }

    scalars!(Vec<String>, |_this| Ok(Vec::new()));
}

/// `params.ref`: `{"type": "ref/prompt", "name"}` or `{"type": "ref/resource", "uri"}`.
/// Any other shape is kept as `None` (the policy refuses a
/// `completion/complete` it cannot attribute).
struct RefSeed<'c> {
    invalid: &'c Cell<Option<Refusal>>,
}

impl<'de> DeserializeSeed<'de> for RefSeed<'_> {
    type Value = Option<Reference>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RefSeed<'_> {
    type Value = Option<Reference>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a completion reference")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut seen_type, mut seen_name, mut seen_uri) = (false, false, false);
        let (mut kind, mut name, mut uri) = (None, None, None);
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let (seen, slot) = match &*key {
                "type" => (&mut seen_type, &mut kind),
                "name" => (&mut seen_name, &mut name),
                "uri" => (&mut seen_uri, &mut uri),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            once(seen, self.invalid)?;
            if let Scalar::Str(s) = map.next_value::<Scalar>()? {
                *slot = Some(s);
            }
        }
        Ok(match (kind.as_deref(), name, uri) {
            (Some("ref/prompt"), Some(n), None) => Some(Reference::Prompt(n)),
            (Some("ref/resource"), None, Some(u)) => Some(Reference::Resource(u)),
            _ => None,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    scalars!(Option<Reference>, |_this| Ok(None));
}
