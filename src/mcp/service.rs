//! [`Mcp`]: reads the body (bounded), judges every message, checks
//! the session and the tasks, forwards the exact bytes, then hands the
//! answer to [`reply`](super::reply).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderName, Method, Request, Response};
use http_body::Body;
use serde_json::Value;
use tower_service::Service;

use super::body;
use super::headers::{Mismatch, cross_check, single};
use super::json::NotForwarded;
use super::jsonrpc::{Message, Reference, Refusal, peek};
use super::layer::Config;
use super::list_filter::ListFilter;
use super::ownership::Principal;
use super::policy::Verdict;
use super::reply::{Forwarded, reply};
use super::resource_uri::normalize;
use super::session::{MCP_SESSION_ID, session_id};
use crate::challenge::{JsonRpcError, Scheme};
use crate::claims::AuthContext;
use crate::error::{AuthError, AuthErrorKind, BoxError};
use crate::guard::policy::{Caller, no_guard};
use crate::guard::revision::{PROTOCOL_VERSION, Wire};
use crate::observe::audit::{self, Decision, Joined};

/// The `Last-Event-ID` request header (SSE resumption).
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// The response future of [`Mcp`]: boxed, as it awaits the body.
pub type McpFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

/// The service made by [`McpLayer`](super::McpLayer).
#[derive(Clone)]
pub struct Mcp<S> {
    pub(super) inner: S,
    pub(super) config: Arc<Config>,
}

impl<S: fmt::Debug> fmt::Debug for Mcp<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mcp")
            .field("inner", &self.inner)
            .field("policy", &self.config.policy)
            .finish_non_exhaustive()
    }
}

/// One request being judged: what the audit trail and the answers need.
pub(super) struct Judging<'a> {
    pub(super) config: &'a Config,
    pub(super) ctx: Option<&'a AuthContext>,
    pub(super) messages: &'a [Message],
    /// The `id` every JSON-RPC error answers with: a single message's, else
    /// `null`.
    pub(super) id: &'a Value,
}

/// What a message acts on, as judged (a resource URI in its judged form).
fn target(m: &Message) -> Option<std::borrow::Cow<'_, str>> {
    let uri = |u: &str| normalize(u).unwrap_or_else(|_| u.to_owned()).into();
    m.name
        .as_deref()
        .map(Into::into)
        .or_else(|| m.uri.as_deref().map(uri))
        .or(match &m.reference {
            Some(Reference::Prompt(n)) => Some(n.as_str().into()),
            Some(Reference::Resource(u)) => Some(uri(u)),
            None => None,
        })
        .or_else(|| m.task_id.as_deref().map(Into::into))
}

impl Judging<'_> {
    pub(super) fn audit(&self, allow: bool, error: Option<&AuthError>, required: &[String]) {
        let methods = Joined(
            self.messages.iter().filter_map(|m| m.method.as_deref()),
            ",",
        );
        let targets = Joined(self.messages.iter().filter_map(target), ",");
        audit::record(&Decision {
            layer: "mcp",
            allow,
            reason: error.map_or("policy_satisfied", |e| e.kind().as_str()),
            status: error.map(|e| e.status().as_u16()),
            detail: error.map_or("", AuthError::detail),
            ctx: self.ctx,
            scopes_required: required,
            mcp_methods: Some(&methods),
            mcp_tools: Some(&targets),
            ..Decision::default()
        });
    }

    /// A denial: the status and challenge of `error` (`scope` is a 403
    /// step-up's), and a JSON-RPC error body carrying the request's `id`.
    pub(super) fn deny<B>(
        &self,
        error: AuthError,
        scope: Option<&str>,
        required: &[String],
    ) -> Response<B>
    where
        B: From<String>,
    {
        self.audit(false, Some(&error), required);
        let jsonrpc = JsonRpcError::for_kind(error.kind(), self.id.clone());
        let mut rejection =
            self.config
                .shared
                .challenger
                .rejection(error, scope, Scheme::of(self.ctx));
        rejection.set_jsonrpc(jsonrpc);
        self.config.shared.respond(rejection)
    }

    /// A refusal of a request the layer cannot judge: `400`, a JSON-RPC error.
    fn refuse<B>(&self, refusal: Refusal) -> Response<B>
    where
        B: From<String>,
    {
        let jsonrpc = JsonRpcError::new(refusal.code, refusal.message(), self.id.clone());
        self.jsonrpc(refusal.detail, jsonrpc)
    }

    /// A stateless request whose headers disagree with its body: `-32020`
    /// (or `-32600`) with the request's `id`.
    fn mismatch<B>(&self, m: Mismatch) -> Response<B>
    where
        B: From<String>,
    {
        let jsonrpc = JsonRpcError::new(m.code, m.message(), m.id.clone());
        self.jsonrpc(m.detail, jsonrpc)
    }

    fn jsonrpc<B>(&self, detail: &'static str, jsonrpc: JsonRpcError) -> Response<B>
    where
        B: From<String>,
    {
        let error = AuthError::new(AuthErrorKind::InvalidMessage, detail);
        self.audit(false, Some(&error), &[]);
        let rejection = self.config.shared.challenger.jsonrpc(error, jsonrpc);
        self.config.shared.respond(rejection)
    }

    /// The answer to a request not forwarded.
    fn stop<B>(&self, why: NotForwarded) -> Response<B>
    where
        B: From<String>,
    {
        match why {
            NotForwarded::Denied(error) => self.deny(error, None, &[]),
            NotForwarded::Refused(refusal) => self.refuse(refusal),
        }
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Mcp<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    ResB: From<String>,
    ReqB: Body<Data = Bytes> + From<Bytes> + Send + 'static,
    ReqB::Error: Into<BoxError>,
    ResB: Body + From<String> + Send + 'static,
    ResB::Data: Send,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = McpFuture<Response<ResB>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(serve(config, inner, req))
    }
}

/// The session a request names, after its wire is known: on the stateless
/// wire there are none (an `Mcp-Session-Id` and a `Last-Event-ID` are
/// removed, so no server behind reads them as the session wire's); on the
/// session wire, the one named (its owner is checked next).
fn session_of(
    config: &Config,
    parts: &mut Parts,
    wire: Wire,
) -> Result<Option<String>, NotForwarded> {
    if wire == Wire::Stateless {
        parts.headers.remove(&MCP_SESSION_ID);
        parts.headers.remove(LAST_EVENT_ID);
        return Ok(None);
    }
    if config.lists != ListFilter::Off && parts.headers.contains_key(LAST_EVENT_ID) {
        return Err(Refusal::invalid(
            "Last-Event-ID while lists are filtered: a resumed stream could replay an unfiltered list",
        )
        .into());
    }
    Ok(session_id(&parts.headers)?.map(str::to_owned))
}

/// Judges one request and, if it passes, forwards it.
async fn serve<S, ReqB, ResB>(
    config: Arc<Config>,
    mut inner: S,
    req: Request<ReqB>,
) -> Result<Response<ResB>, S::Error>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: From<String>,
    ReqB: Body<Data = Bytes> + From<Bytes>,
    ReqB::Error: Into<BoxError>,
    ResB: Body + From<String>,
    ResB::Error: Into<BoxError>,
{
    let (mut parts, body) = req.into_parts();
    let caller = Caller::of(&parts.extensions);
    let ctx = caller.context().cloned();
    let mut judging = Judging {
        config: &config,
        ctx: ctx.as_ref(),
        messages: &[],
        id: &Value::Null,
    };
    if let Caller::NoGuard = caller {
        return Ok(judging.deny(no_guard("mcp"), None, &[]));
    }
    let store = config.shared.store.as_ref();
    let policy = &config.policy;
    let messages;
    let (wire, rules, body) = if parts.method == Method::POST {
        let bytes = match body::read(&parts.headers, body, config.max_body).await {
            Ok(b) => b,
            Err(why) => return Ok(judging.stop(why)),
        };
        messages = match peek(&bytes, config.max_batch) {
            Ok(m) => m,
            Err(refusal) => return Ok(judging.refuse(refusal)),
        };
        let batch = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
        judging.messages = &messages;
        if let ([m], false) = (messages.as_slice(), batch) {
            judging.id = m.id.as_ref().unwrap_or(&Value::Null);
        }
        let wire = match cross_check(&parts.headers, &messages, batch) {
            Ok(w) => w,
            Err(m) => return Ok(judging.mismatch(m)),
        };
        if batch && messages.iter().any(|m| config.filters_answer_to(m)) {
            return Ok(judging.refuse(Refusal::invalid(
                "a batch holding a request whose answer the layer filters (only a single message's answer is filtered)",
            )));
        }
        let mut rules = Vec::with_capacity(messages.len());
        for m in &messages {
            match policy.rule_for(m) {
                Ok(r) => rules.extend(r.iter()),
                Err(refusal) => return Ok(judging.refuse(refusal)),
            }
        }
        (wire, rules, ReqB::from(bytes))
    } else {
        if parts.method != Method::GET && parts.method != Method::DELETE {
            let error = AuthError::new(
                AuthErrorKind::MethodNotAllowed,
                "a method other than GET, POST and DELETE: the layer cannot judge it",
            );
            return Ok(judging.deny(error, None, &[]));
        }
        if !body.is_end_stream() {
            return Ok(judging.refuse(Refusal::invalid(
                "a GET or DELETE with a body: the layer judges no body there, a server might read one",
            )));
        }
        let wire = match single(&parts.headers, &PROTOCOL_VERSION) {
            Ok(v) => v.map_or(Wire::Session, Wire::of_version),
            Err(()) => {
                return Ok(judging.refuse(Refusal::invalid(
                    "the MCP-Protocol-Version header is repeated or not visible ASCII",
                )));
            }
        };
        (wire, vec![policy.stream_rule()], body)
    };
    let session = match session_of(&config, &mut parts, wire) {
        Ok(s) => s,
        Err(why) => return Ok(judging.stop(why)),
    };
    // The owner checks are boxed: most layers bind neither sessions nor
    // tasks, and their futures would make every request's future larger.
    if let (Some(binding), Some(id)) = (&config.sessions, &session) {
        let principal = Principal::of(ctx.as_ref());
        if let Err(error) = Box::pin(binding.owners.check(id, &principal, store)).await {
            return Ok(judging.deny(error, None, &[]));
        }
    }
    if let Some(tasks) = &config.tasks {
        let principal = Principal::of(ctx.as_ref());
        if let Err(why) = Box::pin(tasks.check(judging.messages, &principal, store)).await {
            return Ok(judging.stop(why));
        }
    }

    match policy.judge(&config.shared, rules, ctx.as_ref()) {
        Verdict::Allow => {}
        Verdict::Deny => {
            let error = AuthError::new(
                AuthErrorKind::AccessDenied,
                "the MCP policy denies this call",
            );
            return Ok(judging.deny(error, None, &[]));
        }
        Verdict::Need(need) => {
            let Some(ctx) = &ctx else {
                let error = AuthError::new(
                    AuthErrorKind::MissingToken,
                    "anonymous MCP request that needs a scope",
                );
                return Ok(judging.deny(error, None, &need));
            };
            let needed: Vec<&str> = need.iter().map(String::as_str).collect();
            let scope = config.shared.challenge_scope(wire, ctx, &needed, true);
            let error = AuthError::new(
                AuthErrorKind::InsufficientScope,
                "the token lacks a scope this MCP call needs",
            );
            return Ok(judging.deny(error, Some(&scope), &need));
        }
    }
    judging.audit(true, None, &[]);
    let method = parts.method.clone();
    let res = inner.call(Request::from_parts(parts, body)).await?;
    if config.sessions.is_none() && config.tasks.is_none() && config.lists == ListFilter::Off {
        return Ok(res);
    }
    let forwarded = Forwarded {
        method,
        wire,
        session,
    };
    Ok(Box::pin(reply(&judging, forwarded, res)).await)
}
