//! What the MCP layer does with the server's answer to a request it let
//! through: binds the session or the tasks the answer creates to the
//! caller, ends a session the server ended, and filters lists. An answer it
//! must read and cannot is never passed on as it is (`502`).

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Response};
use http_body::Body;
use http_body_util::{BodyExt, Limited};

use super::answers::Answers;
use super::list_filter::{Judge, ListFilter, ListKind};
use super::ownership::Principal;
use super::service::Judging;
use super::session::MCP_SESSION_ID;
use crate::error::{AuthError, AuthErrorKind, BoxError};
use crate::guard::revision::Wire;

/// The largest answer the layer reads to filter it or learn its tasks.
const MAX_ANSWER: usize = 8 * 1024 * 1024;

/// What the layer knows of a request it forwarded.
pub(super) struct Forwarded {
    pub(super) method: Method,
    pub(super) wire: Wire,
    /// The session the request named (checked), if any.
    pub(super) session: Option<String>,
}

/// The answer to a forwarded request, as the client gets it.
pub(super) async fn reply<ResB>(
    judging: &Judging<'_>,
    forwarded: Forwarded,
    res: Response<ResB>,
) -> Response<ResB>
where
    ResB: From<String>,
    ResB: Body + From<String>,
    ResB::Error: Into<BoxError>,
{
    let config = judging.config;
    let store = config.shared.store.as_ref();
    // Who the caller is, as a binding records it (made only when needed).
    let principal = || Principal::of(judging.ctx);
    if let (Some(binding), Wire::Session) = (&config.sessions, forwarded.wire) {
        match &forwarded.session {
            // The server issued a session for this request: bind it.
            None => {
                if let Some(id) = res
                    .headers()
                    .get(&MCP_SESSION_ID)
                    .and_then(|v| v.to_str().ok())
                    && let Err(e) = binding.owners.bind(id, principal(), store).await
                {
                    return judging.deny(e, None, &[]);
                }
            }
            Some(id) if forwarded.method == Method::DELETE && res.status().is_success() => {
                binding.owners.end(id, store).await;
            }
            Some(_) => {}
        }
    }
    let [m] = judging.messages else {
        return res;
    };
    if config.lists != ListFilter::Off
        && let Some(kind) = ListKind::of_message(m)
    {
        let judge = Judge {
            filter: config.lists,
            policy: &config.policy,
            shared: &config.shared,
            ctx: judging.ctx,
            wire: forwarded.wire,
        };
        let (parts, mut answers) = match list_answer(judging, res).await {
            Ok(a) => a,
            Err(answer) => return answer,
        };
        let mut filtered = false;
        for reply in answers.replies_mut() {
            filtered |= judge.filter_response(kind, reply);
        }
        return written(judging, parts, &answers, filtered);
    }
    let Some(tasks) = &config.tasks else {
        return res;
    };
    match m.method.as_deref() {
        // Only a call that may be answered with a task is read whole: other
        // answers keep streaming (and a task a server created anyway stays
        // unbound, so refused to everyone).
        Some("tools/call") if m.task_capable => {
            let (parts, body) = res.into_parts();
            if !parts.status.is_success() {
                return Response::from_parts(parts, body);
            }
            let Some(sse) = kind(&parts) else {
                // Neither JSON nor SSE: no task the layer could bind (and an
                // unbound task is refused to everyone).
                return Response::from_parts(parts, body);
            };
            let bytes = match read(body).await {
                Ok(b) => b,
                Err(e) => return judging.deny(e, None, &[]),
            };
            if let Some(answers) = Answers::parse(&bytes, sse) {
                let principal = principal();
                for reply in answers.replies() {
                    if let Err(e) = tasks.bind_created(reply, &principal, store).await {
                        return judging.deny(e, None, &[]);
                    }
                }
            }
            let mut parts = parts;
            // The same bytes, unless they were not UTF-8: let the body say
            // its length.
            parts.headers.remove(CONTENT_LENGTH);
            Response::from_parts(parts, ResB::from(into_string(bytes)))
        }
        Some("tasks/list") => {
            let (parts, mut answers) = match list_answer(judging, res).await {
                Ok(a) => a,
                Err(answer) => return answer,
            };
            let mut filtered = false;
            let principal = principal();
            for reply in answers.replies_mut() {
                filtered |= tasks.filter_list(reply, &principal, store).await;
            }
            written(judging, parts, &answers, filtered)
        }
        _ => res,
    }
}

/// `Some(true)` for an SSE answer, `Some(false)` for JSON, `None` otherwise.
fn kind(parts: &http::response::Parts) -> Option<bool> {
    let ct = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())?;
    if ct.starts_with("text/event-stream") {
        Some(true)
    } else if ct.starts_with("application/json") {
        Some(false)
    } else {
        None
    }
}

/// Reads an answer whole, up to [`MAX_ANSWER`].
async fn read<B>(body: B) -> Result<Bytes, AuthError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    Limited::new(body, MAX_ANSWER)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|_| {
            AuthError::new(
                AuthErrorKind::UnfilterableResponse,
                "the answer is over the size limit, or unreadable",
            )
        })
}

/// The answer's bytes as the body type's `String` (JSON and SSE are UTF-8;
/// an answer that is not was refused when parsed, or is passed as read).
fn into_string(bytes: Bytes) -> String {
    // Without a copy when the bytes are the answer's alone.
    String::from_utf8(Vec::from(bytes))
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn unfilterable<B>(judging: &Judging<'_>, detail: &'static str) -> Response<B>
where
    B: From<String>,
{
    judging.deny(
        AuthError::new(AuthErrorKind::UnfilterableResponse, detail),
        None,
        &[],
    )
}

/// A list answer read as JSON-RPC messages; `Err` with the answer to
/// give instead: an error status passed on as it is (an error carries no
/// list), or `502` for an answer that cannot be read.
async fn list_answer<ResB>(
    judging: &Judging<'_>,
    res: Response<ResB>,
) -> Result<(http::response::Parts, Answers), Response<ResB>>
where
    ResB: From<String>,
    ResB: Body + From<String>,
    ResB::Error: Into<BoxError>,
{
    let (parts, body) = res.into_parts();
    if !parts.status.is_success() {
        return Err(Response::from_parts(parts, body));
    }
    let Some(sse) = kind(&parts) else {
        return Err(unfilterable(
            judging,
            "the list answer is neither JSON nor SSE",
        ));
    };
    let bytes = read(body).await.map_err(|e| judging.deny(e, None, &[]))?;
    match Answers::parse(&bytes, sse) {
        Some(answers) => Ok((parts, answers)),
        None => Err(unfilterable(judging, "the list answer is not JSON-RPC")),
    }
}

/// The rewritten list answer, or `502` when it held no list.
fn written<ResB>(
    judging: &Judging<'_>,
    mut parts: http::response::Parts,
    answers: &Answers,
    filtered: bool,
) -> Response<ResB>
where
    ResB: From<String>,
    ResB: From<String>,
{
    if !filtered {
        return unfilterable(judging, "the list answer holds no JSON-RPC list result");
    }
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, ResB::from(into_string(answers.to_bytes())))
}
