//! [`McpLayer`]: the MCP policy layer, built from a guard.

use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use super::jsonrpc::Message;
use super::list_filter::{ListFilter, ListKind};
use super::policy::McpPolicy;
use super::service::Mcp;
use super::session::SessionBinding;
use super::tasks::TaskBinding;
use crate::error::ConfigError;
use crate::guard::GuardLayer;
use crate::guard::policy::Shared;

const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;
const MAX_MAX_BODY: usize = 64 * 1024 * 1024;
const DEFAULT_MAX_BATCH: usize = 64;
const MAX_MAX_BATCH: usize = 10_000;

/// What an [`McpLayer`] judges with: its guard's policy and answers, the
/// MCP policy, the limits, the session and task bindings.
#[derive(Clone)]
pub(super) struct Config {
    pub(super) shared: Arc<Shared>,
    pub(super) policy: McpPolicy,
    pub(super) max_body: usize,
    pub(super) max_batch: usize,
    pub(super) sessions: Option<SessionBinding>,
    pub(super) tasks: Option<TaskBinding>,
    pub(super) lists: ListFilter,
}

impl Config {
    /// `true` when the layer filters the answer to `m` (a list, the
    /// caller's tasks). Only a single message's answer is filtered, so a
    /// batch holding such a request is refused.
    pub(super) fn filters_answer_to(&self, m: &Message) -> bool {
        (self.lists != ListFilter::Off && ListKind::of_message(m).is_some())
            || (self.tasks.is_some() && m.method.as_deref() == Some("tasks/list"))
    }
}

/// The MCP policy layer, built from the [`GuardLayer`] in front of it (it
/// shares that guard's required scopes, challenges and rejection body). See
/// the [module docs](super).
///
/// Apply the guard outside it (the guard's `.layer()` call comes after this
/// one). A request that reaches it without passing a guard is refused with
/// `500`, never judged as anonymous.
#[derive(Clone)]
pub struct McpLayer {
    config: Config,
}

impl McpLayer {
    /// A layer enforcing `policy` behind `guard`, without session binding.
    pub fn new(guard: &GuardLayer, policy: McpPolicy) -> Self {
        Self {
            config: Config {
                shared: guard.shared.clone(),
                policy,
                max_body: DEFAULT_MAX_BODY,
                max_batch: DEFAULT_MAX_BATCH,
                sessions: None,
                tasks: None,
                lists: ListFilter::Off,
            },
        }
    }
}

impl McpLayer {
    /// The largest request body read, in bytes; a larger one gets `413`.
    /// From 1 byte to 64 MiB. Defaults to 4 MiB.
    ///
    /// # Errors
    ///
    /// [`ConfigError::OutOfRange`] outside that range.
    pub fn max_body_bytes(mut self, bytes: usize) -> Result<Self, ConfigError> {
        if bytes == 0 || bytes > MAX_MAX_BODY {
            return Err(ConfigError::OutOfRange {
                setting: "McpLayer max_body_bytes",
                reason: "from 1 byte to 64 MiB",
            });
        }
        self.config.max_body = bytes;
        Ok(self)
    }

    /// The most messages a JSON-RPC batch may hold; a larger batch gets
    /// `400` (`-32600`). From 1 to 10,000. Defaults to 64.
    ///
    /// # Errors
    ///
    /// [`ConfigError::OutOfRange`] outside that range.
    pub fn max_batch_messages(mut self, messages: usize) -> Result<Self, ConfigError> {
        if messages == 0 || messages > MAX_MAX_BATCH {
            return Err(ConfigError::OutOfRange {
                setting: "McpLayer max_batch_messages",
                reason: "from 1 to 10,000",
            });
        }
        self.config.max_batch = messages;
        Ok(self)
    }

    /// Filter `tools/list`, `prompts/list`, `resources/list` and
    /// `resources/templates/list` answers to what the caller may use (see
    /// [`ListFilter`]; JSON and SSE answers; on `2026-07-28` a filtered
    /// result is marked `cacheScope: "private"`). An answer over 8 MiB, or
    /// one the layer cannot read, gets `502`, never passes unfiltered. While
    /// a filter is on, a batch holding a list request and a `Last-Event-ID`
    /// (stream resumption) are refused with `400`: no list passes without
    /// being filtered. Defaults to [`ListFilter::Off`].
    #[must_use]
    pub fn list_filter(mut self, filter: ListFilter) -> Self {
        self.config.lists = filter;
        self
    }

    /// Bind sessions (`Mcp-Session-Id`, the `2025-11-25` wire) to
    /// principals. Defaults to off.
    #[must_use]
    pub fn session_binding(mut self, binding: SessionBinding) -> Self {
        self.config.sessions = Some(binding);
        self
    }

    /// Bind tasks (the tasks extension: `taskId`) to the principals whose
    /// calls created them; see [`TaskBinding`]. Turn it on for a server
    /// that creates tasks. Defaults to off.
    #[must_use]
    pub fn task_binding(mut self, binding: TaskBinding) -> Self {
        self.config.tasks = Some(binding);
        self
    }
}

impl fmt::Debug for McpLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpLayer")
            .field("policy", &self.config.policy)
            .field("max_body", &self.config.max_body)
            .field("max_batch", &self.config.max_batch)
            .field("sessions", &self.config.sessions)
            .field("tasks", &self.config.tasks)
            .field("lists", &self.config.lists)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for McpLayer {
    type Service = Mcp<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Mcp {
            inner,
            config: Arc::new(self.config.clone()),
        }
    }
}
