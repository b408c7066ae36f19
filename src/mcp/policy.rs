//! Which scopes each MCP request needs: [`Rule`]s by method, tool,
//! resource and prompt, gathered in an [`McpPolicy`], and the verdict on a
//! set of messages.

use std::sync::Arc;

use super::jsonrpc::{Message, Reference, Refusal};
use super::resource_uri::normalize;
use crate::claims::AuthContext;
use crate::config::{check_scopes, glob};
use crate::error::ConfigError;
use crate::guard::policy::Shared;

/// What a policy entry requires.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// Any caller the guard let through.
    Allow,
    /// Nobody: `403 access_denied`.
    Deny,
    /// A token with all of these scopes.
    Require(Vec<String>),
}

impl Rule {
    /// A token with all of `scopes`.
    pub fn require<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Rule::Require(scopes.into_iter().map(Into::into).collect())
    }

    fn validated(self) -> Result<Self, ConfigError> {
        Ok(match self {
            Rule::Require(s) => {
                let s = check_scopes(s)?;
                if s.is_empty() {
                    return Err(ConfigError::EmptyScopes {
                        setting: "Rule::require (use Rule::Allow for no requirement)",
                    });
                }
                Rule::Require(s)
            }
            other => other,
        })
    }
}

/// Rules by name: exact names first, then `*` globs in the order added.
#[derive(Debug, Default)]
struct Rules(Vec<(String, Rule)>);

impl Rules {
    fn find(&self, name: &str) -> Option<&Rule> {
        let is_glob = |p: &str| p.contains('*');
        self.0
            .iter()
            .find(|(p, _)| !is_glob(p) && p == name)
            .or_else(|| self.0.iter().find(|(p, _)| is_glob(p) && glob(p, name)))
            .map(|(_, r)| r)
    }
}

/// Which scopes each MCP request needs. Built with [`McpPolicy::builder`].
#[derive(Debug, Clone)]
pub struct McpPolicy(Arc<PolicyInner>);

#[derive(Debug)]
struct PolicyInner {
    methods: Rules,
    tools: Rules,
    resources: Rules,
    prompts: Rules,
    default: Rule,
    stream: Rule,
}

/// Builds an [`McpPolicy`].
#[must_use]
#[derive(Debug)]
pub struct McpPolicyBuilder {
    methods: Vec<(String, Rule)>,
    tools: Vec<(String, Rule)>,
    resources: Vec<(String, Rule)>,
    prompts: Vec<(String, Rule)>,
    default: Rule,
    stream: Option<Rule>,
}

/// The rules one message must pass: one, or one per reading of its
/// resource URI (at most three).
#[derive(Debug, Default)]
pub(crate) struct MessageRules<'p> {
    rules: [Option<&'p Rule>; 3],
}

impl<'p> MessageRules<'p> {
    fn push(&mut self, rule: &'p Rule) {
        if let Some(slot) = self.rules.iter_mut().find(|r| r.is_none()) {
            *slot = Some(rule);
        }
    }

    /// The rules, each once.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &'p Rule> + '_ {
        self.rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.filter(|r| !self.rules[..i].contains(&Some(*r))))
    }

    /// `true` for a message that needs no rule (a response).
    pub(crate) fn is_empty(&self) -> bool {
        self.rules[0].is_none()
    }
}

/// A judged URI as it is, without its fragment, and without its query and
/// fragment: each distinct one once.
fn readings(uri: &str) -> impl Iterator<Item = &str> {
    let no_fragment = uri.split_once('#').map_or(uri, |(u, _)| u);
    let no_query = no_fragment.split_once('?').map_or(no_fragment, |(u, _)| u);
    [
        Some(uri),
        (no_fragment != uri).then_some(no_fragment),
        (no_query != no_fragment).then_some(no_query),
    ]
    .into_iter()
    .flatten()
}

/// The outcome for a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allow,
    Deny,
    /// These scopes are missing (in rule order, without repeats).
    Need(Vec<String>),
}

impl McpPolicy {
    /// A policy that allows everything until told otherwise: set a
    /// [`default_rule`](McpPolicyBuilder::default_rule) (`Rule::Deny` for a
    /// server that lists every method and tool it has).
    pub fn builder() -> McpPolicyBuilder {
        McpPolicyBuilder {
            methods: Vec::new(),
            tools: Vec::new(),
            resources: Vec::new(),
            prompts: Vec::new(),
            default: Rule::Allow,
            stream: None,
        }
    }

    /// The rules one message must pass (none for a response, which has no
    /// method), or why the message cannot be judged. A resource URI is
    /// judged in each reading a server may act on: as it is, without its
    /// fragment, and without its query and fragment (a server that serves
    /// `file:///a` for `file:///a?x` must not escape a rule on `file:///a`).
    pub(crate) fn rule_for(&self, m: &Message) -> Result<MessageRules<'_>, Refusal> {
        let mut out = MessageRules::default();
        let Some(method) = m.method.as_deref() else {
            return Ok(out);
        };
        let p = &self.0;
        let name = || {
            m.name.as_deref().ok_or(Refusal::params(
                "the request names no tool or prompt (params.name)",
            ))
        };
        match method {
            "tools/call" => out.push(self.or_method(p.tools.find(name()?), method)),
            "prompts/get" => out.push(self.or_method(p.prompts.find(name()?), method)),
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                let u = m.uri.as_deref().ok_or(Refusal::params(
                    "the request names no resource (params.uri)",
                ))?;
                self.resource_rules(u, method, &mut out)?;
            }
            "completion/complete" => match &m.reference {
                Some(Reference::Prompt(n)) => out.push(self.or_method(p.prompts.find(n), method)),
                Some(Reference::Resource(u)) => self.resource_rules(u, method, &mut out)?,
                None => {
                    return Err(Refusal::params(
                        "completion/complete without a ref/prompt name or ref/resource uri",
                    ));
                }
            },
            _ => out.push(self.or_method(None, method)),
        }
        Ok(out)
    }

    /// `specific`, else the rule of `method`, else the default.
    fn or_method<'p>(&'p self, specific: Option<&'p Rule>, method: &str) -> &'p Rule {
        specific
            .or_else(|| self.0.methods.find(method))
            .unwrap_or(&self.0.default)
    }

    /// The rule of each reading of resource URI `uri`.
    fn resource_rules<'p>(
        &'p self,
        uri: &str,
        method: &str,
        out: &mut MessageRules<'p>,
    ) -> Result<(), Refusal> {
        let full =
            normalize(uri).map_err(|_| Refusal::params("the resource URI cannot be normalized"))?;
        for reading in readings(&full) {
            out.push(self.or_method(self.0.resources.find(reading), method));
        }
        Ok(())
    }

    /// The rule for requests without a JSON-RPC method (`GET`, `DELETE`).
    pub(crate) fn stream_rule(&self) -> &Rule {
        &self.0.stream
    }

    /// The verdict on `rules` (every one must pass) for `ctx`.
    pub(crate) fn judge<'a>(
        &self,
        shared: &Shared,
        rules: impl IntoIterator<Item = &'a Rule>,
        ctx: Option<&AuthContext>,
    ) -> Verdict {
        let mut need: Vec<String> = Vec::new();
        for rule in rules {
            match rule {
                Rule::Allow => {}
                Rule::Deny => return Verdict::Deny,
                Rule::Require(scopes) => {
                    for s in scopes {
                        let ok = ctx.is_some_and(|c| shared.grants(c, s));
                        if !ok && !need.contains(s) {
                            need.push(s.clone());
                        }
                    }
                }
            }
        }
        if need.is_empty() {
            Verdict::Allow
        } else {
            Verdict::Need(need)
        }
    }
}

/// A rule's name or pattern, checked (`kind`: method, tool, resource or
/// prompt); resource patterns in normalized form.
pub(super) fn checked_pattern(kind: &'static str, p: String) -> Result<String, ConfigError> {
    if p.is_empty() {
        return Err(ConfigError::EmptyPattern { kind });
    }
    if kind == "resource" && !p.starts_with('*') {
        return normalize(&p).map_err(|reason| ConfigError::InvalidResourcePattern {
            pattern: p.clone(),
            reason,
        });
    }
    Ok(p)
}

impl McpPolicyBuilder {
    /// The rule for a JSON-RPC method (exact name or `*` glob), e.g.
    /// `method("tools/list", Rule::require(["todo:read"]))`.
    pub fn method(mut self, method: impl Into<String>, rule: Rule) -> Self {
        self.methods.push((method.into(), rule));
        self
    }

    /// The rule for `tools/call` of a tool (exact name or `*` glob such as `admin_*`).
    pub fn tool(mut self, name: impl Into<String>, rule: Rule) -> Self {
        self.tools.push((name.into(), rule));
        self
    }

    /// The rule for a resource URI (exact or `*` glob), for
    /// `resources/read`, `resources/subscribe`, `resources/unsubscribe` and
    /// `completion/complete` of a `ref/resource`. URIs and patterns are
    /// compared in normalized form (see the [module docs](super)).
    pub fn resource(mut self, uri: impl Into<String>, rule: Rule) -> Self {
        self.resources.push((uri.into(), rule));
        self
    }

    /// The rule for a prompt (exact name or `*` glob), for `prompts/get` and
    /// `completion/complete` of a `ref/prompt`.
    pub fn prompt(mut self, name: impl Into<String>, rule: Rule) -> Self {
        self.prompts.push((name.into(), rule));
        self
    }

    /// The rule for everything not listed. Defaults to [`Rule::Allow`].
    pub fn default_rule(mut self, rule: Rule) -> Self {
        self.default = rule;
        self
    }

    /// The rule for requests without a JSON-RPC method: `GET` (the SSE
    /// stream), `DELETE` (session end). Defaults to the default rule.
    pub fn stream_rule(mut self, rule: Rule) -> Self {
        self.stream = Some(rule);
        self
    }

    /// Checks every scope and pattern and builds the policy.
    ///
    /// # Errors
    ///
    /// [`ConfigError::EmptyPattern`] for an empty method, tool, resource or
    /// prompt pattern; [`ConfigError::InvalidResourcePattern`] for a
    /// resource pattern that is not a URI (patterns starting with `*` are
    /// kept as they are); [`ConfigError::EmptyScopes`] for
    /// `Rule::require([])`; [`ConfigError::InvalidScope`] for a scope that
    /// is not a valid scope token.
    pub fn build(self) -> Result<McpPolicy, ConfigError> {
        let rules = |kind: &'static str, v: Vec<(String, Rule)>| -> Result<Rules, ConfigError> {
            v.into_iter()
                .map(|(p, r)| Ok((checked_pattern(kind, p)?, r.validated()?)))
                .collect::<Result<_, _>>()
                .map(Rules)
        };
        let default = self.default.validated()?;
        Ok(McpPolicy(Arc::new(PolicyInner {
            methods: rules("method", self.methods)?,
            tools: rules("tool", self.tools)?,
            resources: rules("resource", self.resources)?,
            prompts: rules("prompt", self.prompts)?,
            stream: match self.stream {
                Some(r) => r.validated()?,
                None => default.clone(),
            },
            default,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(m: &str, name: Option<&str>, uri: Option<&str>) -> Message {
        Message {
            method: Some(m.into()),
            name: name.map(Into::into),
            uri: uri.map(Into::into),
            ..Message::default()
        }
    }

    #[test]
    fn rule_selection() {
        let p = McpPolicy::builder()
            .default_rule(Rule::require(["d"]))
            .method("tools/list", Rule::require(["r"]))
            .tool("admin_*", Rule::Deny)
            .tool("admin_status", Rule::Allow)
            .tool("*", Rule::require(["t"]))
            .resource("FILE:///secret/*", Rule::require(["s"]))
            .prompt("p", Rule::require(["p"]))
            .build()
            .unwrap();
        let rule = |m: Message| {
            let rules = p.rule_for(&m).unwrap();
            let all: Vec<&Rule> = rules.iter().collect();
            assert_eq!(all.len(), 1, "{m:?}: {all:?}");
            all[0].clone()
        };
        assert_eq!(rule(msg("tools/list", None, None)), Rule::require(["r"]));
        assert_eq!(rule(msg("tools/call", Some("admin_x"), None)), Rule::Deny);
        assert_eq!(
            rule(msg("tools/call", Some("admin_status"), None)),
            Rule::Allow
        );
        assert_eq!(
            rule(msg("tools/call", Some("other"), None)),
            Rule::require(["t"])
        );
        for m in [
            "resources/read",
            "resources/subscribe",
            "resources/unsubscribe",
        ] {
            for uri in [
                "file:///secret/a",
                "File:///secret/%61",
                "file://localhost/secret/a",
                "file:/secret/a",
                "file:secret/a",
            ] {
                assert_eq!(
                    rule(msg(m, None, Some(uri))),
                    Rule::require(["s"]),
                    "{m} {uri}"
                );
            }
        }
        assert_eq!(
            rule(msg("resources/read", None, Some("file:///public"))),
            Rule::require(["d"])
        );
        assert_eq!(
            rule(msg("prompts/get", Some("p"), None)),
            Rule::require(["p"])
        );
        assert_eq!(rule(msg("initialize", None, None)), Rule::require(["d"]));
        let complete = |r: Reference| Message {
            reference: Some(r),
            ..msg("completion/complete", None, None)
        };
        assert_eq!(
            rule(complete(Reference::Prompt("p".into()))),
            Rule::require(["p"])
        );
        assert_eq!(
            rule(complete(Reference::Resource("file:///secret/{x}".into()))),
            Rule::require(["s"])
        );
        // A URI with a query or fragment is judged as each reading a server
        // may serve: here the query-less one is a secret.
        let rules = p
            .rule_for(&msg("resources/read", None, Some("file:///secret/a?x#y")))
            .unwrap();
        let all: Vec<&Rule> = rules.iter().collect();
        assert_eq!(all, [&Rule::require(["s"])], "one rule, each once");
        let exact = McpPolicy::builder()
            .default_rule(Rule::Allow)
            .resource("file:///a", Rule::Deny)
            .build()
            .unwrap();
        for uri in ["file:///a?x", "file:///a#x", "file:///a?x#y"] {
            let rules = exact
                .rule_for(&msg("resources/read", None, Some(uri)))
                .unwrap();
            assert!(rules.iter().any(|r| *r == Rule::Deny), "{uri}");
        }
        // Responses have no rule; messages missing what their rule reads are refused.
        assert!(p.rule_for(&Message::default()).unwrap().is_empty());
        for m in [
            msg("tools/call", None, None),
            msg("prompts/get", None, None),
            msg("resources/read", None, None),
            msg("resources/read", None, Some("file:///a%2Fb")),
            msg("resources/read", None, Some("file:///public/../secret/a")),
            msg("resources/read", None, Some("file:////secret/a")),
            msg("completion/complete", None, None),
        ] {
            assert!(p.rule_for(&m).is_err(), "{m:?}");
        }
    }

    #[test]
    fn config_errors_say_what_to_fix() {
        let err = |b: McpPolicyBuilder| b.build().unwrap_err();
        assert_eq!(
            err(McpPolicy::builder().tool("", Rule::Allow)),
            ConfigError::EmptyPattern { kind: "tool" }
        );
        assert!(matches!(
            err(McpPolicy::builder().tool("x", Rule::require(Vec::<String>::new()))),
            ConfigError::EmptyScopes { .. }
        ));
        assert!(matches!(
            err(McpPolicy::builder().tool("x", Rule::require(["a b"]))),
            ConfigError::InvalidScope { .. }
        ));
        assert!(matches!(
            err(McpPolicy::builder().resource("no scheme", Rule::Allow)),
            ConfigError::InvalidResourcePattern { .. }
        ));
        assert!(
            McpPolicy::builder()
                .resource("*", Rule::Allow)
                .build()
                .is_ok()
        );
    }
}
