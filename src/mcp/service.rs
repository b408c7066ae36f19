//! [`McpService`]: reads the body (bounded), judges every message, checks
//! the session, then forwards the exact bytes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::request::Parts;
use http::{Method, Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use serde_json::Value;
use tower_service::Service;

use super::headers::{Mismatch, cross_check};
use super::jsonrpc::{Message, Reference, Refusal, peek};
use super::list_filter::{Judge, ListFilter, ListKind};
use super::policy::{McpPolicy, Verdict};
use super::session::{MCP_SESSION_ID, Principal, SessionBinding, session_id};
use crate::audit::{self, Decision, Joined};
use crate::challenge::{JsonRpcError, RejectionBody, Scheme};
use crate::claims::AuthContext;
use crate::error::{AuthError, AuthErrorKind, BoxError};
use crate::guard::policy::{Caller, Shared, no_guard};
use crate::revision::Wire;

/// The largest list answer the layer reads to filter it.
const MAX_LIST: usize = 8 * 1024 * 1024;

/// The response future of [`McpService`]: boxed, as it awaits the body.
pub type ResponseFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

/// What an [`McpLayer`](super::McpLayer) judges with: its guard's policy
/// and answers, the MCP policy, the limits, the session bindings.
#[derive(Clone)]
pub(super) struct Config<R> {
    pub(super) shared: Arc<Shared>,
    pub(super) rejection: R,
    pub(super) policy: McpPolicy,
    pub(super) max_body: usize,
    pub(super) max_batch: usize,
    pub(super) sessions: Option<SessionBinding>,
    pub(super) lists: ListFilter,
}

/// The service made by [`McpLayer`](super::McpLayer).
#[derive(Clone)]
pub struct McpService<S, R> {
    pub(super) inner: S,
    pub(super) config: Arc<Config<R>>,
}

impl<S: fmt::Debug, R: fmt::Debug> fmt::Debug for McpService<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpService")
            .field("inner", &self.inner)
            .field("policy", &self.config.policy)
            .field("rejection", &self.config.rejection)
            .finish_non_exhaustive()
    }
}

/// One request being judged: what the audit trail and the answers need.
struct Judging<'a, R> {
    config: &'a Config<R>,
    ctx: Option<&'a AuthContext>,
    messages: &'a [Message],
}

impl<R> Judging<'_, R> {
    fn audit(&self, allow: bool, error: Option<&AuthError>, required: &[String]) {
        let methods = Joined(
            self.messages.iter().filter_map(|m| m.method.as_deref()),
            ",",
        );
        let targets = Joined(
            self.messages.iter().filter_map(|m| {
                m.name
                    .as_deref()
                    .or(m.uri.as_deref())
                    .or(match &m.reference {
                        Some(Reference::Prompt(n)) => Some(n.as_str()),
                        Some(Reference::Resource(u)) => Some(u.as_str()),
                        None => None,
                    })
            }),
            ",",
        );
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

    /// A denial with an OAuth answer (`scope` is a 403 step-up's).
    fn deny<B>(&self, error: AuthError, scope: Option<&str>, required: &[String]) -> Response<B>
    where
        R: RejectionBody<B>,
    {
        self.audit(false, Some(&error), required);
        let scheme = Scheme::of(self.ctx);
        self.config
            .shared
            .deny(&self.config.rejection, error, scope, scheme, None)
    }

    /// A refusal of a body the layer cannot judge: a JSON-RPC error, `id` null.
    fn refuse<B>(&self, refusal: Refusal) -> Response<B>
    where
        R: RejectionBody<B>,
    {
        let jsonrpc = JsonRpcError::new(refusal.code, refusal.message(), Value::Null);
        self.jsonrpc(refusal.detail, jsonrpc)
    }

    /// A stateless request whose headers disagree with its body: `-32020`
    /// (or `-32600`) with the request's `id`.
    fn mismatch<B>(&self, m: Mismatch) -> Response<B>
    where
        R: RejectionBody<B>,
    {
        let jsonrpc = JsonRpcError::new(m.code, m.message(), m.id.clone());
        self.jsonrpc(m.detail, jsonrpc)
    }

    fn jsonrpc<B>(&self, detail: &'static str, jsonrpc: JsonRpcError) -> Response<B>
    where
        R: RejectionBody<B>,
    {
        let error = AuthError::new(AuthErrorKind::InvalidMessage, detail);
        self.audit(false, Some(&error), &[]);
        crate::challenge::respond(
            &self.config.rejection,
            self.config.shared.challenger.jsonrpc(error, jsonrpc),
        )
    }
}

/// Reads a POST body up to the layer's limit.
async fn read_body<B>(
    parts: &Parts,
    body: B,
    max: usize,
) -> Result<Bytes, Result<AuthError, Refusal>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    if let Some(enc) = parts.headers.get(CONTENT_ENCODING)
        && !enc.as_bytes().eq_ignore_ascii_case(b"identity")
    {
        return Err(Err(Refusal::parse(
            "the body is compressed (Content-Encoding): the layer cannot judge it",
        )));
    }
    let too_large = || {
        AuthError::new(
            AuthErrorKind::BodyTooLarge,
            "the request body exceeds the size limit",
        )
    };
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|l| l > max as u64) {
        return Err(Ok(too_large()));
    }
    match Limited::new(body, max).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(Ok(too_large()))
        }
        Err(_) => Err(Err(Refusal::parse("the request body could not be read"))),
    }
}

impl<S, R, ReqB, ResB> Service<Request<ReqB>> for McpService<S, R>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    R: RejectionBody<ResB>,
    ReqB: Body<Data = Bytes> + From<Bytes> + Send + 'static,
    ReqB::Error: Into<BoxError>,
    ResB: Body + From<String> + Send + 'static,
    ResB::Data: Send,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<Response<ResB>, S::Error>;

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

/// Judges one request and, if it passes, forwards it.
async fn serve<S, R, ReqB, ResB>(
    config: Arc<Config<R>>,
    mut inner: S,
    req: Request<ReqB>,
) -> Result<Response<ResB>, S::Error>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    R: RejectionBody<ResB>,
    ReqB: Body<Data = Bytes> + From<Bytes>,
    ReqB::Error: Into<BoxError>,
    ResB: Body + From<String>,
    ResB::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let caller = Caller::of(&parts.extensions);
    let ctx = caller.context().cloned();
    let mut judging = Judging {
        config: &config,
        ctx: ctx.as_ref(),
        messages: &[],
    };
    if let Caller::NoGuard = caller {
        return Ok(judging.deny(no_guard("mcp"), None, &[]));
    }
    let principal = || Principal::of(ctx.as_ref());
    // Sessions exist on the session wire only; a stateless request's
    // `Mcp-Session-Id` is ignored (and passed on), as the spec says.
    let mut wire = Wire::of_headers(&parts.headers);
    let session = match wire {
        Wire::Stateless => None,
        Wire::Session => match session_id(&parts.headers) {
            Ok(s) => s.map(str::to_owned),
            Err(e) => return Ok(judging.deny(e, None, &[])),
        },
    };
    let store = config.shared.store.as_ref();
    if let (Some(binding), Some(id)) = (&config.sessions, &session)
        && let Err(e) = binding.check(id, &principal(), store).await
    {
        return Ok(judging.deny(e, None, &[]));
    }

    let policy = &config.policy;
    let messages;
    let mut list = None;
    let (rules, body) = if parts.method == Method::POST {
        let bytes = match read_body(&parts, body, config.max_body).await {
            Ok(b) => b,
            Err(Ok(error)) => return Ok(judging.deny(error, None, &[])),
            Err(Err(refusal)) => return Ok(judging.refuse(refusal)),
        };
        messages = match peek(&bytes, config.max_batch) {
            Ok(m) => m,
            Err(refusal) => return Ok(judging.refuse(refusal)),
        };
        judging.messages = &messages;
        if config.lists != ListFilter::Off {
            list = ListKind::of(&messages);
        }
        let batch = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
        match cross_check(&parts.headers, &messages, batch) {
            Ok(w) => wire = w,
            Err(m) => return Ok(judging.mismatch(m)),
        }
        let mut rules = Vec::with_capacity(messages.len());
        for m in &messages {
            match policy.rule_for(m) {
                Ok(rule) => rules.extend(rule),
                Err(refusal) => return Ok(judging.refuse(refusal)),
            }
        }
        (rules, ReqB::from(bytes))
    } else {
        (vec![policy.stream_rule()], body)
    };

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
    if let (Some(binding), Wire::Session) = (&config.sessions, wire) {
        match &session {
            // The server issued a session for this request: bind it.
            None => {
                if let Some(id) = res
                    .headers()
                    .get(MCP_SESSION_ID)
                    .and_then(|v| v.to_str().ok())
                    && let Err(e) = binding.bind(id, principal(), store).await
                {
                    return Ok(judging.deny(e, None, &[]));
                }
            }
            Some(id) if method == Method::DELETE && res.status().is_success() => {
                binding.end(id, store).await;
            }
            Some(_) => {}
        }
    }
    let Some(kind) = list else {
        return Ok(res);
    };
    let judge = Judge {
        filter: config.lists,
        policy: &config.policy,
        shared: &config.shared,
        ctx: ctx.as_ref(),
        wire,
    };
    Ok(filtered(&judging, &judge, kind, res).await)
}

/// The list answer filtered for the caller, or `502` when it cannot be.
async fn filtered<R, ResB>(
    judging: &Judging<'_, R>,
    judge: &Judge<'_>,
    kind: ListKind,
    res: Response<ResB>,
) -> Response<ResB>
where
    R: RejectionBody<ResB>,
    ResB: Body + From<String>,
    ResB::Error: Into<BoxError>,
{
    let (mut parts, body) = res.into_parts();
    if !parts.status.is_success() {
        // An error carries no list.
        return Response::from_parts(parts, body);
    }
    let kind_of = |prefix: &str| {
        parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with(prefix))
    };
    let sse = kind_of("text/event-stream");
    let refuse = |detail| {
        let error = AuthError::new(AuthErrorKind::UnfilterableResponse, detail);
        judging.deny(error, None, &[])
    };
    if !sse && !kind_of("application/json") {
        return refuse("the list answer is neither JSON nor SSE");
    }
    let Ok(bytes) = Limited::new(body, MAX_LIST)
        .collect()
        .await
        .map(|c| c.to_bytes())
    else {
        return refuse("the list answer is over the size limit, or unreadable");
    };
    let Some(body) = judge.filter_body(kind, &bytes, sse) else {
        return refuse("the list answer holds no JSON-RPC list result");
    };
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(
        parts,
        ResB::from(String::from_utf8_lossy(&body).into_owned()),
    )
}
