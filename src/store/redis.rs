//! [`RedisStore`]: a [`Store`] on Redis or Valkey (feature `redis`).
//!
//! Built on the `redis` crate (redis-rs), the most used Rust client, kept by
//! the redis-rs organisation: its `ConnectionManager` multiplexes every
//! request of the process over one connection (commands from concurrent
//! requests are pipelined on the wire), reconnects by itself with backoff,
//! and times out each response; `cluster-async` speaks Redis Cluster.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Value};

use super::{Store, StoreError, StoreKey, check_value, ttl_millis};
use crate::error::ConfigError;
use crate::observe::log::event;

const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);
const DEFAULT_PREFIX: &str = "mcp-resource-guard";

#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// A [`Store`] on Redis (or Valkey), standalone or Redis Cluster.
///
/// - Keys are `<prefix>:<kind>:<sha-256 hex>` ([`StoreKey`]): no token or
///   session id in clear; the prefix (default `mcp-resource-guard`)
///   separates deployments sharing one Redis.
/// - Every write sets a TTL (`PX`); replay checks use `SET key value NX PX`.
/// - Each call gives up after the timeout (250 ms by default) with a
///   [`StoreError`]: a Redis that is down or slow never hangs a request.
/// - Standalone: connects lazily (the application starts while Redis is
///   down; calls fail until it is up) and reconnects by itself after a
///   restart. Cluster: connects to the seed nodes at once, then follows
///   the cluster's slot map.
///
/// ```no_run
/// use mcp_resource_guard::store::{RedisStore, SharedStore};
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::builder("redis://127.0.0.1:6379/")
///     .prefix("todo-prod")
///     .connect()
///     .await?;
/// let shared = SharedStore::new(store);
/// # let _ = shared; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    prefix: Arc<str>,
    timeout: Duration,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.connection {
            Connection::Single(_) => "standalone",
            Connection::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisStore")
            .field("kind", &kind)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Settings of a [`RedisStore`]; see [`RedisStore::builder`].
#[derive(Debug, Clone)]
pub struct RedisStoreBuilder {
    urls: Vec<String>,
    cluster: bool,
    prefix: String,
    timeout: Duration,
}

impl RedisStore {
    /// A standalone Redis at `url` (`redis://[user:password@]host:port/db`,
    /// or `rediss://` for TLS when the `redis` crate has a TLS feature on).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            urls: vec![url.into()],
            cluster: false,
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A Redis Cluster reached through `seed_urls`.
    pub fn cluster_builder<I, S>(seed_urls: I) -> RedisStoreBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisStoreBuilder {
            urls: seed_urls.into_iter().map(Into::into).collect(),
            cluster: true,
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A standalone Redis at `url` with the default settings.
    ///
    /// # Errors
    ///
    /// See [`RedisStoreBuilder::connect`].
    pub async fn connect(url: impl Into<String>) -> Result<Self, ConfigError> {
        Self::builder(url).connect().await
    }

    fn key(&self, key: &StoreKey) -> String {
        format!("{}:{key}", self.prefix)
    }

    /// The server's `maxmemory-policy` (`CONFIG GET`), or `None` when it
    /// does not allow `CONFIG` (as some managed services do).
    ///
    /// Only `noeviction` keeps what the guard stores: under any other policy
    /// a Redis short of memory drops entries before their TTL, among them
    /// DPoP proofs already seen and revocations, and a replayed proof or a
    /// revoked token passes again. With `noeviction` Redis refuses the write
    /// instead, and the guard answers 503. Logs a warning (feature
    /// `tracing`) when the policy is another; call it at startup.
    ///
    /// # Errors
    ///
    /// When Redis cannot be reached.
    pub async fn eviction_policy(&self) -> Result<Option<String>, StoreError> {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("GET").arg("maxmemory-policy");
        let answer = match tokio::time::timeout(self.timeout, self.send(&cmd)).await {
            Ok(a) => a,
            Err(_) => return Err(StoreError::new("redis did not answer CONFIG GET in time")),
        };
        let text = |v: &Value| match v {
            Value::BulkString(p) => Some(String::from_utf8_lossy(p).into_owned()),
            Value::SimpleString(p) => Some(p.clone()),
            _ => None,
        };
        let policy = match answer {
            Ok(Value::Array(items)) => items.get(1).and_then(text),
            Ok(Value::Map(pairs)) => pairs.first().and_then(|(_, v)| text(v)),
            Ok(_) => None,
            // Redis answered with an error: CONFIG is disabled or renamed.
            Err(e)
                if matches!(
                    e.kind(),
                    redis::ErrorKind::Server(_) | redis::ErrorKind::Extension
                ) =>
            {
                None
            }
            Err(e) => return Err(StoreError::new(format!("redis: {}", kind_name(&e)))),
        };
        if let Some(p) = policy.as_deref()
            && p != "noeviction"
        {
            event!(
                warn,
                STORE,
                policy = p,
                "Redis may evict entries (maxmemory-policy is not noeviction): DPoP replays and revocations can be forgotten under memory pressure; set maxmemory-policy noeviction"
            );
        }
        Ok(policy)
    }

    async fn run(&self, cmd: &Cmd) -> Result<Value, StoreError> {
        self.bounded(self.send(cmd)).await
    }

    /// `cmd` on the connection, without a timeout or error mapping.
    async fn send(&self, cmd: &Cmd) -> redis::RedisResult<Value> {
        match &self.connection {
            Connection::Single(c) => c.clone().send_packed_command(cmd).await,
            Connection::Cluster(c) => {
                redis::aio::ConnectionLike::req_packed_command(&mut c.clone(), cmd).await
            }
        }
    }

    async fn run_pipeline(
        &self,
        pipe: &redis::Pipeline,
        n: usize,
    ) -> Result<Vec<Value>, StoreError> {
        self.bounded(async {
            match &self.connection {
                Connection::Single(c) => c.clone().send_packed_commands(pipe, 0, n).await,
                Connection::Cluster(c) => {
                    redis::aio::ConnectionLike::req_packed_commands(&mut c.clone(), pipe, 0, n)
                        .await
                }
            }
        })
        .await
    }

    /// `call` within the timeout; the error names the failure kind (I/O,
    /// refused, ...), never a key or a value.
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(StoreError::new(format!("redis: {}", kind_name(&e)))),
            Err(_) => Err(StoreError::new(format!(
                "redis did not answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }
}

impl RedisStoreBuilder {
    /// The prefix of every key (default `mcp-resource-guard`): give each
    /// deployment sharing a Redis its own.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one call may take before it fails (default 250 ms; from
    /// 1 ms to 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The store. A standalone store connects lazily: it is returned even
    /// when Redis is down (calls fail until it is up).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidUrl`] for a URL the client cannot use,
    /// [`ConfigError::OutOfRange`] for a timeout out of range or an empty
    /// prefix; for a cluster, [`ConfigError::Store`] when no seed node
    /// answers.
    pub async fn connect(self) -> Result<RedisStore, ConfigError> {
        if self.timeout < Duration::from_millis(1) || self.timeout > Duration::from_secs(10) {
            return Err(ConfigError::OutOfRange {
                setting: "RedisStore timeout",
                reason: "from 1 ms to 10 s",
            });
        }
        if self.prefix.is_empty() || self.prefix.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(ConfigError::OutOfRange {
                setting: "RedisStore prefix",
                reason: "not empty, without whitespace",
            });
        }
        let bad_url = |url: &str| ConfigError::InvalidUrl {
            url: without_password(url),
            reason: "not a redis:// or rediss:// URL the Redis client accepts",
        };
        let connection = if self.cluster {
            let client = redis::cluster::ClusterClientBuilder::new(self.urls.clone())
                .connection_timeout(self.timeout)
                .response_timeout(self.timeout)
                .build()
                .map_err(|_| bad_url(self.urls.first().map_or("", String::as_str)))?;
            let conn = client.get_async_connection().await.map_err(|e| {
                ConfigError::Store(format!(
                    "no Redis Cluster seed node answered: {}",
                    kind_name(&e)
                ))
            })?;
            Connection::Cluster(conn)
        } else {
            let url = self.urls.first().map_or("", String::as_str);
            let client = redis::Client::open(url).map_err(|_| bad_url(url))?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(self.timeout))
                .set_response_timeout(Some(self.timeout))
                .set_max_delay(Duration::from_secs(2));
            let manager = ConnectionManager::new_lazy_with_config(client, config)
                .map_err(|e| ConfigError::Store(format!("the Redis client: {}", kind_name(&e))))?;
            Connection::Single(manager)
        };
        Ok(RedisStore {
            connection,
            prefix: self.prefix.into(),
            timeout: self.timeout,
        })
    }
}

fn bytes_of(v: Value) -> Result<Option<Vec<u8>>, StoreError> {
    match v {
        Value::Nil => Ok(None),
        Value::BulkString(b) => Ok(Some(b)),
        Value::SimpleString(s) => Ok(Some(s.into_bytes())),
        _ => Err(StoreError::new(
            "redis answered GET with an unexpected type",
        )),
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn insert_if_absent(
        &self,
        key: &StoreKey,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        check_value(value)?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(ttl_millis(ttl));
        match self.run(&cmd).await? {
            Value::Okay => Ok(true),
            Value::Nil => Ok(false),
            Value::SimpleString(s) if s == "OK" => Ok(true),
            _ => Err(StoreError::new(
                "redis answered SET NX with an unexpected type",
            )),
        }
    }

    async fn set(&self, key: &StoreKey, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        check_value(value)?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(ttl_millis(ttl));
        self.run(&cmd).await.map(|_| ())
    }

    async fn get_many(&self, keys: &[StoreKey]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        match keys {
            [] => Ok(Vec::new()),
            [key] => {
                let mut cmd = redis::cmd("GET");
                cmd.arg(self.key(key));
                Ok(vec![bytes_of(self.run(&cmd).await?)?])
            }
            _ => {
                // One round trip; in a cluster the client splits the
                // pipeline by slot.
                let mut pipe = redis::pipe();
                for key in keys {
                    pipe.cmd("GET").arg(self.key(key));
                }
                let values = self.run_pipeline(&pipe, keys.len()).await?;
                if values.len() != keys.len() {
                    return Err(StoreError::new("redis answered a pipeline short"));
                }
                values.into_iter().map(bytes_of).collect()
            }
        }
    }

    async fn remove(&self, key: &StoreKey) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key(key));
        self.run(&cmd).await.map(|_| ())
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}

/// What kind of failure a Redis error is (never its text, which may quote
/// a command).
fn kind_name(e: &redis::RedisError) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connection_refusal() {
        "connection refused".to_owned()
    } else if e.is_io_error() || e.is_connection_dropped() {
        "connection lost".to_owned()
    } else {
        format!("{:?}", e.kind())
    }
}

/// `url` with its password (if any) replaced by `***`, for errors.
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "(not a URL)".to_owned(),
    }
}
