//! The audit trail: one structured event per access decision, on the target
//! `mcp_resource_guard::audit` (feature `tracing`; without it every call
//! here compiles to nothing).
//!
//! The fields are documented in the crate docs ("Audit trail").

// Without the `tracing` feature the decision is built and dropped.
#![cfg_attr(not(feature = "tracing"), allow(dead_code))]

use std::fmt;

use crate::claims::AuthContext;

/// The target of audit events.
#[cfg(feature = "tracing")]
pub(crate) const AUDIT: &str = "mcp_resource_guard::audit";

/// One access decision.
#[derive(Default)]
pub(crate) struct Decision<'a> {
    pub(crate) layer: &'static str,
    pub(crate) allow: bool,
    pub(crate) reason: &'static str,
    pub(crate) status: Option<u16>,
    pub(crate) detail: &'static str,
    pub(crate) cached: bool,
    pub(crate) ctx: Option<&'a AuthContext>,
    pub(crate) scopes_required: &'a [String],
    pub(crate) mcp_methods: Option<&'a dyn fmt::Display>,
    pub(crate) mcp_tools: Option<&'a dyn fmt::Display>,
}

/// An optional field: empty when absent.
struct Opt<'a>(Option<&'a dyn fmt::Display>);

impl fmt::Display for Opt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(d) => d.fmt(f),
            None => Ok(()),
        }
    }
}

/// Writes the items separated by `sep`; formatted only when an event is
/// recorded.
pub(crate) struct Joined<I>(pub(crate) I, pub(crate) &'static str);

impl<I, S> fmt::Display for Joined<I>
where
    I: IntoIterator<Item = S> + Clone,
    S: AsRef<str>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.clone().into_iter().enumerate() {
            if i > 0 {
                f.write_str(self.1)?;
            }
            write_clean(f, s.as_ref())?;
        }
        Ok(())
    }
}

/// Writes `s` with control characters escaped (`\n`, `\u{1b}`): values such
/// as tool names come from the request, and a raw newline or terminal escape
/// in a log line would let a client forge entries.
fn write_clean(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    for c in s.chars() {
        if c.is_control() {
            write!(f, "{}", c.escape_default())?;
        } else {
            fmt::Write::write_char(f, c)?;
        }
    }
    Ok(())
}

/// A value with control characters escaped (see [`write_clean`]).
struct Clean<'a>(&'a str);

impl fmt::Display for Clean<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_clean(f, self.0)
    }
}

/// A token-derived value (`sub`, `client_id`, `jti`), escaped like the
/// request-derived ones: a signed claim is still the client's text.
#[cfg(feature = "tracing")]
fn clean(s: &str) -> ::tracing::field::DisplayValue<Clean<'_>> {
    ::tracing::field::display(Clean(s))
}

/// The RFC 8693 `act` chain of an optional context: the actors' `sub`s,
/// the current one first, separated by ` < ` (empty without `act`).
struct ActChain<'a>(Option<&'a AuthContext>);

impl fmt::Display for ActChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut next = self.0.and_then(AuthContext::actor);
        let mut first = true;
        while let Some(a) = next {
            if !first {
                f.write_str(" < ")?;
            }
            first = false;
            write_clean(
                f,
                a.sub.as_deref().or(a.client_id.as_deref()).unwrap_or("?"),
            )?;
            next = a.actor.map(|b| *b);
        }
        Ok(())
    }
}

/// The granted scopes of an optional context.
struct Granted<'a>(Option<&'a AuthContext>);

impl fmt::Display for Granted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(c) => {
                for (i, s) in c.scopes().iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write_clean(f, s)?;
                }
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// Records one decision.
#[inline]
pub(crate) fn record(d: &Decision<'_>) {
    crate::observe::metrics::decision(d.layer, d.allow, d.reason);
    #[cfg(feature = "tracing")]
    {
        macro_rules! emit {
            ($level:ident) => {
                ::tracing::$level!(
                    target: AUDIT,
                    layer = d.layer,
                    outcome = if d.allow { "allow" } else { "deny" },
                    reason = d.reason,
                    status = d.status,
                    detail = d.detail,
                    cached = d.cached,
                    issuer = d.ctx.map(|c| clean(c.issuer())),
                    sub = d.ctx.and_then(AuthContext::subject).map(clean),
                    client_id = d.ctx.and_then(AuthContext::client_id).map(clean),
                    jti = d.ctx.and_then(AuthContext::jti).map(clean),
                    act = %ActChain(d.ctx),
                    scopes_granted = %Granted(d.ctx),
                    scopes_required = %Joined(d.scopes_required.iter().map(String::as_str), " "),
                    mcp_method = %Opt(d.mcp_methods),
                    mcp_tool = %Opt(d.mcp_tools),
                    "{}",
                    if d.allow { "access allowed" } else { "access denied" }
                )
            };
        }
        if d.status.is_some_and(|s| s >= 500) {
            emit!(warn);
        } else {
            emit!(info);
        }
    }
    #[cfg(not(feature = "tracing"))]
    let _ = d;
}
