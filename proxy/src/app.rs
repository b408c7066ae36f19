//! Builds the proxy from a [`Config`]: per route a guard (its resource,
//! the trusted issuers, the policy file's scopes), the body read, the MCP
//! layer (sessions and tasks bound to their caller) and the upstream.

use mcp_resource_guard::dpop::Dpop;
use mcp_resource_guard::introspection::{ClientAuth, Introspection};
use mcp_resource_guard::mcp::{McpLayer, SessionBinding, TaskBinding};
use mcp_resource_guard::store::{RedisStore, SharedStore};
use mcp_resource_guard::{CorsPolicy, GuardLayer, Issuer};
use tower_layer::Layer;

use crate::body::ReadBody;
use crate::config::{AuthMethod, Config, ConfigError, RedisConfig, RouteConfig};
use crate::front::{Front, Route};
use crate::upstream::Upstream;

/// The proxy as configured: its front, and each route's guard (for the
/// operations port: readiness, revocation).
pub struct App {
    pub front: Front,
    pub guards: Vec<GuardLayer>,
}

/// Builds the proxy (connecting to Redis when configured).
pub async fn build(config: &Config) -> Result<App, ConfigError> {
    let shared = match &config.redis {
        Some(r) => Some(shared_store(r).await?),
        None => None,
    };
    let mut routes = Vec::with_capacity(config.routes.len());
    let mut guards = Vec::with_capacity(config.routes.len());
    for r in &config.routes {
        let guard = guard(config, r, shared.clone())?;
        let mcp = McpLayer::new(&guard, r.policy.policy().clone())
            .list_filter(r.list_filter)
            .session_binding(SessionBinding::new())
            .task_binding(TaskBinding::new())
            .max_body_bytes(config.limits.max_body_bytes.0)
            .map_err(|e| ConfigError(format!("[limits] max_body_bytes: {e}")))?;
        let upstream = Upstream::new(r, config.limits.upstream_pool_idle.0).map_err(ConfigError)?;
        let read = ReadBody::new(
            mcp.layer(upstream),
            config.limits.body_read_timeout_ms.0,
            config.limits.max_body_bytes.0,
        );
        routes.push(Route {
            path: guard.resource().path().to_owned(),
            metadata_paths: guard.metadata_paths(),
            service: guard.layer(read),
        });
        guards.push(guard);
    }
    Ok(App {
        front: Front::new(routes, config.limits.max_in_flight.0),
        guards,
    })
}

fn guard(
    config: &Config,
    route: &RouteConfig,
    shared: Option<SharedStore>,
) -> Result<GuardLayer, ConfigError> {
    let mut b = route
        .policy
        .configure(GuardLayer::builder(&route.resource))
        .typ_policy(config.typ_policy)
        .dpop(Dpop::new(config.dpop))
        .resource_name("MCP server (mcp-guard-proxy)");
    for url in &config.issuers {
        let mut issuer = Issuer::new(url.clone());
        if let Some(i) = &config.introspection
            && &i.issuer == url
        {
            let secret = i.client_secret.0.clone();
            let auth = match i.auth_method {
                AuthMethod::Basic => ClientAuth::client_secret_basic(i.client_id.clone(), secret),
                AuthMethod::Post => ClientAuth::client_secret_post(i.client_id.clone(), secret),
            };
            let mut intro = Introspection::new(auth).mode(i.mode);
            if let Some(e) = &i.endpoint {
                intro = intro.endpoint(e.clone());
            }
            issuer = issuer.introspection(intro);
        }
        b = b.add_issuer(issuer);
    }
    if !config.cors_origins.is_empty() {
        b = b.cors(CorsPolicy::origins(config.cors_origins.iter().cloned()));
    }
    if let Some(s) = shared {
        b = b.shared_store(s);
    }
    b.build()
        .map_err(|e| ConfigError(format!("route {}: {e}", route.resource)))
}

/// The replicas' shared store on Redis.
async fn shared_store(r: &RedisConfig) -> Result<SharedStore, ConfigError> {
    let mut builder = RedisStore::builder(r.url.clone());
    if let Some(p) = &r.prefix {
        builder = builder.prefix(p.clone());
    }
    let store = builder
        .connect()
        .await
        .map_err(|e| ConfigError(format!("[redis] url: {e}")))?;
    // Only noeviction keeps replay and revocation entries under memory
    // pressure (RedisStore::eviction_policy logs this too).
    match store.eviction_policy().await {
        Ok(Some(p)) if p != "noeviction" => tracing::warn!(
            policy = %p,
            "Redis maxmemory-policy is not noeviction: DPoP replays and revocations can be forgotten when memory runs out"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "Redis is not reachable yet"),
    }
    let mut shared = SharedStore::new(store);
    if let Some(ms) = r.revocation_recheck_ms {
        shared = shared.revocation_recheck(ms.0);
    }
    Ok(shared)
}
