//! The configuration: one TOML file (`--config`), then the environment
//! on top (a variable overrides the file's setting). The full reference is
//! in the crate's README; every key is checked, and an error names the
//! file and the line.

use std::net::SocketAddr;
use std::time::Duration;

use http::HeaderName;
use mcp_resource_guard::TypPolicy;
use mcp_resource_guard::dpop::DpopMode;
use mcp_resource_guard::introspection::IntrospectionMode;
use mcp_resource_guard::mcp::{ListFilter, PolicyFile};
use serde::{Deserialize, Deserializer};

mod file;

pub use file::{RouteSettings, load, parse};

/// Why a configuration was refused: where, and what to fix.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Everything the proxy runs with, checked.
#[derive(Debug)]
pub struct Config {
    /// Where clients connect (`bind`, `MCP_BIND`).
    pub bind: SocketAddr,
    /// The trusted authorization servers (`issuers`, `MCP_ISSUER`).
    pub issuers: Vec<String>,
    pub typ_policy: TypPolicy,
    pub routes: Vec<RouteConfig>,
    pub introspection: Option<IntrospectionConfig>,
    pub dpop: DpopMode,
    pub redis: Option<RedisConfig>,
    /// Browser origins allowed to call (CORS); empty: none.
    pub cors_origins: Vec<String>,
    pub limits: Limits,
    pub ops: Option<OpsConfig>,
    pub tls: Option<TlsConfig>,
}

/// One protected MCP server: the path of `resource` on the proxy goes to
/// `upstream`.
#[derive(Debug)]
pub struct RouteConfig {
    /// The route's canonical URL (the tokens' `aud`); its path is the route.
    pub resource: String,
    pub upstream: String,
    pub policy: PolicyFile,
    pub list_filter: ListFilter,
    pub response_timeout: Duration,
    pub forward_query: bool,
    pub identity: IdentityHeaders,
}

/// The headers that tell the upstream who is calling (lowercase names).
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    pub subject: HeaderName,
    pub client_id: HeaderName,
    pub scopes: HeaderName,
    pub issuer: HeaderName,
}

/// `[limits]`: what one client, or all of them, can make the proxy hold.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Open client connections; one more is answered 503 and closed.
    pub max_connections: Count<1_000_000>,
    /// Requests being handled at once; one more is answered 503.
    pub max_in_flight: Count<1_000_000>,
    /// A request head not complete within this: the connection is closed.
    pub header_read_timeout_ms: Millis<600_000>,
    /// A request body not complete within this: 408.
    pub body_read_timeout_ms: Millis<600_000>,
    /// A request body larger than this: 413.
    pub max_body_bytes: Count<{ 64 * 1024 * 1024 }>,
    /// Idle connections kept open to each upstream.
    pub upstream_pool_idle: Count<100_000>,
    /// On SIGTERM or SIGINT: how long in-flight requests may finish.
    pub shutdown_drain_ms: Millis<3_600_000>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: Count(1024),
            max_in_flight: Count(512),
            header_read_timeout_ms: Millis(Duration::from_secs(10)),
            body_read_timeout_ms: Millis(Duration::from_secs(30)),
            max_body_bytes: Count(4 * 1024 * 1024),
            upstream_pool_idle: Count(64),
            shutdown_drain_ms: Millis(Duration::from_secs(30)),
        }
    }
}

/// A number from 1 to `MAX`.
#[derive(Debug, Clone, Copy)]
pub struct Count<const MAX: usize>(pub usize);

impl<'de, const MAX: usize> Deserialize<'de> for Count<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = usize::deserialize(d)?;
        if !(1..=MAX).contains(&v) {
            return Err(serde::de::Error::custom(format!("from 1 to {MAX}")));
        }
        Ok(Self(v))
    }
}

/// A time in milliseconds, from 1 to `MAX`.
#[derive(Debug, Clone, Copy)]
pub struct Millis<const MAX: u64>(pub Duration);

impl<'de, const MAX: u64> Deserialize<'de> for Millis<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u64::deserialize(d)?;
        if !(1..=MAX).contains(&v) {
            return Err(serde::de::Error::custom(format!(
                "from 1 to {MAX} (milliseconds)"
            )));
        }
        Ok(Self(Duration::from_millis(v)))
    }
}

/// `[introspection]`: opaque tokens (or every token) checked at the
/// issuer's RFC 7662 endpoint.
#[derive(Debug)]
pub struct IntrospectionConfig {
    pub issuer: String,
    pub client_id: String,
    /// From `client_secret_file` or `MCP_INTROSPECTION_SECRET`.
    pub client_secret: Secret,
    pub auth_method: AuthMethod,
    pub endpoint: Option<String>,
    pub mode: IntrospectionMode,
}

/// How the proxy authenticates to the introspection endpoint.
#[derive(Debug, Clone, Copy, Deserialize)]
pub enum AuthMethod {
    #[serde(rename = "client_secret_basic")]
    Basic,
    #[serde(rename = "client_secret_post")]
    Post,
}

/// A secret read from a file or the environment; never printed.
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// `[redis]`: state shared by replicas (revocations, DPoP replays).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    pub url: String,
    pub prefix: Option<String>,
    pub revocation_recheck_ms: Option<Millis<3_600_000>>,
}

/// `[ops]`: the operations port (probes, metrics, revocation).
#[derive(Debug)]
pub struct OpsConfig {
    pub bind: SocketAddr,
    /// The Bearer secret `/revoke` needs; `None`: revocation is off.
    pub revoke_token: Option<Secret>,
}

/// `[tls]`: the front side's certificate chain and key (PEM files).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: String,
    pub key_file: String,
}
