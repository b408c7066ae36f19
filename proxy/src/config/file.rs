//! The configuration file's format: its sections as serde reads them
//! (every key checked, errors at their line), the environment over them,
//! and the checks across settings.

use std::net::SocketAddr;
use std::time::Duration;

use http::HeaderName;
use mcp_resource_guard::TypPolicy;
use mcp_resource_guard::dpop::DpopMode;
use mcp_resource_guard::introspection::IntrospectionMode;
use mcp_resource_guard::mcp::{ListFilter, PolicyFile};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::{
    AuthMethod, Config, ConfigError, IdentityHeaders, IntrospectionConfig, Limits, Millis,
    OpsConfig, RedisConfig, RouteConfig, Secret, TlsConfig, line_of,
};
use crate::policy;

/// The proxy settings of a route, from a `[[routes]]` entry or a policy
/// file's `[proxy]` section (the entry wins).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSettings {
    list_filter: Option<ListFilterName>,
    response_timeout_ms: Option<Millis<600_000>>,
    forward_query: Option<bool>,
    #[serde(default)]
    identity_headers: IdentitySection,
}

impl RouteSettings {
    fn or(self, file: RouteSettings) -> RouteSettings {
        let (a, b) = (self.identity_headers, file.identity_headers);
        RouteSettings {
            list_filter: self.list_filter.or(file.list_filter),
            response_timeout_ms: self.response_timeout_ms.or(file.response_timeout_ms),
            forward_query: self.forward_query.or(file.forward_query),
            identity_headers: IdentitySection {
                subject: a.subject.or(b.subject),
                client_id: a.client_id.or(b.client_id),
                scopes: a.scopes.or(b.scopes),
                issuer: a.issuer.or(b.issuer),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ListFilterName {
    Off,
    HideDenied,
    CallableOnly,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentitySection {
    subject: Option<IdentityHeader>,
    client_id: Option<IdentityHeader>,
    scopes: Option<IdentityHeader>,
    issuer: Option<IdentityHeader>,
}

/// Headers the identity headers must not be (credentials, framing, MCP).
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

/// A header name that may carry the caller's identity.
#[derive(Debug)]
struct IdentityHeader(HeaderName);

impl<'de> Deserialize<'de> for IdentityHeader {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let name = HeaderName::from_bytes(s.as_bytes())
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a header name")))?;
        if RESERVED.contains(&name.as_str()) || name.as_str().contains('_') {
            return Err(serde::de::Error::custom(format!(
                "{name} cannot carry the caller's identity"
            )));
        }
        Ok(Self(name))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    resource: Option<Spanned<String>>,
    upstream: Option<Spanned<String>>,
    policy: Option<PolicyFile>,
    policy_file: Option<Spanned<String>>,
    list_filter: Option<ListFilterName>,
    response_timeout_ms: Option<Millis<600_000>>,
    forward_query: Option<bool>,
    #[serde(default)]
    identity_headers: IdentitySection,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntrospection {
    issuer: Option<String>,
    client_id: String,
    client_secret_file: Option<String>,
    #[serde(default = "basic")]
    auth_method: AuthMethod,
    endpoint: Option<String>,
    #[serde(default)]
    mode: ModeName,
}

fn basic() -> AuthMethod {
    AuthMethod::Basic
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ModeName {
    #[default]
    OpaqueTokens,
    EveryToken,
    JwtThenIntrospect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDpop {
    mode: DpopName,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum DpopName {
    Disabled,
    Allowed,
    Required,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCors {
    origins: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOps {
    bind: Option<Addr>,
    revoke_token_file: Option<String>,
}

#[derive(Deserialize)]
enum TypName {
    #[serde(rename = "at+jwt")]
    AtJwt,
    #[serde(rename = "allow-jwt")]
    AllowJwt,
}

/// An IP address and port.
#[derive(Debug, Clone, Copy)]
struct Addr(SocketAddr);

impl<'de> Deserialize<'de> for Addr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        addr(&s).map(Addr).map_err(serde::de::Error::custom)
    }
}

fn addr(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("{s:?}: an IP address and port, e.g. 127.0.0.1:3000"))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    bind: Option<Addr>,
    #[serde(default)]
    issuers: Vec<String>,
    typ_policy: Option<TypName>,
    #[serde(default)]
    routes: Vec<RawRoute>,
    introspection: Option<RawIntrospection>,
    dpop: Option<RawDpop>,
    redis: Option<RedisConfig>,
    cors: Option<RawCors>,
    #[serde(default)]
    limits: Limits,
    ops: Option<RawOps>,
    tls: Option<TlsConfig>,
}

/// Reads the configuration: the file at `path` (if any), then the
/// environment as `env` gives it (`std::env::var(..).ok()` in the binary).
pub fn load(
    path: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let (name, text) = match path {
        Some(p) => (
            p.to_owned(),
            std::fs::read_to_string(p)
                .map_err(|e| ConfigError(format!("{p}: cannot read the configuration: {e}")))?,
        ),
        None => ("(environment)".to_owned(), String::new()),
    };
    parse(&name, &text, env)
}

/// Parses a configuration's text (`name` appears in errors), then applies
/// the environment.
pub fn parse(
    name: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError(format!("{name}: {e}")))?;
    let err = |span: std::ops::Range<usize>, msg: String| {
        ConfigError(format!("{name} line {}: {msg}", line_of(text, span.start)))
    };
    let var = |k: &str| env(k).filter(|v| !v.is_empty());

    let bind = match var("MCP_BIND") {
        Some(b) => addr(&b).map_err(|e| ConfigError(format!("MCP_BIND: {e}")))?,
        None => raw.bind.map_or(([127, 0, 0, 1], 3000).into(), |a| a.0),
    };
    let issuers: Vec<String> = match var("MCP_ISSUER") {
        Some(i) => i.split(',').map(|s| s.trim().to_owned()).collect(),
        None => raw.issuers,
    };
    if issuers.is_empty() || issuers.iter().any(String::is_empty) {
        return Err(ConfigError(
            "no issuer: set issuers = [\"https://auth.example.com\"] or MCP_ISSUER (the trusted authorization servers)".into(),
        ));
    }
    let typ_policy = match var("MCP_TYP_POLICY").as_deref() {
        Some("at+jwt") => TypPolicy::AccessTokenOnly,
        Some("allow-jwt") => TypPolicy::AllowJwt,
        Some(other) => {
            return Err(ConfigError(format!(
                "MCP_TYP_POLICY={other:?}: use allow-jwt or leave it unset"
            )));
        }
        None => match raw.typ_policy {
            Some(TypName::AllowJwt) => TypPolicy::AllowJwt,
            _ => TypPolicy::AccessTokenOnly,
        },
    };

    // MCP_UPSTREAM, MCP_RESOURCE and MCP_POLICY set the one route.
    let mut raw_routes = raw.routes;
    let route_env = [var("MCP_UPSTREAM"), var("MCP_RESOURCE"), var("MCP_POLICY")];
    if route_env.iter().any(Option::is_some) {
        if raw_routes.len() > 1 {
            return Err(ConfigError(format!(
                "MCP_UPSTREAM, MCP_RESOURCE and MCP_POLICY set the only route, and {name} has {}: set them in the file",
                raw_routes.len()
            )));
        }
        if raw_routes.is_empty() {
            raw_routes.push(RawRoute {
                resource: None,
                upstream: None,
                policy: None,
                policy_file: None,
                list_filter: None,
                response_timeout_ms: None,
                forward_query: None,
                identity_headers: IdentitySection::default(),
            });
        }
        let [upstream, resource, policy] = route_env;
        let r = &mut raw_routes[0];
        let spanned = |v: String| Spanned::new(0..0, v);
        if let Some(u) = upstream {
            r.upstream = Some(spanned(u));
        }
        if let Some(u) = resource {
            r.resource = Some(spanned(u));
        }
        if let Some(p) = policy {
            // Relative to the working directory, not the file's folder.
            let p = std::path::absolute(&p).map_or(p, |a| a.display().to_string());
            r.policy = None;
            r.policy_file = Some(spanned(p));
        }
    }
    if raw_routes.is_empty() {
        return Err(ConfigError(
            "no route: add a [[routes]] entry, or set MCP_UPSTREAM and MCP_POLICY".into(),
        ));
    }
    let base = std::path::Path::new(name).parent();
    let mut routes = Vec::with_capacity(raw_routes.len());
    for r in raw_routes {
        routes.push(route(r, base, &err)?);
    }
    for (i, a) in routes.iter().enumerate() {
        let path = |r: &RouteConfig| url::Url::parse(&r.resource).map(|u| u.path().to_owned());
        if routes[..i].iter().any(|b| path(a).ok() == path(b).ok()) {
            return Err(ConfigError(format!(
                "{name}: two routes at the path of {}: each route needs its own path",
                a.resource
            )));
        }
    }

    let introspection = match raw.introspection {
        None => None,
        Some(i) => Some(introspection(i, &issuers, var("MCP_INTROSPECTION_SECRET"))?),
    };
    let dpop = match raw.dpop.map(|d| d.mode) {
        None | Some(DpopName::Disabled) => DpopMode::Disabled,
        Some(DpopName::Allowed) => DpopMode::Allowed,
        Some(DpopName::Required) => DpopMode::Required,
    };
    let mut redis = raw.redis;
    if let Some(url) = var("MCP_REDIS_URL") {
        let r = redis.get_or_insert(RedisConfig {
            url: String::new(),
            prefix: None,
            revocation_recheck_ms: None,
        });
        r.url = url;
    }
    if let Some(r) = &mut redis {
        if let Some(p) = var("MCP_REDIS_PREFIX") {
            r.prefix = Some(p);
        }
        if let Some(ms) = var("MCP_REVOCATION_RECHECK_MS") {
            let ms: u64 = ms
                .parse()
                .ok()
                .filter(|v| (1..=3_600_000).contains(v))
                .ok_or_else(|| {
                    ConfigError(format!(
                        "MCP_REVOCATION_RECHECK_MS={ms:?}: from 1 to 3600000 (milliseconds)"
                    ))
                })?;
            r.revocation_recheck_ms = Some(Millis(Duration::from_millis(ms)));
        }
    }
    let ops = ops(raw.ops, var("MCP_METRICS_BIND"), var("MCP_REVOKE_TOKEN"))?;
    Ok(Config {
        bind,
        issuers,
        typ_policy,
        routes,
        introspection,
        dpop,
        redis,
        cors_origins: raw.cors.map(|c| c.origins).unwrap_or_default(),
        limits: raw.limits,
        ops,
        tls: raw.tls,
    })
}

fn route(
    r: RawRoute,
    base: Option<&std::path::Path>,
    err: &dyn Fn(std::ops::Range<usize>, String) -> ConfigError,
) -> Result<RouteConfig, ConfigError> {
    let own = RouteSettings {
        list_filter: r.list_filter,
        response_timeout_ms: r.response_timeout_ms,
        forward_query: r.forward_query,
        identity_headers: r.identity_headers,
    };
    let Some(upstream) = r.upstream else {
        return Err(ConfigError(
            "a route without upstream: set upstream = \"http://127.0.0.1:8000/mcp\" (or MCP_UPSTREAM)"
                .into(),
        ));
    };
    let resource = r.resource.map_or_else(
        || "http://127.0.0.1:3000/mcp".to_owned(),
        Spanned::into_inner,
    );
    let (policy, settings) = match (r.policy, r.policy_file) {
        (Some(p), None) => (p, own),
        (None, Some(path)) => {
            // Relative to the configuration file's folder.
            let path = base.map_or_else(
                || std::path::PathBuf::from(path.get_ref()),
                |b| b.join(path.get_ref()),
            );
            let file = policy::load(&path.display().to_string())?;
            (file.file, own.or(file.settings))
        }
        (Some(_), Some(path)) => {
            return Err(err(
                path.span(),
                "a route takes policy or policy_file, not both".into(),
            ));
        }
        (None, None) => {
            return Err(err(
                upstream.span(),
                "a route without a policy: add [routes.policy] or policy_file (or MCP_POLICY)"
                    .into(),
            ));
        }
    };
    let ih = settings.identity_headers;
    let header = |h: Option<IdentityHeader>, default: &'static str| {
        h.map_or(HeaderName::from_static(default), |h| h.0)
    };
    Ok(RouteConfig {
        resource,
        upstream: upstream.into_inner(),
        policy,
        list_filter: match settings.list_filter {
            None | Some(ListFilterName::HideDenied) => ListFilter::HideDenied,
            Some(ListFilterName::Off) => ListFilter::Off,
            Some(ListFilterName::CallableOnly) => ListFilter::CallableOnly,
        },
        response_timeout: settings
            .response_timeout_ms
            .map_or(Duration::from_secs(30), |m| m.0),
        forward_query: settings.forward_query.unwrap_or(false),
        identity: IdentityHeaders {
            subject: header(ih.subject, "x-mcp-subject"),
            client_id: header(ih.client_id, "x-mcp-client-id"),
            scopes: header(ih.scopes, "x-mcp-scopes"),
            issuer: header(ih.issuer, "x-mcp-issuer"),
        },
    })
}

fn introspection(
    i: RawIntrospection,
    issuers: &[String],
    env_secret: Option<String>,
) -> Result<IntrospectionConfig, ConfigError> {
    let issuer = match i.issuer {
        Some(x) if issuers.contains(&x) => x,
        Some(x) => {
            return Err(ConfigError(format!(
                "[introspection] issuer {x:?} is not one of issuers"
            )));
        }
        None if issuers.len() == 1 => issuers[0].clone(),
        None => {
            return Err(ConfigError(
                "[introspection] needs issuer = \"…\" (one of issuers)".into(),
            ));
        }
    };
    let client_secret = match (env_secret, i.client_secret_file) {
        (Some(s), _) => s,
        (None, Some(f)) => read_secret(&f, "[introspection] client_secret_file")?,
        (None, None) => {
            return Err(ConfigError(
                "[introspection] needs client_secret_file or MCP_INTROSPECTION_SECRET".into(),
            ));
        }
    };
    Ok(IntrospectionConfig {
        issuer,
        client_id: i.client_id,
        client_secret: Secret(client_secret),
        auth_method: i.auth_method,
        endpoint: i.endpoint,
        mode: match i.mode {
            ModeName::OpaqueTokens => IntrospectionMode::OpaqueTokens,
            ModeName::EveryToken => IntrospectionMode::EveryToken,
            ModeName::JwtThenIntrospect => IntrospectionMode::JwtThenIntrospect,
        },
    })
}

fn ops(
    raw: Option<RawOps>,
    env_bind: Option<String>,
    env_token: Option<String>,
) -> Result<Option<OpsConfig>, ConfigError> {
    let (file_bind, token_file) = match raw {
        Some(o) => (o.bind.map(|a| a.0), o.revoke_token_file),
        None => (None, None),
    };
    let bind = match env_bind {
        Some(b) => Some(addr(&b).map_err(|e| ConfigError(format!("MCP_METRICS_BIND: {e}")))?),
        None => file_bind,
    };
    let token = match (env_token, token_file) {
        (Some(t), _) => Some(("MCP_REVOKE_TOKEN", t)),
        (None, Some(f)) => Some((
            "[ops] revoke_token_file",
            read_secret(&f, "[ops] revoke_token_file")?,
        )),
        (None, None) => None,
    };
    let revoke_token = match token {
        None => None,
        Some((_, t)) if t.len() >= 16 && t.bytes().all(|b| b.is_ascii_graphic()) => Some(Secret(t)),
        Some((from, _)) => {
            return Err(ConfigError(format!(
                "{from}: at least 16 visible ASCII characters"
            )));
        }
    };
    match bind {
        Some(bind) => Ok(Some(OpsConfig { bind, revoke_token })),
        None if revoke_token.is_some() => Err(ConfigError(
            "a revoke token without an operations port: set [ops] bind or MCP_METRICS_BIND".into(),
        )),
        None => Ok(None),
    }
}

/// A secret file's content, without the trailing newline.
fn read_secret(path: &str, what: &str) -> Result<String, ConfigError> {
    let s =
        std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{what} {path:?}: {e}")))?;
    Ok(s.trim_end_matches(['\r', '\n']).to_owned())
}
