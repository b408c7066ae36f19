//! MCP-aware authorization: per-method, per-tool, per-resource and per-prompt
//! scopes for JSON-RPC traffic on one endpoint, and session binding.
//!
//! [`McpLayer`] goes *inside* the [`GuardLayer`](crate::GuardLayer) (which
//! verifies the token) and in front of the MCP server:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use mcp_resource_guard::mcp::{McpLayer, McpPolicy, Rule, SessionBinding};
//!
//! let policy = McpPolicy::builder()
//!     .default_rule(Rule::require(["todo:read"]))
//!     .tool("add_todo", Rule::require(["todo:read", "todo:write"]))
//!     .tool("delete_*", Rule::require(["todo:read", "todo:delete"]))
//!     .tool("admin_*", Rule::Deny)
//!     .build()?;
//! let layer = McpLayer::new(policy).session_binding(SessionBinding::new());
//! # let _ = layer; Ok(()) }
//! ```
//!
//! # How a request is decided
//!
//! - `POST`: the body is read up to [`max_body_size`](McpLayer::max_body_size)
//!   (default 4 MiB; more gets `413`), and only `method`, `params.name` and
//!   `params.uri` are parsed. A batch (JSON array) passes only if every call
//!   in it does. The exact original bytes go to the MCP server. A body that
//!   is not JSON passes through untouched, so the server answers with its own
//!   parse error; JSON that is not a JSON-RPC message is judged by the default
//!   rule. Messages without a `method` (responses to server requests) pass.
//! - `GET` (the SSE stream), `DELETE` (session end) and other methods carry no
//!   JSON-RPC method: the [`stream_rule`](McpPolicyBuilder::stream_rule) decides.
//! - Rules: `tools/call` is decided by the first matching [`tool`](McpPolicyBuilder::tool)
//!   rule (exact names first, then glob patterns in the order added), else a
//!   `tools/call` [`method`](McpPolicyBuilder::method) rule, else the default;
//!   `resources/read` by [`resource`](McpPolicyBuilder::resource) rules on
//!   `params.uri`, `prompts/get` by [`prompt`](McpPolicyBuilder::prompt) rules
//!   on `params.name`, alike; any other method by its method rule, else the
//!   default. The guard's `required_scopes` apply on top, to every request.
//!
//! # Denial is a step-up
//!
//! A call the token's scopes do not cover gets `403` with
//! `WWW-Authenticate: Bearer error="insufficient_scope", …, scope="…"`. MCP
//! clients (the Python SDK, the TypeScript SDK v2) re-authorize asking for
//! exactly `scope` and retry. The new token replaces the old one, so `scope`
//! lists everything the client should hold afterwards: the guard's required
//! scopes, then what this call needs, then the token's current scopes that
//! this resource supports (so stepping up never loses a privilege and clients
//! do not flip-flop between two tokens). A [`Rule::Deny`] is a plain `403`
//! (`access_denied`) without a step-up challenge: no scope would help.
//!
//! # Session binding
//!
//! With [`SessionBinding`], the first principal (`iss` and `sub`, else
//! `client_id`) seen with an `Mcp-Session-Id` (in the server's response to
//! `initialize`, or in a request) owns it; another principal presenting that
//! session id gets `403` with `{"error":"session_mismatch",…}`. A session id
//! never stands in for a token: every request is still verified.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use tower_layer::Layer;
use tower_service::Service;

use crate::audit::{self, Decision, Joined};
use crate::challenge::{ChallengeInfo, JsonRejection, respond};
use crate::claims::AuthContext;
use crate::config::check_scopes;
use crate::error::{AuthError, AuthErrorKind, BoxError, ConfigError};

const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;
const MCP_SESSION_ID: &str = "mcp-session-id";

/// What a policy entry requires.
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
            Rule::Require(s) => Rule::Require(check_scopes(s)?),
            other => other,
        })
    }
}

/// How granted scopes are matched against required ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScopeMatching {
    /// A required scope must be granted exactly. The default.
    #[default]
    Exact,
    /// A granted scope containing `*` also satisfies every required scope
    /// it matches as a glob (`mcp:exec:functions.*` satisfies
    /// `mcp:exec:functions.delete_todo`).
    GrantedPatterns,
}

/// A `*` glob, or an exact name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern(String);

impl Pattern {
    fn is_glob(&self) -> bool {
        self.0.contains('*')
    }
    fn matches(&self, s: &str) -> bool {
        glob(&self.0, s)
    }
}

/// `*` matches any run of characters (including none); everything else is literal.
pub(crate) fn glob(pattern: &str, s: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = s.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[derive(Debug, Default)]
struct Rules(Vec<(Pattern, Rule)>);

impl Rules {
    fn find(&self, name: &str) -> Option<&Rule> {
        self.0
            .iter()
            .find(|(p, _)| !p.is_glob() && p.0 == name)
            .or_else(|| self.0.iter().find(|(p, _)| p.is_glob() && p.matches(name)))
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
    matching: ScopeMatching,
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
    matching: ScopeMatching,
}

impl McpPolicy {
    /// A policy that allows everything until told otherwise.
    pub fn builder() -> McpPolicyBuilder {
        McpPolicyBuilder {
            methods: Vec::new(),
            tools: Vec::new(),
            resources: Vec::new(),
            prompts: Vec::new(),
            default: Rule::Allow,
            stream: None,
            matching: ScopeMatching::Exact,
        }
    }

    fn rule_for(&self, call: &Call) -> &Rule {
        let p = &self.0;
        let specific = match (
            call.method.as_deref(),
            call.name.as_deref(),
            call.uri.as_deref(),
        ) {
            (Some("tools/call"), Some(name), _) => p.tools.find(name),
            (Some("prompts/get"), Some(name), _) => p.prompts.find(name),
            (Some("resources/read"), _, Some(uri)) => p.resources.find(uri),
            _ => None,
        };
        specific
            .or_else(|| call.method.as_deref().and_then(|m| p.methods.find(m)))
            .unwrap_or(&p.default)
    }

    fn granted(&self, ctx: &AuthContext, scope: &str) -> bool {
        ctx.scopes().contains(scope)
            || (self.0.matching == ScopeMatching::GrantedPatterns
                && ctx
                    .scopes()
                    .iter()
                    .any(|g| g.contains('*') && glob(g, scope)))
    }
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

    /// The rule for `resources/read` of a URI (exact or `*` glob).
    pub fn resource(mut self, uri: impl Into<String>, rule: Rule) -> Self {
        self.resources.push((uri.into(), rule));
        self
    }

    /// The rule for `prompts/get` of a prompt (exact name or `*` glob).
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

    /// How granted scopes match required ones. Defaults to [`ScopeMatching::Exact`].
    pub fn scope_matching(mut self, matching: ScopeMatching) -> Self {
        self.matching = matching;
        self
    }

    /// Checks every scope and pattern and builds the policy.
    pub fn build(self) -> Result<McpPolicy, ConfigError> {
        let rules = |v: Vec<(String, Rule)>| -> Result<Rules, ConfigError> {
            v.into_iter()
                .map(|(p, r)| {
                    if p.is_empty() {
                        return Err(ConfigError::InvalidScope { scope: p });
                    }
                    Ok((Pattern(p), r.validated()?))
                })
                .collect::<Result<_, _>>()
                .map(Rules)
        };
        let default = self.default.validated()?;
        Ok(McpPolicy(Arc::new(PolicyInner {
            methods: rules(self.methods)?,
            tools: rules(self.tools)?,
            resources: rules(self.resources)?,
            prompts: rules(self.prompts)?,
            stream: match self.stream {
                Some(r) => r.validated()?,
                None => default.clone(),
            },
            default,
            matching: self.matching,
        })))
    }
}

/// Remembers which principal owns each `Mcp-Session-Id`. Bounded by count and age.
#[derive(Clone)]
pub struct SessionBinding {
    owners: moka::sync::Cache<Box<str>, Arc<Principal>>,
}

#[derive(Debug, PartialEq, Eq)]
struct Principal {
    issuer: String,
    subject: String,
}

impl Principal {
    fn of(ctx: &AuthContext) -> Option<Self> {
        let subject = ctx.subject().or(ctx.client_id())?;
        Some(Self {
            issuer: ctx.issuer().to_owned(),
            subject: subject.to_owned(),
        })
    }
}

impl fmt::Debug for SessionBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionBinding")
            .field("sessions", &self.owners.entry_count())
            .finish()
    }
}

impl Default for SessionBinding {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionBinding {
    /// At most 100,000 sessions, each remembered for 24 hours after last use.
    pub fn new() -> Self {
        Self::with_limits(100_000, Duration::from_secs(24 * 3600))
    }

    /// At most `max_sessions`, each remembered for `idle` after last use.
    pub fn with_limits(max_sessions: u64, idle: Duration) -> Self {
        Self {
            owners: moka::sync::Cache::builder()
                .max_capacity(max_sessions)
                .time_to_idle(idle)
                .build(),
        }
    }

    /// `Ok` when `principal` may use `session` (binding it at first sight).
    fn check(&self, session: &str, principal: Principal) -> bool {
        let principal = Arc::new(principal);
        let owner = self.owners.get_with(session.into(), || principal.clone());
        *owner == *principal
    }
}

/// The MCP policy layer. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct McpLayer {
    policy: McpPolicy,
    max_body: usize,
    sessions: Option<SessionBinding>,
}

impl McpLayer {
    /// A layer enforcing `policy`, without session binding.
    pub fn new(policy: McpPolicy) -> Self {
        Self {
            policy,
            max_body: DEFAULT_MAX_BODY,
            sessions: None,
        }
    }

    /// The largest request body read, in bytes; a larger one gets `413`.
    /// Defaults to 4 MiB.
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Bind sessions to principals. Defaults to off.
    pub fn session_binding(mut self, binding: SessionBinding) -> Self {
        self.sessions = Some(binding);
        self
    }
}

impl<S> Layer<S> for McpLayer {
    type Service = McpService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        McpService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`McpLayer`].
#[derive(Debug, Clone)]
pub struct McpService<S> {
    inner: S,
    layer: McpLayer,
}

/// One JSON-RPC message, as far as the policy needs it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Call {
    method: Option<String>,
    name: Option<String>,
    uri: Option<String>,
    /// A key the policy reads appeared twice, or had the wrong type.
    ambiguous: bool,
}

/// What the body holds.
#[derive(Debug, PartialEq, Eq)]
enum Peek {
    /// Not JSON: pass it on untouched.
    NotJson,
    /// JSON-RPC messages (one, or a batch).
    Calls(Vec<Call>),
}

struct CallVisitor;

impl<'de> Visitor<'de> for CallVisitor {
    type Value = Call;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Call, A::Error> {
        let mut call = Call::default();
        let mut seen_method = false;
        let mut seen_params = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "method" => {
                    call.ambiguous |= seen_method;
                    seen_method = true;
                    match map.next_value::<serde_json::Value>()? {
                        serde_json::Value::String(m) => call.method = Some(m),
                        _ => call.ambiguous = true,
                    }
                }
                "params" => {
                    call.ambiguous |= seen_params;
                    seen_params = true;
                    let p = map.next_value::<Params>()?;
                    call.ambiguous |= p.ambiguous;
                    call.name = p.name;
                    call.uri = p.uri;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(call)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Call, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Call {
            ambiguous: true,
            ..Call::default()
        })
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Call, E> {
        Ok(Call {
            ambiguous: true,
            ..Call::default()
        })
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Call, E> {
        Ok(Call {
            ambiguous: true,
            ..Call::default()
        })
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Call, E> {
        Ok(Call {
            ambiguous: true,
            ..Call::default()
        })
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Call, E> {
        Ok(Call {
            ambiguous: true,
            ..Call::default()
        })
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Call, E> {
        Ok(Call {
            ambiguous: true,
            ..Call::default()
        })
    }
    fn visit_unit<E: de::Error>(self) -> Result<Call, E> {
        Ok(Call {
            ambiguous: true,
            ..Call::default()
        })
    }
}

impl<'de> serde::Deserialize<'de> for Call {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CallVisitor)
    }
}

#[derive(Default)]
struct Params {
    name: Option<String>,
    uri: Option<String>,
    ambiguous: bool,
}

impl<'de> serde::Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Params;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("params")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
                let mut p = Params::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let slot = match &*key {
                        "name" => &mut p.name,
                        "uri" => &mut p.uri,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    let dup = slot.is_some();
                    match map.next_value::<serde_json::Value>()? {
                        serde_json::Value::String(s) => *slot = Some(s),
                        _ => p.ambiguous = true,
                    }
                    p.ambiguous |= dup;
                }
                Ok(p)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Params, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Params::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<Params, E> {
                Ok(Params::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses only what the policy needs.
fn peek(body: &[u8]) -> Peek {
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    let parsed = match start.map(|i| body[i]) {
        Some(b'[') => serde_json::from_slice::<Vec<Call>>(body),
        Some(b'{') => serde_json::from_slice::<Call>(body).map(|c| vec![c]),
        _ => return Peek::NotJson,
    };
    match parsed {
        Ok(calls) => Peek::Calls(calls),
        Err(_) => Peek::NotJson,
    }
}

/// [`peek`] for the fuzz targets: the calls' (method, name, uri, ambiguous).
#[cfg(feature = "fuzzing")]
pub(crate) type PeekedCall = (Option<String>, Option<String>, Option<String>, bool);

/// [`peek`] for the fuzz targets.
#[cfg(feature = "fuzzing")]
pub(crate) fn peek_calls(body: &[u8]) -> Option<Vec<PeekedCall>> {
    match peek(body) {
        Peek::NotJson => None,
        Peek::Calls(calls) => Some(
            calls
                .into_iter()
                .map(|c| (c.method, c.name, c.uri, c.ambiguous))
                .collect(),
        ),
    }
}

/// The outcome for a set of calls.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Allow,
    Deny,
    /// These scopes are missing (in rule order, without repeats).
    Need(Vec<String>),
}

impl McpPolicy {
    fn judge<'a>(
        &self,
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
                        let ok = ctx.is_some_and(|c| self.granted(c, s));
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

    fn rules_for_calls<'a>(&'a self, calls: &'a [Call]) -> Vec<&'a Rule> {
        calls
            .iter()
            .filter(|c| c.method.is_some() || c.ambiguous)
            .map(|c| {
                if c.ambiguous {
                    &self.0.default
                } else {
                    self.rule_for(c)
                }
            })
            .collect()
    }
}

fn plain_response<B: From<String>>(
    status: StatusCode,
    error: &str,
    description: &str,
) -> Response<B> {
    let body = serde_json::json!({ "error": error, "error_description": description }).to_string();
    let mut res = Response::new(B::from(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqB, ResB> Service<Request<ReqB>> for McpService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    ReqB: Body<Data = Bytes> + From<Bytes> + Send + 'static,
    ReqB::Error: Into<BoxError>,
    ResB: From<String> + Send + 'static,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<ResB>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let ctx = parts.extensions.get::<AuthContext>().cloned();
            let info = parts.extensions.get::<ChallengeInfo>().cloned();
            let Some(info) = info else {
                return Ok(plain_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "server misconfiguration: McpLayer needs GuardLayer in front of it",
                ));
            };
            let policy = &layer.policy;

            let mut calls: Vec<Call> = Vec::new();
            let (verdict, body) = if parts.method == Method::POST {
                let declared = parts
                    .headers
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                if declared.is_some_and(|l| l > layer.max_body as u64) {
                    return Ok(too_large(ctx.as_ref()));
                }
                let bytes = match Limited::new(body, layer.max_body).collect().await {
                    Ok(c) => c.to_bytes(),
                    Err(e) => {
                        if e.downcast_ref::<http_body_util::LengthLimitError>()
                            .is_some()
                        {
                            return Ok(too_large(ctx.as_ref()));
                        }
                        audit::record(&Decision {
                            layer: "mcp",
                            allow: false,
                            reason: "body_unreadable",
                            status: Some(400),
                            detail: "the request body could not be read",
                            ctx: ctx.as_ref(),
                            ..Decision::default()
                        });
                        return Ok(plain_response(
                            StatusCode::BAD_REQUEST,
                            "invalid_request",
                            "The request body could not be read",
                        ));
                    }
                };
                let verdict = match peek(&bytes) {
                    Peek::NotJson => Verdict::Allow,
                    Peek::Calls(peeked) => {
                        let rules = policy.rules_for_calls(&peeked);
                        let v = policy.judge(rules.iter().copied(), ctx.as_ref());
                        calls = peeked;
                        v
                    }
                };
                (verdict, ReqB::from(bytes))
            } else {
                (policy.judge([&policy.0.stream], ctx.as_ref()), body)
            };
            let methods = Joined(calls.iter().filter_map(|c| c.method.as_deref()), ",");
            let tools = Joined(
                calls
                    .iter()
                    .filter_map(|c| c.name.as_deref().or(c.uri.as_deref())),
                ",",
            );
            let decision = |allow, reason, status, detail, required: &[String]| {
                audit::record(&Decision {
                    layer: "mcp",
                    allow,
                    reason,
                    status,
                    detail,
                    ctx: ctx.as_ref(),
                    scopes_required: required,
                    mcp_methods: Some(&methods),
                    mcp_tools: Some(&tools),
                    ..Decision::default()
                });
            };

            match verdict {
                Verdict::Allow => {}
                Verdict::Deny => {
                    decision(
                        false,
                        "access_denied",
                        Some(403),
                        "the MCP policy denies this call",
                        &[],
                    );
                    return Ok(plain_response(
                        StatusCode::FORBIDDEN,
                        "access_denied",
                        "This MCP request is not allowed",
                    ));
                }
                Verdict::Need(need) => {
                    let Some(ctx) = &ctx else {
                        decision(
                            false,
                            "missing_token",
                            Some(401),
                            "anonymous MCP request that needs a scope",
                            &need,
                        );
                        let error = AuthError::new(
                            AuthErrorKind::MissingToken,
                            "anonymous MCP request that needs a scope",
                        );
                        return Ok(respond(&JsonRejection, info.0.rejection(error, None)));
                    };
                    decision(
                        false,
                        "insufficient_scope",
                        Some(403),
                        "the token lacks a scope this MCP call needs",
                        &need,
                    );
                    let scope = info.0.step_up_scope(
                        need.iter().map(String::as_str).chain(
                            ctx.scopes()
                                .iter()
                                .filter(|s| info.0.supported.iter().any(|x| x == s)),
                        ),
                    );
                    let error = AuthError::new(
                        AuthErrorKind::InsufficientScope,
                        "the token lacks a scope this MCP call needs",
                    );
                    return Ok(respond(
                        &JsonRejection,
                        info.0.rejection(error, Some(&scope)),
                    ));
                }
            }

            let principal = ctx.as_ref().and_then(Principal::of);
            if let (Some(binding), Some(p)) = (&layer.sessions, &principal)
                && let Some(id) = parts
                    .headers
                    .get(MCP_SESSION_ID)
                    .and_then(|v| v.to_str().ok())
            {
                let p = Principal {
                    issuer: p.issuer.clone(),
                    subject: p.subject.clone(),
                };
                if !binding.check(id, p) {
                    decision(
                        false,
                        "session_mismatch",
                        Some(403),
                        "the session id belongs to another principal",
                        &[],
                    );
                    return Ok(plain_response(
                        StatusCode::FORBIDDEN,
                        "session_mismatch",
                        "This MCP session belongs to another principal",
                    ));
                }
            }
            decision(true, "policy_satisfied", None, "", &[]);
            let res = inner.call(Request::from_parts(parts, body)).await?;
            if let (Some(binding), Some(p)) = (&layer.sessions, principal)
                && let Some(id) = res
                    .headers()
                    .get(MCP_SESSION_ID)
                    .and_then(|v| v.to_str().ok())
            {
                // The server just issued (or echoed) this session: bind it.
                binding.check(id, p);
            }
            Ok(res)
        })
    }
}

fn too_large<B: From<String>>(ctx: Option<&AuthContext>) -> Response<B> {
    audit::record(&Decision {
        layer: "mcp",
        allow: false,
        reason: "body_too_large",
        status: Some(413),
        detail: "the request body exceeds the size limit",
        ctx,
        ..Decision::default()
    });
    plain_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_too_large",
        "The request body exceeds the size limit",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("admin_*", "admin_delete"));
        assert!(glob("admin_*", "admin_"));
        assert!(!glob("admin_*", "xadmin_"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "a-b-c"));
        assert!(!glob("a*b*c", "a-c-b"));
        assert!(glob(
            "mcp:exec:functions.*",
            "mcp:exec:functions.delete_todo"
        ));
        assert!(!glob("exact", "exactly"));
        assert!(glob("*.txt", "file.txt"));
        assert!(!glob("ab*ba", "aba"));
    }

    #[test]
    fn peeking() {
        let c = |m: &str, n: Option<&str>| Call {
            method: Some(m.into()),
            name: n.map(Into::into),
            ..Call::default()
        };
        assert_eq!(
            peek(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":[1,{"name":"y"}]}}}"#),
            Peek::Calls(vec![c("tools/call", Some("x"))])
        );
        assert_eq!(
            peek(br#" [{"method":"tools/list"},{"id":1,"result":{}}]"#),
            Peek::Calls(vec![c("tools/list", None), Call::default()])
        );
        assert_eq!(peek(b"not json"), Peek::NotJson);
        assert_eq!(peek(b"{\"method\":"), Peek::NotJson);
        assert_eq!(peek(b""), Peek::NotJson);
        let dup = peek(br#"{"method":"tools/call","params":{"name":"a","name":"b"}}"#);
        assert!(matches!(dup, Peek::Calls(ref v) if v[0].ambiguous));
        let dup = peek(br#"{"method":"tools/list","method":"tools/call"}"#);
        assert!(matches!(dup, Peek::Calls(ref v) if v[0].ambiguous));
        let num = peek(br#"{"method":5}"#);
        assert!(matches!(num, Peek::Calls(ref v) if v[0].ambiguous));
        let arr = peek(br#"[1, "x"]"#);
        assert!(matches!(arr, Peek::Calls(ref v) if v.iter().all(|c| c.ambiguous)));
    }

    #[test]
    fn rule_selection() {
        let p = McpPolicy::builder()
            .default_rule(Rule::require(["d"]))
            .method("tools/list", Rule::require(["r"]))
            .tool("admin_*", Rule::Deny)
            .tool("admin_status", Rule::Allow)
            .tool("*", Rule::require(["t"]))
            .resource("file:///secret/*", Rule::require(["s"]))
            .prompt("p", Rule::require(["p"]))
            .build()
            .unwrap();
        let call = |m: &str, name: Option<&str>, uri: Option<&str>| Call {
            method: Some(m.into()),
            name: name.map(Into::into),
            uri: uri.map(Into::into),
            ambiguous: false,
        };
        assert_eq!(
            p.rule_for(&call("tools/list", None, None)),
            &Rule::require(["r"])
        );
        assert_eq!(
            p.rule_for(&call("tools/call", Some("admin_x"), None)),
            &Rule::Deny
        );
        assert_eq!(
            p.rule_for(&call("tools/call", Some("admin_status"), None)),
            &Rule::Allow
        );
        assert_eq!(
            p.rule_for(&call("tools/call", Some("other"), None)),
            &Rule::require(["t"])
        );
        assert_eq!(
            p.rule_for(&call("resources/read", None, Some("file:///secret/a"))),
            &Rule::require(["s"])
        );
        assert_eq!(
            p.rule_for(&call("resources/read", None, Some("file:///public"))),
            &Rule::require(["d"])
        );
        assert_eq!(
            p.rule_for(&call("prompts/get", Some("p"), None)),
            &Rule::require(["p"])
        );
        assert_eq!(
            p.rule_for(&call("initialize", None, None)),
            &Rule::require(["d"])
        );
        assert!(
            McpPolicy::builder()
                .tool("x", Rule::require(["a b"]))
                .build()
                .is_err()
        );
        assert!(McpPolicy::builder().tool("", Rule::Allow).build().is_err());
    }
}
