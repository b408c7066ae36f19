//! Policy files (feature `config`): [`PolicyFile`] and serde for
//! [`McpPolicy`], [`Rule`] and [`ScopeHierarchy`].

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, de::Error as _};

use super::policy::{McpPolicy, Rule, checked_pattern};
use crate::config::is_scope_token;
use crate::guard::GuardBuilder;
use crate::scope_hierarchy::ScopeHierarchy;

/// A policy file, read with serde and checked (feature `config`): the
/// scopes a resource requires and supports, their hierarchy and the MCP
/// rules; the format `mcp-guard-proxy` reads. A Rust server loads the same
/// file with any serde format (TOML shown):
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use mcp_resource_guard::mcp::{McpLayer, PolicyFile};
/// use mcp_resource_guard::{GuardLayer, Issuer};
///
/// let file: PolicyFile = toml::from_str(r#"
///     required = ["todo:read"]                 # every request
///     scopes_supported = ["todo:read", "todo:write", "todo:admin"]
///     default = "deny"                         # "deny", "allow", or a list of scopes
///     [implies]
///     "todo:admin" = ["todo:read", "todo:write"]
///     [methods]
///     "initialize" = []
///     "tools/list" = ["todo:read"]
///     [tools]
///     add_todo = ["todo:write"]
///     "admin_*" = ["todo:admin"]
/// "#)?;
/// let guard = file
///     .configure(GuardLayer::builder("https://mcp.example.com/mcp"))
///     .add_issuer(Issuer::new("https://auth.example.com"))
///     .build()?;
/// let mcp = McpLayer::new(&guard, file.policy().clone());
/// # let _ = mcp; Ok(()) }
/// ```
///
/// | key | value | default |
/// |---|---|---|
/// | `required` | scopes every request needs | none |
/// | `scopes_supported` | every scope the resource knows (RFC 9728); rules may name only these | required |
/// | `default` | the rule for what no other rule names: `"deny"`, `"allow"` or a list of scopes | required |
/// | `stream` | the rule for `GET` (SSE) and `DELETE` (session end) | `default` |
/// | `[implies]` | broader scope = the narrower ones it grants | none |
/// | `[methods]`, `[tools]`, `[prompts]`, `[resources]` | name or `*` pattern = rule | none |
///
/// A rule is `"allow"`, `"deny"` or a list of scopes (`[]` allows).
/// Exact names win over patterns, and patterns are tried in the order the
/// file lists them. An unknown key, a scope that is not a scope token, a
/// scope not in `scopes_supported` and `offline_access` are errors (with
/// TOML, at their line). An [`McpPolicy`] alone takes `default` (required),
/// `stream` and the four rule tables; a [`ScopeHierarchy`] the `[implies]`
/// table. Pattern scopes ([`ScopeHierarchy::pattern`]) are declared in code.
///
/// Patterns are tried in the order the deserializer hands the entries
/// over: with the `toml` crate, turn on its `preserve_order` feature (by
/// default it sorts tables by key).
#[derive(Debug, Clone)]
pub struct PolicyFile {
    required: Vec<String>,
    scopes_supported: Vec<String>,
    hierarchy: ScopeHierarchy,
    policy: McpPolicy,
}

impl PolicyFile {
    /// The scopes every request needs (`required`).
    pub fn required_scopes(&self) -> &[String] {
        &self.required
    }

    /// The scopes the resource supports (`scopes_supported`).
    pub fn scopes_supported(&self) -> &[String] {
        &self.scopes_supported
    }

    /// The scope hierarchy (`[implies]`).
    pub fn scope_hierarchy(&self) -> &ScopeHierarchy {
        &self.hierarchy
    }

    /// The MCP rules, for [`McpLayer::new`](super::McpLayer::new).
    pub fn policy(&self) -> &McpPolicy {
        &self.policy
    }

    /// `builder` with this file's supported and required scopes and its
    /// hierarchy.
    pub fn configure(&self, builder: GuardBuilder) -> GuardBuilder {
        let builder = builder
            .scopes_supported(self.scopes_supported.iter().cloned())
            .scope_hierarchy(self.hierarchy.clone());
        if self.required.is_empty() {
            builder
        } else {
            builder.required_scopes(self.required.iter().cloned())
        }
    }
}

/// One scope: a scope token, not `offline_access`, in `supported` when given.
struct ScopeSeed<'a>(Option<&'a [String]>);

impl<'de> DeserializeSeed<'de> for ScopeSeed<'_> {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        let s = String::deserialize(d)?;
        check_scope(&s, self.0).map_err(D::Error::custom)?;
        Ok(s)
    }
}

fn check_scope(s: &str, supported: Option<&[String]>) -> Result<(), String> {
    if !is_scope_token(s) {
        return Err(format!(
            "{s:?} is not a scope token (no spaces, quotes or backslashes)"
        ));
    }
    if s == "offline_access" {
        return Err("offline_access is not a resource scope".to_owned());
    }
    match supported {
        Some(list) if !list.iter().any(|x| x == s) => {
            Err(format!("{s:?} is not in scopes_supported"))
        }
        _ => Ok(()),
    }
}

/// A list of scopes, each checked as it is read.
struct ScopesSeed<'a>(Option<&'a [String]>);

impl<'de> DeserializeSeed<'de> for ScopesSeed<'_> {
    type Value = Vec<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ScopesSeed<'_> {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of scopes")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut out = Vec::new();
        while let Some(s) = seq.next_element_seed(ScopeSeed(self.0))? {
            out.push(s);
        }
        Ok(out)
    }
}

/// A rule: `"allow"`, `"deny"` or a list of scopes (`[]` allows).
struct RuleSeed<'a>(Option<&'a [String]>);

impl<'de> DeserializeSeed<'de> for RuleSeed<'_> {
    type Value = Rule;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Rule, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RuleSeed<'_> {
    type Value = Rule;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"deny\", \"allow\" or a list of scopes")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Rule, E> {
        match v {
            "deny" => Ok(Rule::Deny),
            "allow" => Ok(Rule::Allow),
            other => Err(E::custom(format!(
                "{other:?}: use \"deny\", \"allow\" or a list of scopes"
            ))),
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Rule, A::Error> {
        let scopes = ScopesSeed(self.0).visit_seq(seq)?;
        Ok(if scopes.is_empty() {
            Rule::Allow
        } else {
            Rule::Require(scopes)
        })
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RuleSeed(None).deserialize(d)
    }
}

/// A table of name (or pattern) = rule, in the file's order (`kind`:
/// method, tool, prompt or resource).
struct RulesSeed<'a>(Option<&'a [String]>, &'static str);

impl<'de> DeserializeSeed<'de> for RulesSeed<'_> {
    type Value = Vec<(String, Rule)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RulesSeed<'_> {
    type Value = Vec<(String, Rule)>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table of names and rules")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            let rule = map.next_value_seed(EntrySeed(self.0, self.1, &name))?;
            out.push((name, rule));
        }
        Ok(out)
    }
}

/// One entry's rule; its name is checked with it (so an error points at
/// the entry).
struct EntrySeed<'a, 'b>(Option<&'a [String]>, &'static str, &'b str);

impl<'de> DeserializeSeed<'de> for EntrySeed<'_, '_> {
    type Value = Rule;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Rule, D::Error> {
        checked_pattern(self.1, self.2.to_owned()).map_err(D::Error::custom)?;
        RuleSeed(self.0).deserialize(d)
    }
}

/// The `[implies]` table: broader scope = the narrower ones.
struct HierarchySeed<'a>(Option<&'a [String]>);

impl<'de> DeserializeSeed<'de> for HierarchySeed<'_> {
    type Value = ScopeHierarchy;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ScopeHierarchy, D::Error> {
        d.deserialize_map(self)
    }
}

/// The narrower scopes of `broader`, which is checked with them (so an
/// error points at the entry).
struct ImpliedSeed<'a, 'b>(Option<&'a [String]>, &'b str);

impl<'de> DeserializeSeed<'de> for ImpliedSeed<'_, '_> {
    type Value = Vec<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
        check_scope(self.1, self.0).map_err(|e| D::Error::custom(format!("[implies] {e}")))?;
        ScopesSeed(self.0).deserialize(d)
    }
}

impl<'de> Visitor<'de> for HierarchySeed<'_> {
    type Value = ScopeHierarchy;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table of scopes and the scopes they imply")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ScopeHierarchy, A::Error> {
        let mut h = ScopeHierarchy::new();
        while let Some(broader) = map.next_key::<String>()? {
            let narrower = map.next_value_seed(ImpliedSeed(self.0, &broader))?;
            h = h.implies(broader, narrower);
        }
        Ok(h)
    }
}

impl<'de> Deserialize<'de> for ScopeHierarchy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        HierarchySeed(None).deserialize(d)
    }
}

/// The keys of a policy file; `whole` adds the scope keys (an
/// [`McpPolicy`] alone refuses them).
struct FileVisitor {
    whole: bool,
}

const POLICY_KEYS: &[&str] = &[
    "default",
    "stream",
    "methods",
    "tools",
    "prompts",
    "resources",
];
const FILE_KEYS: &[&str] = &[
    "required",
    "scopes_supported",
    "implies",
    "default",
    "stream",
    "methods",
    "tools",
    "prompts",
    "resources",
];

/// A key among `keys`: an unknown one is an error while the key is read
/// (so a format that knows where keys are, such as TOML, points at it).
struct KeySeed(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = &'static str;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<&'static str, D::Error> {
        let key = String::deserialize(d)?;
        self.0
            .iter()
            .find(|k| **k == key)
            .copied()
            .ok_or_else(|| D::Error::unknown_field(&key, self.0))
    }
}

/// What was read before `scopes_supported` (TOML puts keys before tables,
/// so only keys such as `required` and `default` can come first): checked
/// against it at the end.
#[derive(Default)]
struct Unchecked(Vec<(&'static str, Vec<String>)>);

impl Unchecked {
    fn note(&mut self, key: &'static str, supported: Option<&[String]>, scopes: &[String]) {
        if supported.is_none() && !scopes.is_empty() {
            self.0.push((key, scopes.to_vec()));
        }
    }

    fn check<E: de::Error>(&self, supported: &[String]) -> Result<(), E> {
        for (key, scopes) in &self.0 {
            for s in scopes {
                check_scope(s, Some(supported)).map_err(|e| E::custom(format!("{key}: {e}")))?;
            }
        }
        Ok(())
    }
}

fn rule_scopes(rule: &Rule) -> &[String] {
    match rule {
        Rule::Require(s) => s,
        _ => &[],
    }
}

impl<'de> Visitor<'de> for FileVisitor {
    type Value = PolicyFile;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a policy table")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PolicyFile, A::Error> {
        let keys = if self.whole { FILE_KEYS } else { POLICY_KEYS };
        let mut supported: Option<Vec<String>> = None;
        let mut required = Vec::new();
        let mut hierarchy = ScopeHierarchy::new();
        let mut default = None;
        let mut stream = None;
        let mut tables: [Vec<(String, Rule)>; 4] = Default::default();
        let mut unchecked = Unchecked::default();
        while let Some(key) = map.next_key_seed(KeySeed(keys))? {
            let s = supported.as_deref();
            match key {
                "scopes_supported" => {
                    let list = map.next_value_seed(ScopesSeed(None))?;
                    if list.is_empty() {
                        return Err(A::Error::custom("scopes_supported lists no scope"));
                    }
                    supported = Some(list);
                }
                "required" => {
                    required = map.next_value_seed(ScopesSeed(s))?;
                    unchecked.note("required", s, &required);
                }
                "implies" if s.is_none() => {
                    return Err(A::Error::custom("[implies] comes after scopes_supported"));
                }
                "implies" => hierarchy = map.next_value_seed(HierarchySeed(s))?,
                "default" | "stream" => {
                    let rule = map.next_value_seed(RuleSeed(s))?;
                    unchecked.note(key, s, rule_scopes(&rule));
                    *(if key == "default" {
                        &mut default
                    } else {
                        &mut stream
                    }) = Some(rule);
                }
                table => {
                    let i = ["methods", "tools", "prompts", "resources"]
                        .iter()
                        .position(|t| *t == table)
                        .unwrap_or(0);
                    let kind = ["method", "tool", "prompt", "resource"][i];
                    let rules = map.next_value_seed(RulesSeed(s, kind))?;
                    for (_, r) in &rules {
                        unchecked.note(POLICY_KEYS[i + 2], s, rule_scopes(r));
                    }
                    tables[i].extend(rules);
                }
            }
        }
        let supported = match (self.whole, supported) {
            (true, None) => return Err(A::Error::missing_field("scopes_supported")),
            (_, s) => s.unwrap_or_default(),
        };
        if self.whole {
            unchecked.check::<A::Error>(&supported)?;
        }
        let Some(default) = default else {
            return Err(A::Error::custom(
                "missing field `default`: say \"deny\", \"allow\" or a list of scopes",
            ));
        };
        let [methods, tools, prompts, resources] = tables;
        let mut b = McpPolicy::builder().default_rule(default);
        if let Some(stream) = stream {
            b = b.stream_rule(stream);
        }
        for (n, r) in methods {
            b = b.method(n, r);
        }
        for (n, r) in tools {
            b = b.tool(n, r);
        }
        for (n, r) in prompts {
            b = b.prompt(n, r);
        }
        for (n, r) in resources {
            b = b.resource(n, r);
        }
        let policy = b.build().map_err(A::Error::custom)?;
        Ok(PolicyFile {
            required,
            scopes_supported: supported,
            hierarchy,
            policy,
        })
    }
}

impl<'de> Deserialize<'de> for PolicyFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FileVisitor { whole: true })
    }
}

impl<'de> Deserialize<'de> for McpPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(d.deserialize_map(FileVisitor { whole: false })?.policy)
    }
}
