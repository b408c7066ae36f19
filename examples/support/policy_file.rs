//! The guard proxy's policy file (TOML): the scopes, the implications, and
//! a rule per MCP method, tool, prompt and resource.
//!
//! ```toml
//! required = ["todo:read"]                 # every request
//! scopes_supported = ["todo:read", "todo:write", "todo:delete", "todo:admin"]
//! default = "deny"                         # "deny", "allow", or a list of scopes
//! [implies]
//! "todo:admin" = ["todo:read", "todo:write", "todo:delete"]
//! [methods]
//! "initialize" = []
//! "tools/list" = ["todo:read"]
//! [tools]
//! add_todo = ["todo:write"]
//! ```
//!
//! `[]` allows (beyond `required`), a list requires those scopes. Beyond
//! these keys, `[prompts]` and `[resources]` (URI patterns) take rules the
//! same way: exact names first, then `*` patterns in the order the file
//! lists them (the first that matches decides). `[proxy]` sets the proxy
//! itself:
//!
//! ```toml
//! [proxy]
//! list_filter = "hide-denied"        # "off", "hide-denied" (default), "callable-only"
//! stream = []                        # GET (SSE) and DELETE (session end): like default; [] allows (the default)
//! response_timeout_ms = 30000        # no response head within this: 504
//! forward_query = false              # the query string reaches the upstream (false: dropped)
//! [proxy.identity_headers]           # what the upstream is told of the caller
//! subject = "x-mcp-subject"
//! client_id = "x-mcp-client-id"
//! scopes = "x-mcp-scopes"
//! issuer = "x-mcp-issuer"
//! ```
//!
//! A malformed file, an unknown key, a scope that is not a scope token or
//! a rule naming a scope not in `scopes_supported` is an error naming the
//! line.

use std::time::Duration;

use mcp_resource_guard::ScopeHierarchy;
use mcp_resource_guard::mcp::{ListFilter, McpPolicy, Rule};
use serde::Deserialize;
use toml::Spanned;

type Scopes = Spanned<Vec<Spanned<String>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    required: Vec<Spanned<String>>,
    scopes_supported: Vec<Spanned<String>>,
    default: Spanned<DefaultRule>,
    #[serde(default)]
    implies: InOrder<Scopes>,
    #[serde(default)]
    methods: InOrder<Scopes>,
    #[serde(default)]
    tools: InOrder<Scopes>,
    #[serde(default)]
    prompts: InOrder<Scopes>,
    #[serde(default)]
    resources: InOrder<Scopes>,
    #[serde(default)]
    proxy: ProxySection,
}

/// A TOML table's entries in the order the file lists them: the first
/// glob pattern that matches decides, so the order is the author's, not
/// the alphabet's.
struct InOrder<V>(Vec<(String, V)>);

impl<V> Default for InOrder<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for InOrder<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Entries<V> {
            type Value = InOrder<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(InOrder(out))
            }
        }
        d.deserialize_map(Entries(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum DefaultRule {
    Word(String),
    Scopes(Vec<Spanned<String>>),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProxySection {
    list_filter: Option<Spanned<String>>,
    stream: Option<Spanned<DefaultRule>>,
    response_timeout_ms: Option<Spanned<u64>>,
    #[serde(default)]
    forward_query: bool,
    #[serde(default)]
    identity_headers: IdentitySection,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct IdentitySection {
    subject: Option<Spanned<String>>,
    client_id: Option<Spanned<String>>,
    scopes: Option<Spanned<String>>,
    issuer: Option<Spanned<String>>,
}

/// The headers that tell the upstream who is calling (lowercase names).
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    pub subject: http::HeaderName,
    pub client_id: http::HeaderName,
    pub scopes: http::HeaderName,
    pub issuer: http::HeaderName,
}

/// A policy file, checked.
pub struct PolicyFile {
    pub required: Vec<String>,
    pub scopes_supported: Vec<String>,
    pub hierarchy: ScopeHierarchy,
    pub policy: McpPolicy,
    pub list_filter: ListFilter,
    pub response_timeout: Duration,
    pub identity: IdentityHeaders,
    /// The query string reaches the upstream: the layer does not judge it,
    /// and a server may read it (the legacy SSE transport's `sessionId`).
    pub forward_query: bool,
}

/// Why a policy file was refused: where, and what to fix.
#[derive(Debug)]
pub struct PolicyError(pub String);

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyError {}

/// Headers the identity headers must not be (credentials, framing).
const RESERVED: [&str; 12] = [
    "authorization",
    "proxy-authorization",
    "dpop",
    "cookie",
    "host",
    "connection",
    "content-length",
    "content-type",
    "transfer-encoding",
    "mcp-session-id",
    "mcp-protocol-version",
    "accept",
];

struct Ctx<'a> {
    name: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        msg: impl std::fmt::Display,
    ) -> Result<T, PolicyError> {
        Err(PolicyError(format!(
            "{} line {}: {msg}",
            self.name,
            self.line(span.start)
        )))
    }

    /// A scope token (RFC 6750 §3) that `scopes_supported` lists.
    fn scope(
        &self,
        s: &Spanned<String>,
        supported: Option<&[String]>,
    ) -> Result<String, PolicyError> {
        let v = s.get_ref();
        let token = !v.is_empty()
            && v.bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if !token {
            return self.err(
                s.span(),
                format!("{v:?} is not a scope token (no spaces, quotes or backslashes)"),
            );
        }
        if v == "offline_access" {
            return self.err(s.span(), "offline_access is not a resource scope");
        }
        if let Some(list) = supported
            && !list.iter().any(|x| x == v)
        {
            return self.err(s.span(), format!("{v:?} is not in scopes_supported"));
        }
        Ok(v.clone())
    }

    fn scopes(
        &self,
        list: &[Spanned<String>],
        supported: Option<&[String]>,
    ) -> Result<Vec<String>, PolicyError> {
        list.iter().map(|s| self.scope(s, supported)).collect()
    }

    fn rule(&self, v: &Scopes, supported: &[String]) -> Result<Rule, PolicyError> {
        let scopes = self.scopes(v.get_ref(), Some(supported))?;
        Ok(if scopes.is_empty() {
            Rule::Allow
        } else {
            Rule::require(scopes)
        })
    }

    fn default_rule(
        &self,
        key: &str,
        v: &Spanned<DefaultRule>,
        supported: &[String],
    ) -> Result<Rule, PolicyError> {
        match v.get_ref() {
            DefaultRule::Word(w) if w == "deny" => Ok(Rule::Deny),
            DefaultRule::Word(w) if w == "allow" => Ok(Rule::Allow),
            DefaultRule::Word(w) => self.err(
                v.span(),
                format!("{key} = {w:?}: use \"deny\", \"allow\" or a list of scopes"),
            ),
            DefaultRule::Scopes(list) => {
                let s = self.scopes(list, Some(supported))?;
                Ok(if s.is_empty() {
                    Rule::Allow
                } else {
                    Rule::require(s)
                })
            }
        }
    }

    fn header(
        &self,
        v: &Option<Spanned<String>>,
        default: &'static str,
    ) -> Result<http::HeaderName, PolicyError> {
        let Some(v) = v else {
            return Ok(http::HeaderName::from_static(default));
        };
        let Ok(name) = http::HeaderName::from_bytes(v.get_ref().as_bytes()) else {
            return self.err(v.span(), format!("{:?} is not a header name", v.get_ref()));
        };
        if RESERVED.contains(&name.as_str()) {
            return self.err(
                v.span(),
                format!("{name} cannot carry the caller's identity"),
            );
        }
        Ok(name)
    }
}

/// Reads the policy file at `path`.
pub fn load(path: &str) -> Result<PolicyFile, PolicyError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| PolicyError(format!("{path}: cannot read the policy file: {e}")))?;
    parse(path, &text)
}

/// Parses a policy file's text (`name` appears in errors).
pub fn parse(name: &str, text: &str) -> Result<PolicyFile, PolicyError> {
    let raw: Raw = toml::from_str(text).map_err(|e| PolicyError(format!("{name}: {e}")))?;
    let cx = Ctx { name, text };
    let supported = cx.scopes(&raw.scopes_supported, None)?;
    if supported.is_empty() {
        return Err(PolicyError(format!(
            "{name}: scopes_supported lists no scope"
        )));
    }
    let required = cx.scopes(&raw.required, Some(&supported))?;
    let mut hierarchy = ScopeHierarchy::new();
    for (broad, narrower) in &raw.implies.0 {
        let line_of = narrower.span();
        if !supported.contains(broad) {
            return cx.err(
                line_of,
                format!("[implies] {broad:?} is not in scopes_supported"),
            );
        }
        hierarchy = hierarchy.implies(
            broad.clone(),
            cx.scopes(narrower.get_ref(), Some(&supported))?,
        );
    }
    let default = cx.default_rule("default", &raw.default, &supported)?;
    let stream = match &raw.proxy.stream {
        None => Rule::Allow,
        Some(v) => cx.default_rule("stream", v, &supported)?,
    };
    let mut policy = McpPolicy::builder()
        .default_rule(default)
        .stream_rule(stream);
    for (m, v) in &raw.methods.0 {
        policy = policy.method(m.clone(), cx.rule(v, &supported)?);
    }
    for (t, v) in &raw.tools.0 {
        policy = policy.tool(t.clone(), cx.rule(v, &supported)?);
    }
    for (p, v) in &raw.prompts.0 {
        policy = policy.prompt(p.clone(), cx.rule(v, &supported)?);
    }
    for (r, v) in &raw.resources.0 {
        policy = policy.resource(r.clone(), cx.rule(v, &supported)?);
    }
    let policy = policy
        .build()
        .map_err(|e| PolicyError(format!("{name}: {e}")))?;
    let list_filter = match &raw.proxy.list_filter {
        None => ListFilter::HideDenied,
        Some(v) => {
            match v.get_ref().as_str() {
                "off" => ListFilter::Off,
                "hide-denied" => ListFilter::HideDenied,
                "callable-only" => ListFilter::CallableOnly,
                other => {
                    return cx.err(v.span(), format!("list_filter = {other:?}: use \"off\", \"hide-denied\" or \"callable-only\""));
                }
            }
        }
    };
    let response_timeout = match &raw.proxy.response_timeout_ms {
        None => Duration::from_secs(30),
        Some(v) if (1..=600_000).contains(v.get_ref()) => Duration::from_millis(*v.get_ref()),
        Some(v) => return cx.err(v.span(), "response_timeout_ms: from 1 to 600000"),
    };
    let ih = &raw.proxy.identity_headers;
    let identity = IdentityHeaders {
        subject: cx.header(&ih.subject, "x-mcp-subject")?,
        client_id: cx.header(&ih.client_id, "x-mcp-client-id")?,
        scopes: cx.header(&ih.scopes, "x-mcp-scopes")?,
        issuer: cx.header(&ih.issuer, "x-mcp-issuer")?,
    };
    Ok(PolicyFile {
        required,
        scopes_supported: supported,
        hierarchy,
        policy,
        list_filter,
        response_timeout,
        identity,
        forward_query: raw.proxy.forward_query,
    })
}
