//! Filtered lists: `tools/list`, `prompts/list`, `resources/list` and
//! `resources/templates/list` answered with only what the caller may use,
//! in JSON and SSE responses.
//!
//! While a filter is on, nothing else may carry a list past it: a batch
//! holding a list request is refused (only a single message's answer is
//! filtered), and so is a `Last-Event-ID` (a resumed stream replays answers
//! the layer never sees as answers to a list).
//!
//! Off by default ([`ListFilter::Off`]): a client that sees a tool it cannot
//! call yet calls it, gets the 403 step-up, and re-authorizes; hiding the
//! tool hides that path. Turn it on where the list itself is sensitive.

use serde_json::Value;

use super::jsonrpc::Message;
use super::policy::{McpPolicy, Verdict};
use crate::claims::AuthContext;
use crate::guard::policy::Shared;
use crate::guard::revision::Wire;

/// Which entries of `tools/list`, `prompts/list`, `resources/list` and
/// `resources/templates/list` a caller sees.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListFilter {
    /// Lists pass as the server answers them. The default: clients learn of
    /// tools they cannot call yet, and step up when they call one.
    #[default]
    Off,
    /// Entries no scope would open ([`Rule::Deny`](super::Rule::Deny)) are
    /// left out; entries that need a step-up stay.
    HideDenied,
    /// Only entries the caller's token may use now are listed.
    CallableOnly,
}

/// The list a request asks for, if the filter applies to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListKind {
    Tools,
    Prompts,
    Resources,
    ResourceTemplates,
}

impl ListKind {
    /// The list one message asks for.
    pub(crate) fn of_message(m: &Message) -> Option<Self> {
        match m.method.as_deref()? {
            "tools/list" => Some(Self::Tools),
            "prompts/list" => Some(Self::Prompts),
            "resources/list" => Some(Self::Resources),
            "resources/templates/list" => Some(Self::ResourceTemplates),
            _ => None,
        }
    }

    fn field(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Prompts => "prompts",
            Self::Resources => "resources",
            Self::ResourceTemplates => "resourceTemplates",
        }
    }

    /// The message that would use `entry` (a template is judged as the
    /// resources it names, like a `completion/complete` of it).
    fn use_of(self, entry: &Value) -> Option<Message> {
        let text = |k: &str| entry.get(k).and_then(Value::as_str).map(str::to_owned);
        let (method, name, uri) = match self {
            Self::Tools => ("tools/call", text("name")?, None),
            Self::Prompts => ("prompts/get", text("name")?, None),
            Self::Resources => ("resources/read", String::new(), Some(text("uri")?)),
            Self::ResourceTemplates => {
                ("resources/read", String::new(), Some(text("uriTemplate")?))
            }
        };
        Some(Message {
            method: Some(method.to_owned()),
            name: (!name.is_empty()).then_some(name),
            uri,
            ..Message::default()
        })
    }
}

/// What judging one list needs.
pub(crate) struct Judge<'a> {
    pub(crate) filter: ListFilter,
    pub(crate) policy: &'a McpPolicy,
    pub(crate) shared: &'a Shared,
    pub(crate) ctx: Option<&'a AuthContext>,
    pub(crate) wire: Wire,
}

impl Judge<'_> {
    fn keeps(&self, kind: ListKind, entry: &Value) -> bool {
        let Some(m) = kind.use_of(entry) else {
            // An entry the layer cannot attribute is left out.
            return false;
        };
        // A URI without a judged form has no rule (`rule_for` refuses it).
        let Ok(rules) = self.policy.rule_for(&m) else {
            return false;
        };
        if rules.is_empty() {
            return false;
        }
        matches!(
            (
                self.filter,
                self.policy.judge(self.shared, rules.iter(), self.ctx)
            ),
            (ListFilter::Off, _) | (_, Verdict::Allow) | (ListFilter::HideDenied, Verdict::Need(_))
        )
    }

    /// Filters a JSON-RPC response holding the list, in place. `false` when
    /// it is not one (left untouched).
    pub(crate) fn filter_response(&self, kind: ListKind, reply: &mut Value) -> bool {
        let Some(result) = reply.get_mut("result").and_then(Value::as_object_mut) else {
            return false;
        };
        let Some(Value::Array(entries)) = result.get_mut(kind.field()) else {
            return false;
        };
        entries.retain(|e| self.keeps(kind, e));
        if self.wire == Wire::Stateless {
            // Filtered per principal: no shared cache may serve it to another.
            result.insert("cacheScope".into(), Value::from("private"));
        }
        true
    }
}
