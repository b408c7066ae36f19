//! A route's policy file: the library's policy format
//! ([`PolicyFile`]: scopes, hierarchy, rules) plus an optional `[proxy]`
//! section with the route's proxy settings, so the file `MCP_POLICY` names
//! keeps working as it is.
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
//! [proxy]
//! list_filter = "hide-denied"        # "off", "hide-denied" (default), "callable-only"
//! stream = []                        # GET (SSE) and DELETE: [] allows (the default here)
//! response_timeout_ms = 30000        # no response head within this: 504
//! forward_query = false              # the query string reaches the upstream
//! [proxy.identity_headers]           # what the upstream is told of the caller
//! subject = "x-mcp-subject"
//! ```
//!
//! Errors name the file and the line.

use mcp_resource_guard::mcp::PolicyFile;
use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::config::{ConfigError, RouteSettings, line_of};

/// A policy file read: the policy, and what its `[proxy]` section sets.
pub struct RoutePolicy {
    pub file: PolicyFile,
    pub settings: RouteSettings,
}

/// Reads the policy file at `path`.
pub fn load(path: &str) -> Result<RoutePolicy, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("{path}: cannot read the policy file: {e}")))?;
    parse(path, &text)
}

/// Parses a policy file's text (`name` appears in errors).
pub fn parse(name: &str, text: &str) -> Result<RoutePolicy, ConfigError> {
    let at = |mut e: toml::de::Error| {
        e.set_input(Some(text));
        ConfigError(format!("{name}: {e}"))
    };
    let mut table = DeTable::parse(text).map_err(at)?;
    let mut proxy = take(table.get_mut(), "proxy");
    // `[proxy] stream` is the policy's stream rule.
    let proxy_stream = match proxy.as_mut().map(|p| p.get_mut()) {
        Some(DeValue::Table(t)) => take(t, "stream"),
        _ => None,
    };
    let settings = match proxy {
        None => RouteSettings::default(),
        Some(v) => RouteSettings::deserialize(toml::de::ValueDeserializer::from(v)).map_err(at)?,
    };
    let top_stream = table.get_ref().keys().any(|k| k.get_ref() == "stream");
    match (top_stream, proxy_stream) {
        (true, Some(s)) => {
            let line = line_of(text, s.span().start);
            return Err(ConfigError(format!(
                "{name} line {line}: stream is set twice (at the top and in [proxy])"
            )));
        }
        (true, None) => {}
        (false, stream) => {
            // Unlike the library's format (where it follows `default`), GET
            // and DELETE are allowed here unless `stream` says otherwise:
            // the file's meaning is kept.
            let stream = stream
                .unwrap_or_else(|| Spanned::new(0..0, DeValue::Array(toml::de::DeArray::new())));
            table
                .get_mut()
                .insert(Spanned::new(stream.span(), "stream".into()), stream);
        }
    }
    let file = PolicyFile::deserialize(toml::de::Deserializer::from(table)).map_err(at)?;
    Ok(RoutePolicy { file, settings })
}

/// Removes `key` from `table` (the others keep their order).
fn take<'i>(table: &mut DeTable<'i>, key: &str) -> Option<Spanned<DeValue<'i>>> {
    let k = table.keys().find(|k| k.get_ref() == key)?.clone();
    table.remove(&k)
}
